"""Calls on record built from events at pinned instants, through Store.record."""

from __future__ import annotations

from ivr.calls.events import (
    AgentAnswered,
    CallEvent,
    CallStarted,
    FlowHungUp,
    PassedPool,
    RouteDecided,
    TwilioStatus,
    VoicemailRecorded,
)
from ivr.calls.summary import CallSummary
from ivr.store import Store

T0 = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC


def call_events(
    start: float,
    outcome: str = "answered",
    wait: float = 5.0,
    queue: str = "billing",
    pool: str = "hanoi",
    language: str = "en-US",
    caller: str = "+84901111222",
    flow: str = "support",
) -> list[CallEvent]:
    """A call's events: started, then per outcome a route, an answer, a voicemail or a hangup."""
    events: list[CallEvent] = [
        CallStarted(start, caller=caller, called="+15005550006", flow=flow, language=language)
    ]
    route = start + 10
    if outcome in ("answered", "abandoned", "voicemail"):
        passed = (PassedPool("cairo", "off shift"),)
        decided = RouteDecided(route, step="billing", queue=queue, language=language,
                               pools=(pool,), passed_over=passed, chosen=pool)  # fmt: skip
        events.append(decided)
    if outcome == "answered":
        events.append(AgentAnswered(route + wait, pool=pool, agent="lan"))
    if outcome == "voicemail":
        events.append(VoicemailRecorded(route + 30, recording_sid="RE1", seconds=12))
    if outcome == "self_service":
        events.append(FlowHungUp(start + 20, step="bye"))
    if outcome == "failed":
        events.append(TwilioStatus(start + 1, status="failed"))
        return events
    events.append(TwilioStatus(start + 120, status="completed", duration=120))
    return events


def record_call(store: Store, sid: str, start: float, **options: object) -> CallSummary:
    """Put one call on record and return its summary."""
    return store.record(sid, call_events(start, **options))  # type: ignore[arg-type]
