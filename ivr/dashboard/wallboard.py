"""The wallboard: pools on shift, agents available and away, the next coverage gaps."""

from __future__ import annotations

import json
import threading
import time as clocks
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import redis
from flask import Blueprint, Response, current_app, g, render_template

from ivr.calls.kpis import totals
from ivr.calls.records import CallRecords
from ivr.dashboard.board import LOOK_AHEAD_SECONDS, next_gaps, pools_now
from ivr.dashboard.web import dashboard, services
from ivr.store import EVENTS_KEY
from ivr.tickets.store import TicketStore
from routing.model import Pools

bp = Blueprint("wallboard", __name__)
SERVICE_LEVEL_SECONDS = 20
LIVE_SECONDS = 25.0  # then the browser reconnects: no worker thread is held for long
LIVE_BLOCK_MS = 2000
LIVE_STREAMS_PER_WORKER = 2
_STREAMS = threading.BoundedSemaphore(LIVE_STREAMS_PER_WORKER)


@bp.get("/live")
def live() -> Response:
    """Server-Sent Events: the call figures again whenever calls' events arrive (the wallboard's
    script listens; without JavaScript the page's own refresh does the same, more slowly)."""
    zone = g.zone_name
    connection = services().store.redis
    clock = dashboard().clock
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def updates() -> Iterator[str]:
        last = "$"
        deadline = clocks.monotonic() + LIVE_SECONDS
        yield "retry: 2000\n\n"
        while clocks.monotonic() < deadline:
            try:
                found = cast(
                    list[Any], connection.xread({EVENTS_KEY: last}, count=500, block=LIVE_BLOCK_MS)
                )
            except redis.RedisError:
                yield ": redis unavailable\n\n"
                return
            if not found:
                yield ": idle\n\n"
                continue
            last = found[-1][1][-1][0].decode()
            with app.test_request_context():
                g.zone_name = zone
                figures = call_figures(clock())
            yield f"event: figures\ndata: {json.dumps(figures, ensure_ascii=False)}\n\n"

    if not _STREAMS.acquire(blocking=False):
        # Webhooks share this worker's threads: a few streams at most, the rest refresh.
        return Response("too many live wallboards on this worker\n", 503, mimetype="text/plain")
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    response = Response(updates(), mimetype="text/event-stream", headers=headers)
    # Released when the server closes the response, which it does even when the stream never
    # starts (a HEAD request, a client gone before the first byte); a `finally` in the
    # generator would then never run and the slot would be lost for good.
    response.call_on_close(_STREAMS.release)
    return response


def call_figures(at: float) -> dict[str, str]:
    """The wallboard's call figures now; today is the viewer's day."""
    store = services().store
    zone = ZoneInfo(g.zone_name)
    today = datetime.fromtimestamp(at, zone).date()
    start = datetime.combine(today, time(0), zone).timestamp()
    tomorrow = datetime.combine(today + timedelta(days=1), time(0), zone).timestamp()
    records = CallRecords(store.redis)
    # Re-done for every update of a live wallboard: the day's totals only, no grouping.
    day = totals(records.kpi_facts(start, min(at + 1, tomorrow)), SERVICE_LEVEL_SECONDS)
    since = store.longest_wait_since()
    waiting = store.waiting_count()
    counts = TicketStore(store.redis).counts()
    return {
        "Waiting now": str(waiting),
        "Longest wait": _seconds(at - since) if since is not None else "—",
        "In progress": str(store.in_progress_count()),
        "Service level": _percent(day["service_level"]),
        "ASA": _seconds(day["asa_seconds"]) if day["asa_seconds"] is not None else "—",
        "Abandonment": _percent(day["abandon_rate"]),
        "Voicemails waiting": str(counts["new"] + counts["failed"]),
    }


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _seconds(value: float) -> str:
    whole = max(0, round(value))
    return f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{whole} s"


@bp.get("")
def index() -> str:
    """The wallboard, at this instant, on the viewer's clock."""
    at = dashboard().clock()
    flowset = services().registry.current()
    pools = (flowset.pools if flowset else None) or Pools()
    rows = pools_now(pools, services().store.away(), at)
    return render_template(
        "dashboard/wallboard.html",
        at=at,
        figures=call_figures(at),
        pools=rows,
        gaps=next_gaps(pools, at),
        look_ahead_days=LOOK_AHEAD_SECONDS // 86400,
    )
