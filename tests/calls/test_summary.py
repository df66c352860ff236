"""Outcomes and summaries: one fold of the events, checked against a plain reading of the rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.calls import events as ev
from ivr.calls.summary import CallSummary, fold, summarize

SID = "CA" + "a" * 32
T0 = 1_790_000_000.0


def _event(kind: str, at: float) -> ev.CallEvent:
    match kind:
        case "route":
            return ev.RouteDecided(at, queue="billing", pools=("hanoi",), chosen="hanoi")
        case "dial":
            return ev.DialStarted(at, pool="hanoi", agents=("lan",), timeout=20)
        case "no_answer":
            return ev.DialEnded(at, pool="hanoi", agents=("lan",), status="no-answer")
        case "answered":
            return ev.DialEnded(at, pool="hanoi", agents=("lan",), status="completed", seconds=5)
        case "agent":
            return ev.AgentAnswered(at, pool="hanoi", agent="lan")
        case "bridged":
            return ev.HoldLeft(at, queue="billing", result="bridged", seconds=3)
        case "voicemail":
            return ev.VoicemailRecorded(at, recording_sid="RE" + "1" * 32, url="u", seconds=9)
        case "empty_voicemail":
            return ev.VoicemailRecorded(at, recording_sid="RE" + "2" * 32, url="u", seconds=0)
        case "fallback":
            return ev.FallbackUsed(at, reason="FlowFault: gone")
        case "failed":
            return ev.TwilioStatus(at, status="failed")
        case "completed":
            return ev.TwilioStatus(at, status="completed", duration=40)
        case "ringing":
            return ev.TwilioStatus(at, status="in-progress")
        case "hangup":
            return ev.FlowHungUp(at, step="bye")
    return ev.StepEntered(at, step="main")


KINDS = [
    "route",
    "dial",
    "no_answer",
    "answered",
    "agent",
    "bridged",
    "voicemail",
    "empty_voicemail",
    "fallback",
    "failed",
    "completed",
    "ringing",
    "hangup",
    "step",
]


def oracle(kinds: list[str]) -> str:
    """The contract's outcome, read straight off the list of what happened."""
    if not any(k in ("completed", "failed", "hangup") for k in kinds):
        return "in_progress"
    if any(k in ("answered", "agent", "bridged") for k in kinds):
        return "answered"
    if "voicemail" in kinds:
        return "voicemail"
    if "fallback" in kinds or "failed" in kinds:
        return "failed"
    if "route" in kinds:
        return "abandoned"
    return "self_service"


def started(at: float = T0) -> ev.CallStarted:
    return ev.CallStarted(at, caller="+84901111222", called="+15005550006", flow="support")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(KINDS), max_size=12), st.integers(0, 12))
def test_outcome_is_the_contracts_rule_and_folding_in_parts_changes_nothing(
    kinds: list[str], cut: int
) -> None:
    events = [started(), *(_event(k, T0 + 10 * (i + 1)) for i, k in enumerate(kinds))]
    whole = summarize(SID, events)
    assert whole.outcome == oracle(kinds)
    in_parts = fold(fold(CallSummary(SID), events[:cut]), events[cut:])
    assert in_parts == whole
    assert CallSummary.from_json(whole.to_json()) == whole


def test_wait_is_from_the_route_to_the_agent_answering() -> None:
    events = [
        started(),
        ev.RouteDecided(T0 + 30, queue="billing", pools=("hanoi",), chosen="hanoi"),
        ev.DialStarted(T0 + 30, pool="hanoi", agents=("lan", "minh")),
        ev.AgentAnswered(T0 + 42, pool="hanoi", agent="minh"),
        ev.DialEnded(T0 + 300, pool="hanoi", agents=("lan", "minh"), status="completed"),
        ev.TwilioStatus(T0 + 301, status="completed", duration=301),
    ]
    summary = summarize(SID, events)
    assert summary.outcome == "answered" and summary.agent == "minh"
    assert summary.wait_seconds == 12.0 and summary.duration == 301
    public = summary.public()
    assert public["answered_at"] == "2026-09-21T14:14:02.000Z"
    assert public["queue"] == "billing" and public["pool"] == "hanoi"


def test_an_overflow_to_another_route_carries_on_the_same_wait() -> None:
    events = [
        started(),
        ev.RouteDecided(T0 + 10, queue="billing", pools=("hanoi",), chosen="hanoi"),
        ev.DialStarted(T0 + 10, pool="hanoi", agents=("lan",)),
        ev.DialEnded(T0 + 30, pool="hanoi", agents=("lan",), status="no-answer"),
        ev.RouteDecided(T0 + 30, queue="tech", pools=("cairo",), chosen="cairo"),
        ev.DialStarted(T0 + 30, pool="cairo", agents=("amr",)),
        ev.AgentAnswered(T0 + 35, pool="cairo", agent="amr"),
    ]
    summary = summarize(SID, events)
    assert summary.wait_seconds == 25.0  # 20 s ringing billing, then 5 s ringing tech
    assert (summary.queue, summary.pool, summary.agent) == ("tech", "cairo", "amr")


def test_without_the_agents_callback_the_answer_is_the_dial_result_less_the_talk() -> None:
    events = [
        started(),
        ev.RouteDecided(T0 + 10, queue="tech", pools=("cairo",), chosen="cairo"),
        ev.DialStarted(T0 + 10, pool="cairo", agents=("amr",)),
        ev.DialEnded(T0 + 100, pool="cairo", agents=("amr",), status="completed", seconds=80),
    ]
    summary = summarize(SID, events)
    assert summary.wait_seconds == 10.0 and summary.agent == "amr"


def test_waiting_lasts_from_the_first_ring_to_the_answer_or_the_end() -> None:
    ringing = summarize(SID, [started(), ev.DialStarted(T0 + 5, pool="hanoi", agents=("lan",))])
    assert ringing.waiting and ringing.waiting_since == T0 + 5
    over = fold(ringing, [ev.TwilioStatus(T0 + 20, status="completed")])
    assert not over.waiting and over.outcome == "self_service"


def test_unknown_event_kinds_are_kept_not_dropped() -> None:
    read = ev.from_dict({"v": 9, "kind": "future_thing", "at": T0, "x": 1})
    assert isinstance(read, ev.Unknown) and read.data == {"x": 1}
    assert ev.to_dict(read) == {"v": 1, "kind": "future_thing", "at": T0, "x": 1}
    route = ev.RouteDecided(
        T0, queue="q", pools=("a",), passed_over=(ev.PassedPool("b", "off shift"),)
    )
    assert ev.from_json(ev.to_json(route)) == route
