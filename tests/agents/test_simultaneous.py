"""A simultaneous pool rings its agents in one <Dial>, ten at most, as Twilio allows."""

from __future__ import annotations

from pathlib import Path

import redis

from ivr.settings import Settings
from tests.conftest import ROUTE_LINE, Caller, line_app

AGENTS = "\n".join(f'      - {{name: A{i:02}, phone: "+155500001{i:02}"}}' for i in range(12))
POOLS = f"""
pools:
  floor:
    timezone: UTC
    queues: [billing]
    shifts: [{{days: daily, from: "00:00", to: "24:00"}}]
    strategy: simultaneous
    ring_seconds: 30
    agents:
{AGENTS}
"""


def test_a_pool_of_more_than_ten_rings_ten_at_a_time(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    app = line_app(settings, connection, tmp_path / "flows", ROUTE_LINE, POOLS)
    call = Caller(app.test_client())
    root = call.twiml("/voice/incoming")
    (dial,) = root.iter("Dial")
    assert dial.attrib["timeout"] == "30"
    assert [n.text for n in dial] == [f"+155500001{i:02}" for i in range(10)]
    root = call.follow(root, DialCallStatus="no-answer")
    (dial,) = root.iter("Dial")
    assert [n.text for n in dial] == ["+15550000110", "+15550000111"]
    assert root.find("Record") is None
    assert call.follow(root, DialCallStatus="no-answer").find("Record") is not None
