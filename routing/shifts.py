"""Shifts as spans of real time: wall-clock hours in a pool's zone turned into UTC instants.

A shift starts at the first instant of its day at which the pool's wall clock shows `from` or
later, and ends at the first instant at which it shows `to` or later on the day it ends. So a shift
that starts in an hour skipped by a clock change starts when the clock jumps, and a shift ends once
in a repeated hour, at its first occurrence. Instants inside this module are whole or fractional
seconds since the Unix epoch; `spans` gives aware UTC datetimes.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from routing.calendar import WallSpan
from routing.model import MINUTES_PER_DAY, Pool, Shift

Seconds = int
Span = tuple[Seconds, Seconds]

DAY = 24 * 3600
ONE_DAY = timedelta(days=1)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MEMO_SIZE = 1 << 16  # about 10 MB at most
_CLOCK = tuple(time(m // 60, m % 60) for m in range(MINUTES_PER_DAY))
_CLOCK_AFTER = tuple(time(m // 60, m % 60, fold=1) for m in range(MINUTES_PER_DAY))
_memo: dict[tuple[ZoneInfo, date, int], Seconds] = {}
combine = datetime.combine


@dataclass(frozen=True)
class Occurrence:
    """One shift on one day, as a span of real time, whether or not a holiday cancels it."""

    shift: Shift
    day: date  # the local day it belongs to: the day it starts on
    start: Seconds
    end: Seconds


def timestamp(at: datetime) -> float:
    """Seconds since the epoch of an aware datetime; a naive one is refused."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"an instant needs a time zone or offset, got {at.isoformat()}")
    return at.timestamp()


def utc(seconds: float) -> datetime:
    """The aware UTC datetime of a number of seconds since the epoch."""
    return datetime.fromtimestamp(seconds, UTC)


def local(seconds: float, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time shown in `zone` at an instant."""
    return datetime.fromtimestamp(seconds, zone).replace(tzinfo=None)


def first_instant(zone: ZoneInfo, wall: datetime) -> Seconds:
    """The first instant at which the clock in `zone` shows `wall` (naive) or later."""
    wall = wall.replace(fold=0) if wall.fold else wall
    naive = int(wall.replace(tzinfo=UTC).timestamp())
    return _first_instant(zone, wall, wall.replace(fold=1), naive)


def day_instant(zone: ZoneInfo, day: date, minute: int) -> Seconds:
    """Like first_instant for `minute` past midnight on `day`; memoised, as schedules repeat."""
    key = (zone, day, minute)
    found = _memo.get(key)
    if found is None:
        if len(_memo) >= MEMO_SIZE:
            _memo.clear()
        naive = (day.toordinal() - EPOCH_ORDINAL) * DAY + minute * 60
        wall, wall_after = combine(day, _CLOCK[minute]), combine(day, _CLOCK_AFTER[minute])
        found = _memo[key] = _first_instant(zone, wall, wall_after, naive)
    return found


def clear_memo() -> None:
    """Forget the memoised conversions (for measurements of a cold start)."""
    _memo.clear()


def _first_instant(zone: ZoneInfo, wall: datetime, wall_after: datetime, naive: int) -> Seconds:
    # PEP 495: fold=0 takes the offset in force before a transition, fold=1 the one after.
    before = _seconds(zone.utcoffset(wall))
    after = _seconds(zone.utcoffset(wall_after))
    if before >= after:
        # An ordinary time, or one the clock shows twice: its first showing is under `before`.
        return naive - before
    # Skipped by the clock: the answer is the jump itself, somewhere in (low, high].
    low, high = naive - after, naive - before
    while high - low > 1:
        middle = (low + high) // 2
        if local(middle, zone) >= wall:
            high = middle
        else:
            low = middle
    return high


def _seconds(offset: timedelta | None) -> int:
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset.days * DAY + offset.seconds


def occurrences(pool: Pool, start: Seconds, end: Seconds) -> Iterator[Occurrence]:
    """Every shift of `pool` overlapping [start, end), holidays not applied, by day."""
    zone = pool.zone
    for day in _days(pool, start, end):
        weekday = day.weekday()
        for shift in pool.shifts:
            if weekday in shift.days:
                begins, ends = _bounds(zone, shift, day)
                if begins < ends and begins < end and ends > start:
                    yield Occurrence(shift, day, begins, ends)


def span_seconds(pool: Pool, start: Seconds, end: Seconds) -> list[Span]:
    """The on-shift spans of `pool` within [start, end): merged, clipped, calendar applied."""
    zone, calendar = pool.zone, pool.calendar
    worked: list[Span] = []
    for day in _days(pool, start, end):
        if calendar.is_holiday(day):
            continue
        weekday = day.weekday()
        for shift in pool.shifts:
            if weekday in shift.days:
                begins, ends = _bounds(zone, shift, day)
                if begins < ends and begins < end and ends > start:
                    worked.append((begins, ends))
    found = merge(worked)
    if calendar.closures:
        found = subtract(found, merge(wall_spans(pool, calendar.closures)))
    if calendar.openings:
        found = merge(found + wall_spans(pool, calendar.openings))
    return clip(found, start, end)


def _days(pool: Pool, start: Seconds, end: Seconds) -> Iterator[date]:
    # A shift ends at most two local days after its own starts, so begin two days back.
    day = local(start, pool.zone).date() - timedelta(days=2)
    last = local(end, pool.zone).date()
    while day <= last:
        yield day
        day += ONE_DAY


def _bounds(zone: ZoneInfo, shift: Shift, day: date) -> Span:
    days_after, minute = shift.ends
    ends_on = day + ONE_DAY if days_after else day
    return day_instant(zone, day, shift.start_minute), day_instant(zone, ends_on, minute)


def spans(pool: Pool, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The on-shift spans of `pool` within [start, end), as UTC datetimes."""
    low, high = timestamp(start), timestamp(end)
    return [
        (utc(s) if s > low else start.astimezone(UTC), utc(e) if e < high else end.astimezone(UTC))
        for s, e in span_seconds(pool, math.floor(low), math.ceil(high))
    ]


def wall_spans(pool: Pool, walls: tuple[WallSpan, ...]) -> list[Span]:
    """One-off closures or openings of `pool` as spans of real time."""
    zone = pool.zone
    found = [(first_instant(zone, w.start), first_instant(zone, w.end)) for w in walls]
    return [(s, e) for s, e in found if s < e]


def merge(found: list[Span]) -> list[Span]:
    """Sorted, non-overlapping spans covering the same time; touching spans become one."""
    merged: list[Span] = []
    for s, e in sorted(found):
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def subtract(found: list[Span], removed: list[Span]) -> list[Span]:
    """The parts of merged spans `found` outside merged spans `removed`."""
    result: list[Span] = []
    for s, e in found:
        # Only the removals that can overlap [s, e) matter; they are sorted by start.
        i = max(bisect_left(removed, (s, s)) - 1, 0)
        while i < len(removed) and removed[i][0] < e:
            cut_start, cut_end = removed[i]
            if cut_end > s:
                if cut_start > s:
                    result.append((s, cut_start))
                s = max(s, cut_end)
            i += 1
        if s < e:
            result.append((s, e))
    return result


def clip(found: list[Span], start: Seconds, end: Seconds) -> list[Span]:
    """Merged spans cut to [start, end)."""
    return [(max(s, start), min(e, end)) for s, e in found if s < end and e > start]


def contains(found: list[Span], instant: float) -> bool:
    """Whether one of the merged spans holds `instant`."""
    i = bisect_right(found, (instant, math.inf)) - 1
    return i >= 0 and instant < found[i][1]
