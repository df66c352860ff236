"""Contact-centre KPIs over call summaries: a pure function, no Redis, no clock.

Definitions (the README explains them for supervisors):
- calls: every call that started on a day in [start_day, end_day] (local days of `zone`);
- offered: calls that reached a route step (`route_at` known);
- answered / abandoned / voicemail / self_service / failed: calls of that outcome;
- service_level: offered calls answered within `threshold` seconds of reaching the route step,
  over offered calls (null when none were offered); every abandon counts, however short;
- asa_seconds: mean wait of the answered offered calls (calls answered and still under way
  too); answer_p50 / answer_p90: nearest-rank percentiles of those waits (null when none);
- abandon_rate: abandoned over offered.

They read only a few fields of each call, its `KpiFacts`: a projection of the summary, also kept
in Redis by start time once the call has ended, so that a day's KPIs need not read and parse every
summary of the day (the few calls under way are read from their summaries).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta
from operator import itemgetter
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson

from ivr.calls.summary import CallSummary
from ivr.errors import BadQuery

GROUPINGS = ("day", "hour", "queue", "pool", "language")
COUNTED = ("answered", "abandoned", "voicemail", "self_service", "failed")
FIELDS = (
    "key",
    "calls",
    "offered",
    *COUNTED,
    "service_level",
    "asa_seconds",
    "answer_p50",
    "answer_p90",
    "abandon_rate",
)


FACTS_VERSION = 1
AGENT_LINE_VERSION = 2  # the same facts and the agents' line flag


class KpiFacts(NamedTuple):
    """What the KPIs read of one call, derived from its summary alone.

    A tuple rather than a frozen dataclass: a day's KPIs build tens of thousands of them, and a
    tuple is built several times faster.
    """

    sid: str
    started_at: float
    outcome: str
    offered: bool  # reached a route step
    wait_seconds: float | None  # an offered call's wait until answered (ended or not); or None
    queue: str | None
    pool: str | None
    language: str
    agent_line: bool = False  # an agent's call to the agents' line: left out of the KPIs

    @classmethod
    def of(cls, summary: CallSummary) -> KpiFacts | None:
        """The facts of a call's summary; None for a call not started."""
        if summary.started_at is None:
            return None
        # The wait of a call answered and still under way is known, and counts: dropping it
        # made every conversation in progress a miss of the service level.
        return cls(summary.sid, summary.started_at, summary.outcome, summary.route_at is not None,
                   summary.wait_seconds, summary.queue, summary.pool, summary.language,
                   summary.agent_line)  # fmt: skip

    @classmethod
    def finished(cls, summary: CallSummary) -> KpiFacts | None:
        """The facts of a call that has ended, as the facts index keeps them; else None."""
        return cls.of(summary) if summary.finished else None

    def to_member(self) -> str:
        """The facts as one short JSON array, versioned: a member of the facts index.

        A customer's call keeps version 1, without the agents' line flag: members written
        before the flag existed stay the same, so a later change of the call replaces them.
        """
        if self.agent_line:
            return orjson.dumps([AGENT_LINE_VERSION, *self]).decode()
        return orjson.dumps([FACTS_VERSION, *self[:-1]]).decode()

    @classmethod
    def from_member(cls, raw: str | bytes) -> KpiFacts:
        """Facts read back from `to_member`."""
        return cls.from_members([raw])[0]

    @classmethod
    def from_members(cls, raws: Sequence[str | bytes]) -> list[KpiFacts]:
        """Many facts read back from `to_member`, in a tight loop (a day is tens of thousands)."""
        loads, make = orjson.loads, cls._make
        decoded = [loads(raw) for raw in raws]
        found: list[KpiFacts] = []
        for values in decoded:
            if values[0] == FACTS_VERSION:
                found.append(make([*values[1:], False]))
            elif values[0] == AGENT_LINE_VERSION:
                found.append(make(values[1:]))
            else:
                raise ValueError(f"KPI facts of version {values[0]}, not {FACTS_VERSION}")
        return found


def kpis(
    calls: Iterable[KpiFacts | CallSummary],
    by: str,
    threshold: float,
    zone: ZoneInfo,
    start_day: date,
    end_day: date,
) -> dict[str, Any]:
    """{"rows": [one per key of `by`], "total": {...}} for calls started in the days asked for.

    By day and by hour every day or hour of the range has a row, calls or not; the other
    groupings list the keys seen.
    """
    if by not in GROUPINGS:
        raise BadQuery(f"cannot group by {by!r}: use one of {', '.join(GROUPINGS)}")
    groups: dict[str | None, list[KpiFacts]] = {}
    key_of, place = _grouping(by)
    if by == "day":
        day = start_day
        while day <= end_day:
            groups[day.isoformat()] = []
            day += timedelta(days=1)
    elif by == "hour":
        # Every real hour from the first local midnight to the one after the last day: 23 or
        # 25 rows on the days the clocks change.
        at = datetime.combine(start_day, time(), zone).timestamp()
        end = datetime.combine(end_day + timedelta(days=1), time(), zone).timestamp()
        while at < end:
            groups.setdefault(key_of(None, datetime.fromtimestamp(at, zone)), [])
            at += 3600
    everything: list[KpiFacts] = []
    for call in calls:
        facts = call if isinstance(call, KpiFacts) else KpiFacts.of(call)
        if facts is None or facts.agent_line:
            continue  # not started, or an agent taking a caller: not a customer's call
        local = datetime.fromtimestamp(facts.started_at, zone)
        if not start_day <= local.date() <= end_day:
            continue
        everything.append(facts)
        key = key_of(facts, local)
        group = groups.get(key)
        if group is None:
            group = groups[key] = []
        group.append(facts)
    rows = [_row(key, groups[key], threshold) for key in sorted(groups, key=place)]
    return {"rows": rows, "total": _row(None, everything, threshold)}


def totals(calls: Iterable[KpiFacts], threshold: float) -> dict[str, Any]:
    """The total row of `kpis` over every call given, whatever its day (the caller chose them,
    e.g. today's so far): no grouping and no time zone, so a wallboard can redo it often."""
    return _row(None, [facts for facts in calls if not facts.agent_line], threshold)


KeyOf = Callable[[KpiFacts | None, datetime], str | None]  # a row's key: facts, local start


def _grouping(by: str) -> tuple[KeyOf, Callable[[str | None], tuple[Any, ...]]]:
    """The key of a call's row, from its facts and its local start time; and the rows' order."""
    if by not in ("day", "hour"):
        value = itemgetter(KpiFacts._fields.index(by))  # queue, pool or language: text or None
        return (lambda facts, _: value(facts) or None), _order
    # A day has few distinct keys and tens of thousands of calls: format each key once.
    formatted: dict[tuple[int, ...], str | None] = {}
    places: dict[str | None, tuple[Any, ...]] = {}

    def local_key(_: KpiFacts | None, local: datetime) -> str:
        stamp = (local.year, local.month, local.day, local.hour if by == "hour" else 0)
        key = formatted.get(stamp)
        if key is None:
            key = twice_key(stamp, local) if stamp in formatted else new_key(stamp, local)
        return key

    def new_key(stamp: tuple[int, ...], local: datetime) -> str:
        key = f"{stamp[0]:04d}-{stamp[1]:02d}-{stamp[2]:02d}"
        if by == "hour":
            key += f" {stamp[3]:02d}:00"
            if _repeated_hour(local):
                formatted[stamp] = None  # None: look the hour up by offset too
                return twice_key(stamp, local)
        formatted[stamp] = key
        places[key] = (*stamp, 0)
        return key

    def twice_key(stamp: tuple[int, ...], local: datetime) -> str:
        # The hour the clocks go back over is two hours of calls: a row for each, by offset.
        offset = _seconds(local.utcoffset())
        placed = (*stamp, -offset)  # the first of the two is the further ahead of UTC
        key = formatted.get(placed)
        if key is None:
            key = formatted[placed] = (
                f"{stamp[0]:04d}-{stamp[1]:02d}-{stamp[2]:02d} {stamp[3]:02d}:00"
                + local.isoformat()[-6:]  # the UTC offset, "-04:00"
            )
            places[key] = placed
        return key

    def place(key: str | None) -> tuple[Any, ...]:
        return places[key]

    return local_key, place if by == "hour" else _order


def _repeated_hour(local: datetime) -> bool:
    """Whether some wall time of `local`'s hour happens twice (the clocks go back within it)."""
    for minute, second in ((0, 0), (15, 0), (30, 0), (45, 0), (59, 59)):
        wall = local.replace(minute=minute, second=second, microsecond=0, fold=0)
        # A repeated time is ahead of UTC by more the first time; a skipped one, by less.
        if _seconds(wall.utcoffset()) > _seconds(wall.replace(fold=1).utcoffset()):
            return True
    return False


def _seconds(offset: timedelta | None) -> int:
    return int(offset.total_seconds()) if offset is not None else 0


def _row(key: str | None, calls: list[KpiFacts], threshold: float) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key, "calls": len(calls)}
    offered = [c for c in calls if c.offered]
    row["offered"] = len(offered)
    outcomes = Counter(c.outcome for c in calls)
    for outcome in COUNTED:
        row[outcome] = outcomes[outcome]
    waits = sorted(c.wait_seconds for c in offered if c.wait_seconds is not None)
    within = sum(1 for w in waits if w <= threshold)
    abandoned = sum(1 for c in offered if c.outcome == "abandoned")
    row["service_level"] = round(within / len(offered), 4) if offered else None
    row["asa_seconds"] = round(sum(waits) / len(waits), 3) if waits else None
    row["answer_p50"] = nearest_rank(waits, 50)
    row["answer_p90"] = nearest_rank(waits, 90)
    row["abandon_rate"] = round(abandoned / len(offered), 4) if offered else None
    return row


def _order(key: str | None) -> tuple[bool, str]:
    return key is None, key or ""


def nearest_rank(ordered: list[float], percent: float) -> float | None:
    """The nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]
