"""CallRecords over a real Redis: filters by index, cursors across ties, timelines, retention."""

from __future__ import annotations

import pytest
import redis

from ivr.calls import records as records_module
from ivr.calls.events import CallStarted, RouteDecided
from ivr.calls.records import CHUNK, CallRecords
from ivr.errors import BadQuery, StoreUnavailable
from ivr.store import Store
from tests.calls.builders import T0, record_call


def test_find_is_newest_first_and_filters_by_every_index(connection: redis.Redis) -> None:
    store = Store(connection)
    record_call(store, "CA1", T0, queue="billing", outcome="answered")
    record_call(store, "CA2", T0 + 60, queue="tech", outcome="abandoned", language="vi-VN")
    record_call(store, "CA3", T0 + 120, queue="billing", outcome="voicemail", caller="+1555")
    record_call(store, "CA4", T0 + 180, outcome="self_service")
    records = CallRecords(connection)
    rows, cursor = records.find()
    assert [r.sid for r in rows] == ["CA4", "CA3", "CA2", "CA1"] and cursor is None
    assert [r.sid for r in records.find(filters={"queue": "billing"})[0]] == ["CA3", "CA1"]
    both = {"queue": "billing", "outcome": "answered"}
    assert [r.sid for r in records.find(filters=both)[0]] == ["CA1"]
    assert [r.sid for r in records.find(filters={"language": "vi-VN"})[0]] == ["CA2"]
    assert [r.sid for r in records.find(filters={"caller": "+1555"})[0]] == ["CA3"]
    assert records.find(filters={"queue": "nowhere", "outcome": "answered"})[0] == []
    window = records.find(since=T0 + 60, until=T0 + 120)[0]
    assert [r.sid for r in window] == ["CA3", "CA2"]


def test_pages_continue_strictly_after_the_cursor_across_equal_scores(
    connection: redis.Redis,
) -> None:
    store = Store(connection)
    # More calls at one instant than a chunk holds, so ties span chunks and pages.
    sids = [f"CA{i:04d}" for i in range(CHUNK + 37)]
    for sid in sids:
        store.record(sid, [CallStarted(T0, caller="+1", flow="support", language="en-US")])
    record_call(store, "CZlater", T0 + 1)
    records = CallRecords(connection)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        rows, cursor = records.find(filters={"flow": "support"}, limit=23, cursor=cursor)
        seen += [r.sid for r in rows]
        if cursor is None:
            break
    assert seen[0] == "CZlater"
    assert sorted(seen[1:]) == sids and len(seen) == len(set(seen)) == len(sids) + 1


def test_bad_queries_are_refused(connection: redis.Redis) -> None:
    records = CallRecords(connection)
    with pytest.raises(BadQuery, match="unknown filter"):
        records.find(filters={"colour": "red"})
    with pytest.raises(BadQuery, match="cursor"):
        records.find(cursor="nonsense")
    with pytest.raises(BadQuery, match="limit"):
        records.find(limit=0)


def test_show_gives_the_summary_and_the_events_oldest_first(connection: redis.Redis) -> None:
    store = Store(connection)
    record_call(store, "CA1", T0, outcome="answered", wait=7)
    found = CallRecords(connection).show("CA1")
    assert found is not None
    summary, events = found
    assert summary.outcome == "answered" and summary.wait_seconds == 7
    assert [e.at for e in events] == sorted(e.at for e in events)
    route = next(e for e in events if isinstance(e, RouteDecided))
    assert route.passed_over[0].pool == "cairo"
    assert CallRecords(connection).show("CAunknown") is None


def test_between_fields_reads_every_call_of_the_range_in_chunks(
    connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records_module, "BETWEEN_CHUNK", 95)
    store = Store(connection)
    for i in range(1203):
        # Ten calls start at each instant, so equal scores span the chunks' edges.
        store.record(f"CA{i:04d}", [CallStarted(T0 + i // 10, caller="+1", flow="support")])
    fields = list(CallRecords(connection).between_fields(T0 + 10, T0 + 120))
    assert [f["sid"] for f in fields] == [f"CA{i:04d}" for i in range(100, 1200)]
    assert fields[0]["started_at"] == T0 + 10 and fields[0]["flow"] == "support"


def test_trim_forgets_old_calls_from_every_index(connection: redis.Redis) -> None:
    store = Store(connection)
    record_call(store, "CAold", T0, queue="tech")
    record_call(store, "CAnew", T0 + 3600, queue="billing")
    connection.zadd("ivr:waiting", {"CAstale": T0, "CAwaiting": T0 + 3600})
    removed = CallRecords(connection).trim(T0 + 60)
    assert removed == 1
    assert connection.zrange("ivr:calls", 0, -1) == [b"CAnew"]
    assert not connection.exists("ivr:index:queue:tech")
    assert b"ivr:index:queue:tech" not in connection.smembers("ivr:indexes")
    assert connection.zrange("ivr:index:queue:billing", 0, -1) == [b"CAnew"]
    assert connection.zrange("ivr:waiting", 0, -1) == [b"CAwaiting"]


def test_redis_down_is_store_unavailable() -> None:
    dead = redis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_timeout=0.2)
    records = CallRecords(dead)
    with pytest.raises(StoreUnavailable):
        records.find()
    with pytest.raises(StoreUnavailable):
        list(records.between_fields(T0, T0 + 1))
