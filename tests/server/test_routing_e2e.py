"""Routing end to end over real HTTP: pools in order, strategies, presence, fairness across workers.

The pools are on shift at every instant, so what is asserted never depends on the clock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree as ET

import pytest

from ivr.phrases import phrase
from ivr.pools import load_pools
from tests.server.conftest import HttpCaller, Server, dialled, running_server, says, verbs

pytestmark = pytest.mark.server

SUPPORT_LINE = "+15005550100"
ROUND_ROBIN_LINE = "+15005550101"
LONGEST_IDLE_LINE = "+15005550102"
WELCOME = "Welcome to the routing test line."
LEAVE_MESSAGE = "Please leave a message after the tone."

FIRST = ["+15550000001", "+15550000002"]  # Ann, Bob
SECOND = ["+15550000003", "+15550000004"]  # Cat, Dan
ROUND_ROBIN = ["+15550000011", "+15550000012", "+15550000013"]
LONGEST_IDLE = ["+15550000021", "+15550000022", "+15550000023"]


def _line(name: str, number: str, queue: str) -> str:
    return f"""\
flow: {name}
numbers: ["{number}"]
languages: [en-US]
start: hello
fallback: voicemail
steps:
  hello:
    say: "{WELCOME}"
    next: queue
  queue:
    route: {{queue: {queue}, otherwise: voicemail}}
  voicemail:
    voicemail:
      prompt: "{LEAVE_MESSAGE}"
      max_seconds: 60
"""


# Midnight to midnight every day: on shift at every instant, whatever the date.
ALWAYS = '[{days: daily, from: "00:00", to: "24:00"}]'

# `second` comes first in the file: priority, not file order, puts `first` ahead of it.
POOLS = f"""\
pools:
  second:
    timezone: UTC
    queues: [support]
    priority: 2
    shifts: {ALWAYS}
    strategy: sequential
    ring_seconds: 25
    agents:
      - {{name: Cat, phone: "{SECOND[0]}"}}
      - {{name: Dan, phone: "{SECOND[1]}"}}
  first:
    timezone: UTC
    queues: [support]
    priority: 1
    shifts: {ALWAYS}
    strategy: simultaneous
    ring_seconds: 15
    agents:
      - {{name: Ann, phone: "{FIRST[0]}"}}
      - {{name: Bob, phone: "{FIRST[1]}"}}
  turns:
    timezone: Asia/Ho_Chi_Minh
    queues: [turns]
    shifts: {ALWAYS}
    strategy: round_robin
    ring_seconds: 10
    agents:
      - {{name: R1, phone: "{ROUND_ROBIN[0]}"}}
      - {{name: R2, phone: "{ROUND_ROBIN[1]}"}}
      - {{name: R3, phone: "{ROUND_ROBIN[2]}"}}
  idle:
    timezone: Africa/Cairo
    queues: [idle]
    shifts: {ALWAYS}
    strategy: longest_idle
    ring_seconds: 10
    agents:
      - {{name: L1, phone: "{LONGEST_IDLE[0]}"}}
      - {{name: L2, phone: "{LONGEST_IDLE[1]}"}}
      - {{name: L3, phone: "{LONGEST_IDLE[2]}"}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("routing")
    flows = root / "call_flows"
    flows.mkdir()
    (flows / "support.yaml").write_text(_line("support", SUPPORT_LINE, "support"))
    (flows / "turns.yaml").write_text(_line("turns", ROUND_ROBIN_LINE, "turns"))
    (flows / "idle.yaml").write_text(_line("idle", LONGEST_IDLE_LINE, "idle"))
    (flows / "pools.yaml").write_text(POOLS)
    pools, problems = load_pools(flows / "pools.yaml")
    assert pools is not None and [str(p) for p in problems] == []
    with running_server(root, flows) as running:
        assert running.get("/readyz").json()["errors"] == []
        yield running


def _dial(root: ET.Element) -> dict[str, str]:
    dial = root.find("Dial")
    assert dial is not None
    return dict(dial.attrib)


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed"])
def test_pools_in_priority_order_then_voicemail(server: Server, status: str) -> None:
    caller = server.caller(to=SUPPORT_LINE)

    root = caller.twiml("/voice/incoming")
    assert [text for _, text in says(root)] == [WELCOME, phrase("connecting", "en-US")[0]]
    assert verbs(root) == ["Say", "Say", "Dial"]
    assert dialled(root) == FIRST and _dial(root)["timeout"] == "15"
    assert [target.tag for target in root.iterfind("Dial/*")] == ["Number", "Number"]

    root = caller.follow(root, DialCallStatus=status)
    assert dialled(root) == SECOND[:1] and _dial(root)["timeout"] == "25"
    assert [text for _, text in says(root)] == [phrase("still_trying", "en-US")[0]]

    root = caller.follow(root, DialCallStatus=status)
    assert dialled(root) == SECOND[1:] and _dial(root)["timeout"] == "25"

    root = caller.follow(root, DialCallStatus=status)
    assert [text for _, text in says(root)] == [phrase("all_busy", "en-US")[0], LEAVE_MESSAGE]
    assert verbs(root) == ["Say", "Say", "Record"]

    root = caller.follow(
        root,
        RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1",
        RecordingSid="RE1",
        RecordingDuration="12",
    )
    assert verbs(root) == ["Say", "Hangup"]

    log = server.store().call_log(caller.sid)
    route = next(e for e in log if e["kind"] == "route")
    assert route["queue"] == "support" and route["pools"] == ["first", "second"]
    results = [(e["pool"], e["agents"], e["status"]) for e in log if e["kind"] == "dial_result"]
    assert results == [
        ("first", ["ann", "bob"], status),
        ("second", ["cat"], status),
        ("second", ["dan"], status),
    ]
    assert log[-1]["kind"] == "hangup"
    summary = server.store().summary(caller.sid)
    assert summary is not None and summary.outcome == "voicemail" and summary.pool == "second"


def test_an_answered_dial_ends_the_call(server: Server) -> None:
    caller = server.caller(to=SUPPORT_LINE)
    first = caller.twiml("/voice/incoming")
    root = caller.follow(
        caller.follow(first, DialCallStatus="no-answer"), DialCallStatus="completed"
    )
    assert verbs(root) == ["Hangup"]
    log = server.store().call_log(caller.sid)
    assert log[-1]["kind"] == "hangup"
    summary = server.store().summary(caller.sid)
    assert summary is not None and summary.outcome == "answered"


def test_the_caller_hears_words_before_every_dial(server: Server) -> None:
    caller = server.caller(to=SUPPORT_LINE)
    root = caller.twiml("/voice/incoming")
    while root.find("Dial") is not None:
        assert verbs(root)[-2:] == ["Say", "Dial"], verbs(root)
        root = caller.follow(root, DialCallStatus="no-answer")
    assert verbs(root)[-1] == "Record"


def test_an_agent_marked_away_is_not_rung(server: Server) -> None:
    store = server.store()
    store.set_presence("bob", "away", by="test")
    try:
        caller = server.caller(to=SUPPORT_LINE)
        root = caller.twiml("/voice/incoming")
        assert dialled(root) == FIRST[:1]
        store.set_presence("ann", "away", by="test")
        later = server.caller(to=SUPPORT_LINE).twiml("/voice/incoming")
        assert dialled(later) == SECOND[:1]  # nobody left in `first`: straight to `second`
    finally:
        store.set_presence("bob", "available", by="test")
        store.set_presence("ann", "available", by="test")
    assert dialled(server.caller(to=SUPPORT_LINE).twiml("/voice/incoming")) == FIRST


def _first_dialled(server: Server, line: str, start: threading.Barrier) -> tuple[HttpCaller, str]:
    caller = server.caller(to=line)
    start.wait()
    root = caller.twiml("/voice/incoming")
    numbers = dialled(root)
    assert len(numbers) == 1, numbers
    return caller, numbers[0]


def _concurrent_calls(server: Server, line: str, count: int) -> list[tuple[HttpCaller, str]]:
    start = threading.Barrier(count)
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(_first_dialled, server, line, start) for _ in range(count)]
        return [future.result() for future in futures]


def test_round_robin_is_fair_under_concurrent_calls(server: Server) -> None:
    calls = _concurrent_calls(server, ROUND_ROBIN_LINE, 30)
    assert Counter(number for _, number in calls) == {number: 10 for number in ROUND_ROBIN}
    # Within one call the turn goes on around the pool from the agent it started with.
    caller, first = calls[0]
    start = ROUND_ROBIN.index(first)
    root = caller.follow(caller.twiml("/voice/incoming"), DialCallStatus="no-answer")
    assert dialled(root) == [ROUND_ROBIN[(start + 1) % 3]]
    root = caller.follow(root, DialCallStatus="no-answer")
    assert dialled(root) == [ROUND_ROBIN[(start + 2) % 3]]


def test_longest_idle_gives_concurrent_calls_different_agents(server: Server) -> None:
    for _ in range(2):
        calls = _concurrent_calls(server, LONGEST_IDLE_LINE, len(LONGEST_IDLE))
        assert sorted(number for _, number in calls) == LONGEST_IDLE
    # Every call still tries the whole pool, longest idle first.
    caller, first = calls[0]
    root = caller.twiml("/voice/incoming")
    tried = [first]
    while root.find("Dial") is not None:
        root = caller.follow(root, DialCallStatus="no-answer")
        tried += dialled(root) if root.find("Dial") is not None else []
    assert sorted(tried) == LONGEST_IDLE
