"""What a Dial's result does to a routed call: the next agent or pool, the otherwise step, or
nothing more once the caller has hung up."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import redis
from flask import Flask

from ivr.settings import Settings
from ivr.store import IDLE_KEY, ROUND_ROBIN_KEY, Store
from tests.conftest import ROUTE_LINE, Caller, line_app
from tests.voice.test_later_pools import POOLS


@pytest.fixture
def line(settings: Settings, connection: redis.Redis, tmp_path: Path) -> Flask:
    return line_app(settings, connection, tmp_path / "line_flows", ROUTE_LINE, POOLS)


def _rung(root: ET.Element) -> list[str]:
    return [n.text or "" for n in root.iter("Number")]


@pytest.mark.parametrize("dial_status", ["no-answer", "canceled", "busy"])
def test_a_caller_who_hangs_up_while_agents_ring_is_not_routed_on(
    line: Flask, connection: redis.Redis, dial_status: str
) -> None:
    call = Caller(line.test_client())
    root = call.twiml("/voice/incoming")
    assert _rung(root) == ["+15550000009"]  # the desk's pool first
    # Twilio asks the Dial's action once the caller's own line has ended.
    after = call.follow(root, DialCallStatus=dial_status, CallStatus="completed")
    assert [v.tag for v in after] == ["Hangup"]
    # The later pools' turns are left for calls that reach them.
    assert not connection.exists(IDLE_KEY.format("idle"), ROUND_ROBIN_KEY.format("turns"))
    call.twiml("/voice/status", CallStatus="completed", CallDuration="25")
    summary = Store(connection).summary(call.sid)
    assert summary is not None
    assert (summary.pool, summary.outcome) == ("desk", "abandoned")


def test_a_caller_still_on_the_line_goes_on_to_the_next_pool(
    line: Flask, connection: redis.Redis
) -> None:
    call = Caller(line.test_client())
    root = call.twiml("/voice/incoming")
    after = call.follow(root, DialCallStatus="no-answer", CallStatus="in-progress")
    assert _rung(after) == ["+15550000001"]
    assert connection.zrange(IDLE_KEY.format("idle"), 0, -1) == [b"a"]
