"""The dashboard bench at a tiny scale, against a real `ivr serve`, so that it cannot rot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bench import dashboard

pytestmark = pytest.mark.server


def test_the_dashboard_bench_measures_every_figure_through_the_server() -> None:
    figures = dashboard.run(calls=2_000, events=5)
    by_name = {figure["name"]: figure for figure in figures}
    pages = [
        "calls page, newest page",
        "calls page, queue=billing & outcome=abandoned",
        "calls page, queue=billing & outcome=abandoned, next page by cursor",
        "kpis page, one day",
    ]
    for page in pages:
        assert by_name[f"{page}: p50"]["value"] > 0 and by_name[f"{page}: p50"]["goal"] > 0
        assert by_name[f"{page}: max"]["value"] >= by_name[f"{page}: p50"]["value"]
    assert "50 rows" in by_name["calls page, newest page: p50"]["note"]
    live = by_name["wallboard, call event to SSE message: p99"]
    assert live["goal"] == dashboard.LIVE_GOAL_MS and live["ratio"] is not None
    assert "LOST" not in by_name["wallboard, call event to SSE message: p50"]["note"]


def test_the_late_zone_shows_ten_at_night_at_every_hour() -> None:
    start = datetime(2026, 12, 3, tzinfo=UTC)
    for hour in range(24):
        instant = (start + timedelta(hours=hour, minutes=30)).timestamp()
        name = dashboard.late_zone(instant)
        assert datetime.fromtimestamp(instant, ZoneInfo(name)).hour == 22, (hour, name)
