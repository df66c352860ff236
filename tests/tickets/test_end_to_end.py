"""An Arabic caller reaching voicemail in the night: webhooks in, one ticket out, with the
recording on disk and a transcript, delivered once to the configured webhook sink."""

from __future__ import annotations

from pathlib import Path

import redis

from ivr.app import create_app
from ivr.settings import Settings
from ivr.store import Store
from ivr.tickets.store import TicketStore
from tests.conftest import AUTH_TOKEN, Caller
from tests.tickets.conftest import Clock, recording_sid, webhook_yaml, write_sinks
from tests.tickets.fakes import FakeServices
from tests.tickets.test_worker import make_worker

NIGHT = 1_796_259_600.0  # Thu 2026-12-03 01:00 UTC: 03:00 in Cairo, nobody on shift for tech


def test_a_night_voicemail_in_arabic_becomes_one_delivered_ticket(
    services: FakeServices,
    ticket_settings: Settings,
    flows_dir: Path,
    connection: redis.Redis,
    clock: Clock,
) -> None:
    settings = ticket_settings.with_(flows_dir=flows_dir, auth_token=AUTH_TOKEN)
    write_sinks(flows_dir, webhook_yaml(services))
    app = create_app(settings, connection)
    app.extensions["ivr"].clock = lambda: NIGHT
    caller = Caller(app.test_client(), caller="+201001112222")
    caller.params["FromCountry"] = "EG"
    root = caller.follow(caller.twiml("/voice/incoming"), Digits="3")
    root = caller.follow(root, Digits="2")  # technical support
    for _ in range(10):
        if root.find("Record") is not None:
            break
        root = caller.follow(root, DialCallStatus="no-answer")
    assert root.find("Record") is not None
    sid = recording_sid()
    recorded = {"RecordingSid": sid, "RecordingUrl": services.recording_url(sid)}
    caller.follow(root, RecordingDuration="11", **recorded)
    caller.post("/voice/recording", RecordingStatus="completed", RecordingDuration="11", **recorded)
    caller.post("/voice/status", CallStatus="completed", CallDuration="70")

    store = TicketStore(connection)
    (ticket,) = store.find(None, 10)
    worker = make_worker(settings, connection, clock)
    worker.store.ensure_group()
    assert worker.tick() == 1
    done = store.get(ticket.id)
    assert done is not None and done.status == "delivered" and done.language == "ar-XA"
    assert Path(done.recording.path).read_bytes().startswith(b"RIFF")
    assert done.transcript.text  # from the local speech-to-text endpoint
    (stt,) = services.seen("POST", "/v1/audio/transcriptions")
    assert b'name="language"\r\n\r\nar\r\n' in stt.body
    (hook,) = services.seen("POST", "/hooks/ivr")
    assert hook.json()["id"] == ticket.id and hook.json()["call_sid"] == caller.sid
    summary = Store(connection).summary(caller.sid)
    assert summary is not None and summary.ticket == ticket.id and summary.outcome == "voicemail"


def test_a_fallback_voicemail_makes_its_ticket_without_the_recording_callback(
    services: FakeServices, settings: Settings, connection: redis.Redis
) -> None:
    # A call that hit a fault ends in the fallback voicemail; its Record action alone must make
    # the ticket, as a normal voicemail's does, for Twilio does not retry a lost callback.
    app = create_app(settings, connection)
    caller = Caller(app.test_client())
    caller.twiml("/voice/incoming")
    sid = recording_sid()
    done = caller.twiml(
        "/voice/fallback?kind=recorded&lang=en-US",
        RecordingSid=sid,
        RecordingUrl=services.recording_url(sid),
        RecordingDuration="9",
    )
    assert done[-1].tag == "Hangup"
    (ticket,) = TicketStore(connection).find(None, 10)
    assert ticket.recording_sid == sid and ticket.call_sid == caller.sid
    summary = Store(connection).summary(caller.sid)
    assert summary is not None and summary.ticket == ticket.id


def test_a_voicemail_step_with_transcribe_off_is_never_sent_to_speech_to_text(
    services: FakeServices,
    ticket_settings: Settings,
    flows_dir: Path,
    connection: redis.Redis,
    clock: Clock,
) -> None:
    support = flows_dir / "support.yaml"
    support.write_text(support.read_text().replace("transcribe: true", "transcribe: false"))
    settings = ticket_settings.with_(flows_dir=flows_dir, auth_token=AUTH_TOKEN)
    write_sinks(flows_dir, webhook_yaml(services))
    app = create_app(settings, connection)
    app.extensions["ivr"].clock = lambda: NIGHT
    caller = Caller(app.test_client(), caller="+201001112222")
    root = caller.follow(caller.twiml("/voice/incoming"), Digits="3")
    root = caller.follow(root, Digits="2")
    for _ in range(10):
        if root.find("Record") is not None:
            break
        root = caller.follow(root, DialCallStatus="no-answer")
    record = root.find("Record")
    assert record is not None and record.attrib.get("transcribe") != "true"
    sid = recording_sid()
    recorded = {"RecordingSid": sid, "RecordingUrl": services.recording_url(sid)}
    caller.post("/voice/recording", RecordingStatus="completed", RecordingDuration="11", **recorded)
    caller.follow(root, RecordingDuration="11", **recorded)
    (ticket,) = TicketStore(connection).find(None, 10)
    worker = make_worker(settings, connection, clock)
    worker.store.ensure_group()
    assert worker.tick() == 1
    done = TicketStore(connection).get(ticket.id)
    assert done is not None and done.status == "delivered" and done.recording.path
    assert services.seen("POST", "/v1/audio/transcriptions") == []
    assert str(done.transcript) == "no transcript: transcription is off for this voicemail step"
    (hook,) = services.seen("POST", "/hooks/ivr")
    assert hook.json()["transcript"]["text"] is None


def test_a_transcription_that_comes_before_its_ticket_is_kept(
    services: FakeServices, settings: Settings, connection: redis.Redis
) -> None:
    # Redis down while the recording was reported (its events spooled), back for Twilio's
    # transcription: the ticket made on replay must still get the words.
    app = create_app(settings, connection)
    caller = Caller(app.test_client(), caller="+14155550100")
    caller.twiml("/voice/incoming")
    sid = recording_sid()
    words = {"TranscriptionStatus": "completed", "TranscriptionText": "Please call me back."}
    caller.post("/voice/transcription", RecordingSid=sid, **words)
    assert TicketStore(connection).find(None, 10) == []
    caller.post(
        "/voice/recording",
        RecordingSid=sid,
        RecordingUrl=services.recording_url(sid),
        RecordingStatus="completed",
        RecordingDuration="6",
    )
    (ticket,) = TicketStore(connection).find(None, 10)
    assert ticket.transcript.text == "Please call me back." and ticket.transcript.source == "twilio"


def test_a_fallback_voicemail_follows_its_steps_transcribe_setting(
    services: FakeServices, settings: Settings, flows_dir: Path, connection: redis.Redis
) -> None:
    support = flows_dir / "support.yaml"
    support.write_text(support.read_text().replace("transcribe: true", "transcribe: false"))
    caller = Caller(create_app(settings, connection).test_client())
    caller.twiml("/voice/incoming")
    sid = recording_sid()
    caller.twiml(
        "/voice/fallback?kind=recorded&lang=en-US",
        RecordingSid=sid,
        RecordingUrl=services.recording_url(sid),
        RecordingDuration="9",
    )
    (ticket,) = TicketStore(connection).find(None, 10)
    assert str(ticket.transcript) == "no transcript: transcription is off for this voicemail step"
