"""The worker against loopback services: download, transcribe, deliver, back off, give up, retry."""

from __future__ import annotations

import email
import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl

import pytest
import redis
from aiosmtpd.controller import Controller

from ivr.settings import Settings
from ivr.tickets.config import sinks_for_worker
from ivr.tickets.model import SIMULATED_ACCOUNT_SID, Ticket
from ivr.tickets.sinks import build_sinks
from ivr.tickets.store import OUTBOX_KEY, TicketStore
from ivr.tickets.worker import Worker, WorkerOptions
from tests.server.conftest import free_port
from tests.tickets.conftest import (
    WEBHOOK_SECRET,
    Clock,
    VoicemailFactory,
    make_worker,
    webhook_yaml,
    write_sinks,
)
from tests.tickets.fakes import FakeServices, Reply, running


def created(store: TicketStore, facts: object) -> Ticket:
    made = store.create(facts)  # type: ignore[arg-type]
    assert made is not None
    return made[0]


def test_a_voicemail_is_downloaded_transcribed_and_delivered_signed(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    store = TicketStore(connection)
    ticket = created(store, voicemail())
    worker = make_worker(ticket_settings, connection, clock)
    worker.store.ensure_group()
    assert worker.tick() == 1
    done = store.get(ticket.id)
    assert done is not None
    assert done.status == "delivered"
    assert done.sinks == {"webhook": "delivered"} and done.attempts["webhook"] == 1
    assert done.recording.path == str(
        ticket_settings.recordings_dir / f"{ticket.recording_sid}.wav"
    )
    assert done.transcript.text == "Xin chào, tôi cần giúp đỡ."
    (stt,) = services.seen("POST", "/v1/audio/transcriptions")
    assert b'name="language"\r\n\r\nvi\r\n' in stt.body and b"RIFF" in stt.body
    (hook,) = services.seen("POST", "/hooks/ivr")
    assert hook.headers["Content-Type"] == "application/json"
    assert hook.headers["Idempotency-Key"] == ticket.id
    expected = hmac.new(WEBHOOK_SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-IVR-Signature"] == f"sha256={expected}"
    assert hook.json()["id"] == ticket.id and hook.json()["from"] == "+84901111222"
    assert store.outbox_length() == 0


def test_429_is_retried_after_retry_after_then_delivered(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    services.script("POST", "/hooks/ivr", Reply(429, b"", {"Retry-After": "120"}), Reply(503))
    store = TicketStore(connection)
    ticket = created(store, voicemail())
    worker = make_worker(ticket_settings, connection, clock)
    worker.store.ensure_group()
    worker.tick()
    waiting = store.get(ticket.id)
    assert waiting is not None and waiting.status == "new"
    assert waiting.sinks == {"webhook": "pending"} and waiting.last_error == "webhook: HTTP 429"
    assert store.next_due() == clock.t + 120  # Retry-After beats the first backoff (22.5 s)
    clock.advance(119)
    worker.tick()
    assert len(services.seen("POST", "/hooks/ivr")) == 1  # not yet due
    clock.advance(1)
    worker.tick()  # 503: second backoff, 60 s with jitter at 0.5 -> 45 s
    assert len(services.seen("POST", "/hooks/ivr")) == 2
    assert store.next_due() == clock.t + 45
    clock.advance(45)
    worker.tick()
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered" and done.attempts["webhook"] == 3
    assert len(services.webhook_tickets) == 1


def test_after_max_attempts_the_ticket_is_dead_and_retry_revives_it(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    settings = ticket_settings.with_(ticket_max_attempts=2)
    write_sinks(settings.flows_dir, webhook_yaml(services, ", timeout: 0.3"))
    # A slow answer (timeout), then a 500: two attempts, then dead.
    services.script("POST", "/hooks/ivr", Reply(200, delay=1.0), Reply(500))
    store = TicketStore(connection)
    ticket = created(store, voicemail())
    worker = make_worker(settings, connection, clock)
    worker.store.ensure_group()
    worker.tick()
    clock.advance(3600)
    worker.tick()
    dead = store.get(ticket.id)
    assert dead is not None and dead.status == "dead" and dead.sinks == {"webhook": "dead"}
    assert "HTTP 500 (gave up)" in (dead.last_error or "")
    assert [t.id for t in store.find("dead")] == [ticket.id]
    store.retry_dead()
    worker.tick()
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered"


def test_a_4xx_fails_the_sink_without_retry(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    services.script("POST", "/hooks/ivr", Reply(422, b"bad"))
    store = TicketStore(connection)
    ticket = created(store, voicemail())
    worker = make_worker(ticket_settings, connection, clock)
    worker.store.ensure_group()
    worker.tick()
    failed = store.get(ticket.id)
    assert failed is not None and failed.status == "failed" and store.next_due() is None


def test_a_recording_on_an_unlisted_host_is_refused_and_flagged(
    ticket_settings: Settings,
    services: FakeServices,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    with running("127.0.0.2") as elsewhere:
        sid = "RE" + "b" * 32
        store = TicketStore(connection)
        ticket = created(
            store, voicemail(recording_sid=sid, recording_url=elsewhere.recording_url(sid))
        )
        make_worker(ticket_settings, connection, clock).deliver(ticket.id)
        assert elsewhere.requests == []
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered"  # the message still goes out
    assert done.recording.path is None
    assert "refused: host 127.0.0.2" in (done.recording.error or "")
    assert "no audio" in str(done.transcript)


def test_a_simulated_calls_recording_is_not_asked_for_and_the_ticket_goes_at_once(
    ticket_settings: Settings,
    services: FakeServices,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    sid = "RE" + "c" * 32
    # On a listed host, as `ivr simulate`'s are on api.twilio.com: only the account tells.
    url = f"{services.base}/2010-04-01/Accounts/{SIMULATED_ACCOUNT_SID}/Recordings/{sid}"
    store = TicketStore(connection)
    ticket = created(store, voicemail(recording_sid=sid, recording_url=url, language="ar-XA"))
    make_worker(ticket_settings.with_(transcribe_url=None), connection, clock).deliver(ticket.id)
    assert services.seen("GET", "/2010-04-01/") == []
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered" and store.next_due() is None
    assert done.recording.path is None
    assert "simulated call" in (done.recording.error or "")


def test_a_full_disk_keeps_the_ticket_with_the_error(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    import os

    store = TicketStore(connection)
    ticket = created(store, voicemail())
    ticket_settings.recordings_dir.mkdir(parents=True)
    part = ticket_settings.recordings_dir / f".{ticket.recording_sid}.part"
    os.symlink("/dev/full", part)
    worker = make_worker(ticket_settings, connection, clock)
    worker.deliver(ticket.id)
    kept = store.get(ticket.id)
    assert kept is not None and kept.status == "new"
    assert "disk full" in (kept.last_error or "")
    assert store.next_due() == clock.t + 22.5  # 30 s ceiling, jitter at 0.5
    clock.advance(22.5)  # space freed: the retry keeps the file
    worker.store.ensure_group()
    worker.tick()
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered" and done.recording.path


def test_english_waits_for_twilio_then_goes_without(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    store = TicketStore(connection)
    ticket = created(store, voicemail(language="en-US"))
    worker = make_worker(ticket_settings, connection, clock)
    worker.deliver(ticket.id)
    assert store.next_due() == ticket.created_at.timestamp() + 60
    clock.advance(60)
    worker.deliver(ticket.id)
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered"
    assert str(done.transcript) == "no transcript: Twilio's transcription did not arrive"
    assert services.seen("POST", "/v1/audio/transcriptions") == []


def test_no_endpoint_no_transcript(
    ticket_settings: Settings, connection: redis.Redis, clock: Clock, voicemail: VoicemailFactory
) -> None:
    store = TicketStore(connection)
    ticket = created(store, voicemail(language="ar-XA"))
    make_worker(ticket_settings.with_(transcribe_url=None), connection, clock).deliver(ticket.id)
    done = store.get(ticket.id)
    assert done is not None
    assert str(done.transcript) == "no transcript: no IVR_TRANSCRIBE_URL to transcribe ar-XA"


def test_a_dead_workers_entries_are_reclaimed(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    store = TicketStore(connection)
    ticket = created(store, voicemail())
    store.ensure_group()
    assert [t for _, t in store.read("gone", 10, 0)] == [ticket.id]  # taken, never finished
    sinks = build_sinks(
        sinks_for_worker(ticket_settings.flows_dir, {"IVR_WEBHOOK_SECRET": "x"}),
        ticket_settings,
        {"IVR_WEBHOOK_SECRET": "x"},
    )
    options = WorkerOptions(block_ms=10, reclaim_every=0.0, claim_idle_ms=1)
    threading.Event().wait(0.01)
    Worker(ticket_settings, connection, sinks, options, now=clock, name="w2").tick()
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered"
    assert store.outbox_length() == 0


class SmtpInbox:
    """aiosmtpd on loopback, keeping every message it receives."""

    def __init__(self) -> None:
        self.received: list[email.message.Message] = []
        self.port = free_port()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.received.append(email.message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[SmtpInbox]:
    inbox = SmtpInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


def test_email_zendesk_and_freshdesk_sinks(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
    smtp: SmtpInbox,
) -> None:
    port = smtp.port
    write_sinks(
        ticket_settings.flows_dir,
        "sinks:\n"
        f'  - {{type: email, host: 127.0.0.1, port: {port}, from: "ivr@example.com",'
        ' to: ["support@example.com"]}\n'
        f'  - {{type: zendesk, url: "{services.base}", email: "a@example.com", token: "${{ZT}}"}}\n'
        f'  - {{type: freshdesk, url: "{services.base}", api_key: "${{FK}}"}}\n'
        '  - {type: sms, from: "+15005550006"}\n',
    )
    store = TicketStore(connection)
    ticket = created(store, voicemail())
    make_worker(ticket_settings, connection, clock, ZT="zt", FK="fk").deliver(ticket.id)
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered", done.last_error
    (mail,) = smtp.received
    assert mail["Subject"] == f"[{ticket.id}] Voicemail from +84901111222"
    parts = list(mail.walk())
    body = next(p for p in parts if p.get_content_type() == "text/plain").get_payload(decode=True)
    assert "Xin chào" in body.decode() and "Pool cairo: off shift" in body.decode()
    audio = next(p for p in parts if p.get_content_type() == "audio/wav")
    assert audio.get_payload(decode=True)[:4] == b"RIFF"
    upload, zticket = services.seen("POST", "/api/v2/uploads.json") + services.seen(
        "POST", "/api/v2/tickets.json"
    )
    assert upload.body[:4] == b"RIFF" and upload.headers["Content-Type"] == "audio/wav"
    assert zticket.json()["ticket"]["comment"]["uploads"] == ["upload-1"]
    assert zticket.headers["Idempotency-Key"] == ticket.id
    (fresh,) = services.seen("POST", "/api/v2/tickets")[-1:]
    assert b'name="source"\r\n\r\n3' in fresh.body and b'name="attachments[]"' in fresh.body
    (sms,) = services.seen("POST", "/2010-04-01/")
    assert ticket.id.encode() in sms.body


def test_a_failing_transcription_endpoint_still_delivers(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    services.script("POST", "/v1/audio/transcriptions", Reply(500))
    store = TicketStore(connection)
    ticket = created(store, voicemail())
    make_worker(ticket_settings, connection, clock).deliver(ticket.id)
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered"
    assert str(done.transcript) == "no transcript: transcription failed: HTTP 500"


def test_twilios_failed_transcription_ends_the_wait(
    ticket_settings: Settings, connection: redis.Redis, clock: Clock, voicemail: VoicemailFactory
) -> None:
    from ivr.tickets.services import TicketService

    service = TicketService(connection)
    ticket = service.voicemail(voicemail(language="en-GB"))
    assert ticket is not None
    worker = make_worker(ticket_settings, connection, clock)
    worker.deliver(ticket.id)
    assert service.store.get(ticket.id).status == "new"  # type: ignore[union-attr]
    service.transcribed({"RecordingSid": ticket.recording_sid, "TranscriptionStatus": "failed"})
    worker.deliver(ticket.id)  # before the wait is over
    done = service.store.get(ticket.id)
    assert done is not None and done.status == "delivered"
    assert str(done.transcript) == "no transcript: Twilio's transcription failed"


def test_a_stopping_worker_leaves_what_it_owes_to_be_reclaimed(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    store = TicketStore(connection)
    ticket = created(store, voicemail())
    store.ensure_group()
    assert [t for _, t in store.read("stopping", 10, 0)] == [ticket.id]
    store.retire("stopping")  # it stopped before finishing: the entry must survive
    threading.Event().wait(0.01)
    worker = Worker(ticket_settings, connection, [], WorkerOptions(claim_idle_ms=1), now=clock)
    worker.tick()
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered"
    store.retire(worker.name)
    groups = connection.xinfo_consumers("ivr:{tickets}:outbox", "workers")
    # The finished worker left the group; the stopped one stays until its debt was taken over.
    assert [g["name"] for g in groups] == [b"stopping"]


def test_a_worker_whose_consumer_group_vanished_makes_it_again(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    store = TicketStore(connection)
    worker = make_worker(ticket_settings, connection, clock)
    worker.store.ensure_group()
    delivered = created(store, voicemail())
    assert worker.tick() == 1
    # What a failover onto a replica that never received the group looks like: no outbox at all,
    # then a ticket queued into a fresh stream without the group.
    connection.delete(OUTBOX_KEY)
    ticket = created(store, voicemail())
    assert connection.xinfo_groups(OUTBOX_KEY) == []
    assert worker.tick() == 1  # the group made again, the ticket read and delivered
    assert connection.xinfo_groups(OUTBOX_KEY)[0]["name"] == b"workers"
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered"
    keys = [p.headers["Idempotency-Key"] for p in services.seen("POST", "/hooks/ivr")]
    assert keys == [delivered.id, ticket.id]
    assert store.outbox_length() == 0


@dataclass
class Freshdesk:
    """A worker whose one sink is the loopback Freshdesk, its ticket store and clock."""

    services: FakeServices
    worker: Worker
    store: TicketStore
    clock: Clock
    voicemail: VoicemailFactory

    def ticket(self) -> Ticket:
        return created(self.store, self.voicemail())


@pytest.fixture
def freshdesk(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> Freshdesk:
    write_sinks(
        ticket_settings.flows_dir,
        f'sinks:\n  - {{type: freshdesk, url: "{services.base}", api_key: "${{FK}}"}}\n',
    )
    worker = make_worker(ticket_settings, connection, clock, FK="fk")
    (sink,) = worker.sinks
    sink.http.timeout = (5.0, 0.3)  # type: ignore[attr-defined]
    worker.store.ensure_group()
    return Freshdesk(services, worker, TicketStore(connection), clock, voicemail)


@pytest.mark.parametrize(
    "lost",
    [Reply(201, delay=1.0, acted=True), Reply(201, b'{"id": 1}', drop_mid_body=True, acted=True)],
    ids=["answer-too-late", "connection-dropped"],
)
def test_a_freshdesk_ticket_whose_answer_was_lost_is_found_not_made_again(
    freshdesk: Freshdesk, lost: Reply
) -> None:
    # Freshdesk made the ticket, but its answer never arrived: no idempotency key can save the
    # next attempt there, so it must look before it creates.
    freshdesk.services.script("POST", "/api/v2/tickets", lost)
    ticket = freshdesk.ticket()
    freshdesk.worker.tick()
    waiting = freshdesk.store.get(ticket.id)
    assert waiting is not None and waiting.sinks == {"freshdesk": "pending"}
    assert len(freshdesk.services.freshdesk_tickets) == 1
    for n in range(150):  # others' tickets since: ours is on the second page, newest first
        freshdesk.services.add_freshdesk_ticket(f"Printer on fire {n}")
    freshdesk.clock.advance(3600)
    freshdesk.worker.tick()
    done = freshdesk.store.get(ticket.id)
    assert done is not None and done.status == "delivered" and done.attempts["freshdesk"] == 2
    ours = [
        t
        for t in freshdesk.services.freshdesk_tickets
        if t["subject"].startswith(f"[{ticket.id}] ")
    ]
    assert len(ours) == 1 and len(freshdesk.services.seen("POST", "/api/v2/tickets")) == 1
    lookups = [dict(parse_qsl(r.query)) for r in freshdesk.services.seen("GET", "/api/v2/tickets")]
    # Before the first create, then page by page until found.
    assert [q["page"] for q in lookups] == ["1", "1", "2"]
    assert lookups[0]["updated_since"] == "2026-12-03T07:29:00Z"  # a minute before the voicemail


def test_a_freshdesk_lookup_that_fails_creates_nothing(freshdesk: Freshdesk) -> None:
    freshdesk.services.script(
        "GET", "/api/v2/tickets", Reply(503), Reply(200, b'{"not": "a list"}')
    )
    ticket = freshdesk.ticket()
    freshdesk.worker.tick()
    freshdesk.clock.advance(3600)
    freshdesk.worker.tick()
    waiting = freshdesk.store.get(ticket.id)
    assert waiting is not None and waiting.sinks == {"freshdesk": "pending"}
    assert "not a list of tickets" in (waiting.last_error or "")
    assert freshdesk.services.seen("POST", "/api/v2/tickets") == []
    freshdesk.clock.advance(3600)
    freshdesk.worker.tick()
    done = freshdesk.store.get(ticket.id)
    assert done is not None and done.status == "delivered"
    assert [t["subject"].split()[0] for t in freshdesk.services.freshdesk_tickets] == [
        f"[{ticket.id}]"
    ]


def test_a_freshdesk_key_that_may_not_list_tickets_still_creates_them(freshdesk: Freshdesk) -> None:
    # Better a ticket made twice some day than one never made.
    freshdesk.services.script("GET", "/api/v2/tickets", Reply(403, b'{"code": "access_denied"}'))
    ticket = freshdesk.ticket()
    freshdesk.worker.tick()
    done = freshdesk.store.get(ticket.id)
    assert done is not None and done.status == "delivered"
    assert len(freshdesk.services.freshdesk_tickets) == 1
