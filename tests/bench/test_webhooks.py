"""The webhook bench at a small scale: its four servers, every webhook, every figure, no failure."""

from __future__ import annotations

import re

import pytest

from bench import webhooks

pytestmark = pytest.mark.server


def test_every_webhook_is_measured_on_every_server_without_a_failure() -> None:
    figures = {f["name"]: f for f in webhooks.run(requests=2 * webhooks.ROUNDS, clients=2)}
    for webhook in webhooks.WEBHOOKS:
        labels = ["bare Flask", "ivr", "Flask + HMAC + one Redis write"]
        if webhook != "status":
            labels.append("ivr without events")
        for label in labels:
            rate = figures[f"{webhook} webhook, {label}: rate"]
            assert "FAILED" not in rate["note"], rate
            assert rate["value"] > 0
            assert figures[f"{webhook} webhook, {label}: p50"]["value"] > 0
        ratio = figures[f"{webhook} webhook p50, ivr / bare Flask"]
        assert ratio["goal"] == webhooks.P50_GOAL and ratio["value"] > 0
        assert figures[f"{webhook} webhook rate, ivr / bare Flask"]["goal"] == webhooks.RATE_GOAL
    for webhook in ("incoming", "menu", "route"):
        share = figures[f"{webhook} webhook event writing, share of p50"]
        assert share["goal"] == webhooks.EVENTS_GOAL and share["unit"] == "%"
        # The spread of the rounds is given, and holds the median.
        spread = re.search(r"middle half of the rounds (-?[\d.]+) to (-?[\d.]+) %", share["note"])
        assert spread, share
        low, high = float(spread[1]), float(spread[2])
        assert low - 0.05 <= share["value"] <= high + 0.05
