"""A round-robin pool's turn goes from agent to agent, fairly, whoever is away meanwhile and
whichever instance of the app takes the call."""

from __future__ import annotations

from pathlib import Path

import redis
from flask import Flask

from ivr.settings import Settings
from ivr.store import Store
from tests.conftest import ROUTE_LINE, Caller, line_app

POOLS = """
pools:
  turns:
    timezone: UTC
    queues: [billing]
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    strategy: round_robin
    agents:
      - {name: A, phone: "+15550000001"}
      - {name: B, phone: "+15550000002"}
      - {name: C, phone: "+15550000003"}
"""
NAMES = {"+15550000001": "a", "+15550000002": "b", "+15550000003": "c"}


def _rung_first(app: Flask) -> str:
    root = Caller(app.test_client()).twiml("/voice/incoming")
    return NAMES[next(root.iter("Number")).text or ""]


def test_the_turn_goes_on_from_the_agent_rung_last_as_agents_leave_and_return(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    # Two instances of the app on one Redis share the turn.
    one = line_app(settings, connection, tmp_path / "one", ROUTE_LINE, POOLS)
    two = line_app(settings, connection, tmp_path / "two", ROUTE_LINE, POOLS)
    store = Store(connection)
    rung = [_rung_first(one)]
    store.set_presence("b", "away")
    rung += [_rung_first(two), _rung_first(one)]
    store.set_presence("b", "available")
    rung += [_rung_first(two), _rung_first(one), _rung_first(two)]
    # B is rung as soon as the turn comes round to them again, not A twice in a row.
    assert rung == ["a", "c", "a", "b", "c", "a"]


def test_the_turn_is_exactly_fair_with_an_agent_away(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    one = line_app(settings, connection, tmp_path / "one", ROUTE_LINE, POOLS)
    two = line_app(settings, connection, tmp_path / "two", ROUTE_LINE, POOLS)
    for _ in range(2):
        _rung_first(one)
    Store(connection).set_presence("a", "away")
    rung = [_rung_first((one, two)[i % 2]) for i in range(10)]
    assert rung == ["c", "b"] * 5  # after B, C: A is skipped, nobody rung twice in a row
