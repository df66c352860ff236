"""Longest idle: the agent idle longest is rung first; who takes a call goes to the back of
every longest-idle line they are in."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import redis

from ivr.settings import Settings
from tests.conftest import ROUTE_LINE, Caller, line_app

POOLS = """
pools:
  front:
    timezone: UTC
    queues: [billing]
    priority: 1
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    strategy: longest_idle
    agents:
      - {name: Sam, id: sam, phone: "+15550000001"}
      - {name: Ann, phone: "+15550000002"}
  back:
    timezone: UTC
    queues: [billing]
    priority: 2
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    strategy: longest_idle
    agents:
      - {name: Sam, id: sam, phone: "+15550000001"}
      - {name: Bob, phone: "+15550000003"}
"""


def _rung(root: ET.Element) -> list[str]:
    return [n.text or "" for n in root.iter("Number")]


def test_an_agent_who_took_a_call_is_not_idle_longest_in_another_pool(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    app = line_app(settings, connection, tmp_path / "flows", ROUTE_LINE, POOLS)
    first = Caller(app.test_client())
    root = first.twiml("/voice/incoming")
    (number,) = root.iter("Number")
    assert number.text == "+15550000001"  # Sam: nobody was offered a call yet
    picked_up = first.post(number.attrib["statusCallback"], CallStatus="in-progress",
                           ParentCallSid=first.sid)  # fmt: skip
    assert picked_up.status_code == 200
    first.follow(root, DialCallStatus="completed", DialCallDuration="60")

    second = Caller(app.test_client())
    root = second.twiml("/voice/incoming")
    assert _rung(root) == ["+15550000002"]  # Ann, in the front pool
    root = second.follow(root, DialCallStatus="no-answer")
    assert _rung(root) == ["+15550000001"]  # then Sam, the front pool's last
    root = second.follow(root, DialCallStatus="no-answer")
    # The back pool: Bob before Sam, who has just taken a call.
    assert _rung(root) == ["+15550000003"]


def test_an_agent_in_two_pools_is_rung_once_a_call(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    app = line_app(settings, connection, tmp_path / "flows", ROUTE_LINE, POOLS)
    call = Caller(app.test_client())
    root = call.twiml("/voice/incoming")
    rung = _rung(root)
    while root.find("Dial") is not None:
        root = call.follow(root, DialCallStatus="no-answer")
        rung += _rung(root)
    assert rung == ["+15550000001", "+15550000002", "+15550000003"]  # Sam, Ann, then Bob
    assert root.find("Record") is not None
