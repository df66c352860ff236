"""Routing speed: decisions among 200 pools of 10 shifts, and a year of coverage for 50 pools.

Goals: a decision under 50 µs, a 365-day coverage of 50 pools under 2 s. `run()` returns one
dict per figure ({name, value, unit, goal, ratio, note}); ratio is goal / measured, so above 1
means the goal is met. Run with `python -m bench.routing`.
"""

from __future__ import annotations

import random
import statistics
import time
from bisect import bisect_right
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from routing.calendar import Calendar
from routing.coverage import gaps
from routing.decide import Away, Decision, decide
from routing.model import Agent, Pool, Pools, Shift
from routing.shifts import clear_memo

ZONES = [
    "Asia/Ho_Chi_Minh",
    "Africa/Cairo",
    "Europe/London",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Riyadh",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Europe/Berlin",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Pacific/Auckland",
    "America/Santiago",
    "Asia/Tehran",
]
COUNTRIES = ("VN", "EG", "GB", "US", "AU", "SA", "BR", "IN", "DE", None, None, None)
QUEUES = ("billing", "tech", "sales", "claims", "vip", "outage")
LANGUAGES = ("en-US", "vi-VN", "ar-XA", "de-DE", "ja-JP", "pt-BR", "fr-FR")
DAY_SETS = (range(5), range(7), (5, 6), (0, 2, 4), (1, 3), (4, 5, 6, 0))
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
DECISIONS = 20_000
DECISION_GOAL_US = 50.0
COVERAGE_GOAL_S = 2.0


def synthetic_pools(count: int, shifts_per_pool: int, seed: int = 7) -> Pools:
    """`count` pools of `shifts_per_pool` shifts each, in mixed zones, the same for every seed."""
    rng = random.Random(seed)
    pools = []
    for order in range(count):
        shifts = []
        for _ in range(shifts_per_pool):
            start = rng.randrange(0, 24 * 4) * 15
            length = rng.randrange(2, 13) * 60
            end = (start + length) % 1440 or 1440
            shifts.append(Shift(frozenset(rng.choice(DAY_SETS)), start, end))
        pools.append(
            Pool(
                name=f"pool{order:03d}",
                timezone=rng.choice(ZONES),
                queues=tuple(rng.sample(QUEUES, rng.randint(1, 3))),
                languages=tuple(rng.sample(LANGUAGES, rng.randint(1, 2))),
                priority=rng.choice((1, 2, 3, 100)),
                shifts=tuple(shifts),
                calendar=Calendar(country=rng.choice(COUNTRIES)),
                agents=tuple(
                    Agent(f"a{order}-{i}", f"Agent {order}-{i}", phone=f"+1555{order:03d}{i:04d}")
                    for i in range(rng.randint(2, 8))
                ),
                order=order,
            )
        )
    return Pools(tuple(pools))


def _instants(count: int, seed: int = 11) -> list[datetime]:
    rng = random.Random(seed)
    return [YEAR_START + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(count)]


def _timings(call: Any, args: list[tuple[Any, ...]]) -> list[float]:
    clock = time.perf_counter_ns
    found = []
    for arg in args:
        began = clock()
        call(*arg)
        found.append((clock() - began) / 1000)
    return found


def _figure(
    name: str, value: float, unit: str, goal: float | None, note: str = ""
) -> dict[str, Any]:
    ratio = round(goal / value, 2) if goal is not None and value > 0 else None
    figure = {"name": name, "value": round(value, 3), "unit": unit, "goal": goal, "ratio": ratio}
    return figure | {"note": note}


def run() -> list[dict[str, Any]]:
    """Measure decisions and coverage; one figure per dict."""
    return [*decision_figures(), coverage_figure()]


def decision_figures() -> list[dict[str, Any]]:
    """Decisions at random instants of a year among 200 pools, after a warm-up."""
    clear_memo()
    pools = synthetic_pools(200, 10)
    rng = random.Random(3)
    asked = [
        (pools, rng.choice(QUEUES), rng.choice((*LANGUAGES, None)), at)
        for at in _instants(DECISIONS)
    ]
    began = time.perf_counter()
    decide(*asked[0])
    first_ms = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    for args in asked:  # builds every week of the year once
        decide(*args)
    warm_s = time.perf_counter() - began

    plain = _timings(decide, asked)
    quantiles = statistics.quantiles(plain, n=100)
    away = {a.id for p in pools for a in p.agents if rng.random() < 0.3}

    snapshot = Away(away)

    def decide_with_snapshot(
        pools: Pools, queue: str, language: str | None, at: datetime
    ) -> Decision:
        return decide(pools, queue, language, at, snapshot)

    def decide_with_away(pools: Pools, queue: str, language: str | None, at: datetime) -> Decision:
        return decide(pools, queue, language, at, Away(away))

    def decide_with_callable(
        pools: Pools, queue: str, language: str | None, at: datetime
    ) -> Decision:
        return decide(pools, queue, language, at, lambda pool, agent: agent.id not in away)

    with_snapshot = statistics.fmean(_timings(decide_with_snapshot, asked))
    with_away = statistics.fmean(_timings(decide_with_away, asked))
    with_callable = statistics.fmean(_timings(decide_with_callable, asked))
    sample = [decide(*args).pools for args in asked[:2000]]
    candidates = statistics.fmean(len(found) for found in sample)
    agents = statistics.fmean(sum(len(c.agents) for c in found) for found in sample)

    sorted_ints = sorted(rng.randrange(365 * 86400) for _ in range(20_000))
    probes = [(sorted_ints, rng.randrange(365 * 86400)) for _ in range(DECISIONS)]
    baseline = statistics.fmean(_timings(bisect_right, probes))

    built = pools.schedule.windows_built
    goal = DECISION_GOAL_US
    return [
        _figure(
            "decide mean, 200 pools x 10 shifts",
            statistics.fmean(plain),
            "µs",
            goal,
            f"{DECISIONS} random instants in 2026, {candidates:.0f} candidate pools each",
        ),
        _figure("decide p50", quantiles[49], "µs", goal),
        _figure("decide p99", quantiles[98], "µs", goal),
        _figure(
            "decide mean, 30% away, one presence snapshot",
            with_snapshot,
            "µs",
            goal,
            f"one Away of {len(away)} agent ids for every call, as the Store hands out",
        ),
        _figure(
            "decide mean, 30% away, an Away per call",
            with_away,
            "µs",
            goal,
            "the Away built in each call, as on a Cluster (presence read for every route)",
        ),
        _figure(
            "decide mean, 30% away (a callable)",
            with_callable,
            "µs",
            goal,
            f"is_available asked about each of ~{agents:.0f} agents of the candidate pools",
        ),
        _figure(
            "warm-up, window builds included",
            warm_s,
            "s",
            None,
            f"{DECISIONS} decisions; {built} week windows built, the first in {first_ms:.0f} ms",
        ),
        _figure(
            "baseline: one bisect in 20000 ints",
            baseline,
            "µs",
            None,
            "the same timing loop around a bare bisect, for scale",
        ),
    ]


def coverage_figure() -> dict[str, Any]:
    """A year of gaps for one queue that 50 pools serve, conversions computed afresh."""
    fifty = Pools(
        tuple(replace(p, queues=(*p.queues, "coverage")) for p in synthetic_pools(50, 10, seed=19))
    )
    clear_memo()
    began = time.perf_counter()
    found = gaps(fifty, "coverage", None, YEAR_START, YEAR_START + timedelta(days=365))
    seconds = time.perf_counter() - began
    return _figure(
        "gaps, 50 pools x 10 shifts, 365 days",
        seconds,
        "s",
        COVERAGE_GOAL_S,
        f"{len(found)} gaps; conversion memo cleared first",
    )


def main() -> None:
    """Print the figures as a table."""
    for figure in run():
        goal = f"goal {figure['goal']} {figure['unit']}" if figure["goal"] is not None else ""
        ratio = f"x{figure['ratio']}" if figure["ratio"] is not None else ""
        print(
            f"{figure['name']:<45} {figure['value']:>10} {figure['unit']:<3} {goal:<16} {ratio:<7}"
            f" {figure['note']}".rstrip()
        )


if __name__ == "__main__":
    main()
