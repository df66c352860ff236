"""The Store's call records on real Redis: one atomic write, races folded in, indexes kept true,
the disk spool replayed exactly once."""

from __future__ import annotations

import json
import os
import threading
from functools import partial
from pathlib import Path

import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.calls import events as ev
from ivr.calls.spool import new_batch_id, replay, spool, spool_cross_call, spool_path
from ivr.calls.summary import CallSummary
from ivr.embedded import EmbeddedRedis
from ivr.errors import StoreUnavailable
from ivr.flows.state import CallState
from ivr.metrics import CALLS_ENDED
from ivr.services import Services
from ivr.settings import Settings
from ivr.store import CALLS_KEY, EVENTS_KEY, INDEX_KEY, LIVE_KEY, WAITING_KEY, Store
from tests.calls.test_voicemail_ticket import WEDNESDAY_NOON_UTC
from tests.conftest import Caller
from tests.voice.test_failures import dead_redis

SID = "CA" + "b" * 32
T0 = 1_790_000_000.0


def _state(turn: int) -> CallState:
    return CallState(SID, "support", "v1", "main", "en-US", turn=turn)


def _start(store: Store) -> None:
    started = ev.CallStarted(T0, caller="+84901111222", called="+1500", flow="support")
    assert store.commit(_state(1), None, 0, "<Response/>", "in", [started])


def test_a_turn_writes_state_events_summary_stream_and_indexes_at_once(
    connection: redis.Redis,
) -> None:
    store = Store(connection)
    _start(store)
    summary = store.summary(SID)
    assert summary is not None and summary.outcome == "in_progress" and summary.started_at == T0
    assert connection.zscore(CALLS_KEY, SID) == T0
    assert connection.zscore(INDEX_KEY.format("outcome", "in_progress"), SID) == T0
    caller_key = INDEX_KEY.format("caller", "+84901111222")
    assert connection.zscore(caller_key, SID) is None  # indexed by caller once it has ended
    entries = connection.xrange(EVENTS_KEY)
    assert [[x["kind"] for x in json.loads(e[b"events"])] for _, e in entries] == [["call_started"]]

    loaded = store.load_turn(SID)
    route = ev.RouteDecided(T0 + 5, queue="billing", pools=("hanoi",), chosen="hanoi")
    dial = ev.DialStarted(T0 + 5, pool="hanoi", agents=("lan",))
    assert store.commit(_state(2), 1, 1, "<Response/>", "in", [route, dial], loaded)
    assert connection.zscore(WAITING_KEY, SID) == T0 + 5
    # One stream entry per write, its events in order.
    entries = connection.xrange(EVENTS_KEY)
    assert [[x["kind"] for x in json.loads(e[b"events"])] for _, e in entries][1] == [
        ev.to_dict(route)["kind"],
        ev.to_dict(dial)["kind"],
    ]
    assert [e[b"sid"] for _, e in entries] == [SID.encode(), SID.encode()]
    assert connection.zscore(INDEX_KEY.format("queue", "billing"), SID) is None

    # A stale turn changes nothing at all.
    assert not store.commit(_state(3), 1, 1, "<x/>", "other", [ev.StepEntered(T0 + 6)], loaded)
    assert len(store.events(SID)) == 3

    store.record(SID, [ev.TwilioStatus(T0 + 60, status="completed", duration=60)])
    assert connection.zscore(WAITING_KEY, SID) is None
    assert connection.zscore(INDEX_KEY.format("outcome", "in_progress"), SID) is None
    assert connection.zscore(INDEX_KEY.format("outcome", "abandoned"), SID) == T0
    assert connection.zscore(INDEX_KEY.format("queue", "billing"), SID) == T0
    assert connection.zscore(caller_key, SID) == T0


def test_a_callback_landing_between_read_and_write_is_folded_in(connection: redis.Redis) -> None:
    store = Store(connection)
    _start(store)
    loaded = store.load_turn(SID)
    # The recording callback of the same call arrives while the webhook works.
    store.record(SID, [ev.VoicemailRecorded(T0 + 1, recording_sid="RE" + "1" * 32, seconds=8)])
    assert store.commit(_state(2), 1, 1, "<Response/>", "in", [ev.FlowHungUp(T0 + 2)], loaded)
    summary = store.summary(SID)
    assert summary is not None and summary.voicemail_seconds == 8
    assert summary.outcome == "voicemail" and summary.events == 3


def test_racing_callbacks_lose_no_event(connection: redis.Redis, redis_url: str) -> None:
    _start(Store(connection))
    barrier = threading.Barrier(8)

    def post(index: int) -> None:
        store = Store(redis.Redis.from_url(redis_url))
        barrier.wait()
        store.record(SID, [ev.TwilioStatus(T0 + index, status="ringing")])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary = Store(connection).summary(SID)
    assert summary is not None and summary.events == 9 == len(Store(connection).events(SID))


def test_the_first_answer_is_kept_for_the_calls_life(
    app: Flask, client: FlaskClient, caller: Caller
) -> None:
    app.extensions["ivr"].clock = lambda: WEDNESDAY_NOON_UTC  # four menus, then an agent rings
    first = caller.post("/voice/incoming").get_data(as_text=True)
    root = caller.twiml("/voice/incoming")
    for _ in range(4):
        root = caller.follow(root, Digits="1")
    again = caller.post("/voice/incoming")
    assert again.status_code == 200 and again.get_data(as_text=True) == first


def test_spooled_events_are_replayed_once_when_redis_is_back(tmp_path: Path) -> None:
    data = tmp_path / "var"
    with EmbeddedRedis(tmp_path / "redis") as server:
        store = Store(redis.Redis.from_url(server.url))
        _start(store)
        url = server.url
    # Redis is down: the store refuses, the callbacks go to the spool.
    down = Store(redis.Redis.from_url(url, socket_connect_timeout=0.2))
    try:
        down.record(SID, [ev.TwilioStatus(T0 + 1, status="in-progress")])
        raise AssertionError("a stopped Redis answered")
    except StoreUnavailable:
        pass
    message = ev.VoicemailRecorded(T0 + 2, recording_sid="RE" + "3" * 32, seconds=5)
    spool(data, SID, [message])
    spool(data, SID, [ev.TwilioStatus(T0 + 3, status="completed", duration=3)])
    assert replay(data, down) == 0  # still down: nothing lost, nothing truncated
    assert len(spool_path(data).read_text().splitlines()) == 2
    with EmbeddedRedis(tmp_path / "redis") as server:  # back, with its append-only file
        store = Store(redis.Redis.from_url(server.url))
        seen: list[str] = []
        assert replay(data, store, lambda sid, event: seen.append(event.kind)) == 2
        assert seen == ["voicemail", "status"]
        assert spool_path(data).read_text() == ""
        # A replay cut short and run again (the file restored) records nothing twice.
        kinds = [e.kind for e in store.events(SID)]
        assert kinds == ["call_started", "voicemail", "status"]
        summary = store.summary(SID)
        assert summary is not None and summary.outcome == "voicemail"


def test_a_replay_run_twice_records_each_event_once(
    connection: redis.Redis, tmp_path: Path
) -> None:
    store = Store(connection)
    _start(store)
    spool(tmp_path, SID, [ev.TwilioStatus(T0 + 1, status="completed")])
    saved = spool_path(tmp_path).read_text()
    assert replay(tmp_path, store) == 1
    spool_path(tmp_path).write_text(saved)  # as if the process died before truncating
    assert replay(tmp_path, store) == 1
    assert [e.kind for e in store.events(SID)] == ["call_started", "status"]


def test_unreadable_spool_lines_are_set_aside(connection: redis.Redis, tmp_path: Path) -> None:
    spool(tmp_path, SID, [ev.StepEntered(T0, step="main")])
    with open(spool_path(tmp_path), "a") as handle:
        handle.write("not json\n")
    assert replay(tmp_path, Store(connection)) == 1
    assert spool_path(tmp_path).with_suffix(".bad").read_text() == "not json\n"


def test_a_write_that_landed_after_its_timeout_is_not_replayed_again(
    connection: redis.Redis, tmp_path: Path
) -> None:
    store = Store(connection)
    _start(store)
    status = [ev.TwilioStatus(T0 + 1, status="completed")]
    store.record(SID, status, spooled_id="batch-1")  # reached Redis; the client had given up
    spool(tmp_path, SID, status, "batch-1")  # so the same batch was spooled too
    again = ev.CallStarted(T0 + 2, caller="+84901111222", flow="support")
    spool(tmp_path, SID, [again, ev.FallbackUsed(T0 + 2, reason="timeout")])
    replay(tmp_path, store)
    kinds = [e.kind for e in store.events(SID)]
    assert kinds == ["call_started", "status", "fallback"]


def test_batch_ids_differ_in_forked_workers() -> None:
    # gunicorn forks its workers from one process: each must draw ids of its own, or a batch of
    # one worker's could be taken for another's already replayed.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out without running the parent's cleanup
        os.write(write, new_batch_id().encode())
        os._exit(0)
    os.close(write)
    ours = new_batch_id()
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        theirs = pipe.read()
    assert len(theirs) == len(ours) == 32
    assert theirs != ours
    assert len({new_batch_id() for _ in range(1000)}) == 1000


def test_cross_call_writes_a_cluster_node_failed_are_replayed_as_the_call_stands_now(
    connection: redis.Redis, tmp_path: Path
) -> None:
    # A Cluster writes the stream and indexes after the call's own script; here a plain Redis
    # takes the same two steps, and the stream's key, of the wrong type, fails its step.
    data = tmp_path / "var"
    store = Store(connection)
    store.cluster = True
    store.keep_cross_call = partial(spool_cross_call, data)
    connection.set(EVENTS_KEY, "not a stream")
    _start(store)  # the call's own write stands: the caller hears the flow
    assert store.summary(SID) is not None and connection.zscore(CALLS_KEY, SID) == T0
    connection.delete(EVENTS_KEY)
    # The call goes on, and ends, before the spool is replayed.
    route = ev.RouteDecided(T0 + 5, queue="billing", pools=("hanoi",), chosen="hanoi")
    dial = ev.DialStarted(T0 + 5, pool="hanoi", agents=("lan",))
    assert store.commit(_state(2), 1, 1, "<Response/>", "in", [route, dial], store.load_turn(SID))
    answered = ev.AgentAnswered(T0 + 9, pool="hanoi", agent="lan")
    status = ev.TwilioStatus(T0 + 60, status="completed", duration=60)
    store.record(SID, [answered, status, ev.CallEnded(T0 + 60, "answered", 60)])
    assert [json.loads(line)["cross"]["events"] for line in spool_path(data).open()] == [
        [ev.to_json(ev.CallStarted(T0, caller="+84901111222", called="+1500", flow="support"))]
    ]
    replay(data, store)
    replay(data, Store(connection))  # nothing left: a second replay changes nothing
    batches = [json.loads(e[b"events"]) for _, e in connection.xrange(EVENTS_KEY)]
    assert sorted(x["kind"] for batch in batches for x in batch) == [
        "agent_answered",
        "call_ended",
        "call_started",
        "dial",
        "route",
        "status",
    ]
    # The start's index writes are not played back over the end's: the call is not under way.
    assert connection.zscore(INDEX_KEY.format("outcome", "in_progress"), SID) is None
    assert connection.zscore(INDEX_KEY.format("outcome", "answered"), SID) == T0
    assert connection.zscore(WAITING_KEY, SID) is None
    assert spool_path(data).read_text() == ""


def test_a_kept_cross_call_write_is_replayed_once(connection: redis.Redis, tmp_path: Path) -> None:
    store = Store(connection)
    _start(store)
    connection.delete(EVENTS_KEY)
    started = ev.to_json(ev.CallStarted(T0, caller="+84901111222", called="+1500"))
    for _ in range(2):  # a replay cut short after its write, and run again
        store.replay_cross_call(SID, "batch-1", CallSummary(SID), [started])
    assert connection.xlen(EVENTS_KEY) == 1


def test_a_spooled_line_redis_refuses_is_set_aside_and_the_rest_replayed(
    connection: redis.Redis, tmp_path: Path
) -> None:
    # A line that can never be written (its call's timeline is not a list) must not stop the
    # replay of every line after it, for good.
    broken = "CA" + "c" * 32
    connection.set(f"ivr:call:{{{broken}}}:log", "not a list")
    spool(tmp_path, broken, [ev.StepEntered(T0, step="main")])
    spool(tmp_path, SID, [ev.StepEntered(T0, step="main")])
    assert replay(tmp_path, Store(connection)) == 1
    assert [e.kind for e in Store(connection).events(SID)] == ["step"]
    assert broken in spool_path(tmp_path).with_suffix(".bad").read_text()
    assert spool_path(tmp_path).read_text() == ""


def test_a_spooled_final_status_closes_the_call_when_replayed(
    settings: Settings, connection: redis.Redis
) -> None:
    services = Services.build(settings, connection)
    _start(services.store)
    # Redis failed the final status callback: it went to the spool instead.
    spool(settings.data_dir, SID, [ev.TwilioStatus(T0 + 9, status="completed", duration=9)])
    before = CALLS_ENDED.labels("self_service")._value.get()
    assert services.replay_spool() == 1
    kinds = [e.kind for e in services.store.events(SID)]
    assert kinds == ["call_started", "status", "call_ended"]
    summary = services.store.summary(SID)
    assert summary is not None and summary.closed and summary.outcome == "self_service"
    assert connection.zscore(LIVE_KEY, SID) is None  # no longer a call under way
    assert CALLS_ENDED.labels("self_service")._value.get() == before + 1
    # Replayed again (as if the process died before emptying the file): closed once.
    spool(settings.data_dir, SID, [ev.TwilioStatus(T0 + 9, status="completed", duration=9)])
    services.replay_spool()
    assert [e.kind for e in services.store.events(SID)].count("call_ended") == 1


def test_a_final_status_spooled_for_a_call_redis_never_had_starts_its_record(
    settings: Settings, connection: redis.Redis
) -> None:
    down = Caller(create_app(settings, dead_redis()).test_client(), caller="+201001112222")
    assert down.post("/voice/status", CallStatus="busy", CallDuration="0").status_code == 200
    services = Services.build(settings, connection)
    assert services.replay_spool() == 2
    summary = services.store.summary(down.sid)
    assert summary is not None and summary.closed and summary.caller == "+201001112222"
    assert summary.flow == "support" and summary.started_at is not None
    assert connection.zscore(CALLS_KEY, down.sid) == summary.started_at  # listed
    assert connection.zscore(LIVE_KEY, down.sid) is None
