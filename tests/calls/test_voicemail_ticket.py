"""A voicemail through the webhooks: an empty recording gets one more try, a real one becomes one
ticket however often Twilio reports it, linked from the call's record and back."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.settings import Settings
from ivr.store import Store
from ivr.tickets.store import TicketStore
from tests.conftest import Caller, spoken
from tests.voice.test_failures import dead_redis

WEDNESDAY_NOON_UTC = 1_796_212_800.0  # 2026-12-02 12:00 UTC
RECORDING_SID = "RE" + "4" * 32
RECORDING_URL = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/" + RECORDING_SID


def _to_voicemail(caller: Caller) -> ET.Element:
    """Arabic, technical support: nobody answers (no agent picks up), so voicemail."""
    root = caller.follow(caller.twiml("/voice/incoming"), Digits="3")
    root = caller.follow(root, Digits="2")
    for _ in range(12):
        if root.find("Record") is not None:
            return root
        waiting = [v for v in root if v.tag in ("Dial", "Gather")]
        assert waiting, ET.tostring(root, encoding="unicode")
        root = caller.follow(root, DialCallStatus="no-answer", Digits="")
    raise AssertionError("never reached the voicemail")


def test_an_empty_recording_is_tried_again_then_one_ticket(
    client: FlaskClient, connection: redis.Redis
) -> None:
    caller = Caller(client, caller="+201001112222")
    root = _to_voicemail(caller)
    record = root.find("Record")
    assert record is not None and record.attrib["recordingStatusCallback"] == "/voice/recording"
    assert record.attrib["recordingStatusCallbackEvent"] == "completed absent"
    assert record.attrib["transcribe"] == "false"  # Twilio does not transcribe Arabic
    again = caller.follow(root, RecordingUrl=RECORDING_URL, RecordingDuration="0")
    assert [v.tag for v in again] == ["Say", "Record"]
    assert "لم نسمع" in spoken(again)[0]  # "we did not hear a message", in Arabic
    assert TicketStore(connection).find(None, 10) == []

    recorded = {"RecordingUrl": RECORDING_URL, "RecordingSid": RECORDING_SID}
    done = caller.follow(again, RecordingDuration="14", **recorded)
    assert done[-1].tag == "Hangup"
    for _ in range(2):  # the recording callback, repeated by Twilio
        callback = caller.post(
            "/voice/recording", RecordingStatus="completed", RecordingDuration="14", **recorded
        )
        assert callback.status_code == 200
    caller.post("/voice/status", CallStatus="completed", CallDuration="60")

    tickets = TicketStore(connection).find(None, 10)
    assert len(tickets) == 1
    ticket = tickets[0]
    assert ticket.call_sid == caller.sid and ticket.language == "ar-XA"
    assert ticket.recording_sid == RECORDING_SID and ticket.queue == "tech"
    summary = Store(connection).summary(caller.sid)
    assert summary is not None and summary.ticket == ticket.id
    assert summary.outcome == "voicemail"
    kinds = [e["kind"] for e in Store(connection).call_log(caller.sid)]
    assert kinds.count("ticket") == 1 and kinds.count("voicemail") == 4


def test_an_absent_recording_twice_says_goodbye_and_makes_no_ticket(
    client: FlaskClient, connection: redis.Redis
) -> None:
    caller = Caller(client, caller="+201001112222")
    root = _to_voicemail(caller)
    again = caller.follow(root, RecordingUrl="", RecordingDuration="0")
    bye = caller.follow(again, RecordingUrl="", RecordingDuration="0")
    assert bye[-1].tag == "Hangup" and "لم نتلق" in spoken(bye)[0]
    caller.post("/voice/status", CallStatus="completed")
    assert TicketStore(connection).find(None, 10) == []
    summary = Store(connection).summary(caller.sid)
    assert summary is not None and summary.outcome == "abandoned"


def test_metrics_show_waiting_callers_and_time_to_answer(app: Flask, client: FlaskClient) -> None:
    app.extensions["ivr"].clock = lambda: WEDNESDAY_NOON_UTC  # London and Cairo on shift
    caller = Caller(client)
    root = caller.follow(caller.twiml("/voice/incoming"), Digits="1")
    root = caller.follow(root, Digits="1")
    assert root.find("Dial") is not None, ET.tostring(root, encoding="unicode")
    body = client.get("/metrics").get_data(as_text=True)
    assert "ivr_callers_waiting 1" in body
    caller.follow(root, DialCallStatus="completed", DialCallDuration="30")
    body = client.get("/metrics").get_data(as_text=True)
    assert "ivr_callers_waiting 0" in body
    assert 'ivr_answer_seconds_count{queue="billing"}' in body


def test_callbacks_while_redis_is_down_are_replayed_once_and_make_the_ticket(
    settings: Settings, connection: redis.Redis
) -> None:
    live = create_app(settings, connection)
    caller = Caller(live.test_client(), caller="+201001112222")
    _to_voicemail(caller)
    down = Caller(create_app(settings, dead_redis()).test_client(), caller="+201001112222")
    down.sid, down.params["CallSid"] = caller.sid, caller.sid
    recorded = {"RecordingUrl": RECORDING_URL, "RecordingSid": RECORDING_SID}
    for _ in range(2):  # Twilio repeats the callback; both spooled
        assert down.post("/voice/recording", RecordingDuration="9", **recorded).status_code == 200
    assert down.post("/voice/status", CallStatus="completed").status_code == 200
    assert TicketStore(connection).find(None, 10) == []

    services = live.extensions["ivr"]
    assert services.replay_spool() == 3
    assert services.replay_spool() == 0  # emptied only once acknowledged
    kinds = [e["kind"] for e in Store(connection).call_log(caller.sid)]
    assert kinds[-5:] == ["voicemail", "ticket", "voicemail", "status", "call_ended"]
    tickets = TicketStore(connection).find(None, 10)
    assert len(tickets) == 1 and tickets[0].call_sid == caller.sid
    summary = Store(connection).summary(caller.sid)
    assert summary is not None and summary.outcome == "voicemail" and summary.closed
    assert summary.ticket == tickets[0].id
