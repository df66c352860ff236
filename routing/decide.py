"""Which pools take a call, in which order, and why the others do not.

A pool takes a call when it serves the queue, one of its shifts is running at that instant and one
of its agents is available. An agent who lists `languages` takes only callers of those languages
(when the caller's language is known). Pools speaking the caller's language come first, then lower
`priority`, then file order. `Schedule` makes this fast: it precomputes, a week of UTC time at a
time, the boundaries at which some pool goes on or off shift and, between them, the set of pools
on shift as a bit mask (bit i is the i-th pool by priority, then file order).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Generic, NamedTuple, TypeVar

from routing.model import DAY_NAMES, Agent, Pool, Pools
from routing.shifts import (
    Span,
    clip,
    contains,
    local,
    occurrences,
    span_seconds,
    timestamp,
    wall_spans,
)

WINDOW_SECONDS = 7 * 24 * 3600
MAX_WINDOWS = 60  # over a year of weeks, so planning a year ahead does not rebuild them
MAX_ORDERS = 4096
MAX_PRESENCES = 8  # presence snapshots a schedule keeps its candidates for
DAY = 24 * 3600
AROUND_DAYS = 8  # why_not looks this many days back and ahead for the shift that ended or starts
MAX_AROUND = 4096

Availability = Callable[[Pool, Agent], bool]


def everyone_available(pool: Pool, agent: Agent) -> bool:
    """Availability when no presence is known: every agent of a pool on shift."""
    return True


class Away(frozenset[str]):
    """The ids of the agents who are away: an `is_available` that decide() applies set-wise."""

    def __call__(self, pool: Pool, agent: Agent) -> bool:
        return agent.id not in self


class Candidate(NamedTuple):
    """A pool that can take the call, with its available agents in file order."""

    pool: Pool
    agents: tuple[Agent, ...]


@dataclass(frozen=True)
class PassedOver:
    """A pool that cannot take the call, and why."""

    pool: Pool
    reason: str


@dataclass(frozen=True)
class Skipped:
    """An agent of a pool on shift who is not rung for this call, and why."""

    agent: Agent
    reason: str  # "speaks only vi-VN" or "away"


@dataclass(frozen=True)
class Decision:
    """The pools to try for one call, in order; after the last comes the route's `otherwise`."""

    queue: str
    language: str | None
    at: datetime
    pools: tuple[Candidate, ...]
    all_pools: Pools = field(repr=False, compare=False)

    @property
    def pool(self) -> Pool | None:
        """The pool to try first, or None when the call goes straight to `otherwise`."""
        return self.pools[0].pool if self.pools else None

    @cached_property
    def reason(self) -> str:
        """One line saying why the first pool was chosen, or why none was."""
        if not self.pools:
            return self._why_none()
        pool = self.pools[0].pool
        parts = [f"{pool.name} on shift ({_clock(timestamp(self.at), pool)})"]
        if self.language is not None:
            spoken = pool.speaks(self.language)
            parts.append(
                f"speaks {self.language}" if spoken else f"no available pool speaks {self.language}"
            )
        parts.append(f"priority {pool.priority}")
        return ", ".join(parts)

    @cached_property
    def passed_over(self) -> tuple[PassedOver, ...]:
        """Every pool that cannot take the call, in file order, with its reason."""
        chosen = {c.pool.name for c in self.pools}
        return tuple(
            PassedOver(pool, why_not(pool, self.queue, self.at) or self._nobody_in(pool))
            for pool in self.all_pools
            if pool.name not in chosen
        )

    def skipped(self, pool: Pool) -> tuple[Skipped, ...]:
        """The agents of `pool` not rung for this call, in file order: language, else away."""
        rung = next((c.agents for c in self.pools if c.pool.name == pool.name), ())
        ids = {agent.id for agent in rung}
        return tuple(
            Skipped(agent, _language_gap(agent) if not agent.takes(self.language) else "away")
            for agent in pool.agents
            if agent.id not in ids
        )

    def _nobody_in(self, pool: Pool) -> str:
        # On shift and serving the queue, yet passed over: every agent is skipped.
        skipped = self.skipped(pool)
        if all(s.reason == "away" for s in skipped):
            return "no agent available"
        why = ", ".join(f"{s.agent.name} {s.reason}" for s in skipped)
        return f"no agent available for {self.language}: {why}"

    def _why_none(self) -> str:
        serving = [p for p in self.all_pools if p.serves(self.queue)]
        if not serving:
            return f"no pool serves queue {self.queue}"
        instant = timestamp(self.at)
        working = [
            p for p in serving if contains(span_seconds(p, int(instant), int(instant) + 1), instant)
        ]
        if not working:
            return f"no pool serving {self.queue} is on shift"
        if any(not a.takes(self.language) for p in working for a in p.agents):
            return (
                f"no agent available for {self.language} in the pools serving {self.queue} on shift"
            )
        return f"no agent available in the pools serving {self.queue} on shift"


class _ByByte:
    """Ranked candidates (None: a pool with nobody left) selected by one byte of a bit mask:
    for each byte and each value of it, the candidates of its set bits in rank order, each
    selection made on first use. A mask then becomes candidates in one step per byte."""

    def __init__(self, ranked: list[Candidate | None]) -> None:
        self._ranked = ranked
        self.size = (len(ranked) + 7) // 8
        self._rows: list[list[tuple[Candidate, ...] | None]] = [
            [None] * 256 for _ in range(self.size)
        ]

    def select(self, index: int, value: int) -> tuple[Candidate, ...]:
        """The candidates of byte `index` of a mask whose value is `value`, in rank order."""
        row = self._rows[index]
        found = row[value]
        if found is None:
            part = self._ranked[8 * index : 8 * index + 8]
            found = tuple(c for bit, c in enumerate(part) if value >> bit & 1 and c is not None)
            row[value] = found  # one list slot: atomic, so threads at worst select twice
        return found


class Schedule:
    """Who is on shift when, built a week at a time on demand, with the orders found so far."""

    def __init__(self, pools: tuple[Pool, ...]) -> None:
        self.ranked = tuple(sorted(pools, key=lambda p: (p.priority, p.order)))
        self.windows_built = 0
        self._queue_bits: dict[str, int] = {}
        self._language_bits: dict[str, int] = {}
        for bit, pool in enumerate(self.ranked):
            for queue in pool.queues if pool.agents else ():
                self._queue_bits[queue] = self._queue_bits.get(queue, 0) | 1 << bit
            for language in pool.languages:
                self._language_bits[language] = self._language_bits.get(language, 0) | 1 << bit
        self._everyone = _ByByte([Candidate(pool, pool.agents) for pool in self.ranked])
        self._agent_ids = {pool.name: frozenset(a.id for a in pool.agents) for pool in self.ranked}
        # Pools with an agent who lists languages: only their candidates depend on the language.
        self._choosy = frozenset(p.name for p in self.ranked if any(a.languages for a in p.agents))
        # Plain dicts: lookups are atomic, so threads sharing a schedule at worst build twice.
        self._windows: dict[int, tuple[list[float], list[int]]] = {}
        self._orders: dict[tuple[int, str | None, Away | None], tuple[Candidate, ...]] = {}
        self._present: dict[Away, _ByByte] = {}

    def on_shift(self, instant: float) -> int:
        """The bit mask of ranked pools on shift at `instant` (seconds since the epoch)."""
        index = int(instant // WINDOW_SECONDS)
        window = self._windows.get(index)
        if window is None:
            window = self._build(index)
        boundaries, masks = window
        return masks[bisect_right(boundaries, instant) - 1]

    def candidates(
        self, queue: str, language: str | None, instant: float, away: Away | None = None
    ) -> tuple[Candidate, ...]:
        """The pools on shift serving `queue`, in the order to try them, with their agents (less
        those `away`, and without the pools that leaves with nobody)."""
        mask = self.on_shift(instant) & self._queue_bits.get(queue, 0)
        away = away or None
        key = (mask, language, away)
        found = self._orders.get(key)
        if found is None:
            if len(self._orders) >= MAX_ORDERS:
                self._orders.clear()
            found = self._orders[key] = self._order(mask, language, away)
        return found

    def _order(self, mask: int, language: str | None, away: Away | None) -> tuple[Candidate, ...]:
        speaking = mask & self._language_bits.get(language, 0) if language is not None else 0
        tables = self._everyone if away is None else self._present_for(away)
        found: list[Candidate] = []
        for part in (speaking, mask & ~speaking) if speaking else (mask,):
            for index, value in enumerate(part.to_bytes(tables.size, "little")):
                if value:
                    found += tables.select(index, value)
        if language is None or not self._choosy:
            return tuple(found)
        narrowed = (self._speaking(candidate, language) for candidate in found)
        return tuple(candidate for candidate in narrowed if candidate.agents)

    def _present_for(self, away: Away) -> _ByByte:
        # Presence changes far less often than calls come, and the Store hands out one Away per
        # presence snapshot: its hash is computed once, and a hit compares it by identity.
        present = self._present.get(away)
        if present is None:
            if len(self._present) >= MAX_PRESENCES:
                self._present.clear()
            kept = []
            for pool in self.ranked:
                agents = pool.agents
                if self._agent_ids[pool.name] & away:
                    agents = tuple(a for a in agents if a.id not in away)
                kept.append(Candidate(pool, agents) if agents else None)
            present = self._present[away] = _ByByte(kept)
        return present

    def _speaking(self, candidate: Candidate, language: str) -> Candidate:
        if candidate.pool.name not in self._choosy:
            return candidate
        return Candidate(candidate.pool, tuple(a for a in candidate.agents if a.takes(language)))

    def _build(self, index: int) -> tuple[list[float], list[int]]:
        start = index * WINDOW_SECONDS
        end = start + WINDOW_SECONDS
        # Each pool's spans are merged, so every boundary switches its bit on or off.
        toggles: dict[int, int] = {}
        for bit, pool in enumerate(self.ranked):
            for span_start, span_end in span_seconds(pool, start, end):
                toggles[span_start] = toggles.get(span_start, 0) ^ 1 << bit
                if span_end < end:
                    toggles[span_end] = toggles.get(span_end, 0) ^ 1 << bit
        boundaries: list[float] = [start]
        mask = toggles.pop(start, 0)
        masks = [mask]
        for instant in sorted(toggles):
            mask ^= toggles[instant]
            boundaries.append(instant)
            masks.append(mask)
        if len(self._windows) >= MAX_WINDOWS:
            del self._windows[next(iter(self._windows))]
        self._windows[index] = (boundaries, masks)
        self.windows_built += 1
        return boundaries, masks


def decide(
    pools: Pools,
    queue: str,
    language: str | None,
    at: datetime,
    is_available: Availability = everyone_available,
) -> Decision:
    """The pools that can take a call for `queue` at `at`, in the order to try them."""
    schedule = pools.schedule
    if isinstance(is_available, Away):
        ordered = schedule.candidates(queue, language, timestamp(at), is_available)
    else:
        ordered = schedule.candidates(queue, language, timestamp(at))
        if is_available is not everyone_available:
            ordered = _available(ordered, is_available)
    return Decision(queue, language, at, ordered, pools)


def why_not(pool: Pool, queue: str, at: datetime) -> str | None:
    """Why `pool` cannot take a call for `queue` at `at` whoever is available, or None if it can."""
    if not pool.serves(queue):
        return f"does not serve queue {queue}"
    instant = timestamp(at)
    # Every call of a minute gets the same answer (its times are shown to the minute) when the
    # pool's on-shift spans change only on whole minutes, as shifts and calendars written in
    # minutes do.
    minute = int(instant // 60)
    kept = _REASONS.get(pool, minute)
    if kept is not None:
        return kept[0]
    reason, whole_minutes = _why_not(pool, instant)
    if whole_minutes:
        _REASONS.put(pool, minute, reason)
    return reason


def _why_not(pool: Pool, instant: float) -> tuple[str | None, bool]:
    """The reason, and whether the spans it was found from change only on whole minutes."""
    now = int(instant)
    # The window is cut at the minute, not the second: cut mid-minute, a span running across
    # its edge (a weekend shift eight days back) would make the pool's answer look as if it
    # changed within the minute, and it would be worked out afresh for every call.
    minute = now - now % 60
    around = clip(_around(pool, now // DAY), minute - AROUND_DAYS * DAY, minute + AROUND_DAYS * DAY)
    whole = all(s % 60 == 0 and e % 60 == 0 for s, e in around) and _minute_calendar(pool)
    if contains(around, instant):
        return (None if pool.agents else "has no agents"), whole
    for occurrence in occurrences(pool, now, now + 1):
        if occurrence.start <= instant < occurrence.end:
            holiday = pool.calendar.holiday(occurrence.day)
            if holiday is not None:
                return f"holiday, {holiday}", whole
    for closure in pool.calendar.closures:
        if contains(wall_spans(pool, (closure,)), instant):
            return f"closed {closure.label()}", whole
    parts = [f"off shift, {_clock(instant, pool)}"]
    ended = [e for _, e in around if e <= instant]
    starts = [s for s, _ in around if s > instant]
    if ended:
        parts.append(f"shift ended {_when(ended[-1], instant, pool)}")
    if starts:
        parts.append(f"next starts {_when(starts[0], instant, pool)}")
    if not ended and not starts:
        parts.append("no shift within a week")
    return ", ".join(parts), whole


def _minute_calendar(pool: Pool) -> bool:
    """Whether the pool's closures and openings begin and end on whole minutes."""
    walls = (*pool.calendar.closures, *pool.calendar.openings)
    return all(not (t.second or t.microsecond) for w in walls for t in (w.start, w.end))


T = TypeVar("T")


class _PerPool(Generic[T]):
    """Values kept by pool and a number (a UTC day, a minute), as many as MAX_AROUND: a plain
    dict, as in Schedule, keyed by id(pool); the pool kept in an entry makes a reused id a miss."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], tuple[Pool, T]] = {}

    def get(self, pool: Pool, number: int) -> tuple[T] | None:
        """The value kept, in a 1-tuple (it may be None itself); None when there is none."""
        entry = self._entries.get((id(pool), number))
        return (entry[1],) if entry is not None and entry[0] is pool else None

    def put(self, pool: Pool, number: int, value: T) -> None:
        if len(self._entries) >= MAX_AROUND:
            self._entries.clear()
        self._entries[id(pool), number] = (pool, value)


# why_not's answers of each minute, and the spans around each day that every call of the day
# asks of each pool passed over.
_REASONS: _PerPool[str | None] = _PerPool()
_AROUND: _PerPool[list[Span]] = _PerPool()


def _around(pool: Pool, day: int) -> list[Span]:
    """The on-shift spans of `pool` from AROUND_DAYS before UTC day `day` to as many after it."""
    kept = _AROUND.get(pool, day)
    if kept is not None:
        return kept[0]
    found = span_seconds(pool, (day - AROUND_DAYS) * DAY, (day + 1 + AROUND_DAYS) * DAY)
    _AROUND.put(pool, day, found)
    return found


def _available(ordered: tuple[Candidate, ...], is_available: Availability) -> tuple[Candidate, ...]:
    kept: list[Candidate] = []
    for candidate in ordered:
        pool, everyone = candidate
        agents = [a for a in everyone if is_available(pool, a)]
        if len(agents) == len(everyone):
            kept.append(candidate)
        elif agents:
            kept.append(Candidate(pool, tuple(agents)))
    return tuple(kept)


def _language_gap(agent: Agent) -> str:
    return f"speaks only {', '.join(agent.languages)}"


def _clock(instant: float, pool: Pool) -> str:
    shown = local(instant, pool.zone)
    return f"{DAY_NAMES[shown.weekday()]} {shown:%H:%M} {pool.timezone}"


def _when(instant: float, now: float, pool: Pool) -> str:
    shown, today = local(instant, pool.zone), local(now, pool.zone)
    if shown.date() == today.date():
        return f"{shown:%H:%M}"
    if abs((shown.date() - today.date()).days) < 7:
        return f"{DAY_NAMES[shown.weekday()]} {shown:%H:%M}"
    return f"{shown:%Y-%m-%d %H:%M}"
