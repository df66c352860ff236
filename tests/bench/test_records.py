"""The benchmarks' own fixtures on real Redis: the bulk load writes what the Store writes, the
eventless Store keeps a turn's state without its events, and `--json` is JSON."""

from __future__ import annotations

import json
import random

import redis

from bench.__main__ import as_json
from bench.eventless import EventlessStore
from bench.records import DAYS, START, _call, _write, load
from ivr.calls import events as ev
from ivr.calls.summary import summarize
from ivr.flows.state import CallState
from ivr.store import CALLS_KEY, INDEXES_KEY, KPI_FACTS_KEY, SUMMARY_KEY, Store

NUMBERS = ["+15550000001", "+15550000002", "+15550000003"]


def _records(connection: redis.Redis) -> dict[str, object]:
    """Every call-record key the queries read: summaries, ivr:calls, the KPI facts, each index."""
    keys = {k.decode() for k in connection.smembers(INDEXES_KEY)}
    found: dict[str, object] = {"indexes": sorted(keys)}
    for key in [CALLS_KEY, KPI_FACTS_KEY, *sorted(keys)]:
        found[key] = connection.zrange(key, 0, -1, withscores=True)
    for key in sorted(connection.scan_iter(SUMMARY_KEY.format("*"))):
        found[key.decode()] = json.loads(connection.get(key) or b"null")
    return found


def test_the_bulk_load_writes_what_the_store_writes(connection: redis.Redis) -> None:
    rng = random.Random(7)
    calls = [_call(f"CA{n:032x}", START.timestamp() + n * 600, rng, NUMBERS) for n in range(200)]
    store = Store(connection)
    for sid, events in calls:
        store.record(sid, events)
    by_store = _records(connection)
    connection.flushdb()
    _write(connection, [summarize(sid, events) for sid, events in calls])
    by_load = _records(connection)
    assert by_load == by_store
    ended = {
        json.loads(connection.get(SUMMARY_KEY.format(sid)) or b"{}")["ended_at"] is None
        for sid, _ in calls
    }
    assert ended == {False}  # every loaded call has ended


def test_the_load_spreads_its_calls_over_the_month(connection: redis.Redis) -> None:
    caller = load(connection, 3_000, random.Random(1))
    scores = [score for _, score in connection.zrange(CALLS_KEY, 0, -1, withscores=True)]
    assert len(scores) == 3_000
    assert START.timestamp() <= min(scores) and max(scores) < START.timestamp() + DAYS * 86_400
    routed = connection.zcard("ivr:index:queue:billing") + connection.zcard("ivr:index:queue:tech")
    assert 0.75 < routed / 3_000 < 0.85
    assert connection.zcard(f"ivr:index:caller:{caller}") >= 1
    assert connection.zcard("ivr:index:outcome:abandoned") > 0


def test_the_eventless_store_keeps_the_turn_but_not_its_events(connection: redis.Redis) -> None:
    started = [ev.CallStarted(START.timestamp(), caller=NUMBERS[0], flow="support")]
    for sid, store, kept in (
        ("CA" + "1" * 32, Store(connection), True),
        ("CA" + "2" * 32, EventlessStore(connection), False),
    ):
        state = CallState(sid, "support", "v1", "main", "en-US", turn=1)
        assert store.commit(state, None, 1, "<Response/>", "", started)
        assert store.load_call(sid) == state
        assert (store.summary(sid) is not None) is kept
        assert (connection.zscore(CALLS_KEY, sid) is not None) is kept


def test_json_output_is_strict_json() -> None:
    sections = [("s", [{"name": "n", "value": float("nan"), "unit": "s", "goal": 1.0}])]
    document = json.loads(as_json(sections, 1.25))
    assert document == {
        "figures": [{"section": "s", "name": "n", "value": None, "unit": "s", "goal": 1.0}],
        "seconds": 1.2,
    }
