"""An agent marked away while a call is already ringing other agents is not rung by it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import redis

from ivr.settings import Settings
from ivr.store import IDLE_KEY, Store
from tests.conftest import ROUTE_LINE, Caller, line_app
from tests.voice.test_later_pools import POOLS as LATER_POOLS

POOLS = """
pools:
  first:
    timezone: UTC
    queues: [billing]
    priority: 1
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    strategy: sequential
    agents:
      - {name: A, phone: "+15550000001"}
      - {name: B, phone: "+15550000002"}
      - {name: C, phone: "+15550000003"}
  all_at_once:
    timezone: UTC
    queues: [billing]
    priority: 2
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    strategy: simultaneous
    agents:
      - {name: X, phone: "+15550000004"}
      - {name: Y, client: yvonne}
"""


def _rung(root: ET.Element) -> list[str]:
    return [n.text or "" for n in root.iter() if n.tag in ("Number", "Client", "Sip")]


def test_agents_marked_away_mid_route_are_skipped(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    app = line_app(settings, connection, tmp_path / "flows", ROUTE_LINE, POOLS)
    call = Caller(app.test_client())
    root = call.twiml("/voice/incoming")
    assert _rung(root) == ["+15550000001"]
    store = Store(connection)
    store.set_presence("b", "away")
    store.set_presence("y", "away")
    root = call.follow(root, DialCallStatus="no-answer")
    assert _rung(root) == ["+15550000003"]  # C: B went away while A rang
    root = call.follow(root, DialCallStatus="busy")
    assert _rung(root) == ["+15550000004"]  # the next pool rings only X
    (dial,) = root.iter("Dial")
    assert dial.find("Client") is None
    root = call.follow(root, DialCallStatus="no-answer")
    assert root.find("Record") is not None  # then the route's voicemail


def test_a_later_pool_takes_its_turn_among_the_agents_still_in(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    app = line_app(settings, connection, tmp_path / "flows", ROUTE_LINE, LATER_POOLS)
    call = Caller(app.test_client())
    root = call.twiml("/voice/incoming")
    assert _rung(root) == ["+15550000009"]  # the desk first
    Store(connection).set_presence("a", "away")
    root = call.follow(root, DialCallStatus="no-answer")
    assert _rung(root) == ["+15550000002"]  # B, idle as long as A, who is away now
    # A was not claimed for a call that never rang them.
    assert connection.zrange(IDLE_KEY.format("idle"), 0, -1) == [b"b"]


HOLD_LINE = """
flow: line
numbers: ["+15005550006"]
languages: [en-US]
start: route
steps:
  route:
    route:
      queue: billing
      otherwise: vm
      hold: {max_wait: 300}
  vm:
    voicemail: {}
"""
TWO = """
pools:
  first:
    timezone: UTC
    queues: [billing]
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    strategy: sequential
    agents:
      - {name: A, phone: "+15550000001"}
      - {name: B, phone: "+15550000002"}
"""


def test_a_caller_whose_agents_all_went_away_is_not_put_on_hold_for_them(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    app = line_app(settings, connection, tmp_path / "flows", HOLD_LINE, TWO)
    call = Caller(app.test_client())
    root = call.twiml("/voice/incoming")
    assert _rung(root) == ["+15550000001"]
    store = Store(connection)
    store.set_presence("a", "away")
    store.set_presence("b", "away")
    root = call.follow(root, DialCallStatus="no-answer")
    assert root.find("Enqueue") is None and root.find("Record") is not None


def test_a_caller_whose_agents_are_busy_waits_on_hold(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    app = line_app(settings, connection, tmp_path / "flows", HOLD_LINE, TWO)
    call = Caller(app.test_client())
    root = call.twiml("/voice/incoming")
    Store(connection).set_presence("b", "away")
    root = call.follow(root, DialCallStatus="no-answer")  # A still in, but busy
    assert root.find("Enqueue") is not None
