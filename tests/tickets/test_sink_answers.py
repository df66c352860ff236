"""How sinks read their services' answers: what counts as delivered, what is retried, what fails."""

from __future__ import annotations

import threading
from email.utils import parsedate_to_datetime

import pytest
import redis

from ivr.settings import Settings
from ivr.tickets.model import new_ticket
from ivr.tickets.sinks import Delivery, EmailSink
from ivr.tickets.store import TicketStore
from ivr.tickets.worker import Worker
from tests.server.conftest import free_port
from tests.tickets.conftest import (
    OPTIONS,
    Clock,
    VoicemailFactory,
    make_worker,
    webhook_yaml,
    write_sinks,
)
from tests.tickets.fakes import FakeServices, Reply


def worker_for(settings: Settings, connection: redis.Redis, clock: Clock) -> Worker:
    return make_worker(settings, connection, clock, ZT="zt")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirected_webhook_is_not_delivered(
    status: int,
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    # An http:// URL the helpdesk moves to https, say: following it would re-send the POST as a
    # body-less GET (301-303), or send the signed body on to wherever the answer points.
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    services.script("POST", "/hooks/ivr", Reply(status, b"", {"Location": "/moved"}))
    services.script("GET", "/moved", Reply(200, b"welcome"))
    services.script("POST", "/moved", Reply(200, b"welcome"))
    store = TicketStore(connection)
    made = store.create(voicemail())
    assert made is not None
    worker_for(ticket_settings, connection, clock).deliver(made[0].id)
    ticket = store.get(made[0].id)
    assert ticket is not None and ticket.status == "failed" and ticket.sinks["webhook"] == "failed"
    assert f"HTTP {status}: redirected to {services.base}/moved" in (ticket.last_error or "")
    assert services.seen("GET", "/moved") == [] and services.seen("POST", "/moved") == []


def test_a_redirected_zendesk_create_is_not_delivered(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(
        ticket_settings.flows_dir,
        f'sinks:\n  - {{type: zendesk, url: "{services.base}", email: "a@example.com",'
        ' token: "${ZT}"}\n',
    )
    services.script("POST", "/api/v2/tickets.json", Reply(301, b"", {"Location": "/api/v2/x"}))
    services.script("GET", "/api/v2/x", Reply(200, b"[]"))
    store = TicketStore(connection)
    made = store.create(voicemail())
    assert made is not None
    worker_for(ticket_settings, connection, clock).deliver(made[0].id)
    ticket = store.get(made[0].id)
    assert ticket is not None and ticket.sinks["zendesk"] == "failed"
    assert services.zendesk_tickets == {}


def test_a_worker_started_before_redis_waits_for_it(
    ticket_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Started beside Redis (a Procfile, a compose file), the worker must not die of being first.
    down = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    worker = Worker(ticket_settings, down, [], OPTIONS, name="early")
    assert worker.run(threading.Event(), max_ticks=1) == 0
    assert "Redis" in caplog.text


def test_a_ticket_mail_carries_its_date(voicemail: VoicemailFactory) -> None:
    # RFC 5322 requires a Date; smtplib adds none, and mail filters score its absence.
    ticket = new_ticket(voicemail(), "T-20261203-0001")
    sink = EmailSink("email", {"host": "h", "from": "ivr@example.com", "to": ["s@example.com"]})
    mail = sink.message(Delivery(ticket, None))
    assert parsedate_to_datetime(mail["Date"]) == ticket.created_at


@pytest.mark.parametrize("base", ["", "/v1", "/v1/"])
def test_speech_to_text_gets_the_api_key_as_a_bearer_token(
    base: str,
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    # Hosted OpenAI-compatible servers want a key, and their SDKs spell the base URL with /v1.
    settings = Settings.from_env(
        {"IVR_TRANSCRIBE_URL": services.base + base, "IVR_TRANSCRIBE_API_KEY": "sk-test"}
    )
    assert settings.transcribe_url == services.base + base.rstrip("/")
    settings = ticket_settings.with_(
        transcribe_url=settings.transcribe_url, transcribe_api_key=settings.transcribe_api_key
    )
    store = TicketStore(connection)
    made = store.create(voicemail())
    assert made is not None
    worker_for(settings, connection, clock).deliver(made[0].id)
    (stt,) = services.seen("POST", "/v1/audio/transcriptions")
    assert stt.headers["Authorization"] == "Bearer sk-test"
    done = store.get(made[0].id)
    assert done is not None and done.transcript.text == "Xin chào, tôi cần giúp đỡ."


def test_speech_to_text_without_a_key_sends_no_authorization(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    store = TicketStore(connection)
    made = store.create(voicemail())
    assert made is not None
    worker_for(ticket_settings, connection, clock).deliver(made[0].id)
    (stt,) = services.seen("POST", "/v1/audio/transcriptions")
    assert "Authorization" not in stt.headers


def test_a_blank_speech_to_text_answer_is_no_transcript(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    blank = Reply(200, b'{"text": "  "}', {"Content-Type": "application/json"})
    services.script("POST", "/v1/audio/transcriptions", blank)
    store = TicketStore(connection)
    made = store.create(voicemail())
    assert made is not None
    worker_for(ticket_settings, connection, clock).deliver(made[0].id)
    done = store.get(made[0].id)
    assert done is not None and done.transcript.text is None
    assert str(done.transcript) == "no transcript: the speech-to-text server heard no words"


def test_a_408_request_timeout_is_retried_like_any_timeout(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    services.script("POST", "/hooks/ivr", Reply(408, b"", {"Retry-After": "90"}))
    store = TicketStore(connection)
    made = store.create(voicemail())
    assert made is not None
    worker = worker_for(ticket_settings, connection, clock)
    worker.store.ensure_group()
    worker.tick()
    waiting = store.get(made[0].id)
    assert waiting is not None and waiting.status == "new" and waiting.sinks["webhook"] == "pending"
    assert store.next_due() == clock.t + 90
    clock.advance(90)
    worker.tick()
    done = store.get(made[0].id)
    assert done is not None and done.status == "delivered"
