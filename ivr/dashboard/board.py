"""What the wallboard shows of the pools, computed from the pools, presence and an instant.

Pure: no Flask, no Redis, no clock. The instant is an argument, so tests pin it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from routing.coverage import gap_seconds, serving, why_closed
from routing.model import Pool, Pools
from routing.shifts import span_seconds, utc

DAY = 24 * 3600
LOOK_AHEAD_SECONDS = 7 * DAY  # how far the wallboard looks for shift changes and gaps


@dataclass(frozen=True)
class PoolNow:
    """One pool at an instant: on shift or not, until when, and who takes calls."""

    name: str
    timezone: str
    queues: tuple[str, ...]
    on_shift: bool
    next_change: int | None  # when it goes off (or on) shift; None: not within the look-ahead
    available: tuple[str, ...]  # agent names
    away: tuple[str, ...]


@dataclass(frozen=True)
class QueueGap:
    """The next stretch of the look-ahead with nobody serving a queue on shift."""

    queue: str
    start: int | None  # None: no gap within the look-ahead
    end: int | None  # None: it lasts past the look-ahead
    now: bool  # the gap has begun: calls for the queue go to voicemail right now
    why: tuple[str, ...] = ()  # "pool: reason" of the pools closed by a holiday or a closure


def pools_now(pools: Pools, away: Iterable[str], at: float) -> list[PoolNow]:
    """Every pool at instant `at`, in file order, with agents in `away` counted as away."""
    gone = set(away)
    return [_pool_now(pool, gone, at) for pool in pools]


def _pool_now(pool: Pool, gone: set[str], at: float) -> PoolNow:
    instant = int(at)
    # Look back a day so that a span running at `at` is seen whole, then ahead.
    found = span_seconds(pool, instant - DAY, instant + LOOK_AHEAD_SECONDS + 1)
    current = next(((s, e) for s, e in found if s <= at < e), None)
    if current is not None:
        change = current[1] if current[1] <= instant + LOOK_AHEAD_SECONDS else None
    else:
        change = next((s for s, _ in found if s > at), None)
    return PoolNow(
        name=pool.name,
        timezone=pool.timezone,
        queues=pool.queues,
        on_shift=current is not None,
        next_change=change,
        available=tuple(a.name for a in pool.agents if a.id not in gone),
        away=tuple(a.name for a in pool.agents if a.id in gone),
    )


def next_gaps(pools: Pools, at: float) -> list[QueueGap]:
    """For each queue some pool serves (by name), the next gap in its coverage from `at` on."""
    instant = int(at)
    found = []
    for queue in sorted(pools.queues()):
        involved = serving(pools, queue)
        # From a day back, so that a gap already running shows when it began.
        holes = gap_seconds(involved, instant - DAY, instant + LOOK_AHEAD_SECONDS)
        upcoming = [(s, e) for s, e in holes if e > at]
        if not upcoming:
            found.append(QueueGap(queue, None, None, False))
            continue
        start, end = upcoming[0]
        last = None if end >= instant + LOOK_AHEAD_SECONDS else end
        # Off shift is the usual reason, and the clock says as much; a day off is news.
        why = tuple(
            f"{pool.name}: {reason}"
            for pool, reason in why_closed(involved, queue, utc(start))
            if not reason.startswith("off shift")
        )
        found.append(QueueGap(queue, start, last, start <= at, why))
    return found
