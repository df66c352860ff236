"""A pool tried after another takes its turn (longest idle, round robin) only when a call
reaches it: calls that the first pool answers leave its agents' idle times and its rotation
alone."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import redis
from flask import Flask

from ivr.flows.state import CallState, DialAttempt, Endpoint, RouteProgress
from ivr.settings import Settings
from ivr.store import IDLE_KEY, ROUND_ROBIN_KEY
from tests.conftest import ROUTE_LINE, Caller, line_app

POOLS = """
pools:
  desk:
    timezone: UTC
    queues: [billing]
    priority: 1
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    strategy: sequential
    agents: [{name: Desk, phone: "+15550000009"}]
  idle:
    timezone: UTC
    queues: [billing]
    priority: 2
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    strategy: longest_idle
    agents:
      - {name: A, phone: "+15550000001"}
      - {name: B, phone: "+15550000002"}
  turns:
    timezone: UTC
    queues: [billing]
    priority: 3
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    strategy: round_robin
    agents:
      - {name: C, phone: "+15550000003"}
      - {name: D, phone: "+15550000004"}
"""


@pytest.fixture
def line(settings: Settings, connection: redis.Redis, tmp_path: Path) -> Flask:
    return line_app(settings, connection, tmp_path / "line_flows", ROUTE_LINE, POOLS)


def _rung(root: ET.Element) -> list[str]:
    return [n.text or "" for n in root.iter("Number")]


def _call_until(app: Flask, wanted: str) -> ET.Element:
    """A call whose Dials go unanswered until `wanted` is rung (at most six Dials)."""
    call = Caller(app.test_client(), to="+15005550006")
    root = call.twiml("/voice/incoming")
    for _ in range(6):
        if _rung(root) == [wanted]:
            return root
        root = call.follow(root, DialCallStatus="no-answer", DialCallDuration="0")
    raise AssertionError(f"{wanted} was never rung")


def _answered_by_the_desk(app: Flask) -> None:
    call = Caller(app.test_client(), to="+15005550006")
    root = call.twiml("/voice/incoming")
    assert _rung(root) == ["+15550000009"]
    done = call.follow(root, DialCallStatus="completed", DialCallDuration="30")
    assert [v.tag for v in done] == ["Hangup"]


def test_a_later_longest_idle_pool_claims_its_agent_only_when_reached(
    line: Flask, connection: redis.Redis
) -> None:
    call = Caller(line.test_client(), to="+15005550006")
    root = call.twiml("/voice/incoming")
    assert _rung(root) == ["+15550000009"]  # the desk first; no turn of the others taken yet
    assert not connection.exists(IDLE_KEY.format("idle"), ROUND_ROBIN_KEY.format("turns"))
    root = call.follow(root, DialCallStatus="no-answer", DialCallDuration="0")
    assert _rung(root) == ["+15550000001"]  # A: neither was offered a call before
    assert connection.zrange(IDLE_KEY.format("idle"), 0, -1) == [b"a"]
    # Calls the desk answers never reach the pool: B is still the one idle longest.
    for _ in range(3):
        _answered_by_the_desk(line)
    assert connection.zrange(IDLE_KEY.format("idle"), 0, -1) == [b"a"]
    _call_until(line, "+15550000002")


def test_a_later_round_robin_pool_turns_only_for_calls_that_reach_it(
    line: Flask, connection: redis.Redis
) -> None:
    _call_until(line, "+15550000003")  # C's turn
    for _ in range(2):
        _answered_by_the_desk(line)
    assert connection.get(ROUND_ROBIN_KEY.format("turns")) == b"c"
    _call_until(line, "+15550000004")  # then D's, however many calls the desk took between


def test_the_pools_left_unordered_survive_the_state_and_old_states_load() -> None:
    attempt = DialAttempt("idle", (Endpoint("number", "+15550000001"),), 20, None, ("a",))
    progress = RouteProgress("billing", (attempt,), 0, ("idle",))
    state = CallState("CA" + "1" * 32, "line", "v1", "route", "en-US", route=progress)
    assert CallState.from_json(state.to_json()) == state
    older = state.to_json().replace(',"unordered":["idle"]', "")
    assert "unordered" not in older
    assert CallState.from_json(older).route == RouteProgress("billing", (attempt,), 0)


def test_the_agent_who_takes_a_call_goes_to_the_back_of_a_longest_idle_line(
    line: Flask, connection: redis.Redis
) -> None:
    call = Caller(line.test_client(), to="+15005550006")
    root = call.follow(call.twiml("/voice/incoming"), DialCallStatus="no-answer")
    assert _rung(root) == ["+15550000001"]  # A, claimed
    root = call.follow(root, DialCallStatus="no-answer", DialCallDuration="0")
    (number,) = root.iter("Number")
    assert number.text == "+15550000002"  # then B, who picks up
    answered = call.post(number.attrib["statusCallback"], CallStatus="in-progress",
                         ParentCallSid=call.sid)  # fmt: skip
    assert answered.status_code == 200
    call.follow(root, DialCallStatus="completed", DialCallDuration="60")
    # A was only rung; B took the call after that: A has been idle longest.
    assert connection.zrange(IDLE_KEY.format("idle"), 0, -1) == [b"a", b"b"]
    again = Caller(line.test_client(), to="+15005550006")
    after_the_desk = again.follow(again.twiml("/voice/incoming"), DialCallStatus="no-answer")
    assert _rung(after_the_desk) == ["+15550000001"]
