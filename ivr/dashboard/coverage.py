"""The week's coverage per queue: the SVG grid of `ivr coverage` and its gaps, listed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from flask import Blueprint, abort, render_template, request
from markupsafe import Markup

from ivr.dashboard.web import dashboard, services, zone
from routing.coverage import gaps, serving, why_closed
from routing.model import Pool, Pools
from routing.svg import render

DAYS = 7
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)
bp = Blueprint("coverage", __name__, url_prefix="/coverage")


@dataclass(frozen=True)
class Gap:
    """A stretch with nobody on shift, and why each pool is closed as it begins."""

    start: datetime
    end: datetime
    why: list[tuple[Pool, str]]


@dataclass(frozen=True)
class QueueCoverage:
    """One queue over the week: who serves it, the drawing, and when nobody does."""

    queue: str
    pools: tuple[Pool, ...]
    svg: Markup
    gaps: list[Gap]


@bp.get("")
def index() -> str:
    """Coverage of every queue (or the one asked for) over a week from a day's midnight."""
    flowset = services().registry.current()
    pools = (flowset.pools if flowset else None) or Pools()
    first_day = _first_day(request.args.get("from", ""))
    language = request.args.get("language", "").strip() or None
    queue = request.args.get("queue", "").strip()
    queues = sorted(pools.queues())
    if queue and queue not in queues:
        abort(400, f"no pool serves a queue {queue!r}")
    start = datetime.combine(first_day, datetime.min.time(), zone()).astimezone(UTC)
    end = start + timedelta(days=DAYS)  # real days, whatever the clocks do meanwhile
    shown = [_queue(pools, q, language, start, end) for q in ([queue] if queue else queues)]
    languages = sorted({tag for pool in pools for tag in pool.languages})
    return render_template(
        "dashboard/coverage.html", coverage=shown, queues=queues, queue=queue,
        languages=languages, language=language or "", first_day=first_day, end=end,
    )  # fmt: skip


def _first_day(text: str) -> date:
    if not text.strip():
        return datetime.fromtimestamp(dashboard().clock(), zone()).date()
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        abort(400, f"not a date (YYYY-MM-DD): {text!r}")
    # Shifts and closures are worked out days either side of the week: near the ends of the
    # calendar those days do not exist.
    if not FIRST_DAY <= day <= LAST_DAY:
        abort(400, f"a week from {FIRST_DAY} to {LAST_DAY}, please, not from {day}")
    return day


def _queue(
    pools: Pools, queue: str, language: str | None, start: datetime, end: datetime
) -> QueueCoverage:
    involved = serving(pools, queue, language)
    title = f"Queue {queue}{f' in {language}' if language else ''}: who is on shift (UTC)"
    # The drawing escapes every name it writes, so it can go into the page as it is.
    svg = Markup(render(involved, start, end, title))
    found = gaps(pools, queue, language, start, end)
    listed = [Gap(s, e, why_closed(involved, queue, s)) for s, e in found]
    return QueueCoverage(queue, involved, svg, listed)
