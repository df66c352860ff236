"""Prometheus metrics. Under gunicorn every worker writes to PROMETHEUS_MULTIPROC_DIR (set by
`ivr serve`) and /metrics adds the workers up; each app host exposes its own."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

WEBHOOKS = Counter(
    "ivr_webhooks_total",
    "Voice webhooks answered, by kind and result (ok, replayed, fallback, refused, bad_request).",
    ["kind", "result"],
)
WEBHOOK_SECONDS = Histogram(
    "ivr_webhook_seconds",
    "Time to answer a voice webhook.",
    ["kind"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CALLS_STARTED = Counter("ivr_calls_started_total", "Calls started, by flow.", ["flow"])
CALLS_ENDED = Counter(
    "ivr_calls_ended_total", "Calls ended, by outcome (answered, voicemail, abandoned, ...).",
    ["outcome"],
)  # fmt: skip
CALLS_CLOSED_LATE = Counter(
    "ivr_calls_closed_late_total",
    "Calls closed without their final status callback, by how: twilio (the status its REST API "
    "gave) or unreported (a day on, at their last event).",
    ["how"],
)
ANSWER_SECONDS = Histogram(
    "ivr_answer_seconds",
    "Time to answer: from reaching the route step to an agent answering, by queue.",
    ["queue"],
    buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600),
)
ROUTES = Counter(
    "ivr_routes_total", "Route decisions, by queue and first pool (none: straight to otherwise).",
    ["queue", "pool"],
)  # fmt: skip


def declare_series() -> None:
    """Expose the series alerts watch at 0 before their first count: an alert on a series that
    does not exist yet sees no data rather than none late, and a supervisor reading /metrics for
    `ivr_calls_closed_late_total` finds it."""
    from ivr.calls.summary import IN_PROGRESS, OUTCOMES

    for how in ("twilio", "unreported"):
        CALLS_CLOSED_LATE.labels(how)
    for outcome in OUTCOMES:
        if outcome != IN_PROGRESS:
            CALLS_ENDED.labels(outcome)


def exposition(waiting: int | None = None) -> tuple[bytes, str]:
    """The metrics of this host (all its workers) in Prometheus text format, with the number
    of callers waiting for an agent now (read from Redis, shared by every host) when known."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if waiting is not None:
        body += (
            b"# HELP ivr_callers_waiting Callers waiting for an agent now (all hosts).\n"
            b"# TYPE ivr_callers_waiting gauge\n"
            b"ivr_callers_waiting %d\n" % waiting
        )
    return body, CONTENT_TYPE_LATEST
