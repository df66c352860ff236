"""The hold line: busy agents, position and wait announcements, a key to leave a message."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from ivr.calls.queries import kpi_report
from ivr.calls.records import CallRecords
from ivr.settings import Settings
from ivr.store import WAITING_KEY, Store
from tests.conftest import Caller, line_app, spoken

FLOW = """
flow: line
numbers: ["+15005550006"]
languages: [en-US, vi-VN]
start: route
steps:
  route:
    route:
      queue: billing
      otherwise: vm
      hold: {music: "https://example.com/hold.mp3", max_wait: 300, leave_key: "*"}
  vm:
    voicemail: {}
"""
POOLS = """
pools:
  always:
    timezone: Asia/Ho_Chi_Minh
    queues: [billing]
    languages: [en-US]
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    agents: [{name: Lan, phone: "+84901234567"}]
"""


@pytest.fixture
def line(settings: Settings, connection: redis.Redis, tmp_path: Path) -> FlaskClient:
    return line_app(settings, connection, tmp_path / "line_flows", FLOW, POOLS).test_client()


def test_a_caller_waits_in_line_hears_position_and_leaves_with_star(line: FlaskClient) -> None:
    caller = Caller(line)
    dial = caller.twiml("/voice/incoming")
    assert dial.find("Dial/Number") is not None
    queued = caller.follow(dial, DialCallStatus="no-answer")
    enqueue = queued.find("Enqueue")
    assert enqueue is not None and enqueue.text == "billing"
    wait = caller.twiml(enqueue.attrib["waitUrl"], QueuePosition="2", AvgQueueTime="150")
    words = spoken(wait)[0]
    assert "number 2 in line" in words and "about 3 minutes" in words and "press star" in words
    gather = wait.find("Gather")
    assert gather is not None and gather.find("Play").text == "https://example.com/hold.mp3"  # type: ignore[union-attr]
    stay = caller.twiml(gather.attrib["action"], Digits="5")
    assert stay[0].tag == "Redirect"
    leave = caller.twiml(gather.attrib["action"], Digits="*")
    assert [v.tag for v in leave] == ["Leave"]
    after = caller.twiml(enqueue.attrib["action"], QueueResult="leave")
    assert after.find("Record") is not None


def test_the_line_ends_at_max_wait(line: FlaskClient) -> None:
    caller = Caller(line)
    queued = caller.follow(caller.twiml("/voice/incoming"), DialCallStatus="busy")
    wait_url = queued.find("Enqueue").attrib["waitUrl"]  # type: ignore[union-attr]
    assert [v.tag for v in caller.twiml(wait_url, QueueTime="301")] == ["Leave"]


def test_a_wait_request_for_an_unknown_call_leaves_the_line(line: FlaskClient) -> None:
    assert [v.tag for v in Caller(line).twiml("/voice/hold?lang=en-US")] == ["Leave"]


def test_the_sample_agents_line_takes_the_next_billing_caller(client: FlaskClient) -> None:
    agent = Caller(client, to="+15005550007", caller="+84901234567")
    take = agent.twiml("/voice/incoming")
    queue = take.find("Dial/Queue")
    assert queue is not None and queue.text == "billing"
    nobody = agent.follow(take, DialCallStatus="failed")
    assert any("No callers are waiting" in words for words in spoken(nobody))
    assert nobody.find("Hangup") is not None


AGENTS_LINE = """
flow: agents
numbers: ["+15005550007"]
languages: [en-US]
start: take
steps:
  take:
    dequeue: billing
"""


def _waiting_in_line(line: FlaskClient) -> tuple[Caller, ET.Element]:
    caller = Caller(line)
    queued = caller.follow(caller.twiml("/voice/incoming"), DialCallStatus="no-answer")
    enqueue = queued.find("Enqueue")
    assert enqueue is not None
    caller.twiml(enqueue.attrib["waitUrl"], QueuePosition="1")
    return caller, enqueue


@pytest.mark.parametrize("spelling", ["DequeingCallSid", "DequeueingCallSid"])
def test_an_agent_taking_a_caller_from_the_line_answers_the_call_then(
    line: FlaskClient, connection: redis.Redis, tmp_path: Path, spelling: str
) -> None:
    (tmp_path / "line_flows" / "agents.yaml").write_text(AGENTS_LINE)
    caller, enqueue = _waiting_in_line(line)
    assert connection.zscore(WAITING_KEY, caller.sid) is not None
    agent = Caller(line, to="+15005550007", caller="+84901234567")
    queue = agent.twiml("/voice/incoming").find("Dial/Queue")
    assert queue is not None and queue.text == "billing"
    assert queue.attrib["url"] == "/voice/dequeued?queue=billing"
    # Twilio asks the queue's url on the caller's line as the two are connected.
    connect = caller.twiml(queue.attrib["url"], QueueTime="12", **{spelling: agent.sid})
    assert list(connect) == []  # nothing to hear: straight through
    store = Store(connection)
    taken = store.summary(caller.sid)
    assert taken is not None and taken.answered_at is not None
    assert (taken.pool, taken.agent) == ("always", "lan")
    assert connection.zscore(WAITING_KEY, caller.sid) is None  # no longer waiting
    # After the conversation the queue's action says bridged: the answer stays as it was.
    caller.twiml(enqueue.attrib["action"], QueueResult="bridged", QueueTime="12")
    caller.post("/voice/status", CallStatus="completed", CallDuration="90")
    done = store.summary(caller.sid)
    assert done is not None and done.outcome == "answered"
    assert (done.answered_at, done.pool, done.agent) == (taken.answered_at, "always", "lan")
    # The agent's own call is on record, as an agents' line call the KPIs leave out.
    agent.post("/voice/status", CallStatus="completed", CallDuration="95")
    line_call = store.summary(agent.sid)
    assert line_call is not None and line_call.agent_line and line_call.outcome != "in_progress"
    day = datetime.fromtimestamp(done.started_at or 0, UTC).date()
    total = kpi_report(CallRecords(connection), day, day, "day", 20, "UTC")["total"]
    assert (total["calls"], total["answered"]) == (1, 1)


def test_a_caller_taken_by_a_call_no_pool_lists_is_answered_by_nobody_known(
    line: FlaskClient, connection: redis.Redis
) -> None:
    caller, _ = _waiting_in_line(line)
    connect = caller.twiml("/voice/dequeued?queue=billing", DequeingCallSid="CA" + "9" * 32)
    assert list(connect) == []
    taken = Store(connection).summary(caller.sid)
    assert taken is not None and taken.answered_at is not None
    # Not the pool rung before the line, which did not answer.
    assert (taken.pool, taken.agent) == (None, None)
