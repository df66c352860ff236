"""The ticket model and its Redis store: made once per recording, numbered per day, retried."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import redis

from ivr.tickets.model import Ticket, TicketError, Transcript
from ivr.tickets.services import TicketService, voicemail_from_twilio
from ivr.tickets.store import DOCS_KEY, OUTBOX_KEY, TicketStore
from ivr.tickets.transcribe import twilio_transcribes
from tests.tickets.conftest import AT, VoicemailFactory


def test_a_ticket_carries_the_call_and_local_times(
    connection: redis.Redis, voicemail: VoicemailFactory
) -> None:
    made = TicketStore(connection).create(voicemail())
    assert made is not None
    ticket, created = made
    assert created
    assert ticket.id == "T-20261203-0001"
    data = ticket.as_dict()
    assert data["version"] == 1
    assert data["status"] == "new"
    assert data["created_at"] == "2026-12-03T07:30:00Z"
    # 07:30 UTC is 14:30 in Hanoi and 09:30 in Cairo.
    assert data["caller_local"] == {
        "country": "VN",
        "timezone": "Asia/Ho_Chi_Minh",
        "local_time": "2026-12-03T14:30:00+07:00",
    }
    assert [(p["pool"], p["local_time"]) for p in data["pools_tried"]] == [
        ("hanoi", "2026-12-03T14:30:00+07:00"),
        ("cairo", "2026-12-03T09:30:00+02:00"),
    ]
    assert data["pools_tried"][1]["reason"] == "off shift"
    assert data["recording"] == {"path": None, "url": ticket.recording.url, "seconds": 14}
    assert data["transcript"]["note"] == "no transcript: not yet transcribed"
    assert Ticket.from_dict(data) == ticket


def test_an_unknown_serializer_version_is_refused(
    connection: redis.Redis, voicemail: VoicemailFactory
) -> None:
    made = TicketStore(connection).create(voicemail())
    assert made is not None
    with pytest.raises(TicketError, match="version"):
        Ticket.from_dict({**made[0].as_dict(), "version": 99})


def test_the_same_recording_makes_one_ticket(
    connection: redis.Redis, voicemail: VoicemailFactory
) -> None:
    store = TicketStore(connection)
    facts = voicemail()
    first = store.create(facts)
    again = store.create(facts)  # Twilio repeats callbacks; the Record action reports it too
    assert first is not None and again is not None
    assert again == (first[0], False)
    assert store.outbox_length() == 1
    assert len(store.find()) == 1


def test_racing_hosts_make_one_ticket(
    redis_url: str, connection: redis.Redis, voicemail: VoicemailFactory
) -> None:
    facts = [voicemail() for _ in range(5)]
    clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(8)

    def race(client: redis.Redis) -> None:
        store = TicketStore(client)
        barrier.wait(5)
        for fact in facts:
            made = store.create(fact)
            assert made is not None
            results.append((made[0].id, made[1]))

    threads = [threading.Thread(target=race, args=(clients[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 40
    created = sorted(ticket_id for ticket_id, was_made in results if was_made)
    assert created == [f"T-20261203-{n:04d}" for n in range(1, 6)]
    assert len({ticket_id for ticket_id, _ in results}) == 5
    assert TicketStore(connection).outbox_length() == 5
    for client in clients:
        client.close()


def test_ids_count_per_utc_day(connection: redis.Redis, voicemail: VoicemailFactory) -> None:
    store = TicketStore(connection)
    ids = []
    for at in (AT, AT + timedelta(hours=1), AT + timedelta(days=1)):
        made = store.create(voicemail(at=at))
        assert made is not None
        ids.append(made[0].id)
    assert ids == ["T-20261203-0001", "T-20261203-0002", "T-20261204-0001"]


@pytest.mark.parametrize("changes", [{"seconds": 0}, {"recording_status": "absent"}])
def test_an_empty_recording_is_not_a_ticket(
    connection: redis.Redis, voicemail: VoicemailFactory, changes: dict[str, object]
) -> None:
    assert TicketStore(connection).create(voicemail(**changes)) is None
    assert connection.hlen(DOCS_KEY) == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"recording_sid": "RE../../etc/passwd"},
        {"call_sid": "CAnope"},
        {"recording_url": "file:///etc/passwd"},
    ],
)
def test_bad_facts_are_refused_and_change_nothing(
    connection: redis.Redis, voicemail: VoicemailFactory, changes: dict[str, object]
) -> None:
    with pytest.raises(TicketError):
        TicketStore(connection).create(voicemail(**changes))
    assert connection.hlen(DOCS_KEY) == 0
    assert not connection.exists(OUTBOX_KEY)


def test_listing_by_status_and_retrying(
    connection: redis.Redis, voicemail: VoicemailFactory
) -> None:
    store = TicketStore(connection)
    made = [store.create(voicemail(at=AT + timedelta(minutes=i))) for i in range(3)]
    ids = [m[0].id for m in made if m is not None]
    store.sink_result(ids[0], "webhook", "dead", "HTTP 503 (gave up)")
    store.finish_round(ids[0], "dead", None, None)
    store.sink_result(ids[1], "webhook", "delivered", None)
    store.finish_round(ids[1], "delivered", None, None)
    assert [t.id for t in store.find()] == [ids[2], ids[1], ids[0]]  # newest first
    assert [t.id for t in store.find("dead")] == [ids[0]]
    assert store.counts() == {"new": 1, "delivered": 1, "failed": 0, "dead": 1}
    dead = store.get(ids[0])
    assert dead is not None and dead.last_error == "webhook: HTTP 503 (gave up)"
    before = store.outbox_length()
    retried = store.retry_dead()
    assert [t.id for t in retried] == [ids[0]]
    assert retried[0].status == "new" and retried[0].sinks == {"webhook": "pending"}
    assert store.find("dead") == []
    assert store.outbox_length() == before + 1
    with pytest.raises(TicketError, match="no ticket"):
        store.retry("T-20261203-0099")
    with pytest.raises(TicketError, match="not a ticket id"):
        store.retry("bogus")


def test_twilio_transcription_fills_the_ticket(
    connection: redis.Redis, voicemail: VoicemailFactory
) -> None:
    service = TicketService(connection)
    ticket = service.voicemail(voicemail(language="en-US"))
    assert ticket is not None
    params = {
        "RecordingSid": ticket.recording_sid,
        "TranscriptionStatus": "completed",
        "TranscriptionText": "Hello, my invoice is wrong.",
    }
    filled = service.transcribed(params)
    assert filled is not None
    assert filled.transcript == Transcript("Hello, my invoice is wrong.", "twilio")
    with pytest.raises(TicketError):
        service.transcribed({**params, "RecordingSid": "RE" + "0" * 32})


def test_a_blank_twilio_transcription_is_no_transcript(
    connection: redis.Redis, voicemail: VoicemailFactory
) -> None:
    service = TicketService(connection)
    ticket = service.voicemail(voicemail(language="en-US"))
    assert ticket is not None
    params = {
        "RecordingSid": ticket.recording_sid,
        "TranscriptionStatus": "completed",
        "TranscriptionText": " \n ",
    }
    filled = service.transcribed(params)
    assert filled is not None and filled.transcript.text is None
    assert str(filled.transcript) == "no transcript: Twilio's transcription heard no words"


def test_facts_from_twilio_parameters(voicemail: VoicemailFactory) -> None:
    sample = voicemail()
    params = {
        "CallSid": sample.call_sid,
        "RecordingSid": sample.recording_sid,
        "RecordingUrl": sample.recording_url,
        "RecordingDuration": "14",
        "From": "+84901111222",
        "To": "+15005550006",
        "FromCountry": "VN",
    }
    facts = voicemail_from_twilio(params, AT, "support", "vi-VN", "billing", [("hanoi", "busy")])
    assert facts.seconds == 14 and facts.caller_country == "VN"
    assert facts.pools_tried[0].reason == "busy"
    assert not facts.is_empty()
    assert voicemail_from_twilio({**params, "RecordingDuration": "0"}, AT).is_empty()


@pytest.mark.parametrize(
    ("language", "seconds", "served"),
    [("en-US", 30, True), ("en-GB", None, True), ("vi-VN", 30, False), ("ar-XA", 30, False)],
)
def test_twilio_transcribes_english_only(language: str, seconds: int | None, served: bool) -> None:
    assert twilio_transcribes(language, seconds) is served
    assert twilio_transcribes("en-US", 121) is False  # Twilio's two-minute bound
