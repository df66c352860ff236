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
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ivr.calls.summary import CallSummary

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


def kpis(
    summaries: Iterable[CallSummary],
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
        raise ValueError(f"cannot group by {by!r}: use one of {', '.join(GROUPINGS)}")
    groups: dict[str | None, list[CallSummary]] = {}
    if by == "day":
        day = start_day
        while day <= end_day:
            groups[day.isoformat()] = []
            day += timedelta(days=1)
    everything: list[CallSummary] = []
    for summary in summaries:
        if summary.started_at is None:
            continue
        local = datetime.fromtimestamp(summary.started_at, zone)
        if not start_day <= local.date() <= end_day:
            continue
        everything.append(summary)
        groups.setdefault(_key(summary, local, by), []).append(summary)
    rows = [_row(key, groups[key], threshold) for key in sorted(groups, key=_order)]
    return {"rows": rows, "total": _row(None, everything, threshold)}


def _key(summary: CallSummary, local: datetime, by: str) -> str | None:
    if by == "day":
        return local.date().isoformat()
    if by == "hour":
        return local.strftime("%Y-%m-%d %H:00")
    value: str | None = getattr(summary, by)
    return value or None


def _order(key: str | None) -> tuple[bool, str]:
    return key is None, key or ""


def _row(key: str | None, calls: list[CallSummary], threshold: float) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key, "calls": len(calls)}
    offered = [c for c in calls if c.route_at is not None]
    row["offered"] = len(offered)
    outcomes = [c.outcome for c in calls]
    for outcome in COUNTED:
        row[outcome] = outcomes.count(outcome)
    waits = sorted(
        c.wait_seconds for c in offered if c.outcome == "answered" and c.wait_seconds is not None
    )
    within = sum(1 for w in waits if w <= threshold)
    abandoned = sum(1 for c in offered if c.outcome == "abandoned")
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
