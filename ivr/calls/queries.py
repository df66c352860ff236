"""What the CLI and the API share about asking for call records: parsing and the KPI report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ivr.calls.events import CallEvent, to_dict
from ivr.calls.kpis import GROUPINGS, kpis
from ivr.calls.records import CallRecords
from ivr.calls.summary import iso
from ivr.config import known_zone
from ivr.errors import BadQuery

MAX_DAILY_DAYS = 3660  # ten years of rows by day
MAX_HOURLY_DAYS = 366  # a year of rows by hour


def parse_instant(text: str) -> float:
    """An ISO-8601 instant (or date) as Unix seconds; without an offset it is UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadQuery(f"not an ISO-8601 instant: {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed.astimezone(UTC)  # records and messages show instants in UTC: it must have one
    except OverflowError as exc:
        raise BadQuery(f"not an instant of the years 1 to 9999 in UTC: {text!r}") from exc
    return parsed.timestamp()


def parse_day(text: str) -> date:
    """A YYYY-MM-DD date."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as exc:
        raise BadQuery(f"not a YYYY-MM-DD date: {text!r}") from exc


def parse_zone(name: str) -> ZoneInfo:
    """A time zone by its IANA name."""
    zone = known_zone(name)
    if zone is None:
        raise BadQuery(f"unknown time zone: {name!r}")
    return zone


def day_span(start_day: date, end_day: date, zone: ZoneInfo) -> tuple[float, float]:
    """[first instant of start_day, first instant after end_day) in `zone`, as Unix seconds."""
    if end_day < start_day:
        raise BadQuery(f"the last day {end_day} is before the first {start_day}")
    try:
        start = datetime.combine(start_day, datetime.min.time(), zone)
        end = datetime.combine(end_day + timedelta(days=1), datetime.min.time(), zone)
        return start.timestamp(), end.timestamp()
    except OverflowError as exc:  # the day after 9999-12-31, or beyond the epoch's range
        raise BadQuery(f"the days {start_day} to {end_day} are out of range") from exc


def kpi_query(
    start_day: date, end_day: date, by: str, threshold: float, zone: str
) -> tuple[ZoneInfo, tuple[float, float]]:
    """The zone and the span of a KPI query; BadQuery (and nothing read) when it is not valid."""
    if by not in GROUPINGS:
        raise BadQuery(f"cannot group by {by!r}: use one of {', '.join(GROUPINGS)}")
    if not threshold >= 0:
        raise BadQuery(f"the threshold must be a number of seconds >= 0, not {threshold}")
    tz = parse_zone(zone)
    span = day_span(start_day, end_day, tz)
    longest = {"day": MAX_DAILY_DAYS, "hour": MAX_HOURLY_DAYS}.get(by)
    if longest is not None and (end_day - start_day).days >= longest:
        # Every day (or hour) has a row, calls or not: centuries of them would take gigabytes.
        raise BadQuery(f"by {by}, a period of at most {longest} days, please")
    return tz, span


def kpi_report(
    records: CallRecords, start_day: date, end_day: date, by: str, threshold: float, zone: str
) -> dict[str, Any]:
    """The KPIs of the calls started from start_day to end_day (inclusive) in `zone`."""
    tz, span = kpi_query(start_day, end_day, by, threshold, zone)
    return kpis(records.kpi_facts(*span), by, threshold, tz, start_day, end_day)


def public_event(event: CallEvent) -> dict[str, Any]:
    """An event as the contract shows it: `at` in ISO-8601 UTC, then `kind` and its fields."""
    data = to_dict(event)
    data.pop("v", None)
    data["at"] = iso(event.at)
    return data


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # as OWASP lists them


def csv_safe(value: object) -> str:
    """A cell a spreadsheet shows as text: formulas are neutralised with a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
