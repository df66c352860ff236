"""What a process remembers of the calls it wrote last: a read saved, never a wrong answer.

Two apps on one Redis play two gunicorn workers (or two hosts): each remembers its own writes,
and the other one's writes make that memory stale.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.calls.summary import CallSummary
from ivr.flows.state import CallState
from ivr.settings import Settings
from ivr.store import CALL_KEY, CALL_LOG_KEY, Loaded, RecentCalls, Store
from tests.conftest import Caller, command_calls, spoken

# 2026-12-02 03:00 UTC: only Hanoi, which rings everyone at once, is on shift.
WEDNESDAY_10_HANOI = 1_796_180_400.0


def pinned_app(settings: Settings, connection: redis.Redis) -> Flask:
    """A worker whose clock stands where a route's answer does not depend on earlier calls."""
    app = create_app(settings, connection)
    app.extensions["ivr"].clock = lambda: WEDNESDAY_10_HANOI
    return app


def _clients(settings: Settings, connection: redis.Redis) -> tuple[FlaskClient, FlaskClient]:
    return pinned_app(settings, connection).test_client(), pinned_app(
        settings, connection
    ).test_client()


def _action(root: ET.Element) -> str:
    gather = root.find("Gather")
    assert gather is not None, ET.tostring(root, encoding="unicode")
    return gather.attrib["action"]


def _gets(connection: redis.Redis) -> int:
    return command_calls(connection, "get")


def test_a_menu_answered_by_the_worker_that_wrote_the_call_reads_nothing_back(
    settings: Settings, connection: redis.Redis
) -> None:
    one, other = _clients(settings, connection)
    call = Caller(one)
    menu = _action(call.twiml("/voice/incoming"))
    before = _gets(connection)
    assert "thanh toán" in " ".join(spoken(call.twiml(menu, Digits="2")))
    assert _gets(connection) == before  # no read of the summary: the script's checks sufficed
    # The same call's next request on another worker has nothing remembered: it reads.
    call.client = other
    root = call.twiml(_action(call.twiml(menu, Digits="2")), Digits="9")
    assert _gets(connection) > before
    assert root.find("Gather") is not None


def test_webhooks_alternating_between_workers_answer_as_one_worker_would(
    settings: Settings, connection: redis.Redis
) -> None:
    one, other = _clients(settings, connection)
    alone, alternating = Caller(one), Caller(one)
    answers: dict[str, list[str]] = {"alone": [], "alternating": []}
    for name, call in (("alone", alone), ("alternating", alternating)):
        path, presses = "/voice/incoming", ["2", "9", "1"]
        for index in range(len(presses) + 1):
            call.client = other if name == "alternating" and index % 2 else one
            extra = {"Digits": presses[index - 1]} if index else {}
            text = call.post(path, **extra).get_data(as_text=True)
            answers[name].append(text)
            if index < len(presses):
                path = _action(ET.fromstring(text))
    assert answers["alternating"] == answers["alone"]


def test_a_retry_reaching_a_worker_with_a_stale_memory_replays_the_answer_given(
    settings: Settings, connection: redis.Redis
) -> None:
    one, other = _clients(settings, connection)
    call = Caller(one)
    menu = _action(call.twiml("/voice/incoming"))  # `one` remembers the call at turn 1
    call.client = other
    given = call.post(menu, Digits="2").get_data(as_text=True)  # `other` moves it to turn 2
    state = connection.hget(CALL_KEY.format(call.sid), "state")
    call.client = one  # Twilio retries turn 1 on the worker whose memory is now stale
    assert call.post(menu, Digits="2").get_data(as_text=True) == given
    assert connection.hget(CALL_KEY.format(call.sid), "state") == state
    # The stale memory is gone: the next request is served from what Redis holds.
    root = call.twiml(_action(ET.fromstring(given)), Digits="1")
    assert root.find("Gather") is not None or root.find("Dial") is not None


def test_a_status_callback_with_a_stale_memory_folds_every_event_once(
    settings: Settings, connection: redis.Redis
) -> None:
    one, other = _clients(settings, connection)
    call = Caller(one)
    call.twiml("/voice/incoming")  # `one` remembers the call
    call.client = other
    call.post("/voice/status", CallStatus="in-progress")  # an event `one` does not know of
    call.client = one
    call.post("/voice/status", CallStatus="completed", CallDuration="30")
    kinds = [e.decode() for e in connection.lrange(CALL_LOG_KEY.format(call.sid), 0, -1)]
    assert sum('"kind":"status"' in e for e in kinds) == 2
    assert sum('"kind":"call_ended"' in e for e in kinds) == 1
    raw = connection.get(f"ivr:call:{{{call.sid}}}:summary")
    assert raw is not None
    summary = CallSummary.from_json(raw)
    assert summary.events == len(kinds) and summary.outcome == "self_service"
    assert connection.ttl(CALL_KEY.format(call.sid)) <= 3600  # the ended call's state expires


def test_memory_is_bounded_in_size_and_age() -> None:
    clock = [100.0]
    recent = RecentCalls(size=2, seconds=10.0, clock=lambda: clock[0])
    entry = Loaded(CallState("CA1", "support", "v", "main", "en-US", turn=1), CallSummary("CA1"), 1)
    for sid in ("CA1", "CA2", "CA3"):
        recent.put(sid, entry)
    assert recent.get("CA1") is None and recent.get("CA2") is entry and recent.get("CA3") is entry
    clock[0] += 11
    assert recent.get("CA2") is None
    recent.put("CA4", entry)
    recent.drop("CA4")
    assert recent.get("CA4") is None


def test_a_call_gone_from_redis_is_not_served_from_memory(connection: redis.Redis) -> None:
    store = Store(connection)
    state = CallState("CA" + "c" * 32, "support", "v", "main", "en-US", turn=1)
    assert store.commit(state, None, 0, "<Response/>", "in") is not None
    assert store.load_turn(state.sid, 1).state == state
    connection.delete(CALL_KEY.format(state.sid))
    # The memory still answers the read, but the write it leads to is refused by the script.
    loaded = store.load_turn(state.sid, 1)
    assert store.commit(state.evolve(turn=2), 1, 1, "<Response/>", "in", (), loaded) is None
    assert store.load_turn(state.sid, 2).state is None  # forgotten: read from Redis
