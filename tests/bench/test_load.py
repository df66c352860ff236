"""The sustained-load bench at a small scale: real servers, the open-loop player, its figures."""

from __future__ import annotations

import pytest

from bench import load

pytestmark = pytest.mark.server


def test_the_load_reaches_both_servers_and_reports_every_figure() -> None:
    figures = {f["name"]: f for f in load.run(rate=30, seconds=2)}
    for label in ("bare Flask", "ivr"):
        assert figures[f"{label}: errors"]["value"] == 0, figures[f"{label}: p50"]["note"]
        assert 0 < figures[f"{label}: p50"]["value"] <= figures[f"{label}: p99"]["value"]
    assert figures["ivr: p99"]["goal"] == load.P99_GOAL_MS
    assert figures["p99, ivr / bare Flask"]["value"] > 0
