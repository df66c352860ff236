"""A call's life as Twilio reports it: status callbacks and actions in the orders Twilio can send
them, with odd values, and the call record that results."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.calls.records import CallRecords
from ivr.services import Services
from ivr.settings import Settings
from ivr.store import CALLS_KEY, LIVE_KEY, WAITING_KEY, Store
from tests.conftest import Caller, line_app

FLOW = """
flow: line
numbers: ["+15005550006"]
languages: [en-US]
start: menu
steps:
  menu:
    menu:
      prompt: "For billing, press 1."
      options: {"1": route}
      attempts: 2
      otherwise: bye
  route:
    route:
      queue: billing
      otherwise: vm
      hold: {max_wait: 300, leave_key: "*"}
  vm:
    voicemail: {}
  bye: {say: "Goodbye.", hangup: true}
"""
POOLS = """
pools:
  always:
    timezone: UTC
    queues: [billing]
    languages: [en-US]
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    agents: [{name: Lan, phone: "+84901234567"}]
"""
T0 = 1_780_000_000.0


class Clock:
    """The app's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def line_and_clock(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> tuple[Flask, Clock]:
    app = line_app(settings, connection, tmp_path / "line_flows", FLOW, POOLS)
    clock = Clock()
    services: Services = app.extensions["ivr"]
    services.clock = clock
    return app, clock


@pytest.fixture
def line(line_and_clock: tuple[Flask, Clock]) -> FlaskClient:
    return line_and_clock[0].test_client()


@pytest.fixture
def clock(line_and_clock: tuple[Flask, Clock]) -> Clock:
    return line_and_clock[1]


def _summary(connection: redis.Redis, sid: str) -> dict[str, object]:
    found = Store(connection).summary(sid)
    assert found is not None
    return found.public()


def _on_hold(line: FlaskClient, clock: Clock) -> tuple[Caller, str]:
    """A caller who chose billing, rang the pool unanswered, and waits in line; and the hold
    line's action URL."""
    caller = Caller(line)
    menu = caller.twiml("/voice/incoming")
    clock.now += 5
    dial = caller.follow(menu, Digits="1")
    clock.now += 20
    queued = caller.follow(dial, DialCallStatus="no-answer")
    enqueue = queued.find("Enqueue")
    assert enqueue is not None
    return caller, enqueue.attrib["action"]


@pytest.mark.parametrize("duration", ["99999999999999999999", "-5", "12abc", ""])
def test_a_garbage_call_duration_still_closes_the_call_timed_by_the_clock(
    line: FlaskClient, clock: Clock, connection: redis.Redis, duration: str
) -> None:
    caller = Caller(line)
    caller.twiml("/voice/incoming")
    clock.now += 7
    caller.post("/voice/status", CallStatus="completed", CallDuration=duration)
    call = _summary(connection, caller.sid)
    assert call["outcome"] == "self_service"
    assert call["ended_at"] == "2026-05-28T20:26:47.000Z"
    assert call["duration"] == 7
    assert connection.zscore(LIVE_KEY, caller.sid) is None


def test_trimming_never_drops_a_call_under_way(
    line: FlaskClient, clock: Clock, connection: redis.Redis
) -> None:
    old = Caller(line)
    old.twiml("/voice/incoming")
    old.post("/voice/status", CallStatus="completed", CallDuration="1")
    waiting, _ = _on_hold(line, clock)
    assert CallRecords(connection).trim(clock.now + 1) == 1  # the one that ended
    for key in (CALLS_KEY, LIVE_KEY, WAITING_KEY):
        assert connection.zscore(key, waiting.sid) is not None, key
    assert connection.zscore(CALLS_KEY, old.sid) is None
    clock.now += 30
    waiting.post("/voice/status", CallStatus="completed", CallDuration="55")
    found, _ = CallRecords(connection).find()
    assert [c.sid for c in found] == [waiting.sid]
    assert found[0].outcome == "abandoned"


def _kinds(connection: redis.Redis, sid: str) -> list[str]:
    return [event["kind"] for event in Store(connection).call_log(sid)]


def test_keys_pressed_as_the_caller_hung_up_do_not_route_a_call_already_over(
    line: FlaskClient, clock: Clock, connection: redis.Redis
) -> None:
    caller = Caller(line)
    menu = caller.twiml("/voice/incoming")
    clock.now += 3
    # The final status and the Gather action cross: the status lands first.
    caller.post("/voice/status", CallStatus="completed", CallDuration="3")
    clock.now += 1
    after = caller.follow(menu, Digits="1")
    assert [verb.tag for verb in after] == ["Hangup"]
    assert "route" not in _kinds(connection, caller.sid)
    assert "dial" not in _kinds(connection, caller.sid)
    call = _summary(connection, caller.sid)
    assert (call["outcome"], call["queue"], call["duration"]) == ("self_service", None, 3)


def test_a_dial_action_after_the_final_status_neither_queues_nor_rings_again(
    line: FlaskClient, clock: Clock, connection: redis.Redis
) -> None:
    caller = Caller(line)
    menu = caller.twiml("/voice/incoming")
    clock.now += 5
    dial = caller.follow(menu, Digits="1")
    clock.now += 8
    caller.post("/voice/status", CallStatus="completed", CallDuration="13")
    clock.now += 1
    after = caller.follow(dial, DialCallStatus="canceled")
    assert [verb.tag for verb in after] == ["Hangup"]
    kinds = _kinds(connection, caller.sid)
    assert kinds[-2:] == ["dial_result", "hangup"] and kinds.count("dial") == 1
    assert "hold_joined" not in kinds
    call = _summary(connection, caller.sid)
    assert (call["outcome"], call["duration"], call["wait_seconds"]) == ("abandoned", 13, None)
    assert connection.zscore(WAITING_KEY, caller.sid) is None


def test_an_answer_reported_after_the_final_status_still_makes_the_call_answered(
    line: FlaskClient, clock: Clock, connection: redis.Redis
) -> None:
    caller = Caller(line)
    menu = caller.twiml("/voice/incoming")
    clock.now += 5
    dial = caller.follow(menu, Digits="1")
    clock.now += 50
    caller.post("/voice/status", CallStatus="completed", CallDuration="55")
    after = caller.follow(dial, DialCallStatus="completed", DialCallDuration="40")
    assert [verb.tag for verb in after] == ["Hangup"]
    call = _summary(connection, caller.sid)
    assert (call["outcome"], call["agent"], call["pool"]) == ("answered", "lan", "always")
    assert (call["wait_seconds"], call["duration"]) == (10.0, 55)
    found, _ = CallRecords(connection).find(filters={"outcome": "answered"})
    assert [c.sid for c in found] == [caller.sid]


def test_a_recording_reported_after_the_final_status_is_a_voicemail(
    line: FlaskClient, clock: Clock, connection: redis.Redis
) -> None:
    caller, hold_action = _on_hold(line, clock)
    record = caller.twiml(hold_action, QueueResult="leave", QueueTime="3")
    assert record.find("Record") is not None
    clock.now += 20
    caller.post("/voice/status", CallStatus="completed", CallDuration="45")
    recording = "RE" + "1" * 32
    after = caller.follow(
        record,
        RecordingUrl=f"https://api.twilio.com/Recordings/{recording}",
        RecordingSid=recording,
        RecordingDuration="15",
    )
    assert [verb.tag for verb in after] == ["Hangup"]
    call = _summary(connection, caller.sid)
    assert call["outcome"] == "voicemail" and call["ticket"] is not None


@pytest.mark.parametrize(
    ("status", "duration", "outcome"),
    [("failed", "", "failed"), ("completed", "20", "self_service"), ("busy", "0", "self_service")],
)
def test_a_call_heard_of_only_by_its_final_status_is_on_record(
    line: FlaskClient,
    clock: Clock,
    connection: redis.Redis,
    status: str,
    duration: str,
    outcome: str,
) -> None:
    caller = Caller(line)  # its incoming webhook never reached us
    clock.now += 60
    caller.post("/voice/status", CallStatus=status, CallDuration=duration)
    found, _ = CallRecords(connection).find(filters={"outcome": outcome})
    assert [c.sid for c in found] == [caller.sid]
    call = found[0].public()
    assert (call["from"], call["to"], call["flow"]) == ("+84901111222", "+15005550006", "line")
    assert call["language"] == "en-US"  # the flow's first: what the caller would have heard
    seconds = int(duration or 0)
    assert found[0].started_at == clock.now - seconds and found[0].ended_at == clock.now
    assert call["duration"] == seconds
    # A repeat of the callback changes nothing.
    caller.post("/voice/status", CallStatus=status, CallDuration=duration)
    assert _summary(connection, caller.sid) == call
    assert connection.zcard(CALLS_KEY) == 1 and connection.zscore(LIVE_KEY, caller.sid) is None


def test_a_final_status_taken_by_another_worker_stops_the_flow_all_the_same(
    line: FlaskClient,
    clock: Clock,
    connection: redis.Redis,
    settings: Settings,
    tmp_path: Path,
) -> None:
    other_app = create_app(settings.with_(flows_dir=tmp_path / "line_flows"), connection)
    other: Services = other_app.extensions["ivr"]
    other.clock = clock
    caller = Caller(line)
    menu = caller.twiml("/voice/incoming")
    clock.now += 5
    dial = caller.follow(menu, Digits="1")  # this worker remembers the call as it wrote it
    clock.now += 8
    gone = Caller(other_app.test_client())  # the status lands on the other worker
    gone.sid, gone.params["CallSid"] = caller.sid, caller.sid
    gone.post("/voice/status", CallStatus="completed", CallDuration="13")
    clock.now += 1
    after = caller.follow(dial, DialCallStatus="no-answer")
    assert [verb.tag for verb in after] == ["Hangup"]
    assert "hold_joined" not in _kinds(connection, caller.sid)
    assert connection.zscore(WAITING_KEY, caller.sid) is None


@pytest.mark.parametrize("reported", [{"RecordingDuration": "0"}, {}])
def test_hanging_up_at_the_tone_is_abandoned_not_a_voicemail(
    line: FlaskClient, clock: Clock, connection: redis.Redis, reported: dict[str, str]
) -> None:
    caller, hold_action = _on_hold(line, clock)
    record = caller.twiml(hold_action, QueueResult="leave", QueueTime="3")
    clock.now += 4
    recording = "RE" + "2" * 32
    url = f"https://api.twilio.com/Recordings/{recording}"
    caller.follow(record, RecordingUrl=url, RecordingSid=recording, **reported)
    caller.post(
        "/voice/recording", RecordingSid=recording, RecordingStatus="absent", RecordingDuration="0"
    )
    caller.post("/voice/status", CallStatus="completed", CallDuration="29")
    call = _summary(connection, caller.sid)
    assert (call["outcome"], call["ticket"], call["duration"]) == ("abandoned", None, 29)
    assert call["ended_at"] == "2026-05-28T20:27:09.000Z"


def test_a_caller_hanging_up_while_agents_ring_is_not_put_in_the_hold_line(
    line: FlaskClient, clock: Clock, connection: redis.Redis
) -> None:
    caller = Caller(line)
    menu = caller.twiml("/voice/incoming")
    clock.now += 5
    dial = caller.follow(menu, Digits="1", CallStatus="in-progress")
    clock.now += 8
    # The Dial action comes first, saying the call itself is over.
    after = caller.follow(dial, DialCallStatus="canceled", CallStatus="completed")
    assert [verb.tag for verb in after] == ["Hangup"]
    assert "hold_joined" not in _kinds(connection, caller.sid)
    assert connection.zscore(WAITING_KEY, caller.sid) is None
    clock.now += 1
    caller.post("/voice/status", CallStatus="completed", CallDuration="14")
    call = _summary(connection, caller.sid)
    assert (call["outcome"], call["duration"], call["wait_seconds"]) == ("abandoned", 14, None)


def test_a_message_left_before_hanging_up_is_a_voicemail(
    line: FlaskClient, clock: Clock, connection: redis.Redis
) -> None:
    caller, hold_action = _on_hold(line, clock)
    record = caller.twiml(hold_action, QueueResult="leave", QueueTime="3")
    clock.now += 20
    recording = "RE" + "3" * 32
    after = caller.follow(
        record,
        RecordingUrl=f"https://api.twilio.com/Recordings/{recording}",
        RecordingSid=recording,
        RecordingDuration="17",
        CallStatus="completed",
    )
    assert [verb.tag for verb in after] == ["Hangup"]
    caller.post("/voice/status", CallStatus="completed", CallDuration="46")
    call = _summary(connection, caller.sid)
    assert call["outcome"] == "voicemail" and call["ticket"] is not None
    assert call["duration"] == 46


def test_a_first_webhook_after_the_final_status_is_still_answered(
    line: FlaskClient, clock: Clock, connection: redis.Redis
) -> None:
    caller = Caller(line)
    caller.post("/voice/status", CallStatus="completed", CallDuration="2")
    menu = caller.twiml("/voice/incoming")  # very late: nobody hears it, nothing breaks
    assert menu.find("Gather") is not None
    call = _summary(connection, caller.sid)
    assert call["outcome"] == "self_service" and call["duration"] == 2


def test_a_hold_line_hang_up_ends_the_record_without_waiting_for_the_status(
    line: FlaskClient, clock: Clock, connection: redis.Redis
) -> None:
    caller, hold_action = _on_hold(line, clock)
    clock.now += 30
    after = caller.twiml(hold_action, QueueResult="hangup", QueueTime="30", CallStatus="completed")
    assert [verb.tag for verb in after] == ["Hangup"]
    call = _summary(connection, caller.sid)
    assert (call["outcome"], call["ended_at"]) == ("abandoned", "2026-05-28T20:27:35.000Z")
    assert connection.zscore(LIVE_KEY, caller.sid) is None
    assert connection.zscore(WAITING_KEY, caller.sid) is None
