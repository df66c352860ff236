"""Contact-centre KPIs over call summaries: a pure function, no Redis, no clock.

Definitions (the README explains them for supervisors):
- calls: every call that started on a day in [start_day, end_day] (local days of `zone`);
- offered: calls that reached a route step (`route_at` known);
- answered / abandoned / voicemail / self_service / failed: calls of that outcome;
- service_level: offered calls answered within `threshold` seconds of reaching the route step,
  over offered calls (null when none were offered); every abandon counts, however short;
- asa_seconds: mean wait of the answered offered calls; answer_p50 / answer_p90: nearest-rank
  percentiles of those waits (null when there are none);
- abandon_rate: abandoned over offered.

A day holds tens of thousands of calls, so each is reduced once to the few facts the KPIs read
(`KpiCall`), either from a summary (`KpiCall.of`) or straight from its stored fields
(`KpiCall.of_fields`, without building the summary), and grouped in one pass.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from operator import itemgetter
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from ivr.calls.summary import CallSummary, from_mapping, outcome_from, wait_between
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


class KpiCall(NamedTuple):
    """What the KPIs read of one call."""

    started_at: float | None
    outcome: str
    offered: bool
    wait_seconds: float | None
    queue: str | None
    pool: str | None
    language: str

    @classmethod
    def of(cls, summary: CallSummary) -> KpiCall:
        """The facts of a summary."""
        return cls(
            summary.started_at,
            summary.outcome,
            summary.route_at is not None,
            summary.wait_seconds,
            summary.queue,
            summary.pool,
            summary.language,
        )

    @classmethod
    def of_fields(cls, data: Mapping[str, Any]) -> KpiCall:
        """The facts of a summary's stored fields (`CallSummary.to_json`), without building it."""
        try:
            started, route, answered, ended, voicemail, fault, twilio_failed, queue, pool, lang = (
                _STORED(data)
            )
        except KeyError:  # stored by a version without one of them: the defaults apply
            return cls.of(from_mapping(data))
        failed = fault is not None or twilio_failed
        outcome = outcome_from(ended, answered, voicemail, failed, route)
        wait = wait_between(route, answered)
        return cls._make((started, outcome, route is not None, wait, queue, pool, lang))


_STORED = itemgetter(
    "started_at",
    "route_at",
    "answered_at",
    "ended_at",
    "voicemail_seconds",
    "fault",
    "twilio_failed",
    "queue",
    "pool",
    "language",
)


def kpis(
    calls: Iterable[KpiCall],
    by: str,
    threshold: float,
    zone: ZoneInfo,
    start_day: date,
    end_day: date,
) -> dict[str, Any]:
    """{"rows": [one per key of `by`], "total": {...}} for calls started in the days asked for.

    By day every day of the range has a row, calls or not; other groupings list the keys seen.
    """
    if by not in GROUPINGS:
        raise BadQuery(f"cannot group by {by!r}: use one of {', '.join(GROUPINGS)}")
    first, last = start_day.toordinal(), end_day.toordinal()
    # Keys stay cheap values while grouping (a day's ordinal, an hour's (ordinal, hour)) and are
    # written out once per row: formatting a date per call would cost more than the rest.
    groups: dict[Any, list[KpiCall]] = {}
    if by == "day":
        groups = {day: [] for day in range(first, last + 1)}
    field = KpiCall._fields.index(by) if by in KpiCall._fields else -1
    everything: list[KpiCall] = []
    for call in calls:
        if call.started_at is None:
            continue
        local = datetime.fromtimestamp(call.started_at, zone)
        day = local.toordinal()
        if not first <= day <= last:
            continue
        everything.append(call)
        if by == "day":
            key: Any = day
        elif by == "hour":
            key = (day, local.hour)
        else:
            key = call[field] or None
        group = groups.get(key)
        if group is None:
            group = groups[key] = []
        group.append(call)
    named = {_name(key, by): group for key, group in groups.items()}
    rows = [_row(key, named[key], threshold) for key in sorted(named, key=_order)]
    return {"rows": rows, "total": _row(None, everything, threshold)}


def _name(key: Any, by: str) -> str | None:
    if by == "day":
        return date.fromordinal(key).isoformat()
    if by == "hour":
        day, hour = key
        return f"{date.fromordinal(day).isoformat()} {hour:02d}:00"
    return key  # type: ignore[no-any-return]


def _order(key: str | None) -> tuple[bool, str]:
    return key is None, key or ""


def _row(key: str | None, calls: list[KpiCall], threshold: float) -> dict[str, Any]:
    outcomes = Counter(c.outcome for c in calls)
    offered = [c for c in calls if c.offered]
    waits = sorted(
        c.wait_seconds for c in offered if c.outcome == "answered" and c.wait_seconds is not None
    )
    within = sum(1 for w in waits if w <= threshold)
    abandoned = sum(1 for c in offered if c.outcome == "abandoned")
    row: dict[str, Any] = {"key": key, "calls": len(calls), "offered": len(offered)}
    for outcome in COUNTED:
        row[outcome] = outcomes[outcome]
    row["service_level"] = round(within / len(offered), 4) if offered else None
    row["asa_seconds"] = round(sum(waits) / len(waits), 3) if waits else None
    row["answer_p50"] = nearest_rank(waits, 50)
    row["answer_p90"] = nearest_rank(waits, 90)
    row["abandon_rate"] = round(abandoned / len(offered), 4) if offered else None
    return row


def nearest_rank(ordered: list[float], percent: float) -> float | None:
    """The nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]
