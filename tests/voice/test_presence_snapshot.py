"""Routes plan on the presence this process last read, never on one older than Redis holds when
their turn is written: a change made anywhere (another worker, host, the API) is seen."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask

from ivr.flows.state import CallState
from ivr.settings import Settings
from ivr.store import PresenceChanged, Store
from tests.conftest import ROUTE_LINE, Caller, command_calls, line_app

POOLS = """
pools:
  always:
    timezone: UTC
    queues: [billing]
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    agents:
      - {name: Lan, phone: "+84901234567"}
      - {name: Amr, phone: "+201001234567"}
"""


@pytest.fixture
def line(settings: Settings, connection: redis.Redis, tmp_path: Path) -> Flask:
    return line_app(settings, connection, tmp_path / "line_flows", ROUTE_LINE, POOLS)


def _rung(app: Flask) -> list[str]:
    dial = Caller(app.test_client(), to="+15005550006").twiml("/voice/incoming")
    return sorted(n.text or "" for n in dial.iter("Number"))


def test_routes_read_presence_once_until_it_changes(line: Flask, connection: redis.Redis) -> None:
    assert _rung(line) == ["+201001234567", "+84901234567"]
    reads = command_calls(connection, "hgetall")
    assert _rung(line) == ["+201001234567", "+84901234567"]
    # The snapshot served, and the write found it true.
    assert command_calls(connection, "hgetall") == reads


def test_an_agent_marked_away_elsewhere_is_not_rung_by_a_process_that_saw_her_available(
    line: Flask, connection: redis.Redis
) -> None:
    assert _rung(line) == ["+201001234567", "+84901234567"]  # this worker's snapshot: both in
    Store(connection).set_presence("lan", "away", by="another host")
    assert _rung(line) == ["+201001234567"]
    Store(connection).set_presence("lan", "available")
    assert _rung(line) == ["+201001234567", "+84901234567"]


def test_a_write_planned_on_changed_presence_writes_nothing(connection: redis.Redis) -> None:
    store, other = Store(connection), Store(connection)
    _, token = store.away_snapshot()
    assert token is not None
    other.set_presence("amr", "away")
    state = CallState("CA" + "d" * 32, "line", "v1", "route", "en-US", turn=1)
    with pytest.raises(PresenceChanged):
        store.commit(state, None, 0, "<Response/>", "", (), None, token)
    assert not connection.exists("ivr:call:{" + state.sid + "}")
    away, fresh = store.away_snapshot()
    assert fresh != token and away == {"amr"}
    assert store.commit(state, None, 0, "<Response/>", "", (), None, fresh) is not None


def test_no_turn_is_taken_on_changed_presence(connection: redis.Redis) -> None:
    # A route planned again after a presence change takes one round-robin ticket in all, and
    # claims no longest-idle agent on the presence it no longer trusts.
    store = Store(connection)
    _, token = store.away_snapshot()
    roster = ["x", "y"]
    assert store.next_round_robin("rr", roster, roster, token) == "x"
    Store(connection).set_presence("amr", "away")
    with pytest.raises(PresenceChanged):
        store.next_round_robin("rr", roster, roster, token)
    with pytest.raises(PresenceChanged):
        store.claim_longest_idle("li", ["a", "b"], 5.0, token)
    assert connection.get("ivr:pool:{rr}:next") == b"x"
    assert not connection.exists("ivr:pool:{li}:idle")
    _, fresh = store.away_snapshot()
    assert store.next_round_robin("rr", roster, roster, fresh) == "y"
    assert store.claim_longest_idle("li", ["a", "b"], 5.0, fresh) == ["a", "b"]
    assert store.claim_longest_idle("li", ["a", "b"], 6.0) == ["b", "a"]
