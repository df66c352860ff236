"""CallRecords over a real Redis: filters by index, cursors across ties, timelines, KPI facts,
retention."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from ivr.calls.events import CallStarted, RouteDecided, VoicemailRecorded
from ivr.calls.kpis import KpiFacts
from ivr.calls.records import CHUNK, CallRecords
from ivr.calls.summary import IN_PROGRESS
from ivr.errors import BadQuery, StoreUnavailable
from ivr.store import INDEX_KEY, KPI_FACTS_KEY, LIVE_KEY, Store
from tests.calls.builders import T0, call_events, record_call


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
    seen = _every_page(CallRecords(connection), {"flow": "support"}, limit=23)
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


def test_show_puts_an_event_replayed_late_where_it_happened(connection: redis.Redis) -> None:
    # A callback spooled while Redis was down is replayed after later events were written: the
    # timeline shows it at its own instant, the events of one write keeping their order.
    store = Store(connection)
    record_call(store, "CA1", T0, outcome="voicemail")
    stored = store.events("CA1")
    store.record("CA1", [VoicemailRecorded(T0 + 5, recording_sid="RE" + "a" * 32, seconds=9)])
    found = CallRecords(connection).show("CA1")
    assert found is not None
    events = found[1]
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert isinstance(events[-1], type(stored[-1])) and events[-1] == stored[-1]
    late = [e for e in events if isinstance(e, VoicemailRecorded) and e.at == T0 + 5]
    assert len(late) == 1 and events.index(late[0]) < len(stored)
    same_instant = [e for e in stored if e.at == stored[0].at]
    assert events[: len(same_instant)] == same_instant  # one write's events keep their order


def test_between_reads_every_call_of_the_range_in_chunks(connection: redis.Redis) -> None:
    store = Store(connection)
    for i in range(1203):
        store.record(f"CA{i}", [CallStarted(T0 + i, caller="+1", flow="support")])
    got = [s.sid for s in CallRecords(connection).between(T0 + 100, T0 + 1200)]
    assert got == [f"CA{i}" for i in range(100, 1200)]


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


def test_an_index_trimmed_away_is_registered_again_by_its_next_call(
    connection: redis.Redis,
) -> None:
    # A call index registers itself when a write makes it, not on every write: the trim must
    # still find it after it was emptied, forgotten, and made again.
    store = Store(connection)
    record_call(store, "CAold", T0, queue="tech")
    record_call(store, "CAnext", T0 + 60, queue="tech")
    assert connection.smembers("ivr:indexes") >= {b"ivr:index:queue:tech"}
    CallRecords(connection).trim(T0 + 3600)
    assert b"ivr:index:queue:tech" not in connection.smembers("ivr:indexes")

    record_call(store, "CAlater", T0 + 7200, queue="tech")

    assert b"ivr:index:queue:tech" in connection.smembers("ivr:indexes")
    CallRecords(connection).trim(T0 + 7260)
    assert not connection.exists("ivr:index:queue:tech")


def test_redis_down_is_store_unavailable() -> None:
    dead = redis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_timeout=0.2)
    records = CallRecords(dead)
    with pytest.raises(StoreUnavailable):
        records.find()
    with pytest.raises(StoreUnavailable):
        list(records.between(T0, T0 + 1))


def test_kpi_facts_follow_each_call_and_match_its_summary(connection: redis.Redis) -> None:
    store = Store(connection)
    outcomes = ["answered", "abandoned", "voicemail", "self_service", "failed"]
    for i, outcome in enumerate(outcomes):
        # Event by event, so each call's facts change several times on the way.
        for event in call_events(T0 + i * 60, outcome=outcome, wait=3 + i):
            store.record(f"CA{i}", [event])
    store.record("CAlive", [CallStarted(T0 + 400, caller="+1", flow="support")])
    records = CallRecords(connection)
    derived = [KpiFacts.of(s) for s in records.between(T0, T0 + 3600)]
    assert connection.zcard(KPI_FACTS_KEY) == len(outcomes)  # one per ended call
    assert list(records.kpi_facts(T0, T0 + 3600)) == derived
    assert [f.outcome for f in derived] == [*outcomes, "in_progress"]
    assert derived[0] is not None and derived[0].wait_seconds == 3 and derived[0].offered
    assert [f.sid for f in records.kpi_facts(T0 + 60, T0 + 240)] == ["CA1", "CA2", "CA3"]


def test_calls_without_facts_are_read_from_their_summaries(connection: redis.Redis) -> None:
    store = Store(connection)
    for i in range(3):
        record_call(store, f"CA{i}", T0 + i, outcome="answered", wait=i)
    records = CallRecords(connection)
    whole = list(records.kpi_facts(T0, T0 + 10))
    # As if CA1 had been recorded before the facts index existed: the summaries answer.
    connection.zremrangebyrank(KPI_FACTS_KEY, 1, 1)
    assert list(records.kpi_facts(T0, T0 + 10)) == whole
    assert [f.wait_seconds for f in whole] == [0, 1, 2]


def test_trim_forgets_old_kpi_facts(connection: redis.Redis) -> None:
    store = Store(connection)
    record_call(store, "CAold", T0)
    record_call(store, "CAnew", T0 + 3600)
    CallRecords(connection).trim(T0 + 60)
    assert [f.sid for f in CallRecords(connection).kpi_facts(0, T0 + 7200)] == ["CAnew"]
    assert connection.zcard(KPI_FACTS_KEY) == 1


def test_kpi_facts_continue_across_chunks_of_equal_start_times(
    connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(connection)
    starts = [T0] * 3 + [T0 + 1] * 9 + [T0 + 2, T0 + 3] + [T0 + 4] * 5
    for i, start in enumerate(starts):
        record_call(store, f"CA{i:02d}", start, outcome="self_service")
    monkeypatch.setattr("ivr.calls.records.FACTS_CHUNK", 4)
    read = [f.sid for f in CallRecords(connection).kpi_facts(T0, T0 + 4)]
    assert sorted(read) == [f"CA{i:02d}" for i in range(len(starts) - 5)]
    assert len(read) == len(set(read))


def test_a_call_under_way_joins_its_indexes_and_the_facts_when_it_ends(
    connection: redis.Redis,
) -> None:
    store = Store(connection)
    record_call(store, "CAdone", T0, outcome="answered")
    events = call_events(T0 + 30, outcome="answered", queue="tech", wait=7)
    for event in events[:-1]:  # routed and answered, not ended yet
        store.record("CAlive", [event])
    flow_key = INDEX_KEY.format("flow", "support")
    assert connection.zscore(flow_key, "CAlive") is None
    assert connection.zcard(KPI_FACTS_KEY) == 1  # CAdone's only
    records = CallRecords(connection)
    live = list(records.kpi_facts(T0, T0 + 60))
    assert [(f.sid, f.outcome) for f in live] == [("CAdone", "answered"), ("CAlive", IN_PROGRESS)]
    # Found under every filter meanwhile, from its summary, in its place among ended calls.
    assert [r.sid for r in records.find(filters={"flow": "support"})[0]] == ["CAlive", "CAdone"]
    assert [r.sid for r in records.find(filters={"queue": "tech"})[0]] == ["CAlive"]
    under_way = {"queue": "tech", "outcome": IN_PROGRESS}
    assert [r.sid for r in records.find(filters=under_way)[0]] == ["CAlive"]
    assert records.find(filters={"queue": "tech", "outcome": "answered"})[0] == []
    store.record("CAlive", [events[-1]])
    assert connection.zscore(flow_key, "CAlive") == T0 + 30
    assert connection.zscore(LIVE_KEY, "CAlive") is None
    assert connection.zcard(KPI_FACTS_KEY) == 2
    ended = list(records.kpi_facts(T0, T0 + 60))
    assert [(f.sid, f.outcome, f.wait_seconds) for f in ended][1] == ("CAlive", "answered", 7)
    assert [r.sid for r in records.find(filters={"queue": "tech", "outcome": "answered"})[0]] == [
        "CAlive"
    ]
    assert records.find(filters=under_way)[0] == []


def test_listings_merge_calls_under_way_across_pages(connection: redis.Redis) -> None:
    store = Store(connection)
    for i in range(12):
        events = call_events(T0 + i, outcome="abandoned")
        store.record(f"CA{i:02d}", events if i % 3 else events[:-1])  # every third under way
    seen = _every_page(CallRecords(connection), {"queue": "billing"}, limit=5)
    assert seen == [f"CA{i:02d}" for i in reversed(range(12))]


def test_a_call_ending_while_its_facts_are_read_counts_once(
    connection: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(connection)
    events = call_events(T0, outcome="voicemail")
    store.record("CA1", events[:-1])
    records = CallRecords(connection)
    read_facts = CallRecords._facts

    def ending_first(self: CallRecords, start: float, end: float) -> Iterator[KpiFacts]:
        store.record("CA1", [events[-1]])  # after the live set was read, before the facts
        return read_facts(self, start, end)

    monkeypatch.setattr(CallRecords, "_facts", ending_first)
    # Once, as it stood when the calls under way were read; not twice.
    assert [(f.sid, f.outcome) for f in records.kpi_facts(T0, T0 + 60)] == [("CA1", IN_PROGRESS)]
    monkeypatch.undo()
    assert [(f.sid, f.outcome) for f in records.kpi_facts(T0, T0 + 60)] == [("CA1", "voicemail")]


def _every_page(records: CallRecords, filters: dict[str, str], limit: int) -> list[str]:
    """The sids of a listing read page by page, following each page's cursor (at most 100)."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        rows, cursor = records.find(filters=filters, limit=limit, cursor=cursor)
        seen += [r.sid for r in rows]
        if cursor is None:
            return seen
    raise AssertionError("the listing did not end within 100 pages")


def test_an_index_entry_its_summary_does_not_bear_out_is_passed_over(
    connection: redis.Redis,
) -> None:
    store = Store(connection)
    record_call(store, "CAen", T0, language="en-US")
    record_call(store, "CAvi", T0 + 1, language="vi-VN")
    # As an older version left a call it indexed under way, or a Cluster write cut short.
    connection.zadd(INDEX_KEY.format("language", "en-US"), {"CAvi": T0 + 1})
    connection.zadd(LIVE_KEY, {"CAen": T0})
    records = CallRecords(connection)
    assert [r.sid for r in records.find(filters={"language": "en-US"})[0]] == ["CAen"]
    assert records.find(filters={"outcome": IN_PROGRESS})[0] == []
    assert [r.sid for r in records.find(filters={"queue": "billing"})[0]] == ["CAvi", "CAen"]
