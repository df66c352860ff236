"""Call records at volume: listings and KPIs over a month of calls in an embedded Redis.

The load builds each call's events (started; routed for ~80 %; then answered, a voicemail or a
hang-up; Twilio's completed status), folds them with `summarize`, and writes what the Store would
write for the summary: the summary JSON and the index writes of `cross_call_writes`, as plain
pipelined ZADD/SADD (grouped per key within a batch). The global event stream and the per-call
event lists are not loaded: no query measured here reads them, and they would double the load.
The calls start at pinned instants (a seeded random spread over `DAYS` days from `START`), so
two runs load the same records.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import redis

from ivr import redis_url
from ivr.calls.events import (
    AgentAnswered,
    CallEvent,
    CallStarted,
    FlowHungUp,
    RouteDecided,
    TwilioStatus,
    VoicemailRecorded,
)
from ivr.calls.kpis import kpis
from ivr.calls.records import CallRecords
from ivr.calls.summary import CallSummary, summarize
from ivr.embedded import EmbeddedRedis
from ivr.store import INDEXES_KEY, SUMMARY_KEY, cross_call_writes

T = TypeVar("T")

CALLS = 1_000_000
DAYS = 30
START = datetime(2026, 10, 1, tzinfo=UTC)
BATCH = 2_000  # calls per pipeline
RUNS = 20  # per listing
KPI_RUNS = 3
PAGE = 50
PAGE_GOAL_MS = 50.0
KPI_GOAL_MS = 1000.0
CALLERS = 20_000  # distinct numbers: a caller has a few dozen calls in the month
RECORD_TTL = 90 * 24 * 3600
QUEUES = ("billing", "tech")
POOLS = ("hanoi", "lisbon", "austin")
LANGUAGES = ("en-US", "vi-VN", "ar-XA")
FLOWS = ("support", "sales")
SAMPLE_NUMBER = "+15005550006"


def run(calls: int = CALLS) -> list[dict[str, Any]]:
    """Load `calls` call records into a fresh embedded Redis and time the queries on them."""
    with tempfile.TemporaryDirectory(prefix="ivr-bench-records-") as temp:
        server = EmbeddedRedis(Path(temp) / "var")
        server.start()
        try:
            connection = redis_url.client(server.url, 30.0)
            # Throwaway data: no AOF nor snapshots while loading, nothing saved at the end.
            connection.config_set("appendonly", "no")
            connection.config_set("save", "")
            figures = _measure(connection, calls)
            connection.flushall()
        finally:
            server.stop()
    return figures


def _measure(connection: redis.Redis, calls: int) -> list[dict[str, Any]]:
    began = time.perf_counter()
    caller = load(connection, calls, random.Random(20261001))
    seconds = time.perf_counter() - began
    memory = int(connection.info("memory")["used_memory"]) / 2**20
    note = (
        f"{calls:,} calls over {DAYS} days: summaries and indexes through pipelines "
        "(not the event stream nor the per-call event lists)"
    )
    figures = [
        _figure("load: rate", calls / seconds, "calls/s", note=note),
        _figure("load: Redis memory", memory, "MiB"),
    ]
    records = CallRecords(connection)
    listings: list[tuple[str, dict[str, str]]] = [
        ("queue=billing & outcome=abandoned", {"queue": "billing", "outcome": "abandoned"}),
        (f"caller={caller}", {"caller": caller}),
        ("no filter", {}),
    ]
    for label, filters in listings:
        timings, (rows, _) = _timed(lambda f=filters: records.find(filters=f, limit=PAGE), RUNS)
        note = f"{len(rows)} rows, {RUNS} runs"
        if len(rows) < PAGE:
            note += " (every match)"
        for stat, value in (("p50", statistics.median(timings)), ("max", max(timings))):
            name = f"newest {PAGE}, {label}: {stat}"
            figures.append(_figure(name, value, "ms", PAGE_GOAL_MS, note if stat == "p50" else ""))
    figures += _kpi_figures(records)
    return figures


def _kpi_figures(records: CallRecords) -> list[dict[str, Any]]:
    """`kpis` by hour for one day in the middle of the month, its calls read with `kpi_facts`."""
    day = (START + timedelta(days=DAYS // 2)).date()
    start = datetime.combine(day, datetime.min.time(), UTC).timestamp()

    def one_day() -> dict[str, Any]:
        facts = records.kpi_facts(start, start + 86_400)
        return kpis(facts, "hour", 20.0, ZoneInfo("UTC"), day, day)

    timings, result = _timed(one_day, KPI_RUNS)
    total = result["total"]
    note = f"{total['calls']:,} calls of {day.isoformat()} by hour, {KPI_RUNS} runs"
    # Where the time goes: reading the facts, then the pure computation over them.
    reading, facts = _timed(lambda: list(records.kpi_facts(start, start + 86_400)), KPI_RUNS)
    utc = ZoneInfo("UTC")
    computing, _ = _timed(lambda: kpis(facts, "hour", 20.0, utc, day, day), KPI_RUNS)
    # What reading the summaries instead would cost (the path of calls without facts).
    slow, _ = _timed(lambda: list(records.between(start, start + 86_400)), 1)
    return [
        _figure("kpis of one day: p50", statistics.median(timings), "ms", KPI_GOAL_MS, note),
        _figure("kpis of one day: max", max(timings), "ms", KPI_GOAL_MS),
        _figure("kpis of one day: of which kpi_facts, p50", statistics.median(reading), "ms"),
        _figure("kpis of one day: of which kpis, p50", statistics.median(computing), "ms"),
        _figure("kpis of one day: reading the summaries instead", slow[0], "ms"),
    ]


def load(connection: redis.Redis, calls: int, rng: random.Random, start: datetime = START) -> str:
    """Write `calls` call records started over `DAYS` days from `start`; return the caller of
    the last one (a number with calls)."""
    if calls < 1:
        raise ValueError(f"at least one call to load, not {calls}")
    numbers = [f"+1555{n:07d}" for n in rng.sample(range(10_000_000), CALLERS)]
    span = DAYS * 86_400
    base = start.timestamp()
    for first in range(0, calls, BATCH):
        summaries = [
            summarize(sid, events)
            for sid, events in (
                _call(f"CA{first + i:032x}", base + rng.random() * span, rng, numbers)
                for i in range(min(BATCH, calls - first))
            )
        ]
        _write(connection, summaries)
    return summaries[-1].caller


def _call(
    sid: str, at: float, rng: random.Random, numbers: list[str]
) -> tuple[str, list[CallEvent]]:
    """One call's events: started, maybe routed, then answered, voicemail or hung up, completed."""
    language = rng.choice(LANGUAGES)
    caller = numbers[rng.randrange(len(numbers))]
    flow = FLOWS[rng.random() < 0.2]
    events: list[CallEvent] = [
        CallStarted(at, caller, SAMPLE_NUMBER, "US", flow, "v1", language),
    ]
    now = at + rng.uniform(5, 40)
    if rng.random() < 0.8:
        queue, pool = rng.choice(QUEUES), rng.choice(POOLS)
        events.append(RouteDecided(now, "route", queue, language, (pool,), chosen=pool))
        luck = rng.random()
        if luck < 0.7:
            now += rng.expovariate(1 / 25)
            events.append(AgentAnswered(now, pool, f"agent-{rng.randrange(40)}"))
            now += rng.uniform(30, 900)
        elif luck < 0.85:
            now += rng.uniform(10, 60)
            seconds = rng.randrange(5, 120)
            events.append(VoicemailRecorded(now, "voicemail", f"RE{sid[2:]}", "", seconds))
            now += seconds
        else:
            now += rng.expovariate(1 / 40)  # hung up while waiting: abandoned
    else:
        events.append(FlowHungUp(now, "bye"))
    events.append(TwilioStatus(now + 1, "completed", round(now + 1 - at)))
    return sid, events


def _write(connection: redis.Redis, summaries: list[CallSummary]) -> None:
    """The Store's writes for these summaries, without events: SET, then ZADD/SADD per key."""
    added: dict[str, dict[str, float]] = {}
    new: dict[str, dict[str, float]] = {}
    sets: dict[str, set[str]] = {}
    with connection.pipeline(transaction=False) as pipe:
        for summary in summaries:
            pipe.set(SUMMARY_KEY.format(summary.sid), summary.to_json(), ex=RECORD_TTL)
            for op, key, a, b in cross_call_writes(CallSummary(summary.sid), summary, []):
                if op == "n":
                    new.setdefault(key, {})[b] = a
                elif op == "z":
                    added.setdefault(key, {})[b] = a
                elif op == "i":
                    added.setdefault(key, {})[b] = a
                    sets.setdefault(INDEXES_KEY, set()).add(key)
                else:  # a fresh call has no stream entries (no events given) nor removals
                    raise RuntimeError(f"unexpected write {op!r} for a new call")
        for key, mapping in new.items():
            pipe.zadd(key, mapping, nx=True)
        for key, mapping in added.items():
            pipe.zadd(key, mapping)
        for key, members in sets.items():
            pipe.sadd(key, *members)
        pipe.execute()


def _timed(action: Callable[[], T], runs: int) -> tuple[list[float], T]:
    """Milliseconds of each of `runs` runs of `action` after one untimed warm-up, and what the
    last run returned."""
    result = action()
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        result = action()
        timings.append((time.perf_counter() - began) * 1000)
    return timings, result


def _figure(
    name: str, value: float, unit: str, goal: float | None = None, note: str = ""
) -> dict[str, Any]:
    ratio = round(goal / value, 2) if goal is not None and value > 0 else None
    return {"name": name, "value": round(value, 2), "unit": unit, "goal": goal, "ratio": ratio} | {
        "note": note
    }
