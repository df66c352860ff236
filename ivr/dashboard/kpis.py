"""The KPIs of `ivr kpis` for a chosen period, grouping and time zone: a table and SVG charts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Blueprint, abort, render_template, request

from ivr.calls.kpis import GROUPINGS
from ivr.calls.queries import kpi_report, parse_day
from ivr.calls.records import CallRecords
from ivr.dashboard import charts
from ivr.dashboard.web import dashboard, services, zone
from ivr.errors import BadQuery

bp = Blueprint("kpis", __name__)
DEFAULT_DAYS = 7
MAX_DAYS = 366
MAX_HOURLY_DAYS = 31  # a row (and a bar) per hour: a month is already 744 of them
THRESHOLD_SECONDS = 20.0
CHARTS = (charts.calls_by_outcome, charts.service_level, charts.answer_times)


def _period(today: date) -> tuple[date, date]:
    """`from` and `to` of the query (the last week by default); 400 when not valid."""
    args = request.args
    try:
        end = parse_day(args["to"]) if args.get("to") else today
        start = parse_day(args["from"]) if args.get("from") else end - timedelta(DEFAULT_DAYS - 1)
    except BadQuery as exc:
        abort(400, str(exc))
    if end < start:
        abort(400, f"the last day {end} is before the first {start}")
    if (end - start).days >= MAX_DAYS:
        abort(400, f"a period of at most {MAX_DAYS} days, please")
    return start, end


def _threshold() -> float:
    """Seconds within which an answer counts for the service level (`--threshold`)."""
    text = request.args.get("threshold", "").strip()
    try:
        value = float(text) if text else THRESHOLD_SECONDS
    except ValueError:
        value = -1.0
    if not 0 <= value < 86400:
        abort(400, f"the threshold must be a number of seconds, not {text!r}")
    return value


@bp.get("/kpis")
def index() -> str:
    """KPIs per day, hour, queue, pool or language over a period, in the viewer's time zone."""
    today = datetime.fromtimestamp(dashboard().clock(), zone()).date()
    start, end = _period(today)
    by = request.args.get("by", "day")
    if by not in GROUPINGS:
        abort(400, f"group by one of {', '.join(GROUPINGS)}")
    if by == "hour" and (end - start).days >= MAX_HOURLY_DAYS:
        abort(400, f"by hour, a period of at most {MAX_HOURLY_DAYS} days, please")
    threshold = _threshold()
    records = CallRecords(services().store.redis)
    try:
        report = kpi_report(records, start, end, by, threshold, zone().key)
    except BadQuery as exc:  # e.g. the last day 9999-12-31: no day after it to end the span
        abort(400, str(exc))
    rows = report["rows"]
    return render_template(
        "dashboard/kpis.html",
        report=report,
        start=start,
        end=end,
        by=by,
        groupings=GROUPINGS,
        threshold=threshold,
        charts=[chart(rows) for chart in CHARTS],
    )
