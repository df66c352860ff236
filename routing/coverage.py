"""Coverage planning: when no pool serving a queue (in a language) is on shift."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

from routing.decide import why_not
from routing.model import Pool, Pools
from routing.shifts import Span, merge, span_seconds, timestamp, utc


def serving(pools: Pools, queue: str, language: str | None = None) -> tuple[Pool, ...]:
    """The pools serving `queue` and, when one is given, speaking `language`, in file order.

    A pool speaks a language when it lists it and one of its agents takes its callers: agents
    who list their own languages take no others, so a pool of them cannot answer the rest."""
    return tuple(
        p
        for p in pools
        if p.serves(queue)
        and (language is None or (p.speaks(language) and any(a.takes(language) for a in p.agents)))
    )


def gap_seconds(pools: Iterable[Pool], start: int, end: int) -> list[Span]:
    """The maximal stretches of [start, end) during which none of `pools` is on shift."""
    covered = merge([span for pool in pools for span in span_seconds(pool, start, end)])
    found: list[Span] = []
    cursor = start
    for span_start, span_end in covered:
        if span_start > cursor:
            found.append((cursor, span_start))
        cursor = max(cursor, span_end)
    if cursor < end:
        found.append((cursor, end))
    return found


def gaps(
    pools: Pools, queue: str, language: str | None, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Maximal stretches of [start, end) with no pool serving `queue` (in `language`) on shift."""
    low, high = timestamp(start), timestamp(end)
    if high <= low:
        return []
    found = gap_seconds(serving(pools, queue, language), math.floor(low), math.ceil(high))
    return [
        (utc(s) if s > low else start.astimezone(UTC), utc(e) if e < high else end.astimezone(UTC))
        for s, e in found
    ]


def why_closed(pools: Iterable[Pool], queue: str, at: datetime) -> list[tuple[Pool, str]]:
    """Each of `pools` with the reason it takes no call for `queue` at `at` (a gap's start):
    off shift, a public holiday by name, a closure. The words of `ivr route`."""
    return [(pool, why_not(pool, queue, at) or "on shift") for pool in pools]
