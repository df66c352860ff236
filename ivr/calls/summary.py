"""A call's summary, derived one way everywhere: a fold of its events.

`summarize(sid, events)` is the definition; `fold(summary, events)` continues a summary with newer
events and gives the same result as summarizing them all, so a webhook only needs the summary so
far. The outcome is a function of the summary alone (`outcome_of`), hence of the events.

Outcomes, in the order they win:
- `answered`: an agent or dialled number picked up;
- `voicemail`: a non-empty recording was left;
- `failed`: the safe fallback answered because of a fault, or Twilio reported the call failed;
- `abandoned`: the caller reached a route step and the call ended without any of the above;
- `self_service`: the call ended in the flow without reaching a route step;
- `in_progress`: not ended yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import orjson

from ivr.calls.events import (
    AgentAnswered,
    CallEnded,
    CallEvent,
    CallStarted,
    DialEnded,
    DialStarted,
    FallbackUsed,
    FlowHungUp,
    HoldJoined,
    HoldLeft,
    LanguageChosen,
    RouteDecided,
    StatusMissing,
    TicketCreated,
    TwilioStatus,
    VoicemailRecorded,
)

IN_PROGRESS = "in_progress"
OUTCOMES = ("answered", "voicemail", "abandoned", "self_service", "failed", IN_PROGRESS)
ANSWERED_STATUSES = frozenset({"completed", "answered"})
HOLD_BRIDGED = frozenset({"bridged", "bridging-in-process"})
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
FIELDS = (
    "sid",
    "from",
    "to",
    "flow",
    "language",
    "queue",
    "pool",
    "agent",
    "started_at",
    "answered_at",
    "ended_at",
    "outcome",
    "wait_seconds",
    "duration",
    "ticket",
)
INDEXED = ("flow", "queue", "pool", "outcome", "language", "caller")


@dataclass(frozen=True)
class CallSummary:
    """What supervisors read of a call; times are Unix seconds (None: not known yet)."""

    sid: str
    caller: str = ""
    called: str = ""
    from_country: str = ""
    flow: str = ""
    language: str = ""
    queue: str | None = None
    pool: str | None = None
    agent: str | None = None
    started_at: float | None = None
    route_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    duration: int | None = None
    ticket: str | None = None
    recording_sid: str | None = None
    voicemail_seconds: int = 0
    fault: str | None = None
    twilio_failed: bool = False
    waiting_since: float | None = None
    hold_since: float | None = None
    closed: bool = False
    events: int = 0
    agent_line: bool = False  # an agent calling in to take a waiting caller: not a customer's

    @property
    def outcome(self) -> str:
        """The call's outcome (see the module's docstring)."""
        return outcome_of(self)

    @property
    def wait_seconds(self) -> float | None:
        """From reaching the route step to an agent answering."""
        if self.answered_at is None or self.route_at is None:
            return None
        return round(max(0.0, self.answered_at - self.route_at), 3)

    @property
    def waiting(self) -> bool:
        """Whether the caller is waiting for an agent right now."""
        return self.waiting_since is not None and self.ended_at is None

    @property
    def finished(self) -> bool:
        """Whether the call has ended (its outcome is final)."""
        return self.ended_at is not None

    def index_values(self) -> dict[str, str]:
        """The call's value for each index, by index name (its indexes hold it under these once
        it has ended; a call under way is held only under `in_progress`: see `Store`)."""
        values = {
            "flow": self.flow,
            "queue": self.queue or "",
            "pool": self.pool or "",
            "outcome": self.outcome,
            "language": self.language,
            "caller": self.caller,
        }
        return {name: value for name, value in values.items() if value}

    def public(self) -> dict[str, Any]:
        """The summary as the contract spells it: ISO-8601 UTC times, null when unknown."""
        return {
            "sid": self.sid,
            "from": self.caller,
            "to": self.called,
            "flow": self.flow,
            "language": self.language,
            "queue": self.queue,
            "pool": self.pool,
            "agent": self.agent,
            "started_at": iso(self.started_at),
            "answered_at": iso(self.answered_at),
            "ended_at": iso(self.ended_at),
            "outcome": self.outcome,
            "wait_seconds": self.wait_seconds,
            "duration": self.duration,
            "ticket": self.ticket,
        }

    def to_json(self) -> str:
        """The fields, for Redis: those still at their default are left out (`from_json` fills
        them in), which halves a call's summary while it is under way."""
        # The fields are plain values: vars() gives them without asdict's deep copy.
        kept = {k: v for k, v in vars(self).items() if k == "sid" or v != _DEFAULTS[k]}
        return orjson.dumps(kept).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> CallSummary:
        """A summary read back from `to_json`; fields of other versions are ignored."""
        data = orjson.loads(text)
        if not data.keys() <= _NAMES:
            data = {k: v for k, v in data.items() if k in _NAMES}
        # A day's KPIs read tens of thousands of summaries: the frozen __init__ (one
        # object.__setattr__ per field) costs more than the parse, so fill the fields directly.
        summary = object.__new__(cls)
        summary.__dict__.update(_DEFAULTS)
        summary.__dict__.update(data)
        return summary


_NAMES = frozenset(f.name for f in fields(CallSummary))
_DEFAULTS = {f.name: f.default for f in fields(CallSummary) if f.name != "sid"}


def outcome_of(summary: CallSummary) -> str:
    """The outcome of a call from its summary."""
    if summary.ended_at is None:
        return IN_PROGRESS
    if summary.answered_at is not None:
        return "answered"
    if summary.voicemail_seconds > 0:
        return "voicemail"
    if summary.fault is not None or summary.twilio_failed:
        return "failed"
    if summary.route_at is not None:
        return "abandoned"
    return "self_service"


def summarize(sid: str, events: Iterable[CallEvent]) -> CallSummary:
    """The summary of a call from all its events, oldest first."""
    return fold(CallSummary(sid), events)


def fold(summary: CallSummary, events: Iterable[CallEvent]) -> CallSummary:
    """`summary` continued with newer events."""
    # One private copy, changed in place event by event: a replace() per event (its __init__
    # and a setattr per field) cost more than folding itself on every webhook.
    current = object.__new__(CallSummary)
    fields_of = current.__dict__
    fields_of.update(summary.__dict__)
    for event in events:
        fields_of.update(_changes(current, event))
        fields_of["events"] += 1
    return current


def _changes(s: CallSummary, event: CallEvent) -> dict[str, Any]:
    match event:
        case CallStarted():
            return {
                "caller": event.caller,
                "called": event.called,
                "from_country": event.from_country,
                "flow": event.flow,
                "language": event.language or s.language,
                "started_at": event.at if s.started_at is None else min(s.started_at, event.at),
            }
        case LanguageChosen():
            return {"language": event.language}
        case RouteDecided():
            if s.answered_at is not None:
                return {}
            # The caller has waited for a person since the first route step: a later one (an
            # overflow to another queue, say) carries on the same wait.
            first = event.at if s.route_at is None else min(s.route_at, event.at)
            return {"queue": event.queue, "route_at": first, "pool": event.chosen or s.pool}
        case DialStarted() if event.queue is not None:
            return {"agent_line": True}
        case DialStarted() if event.pool is not None and s.answered_at is None:
            return {"waiting_since": s.waiting_since or event.at, "pool": event.pool}
        case AgentAnswered() if s.answered_at is None:
            return {
                "answered_at": event.at,
                "agent": event.agent or None,  # none: taken from the hold line by a stranger
                "pool": event.pool or None,
                "waiting_since": None,
            }
        case DialEnded():
            done: dict[str, Any] = {"waiting_since": None}
            if event.status in ANSWERED_STATUSES and s.answered_at is None:
                talked = event.seconds if event.seconds is not None else 0
                done["answered_at"] = max(event.at - talked, s.route_at or s.started_at or 0.0)
                done["agent"] = event.agents[0] if len(event.agents) == 1 else s.agent
                done["pool"] = event.pool or s.pool
            return done
        case HoldJoined():
            return {"hold_since": event.at, "waiting_since": s.waiting_since or event.at}
        case HoldLeft():
            left: dict[str, Any] = {"hold_since": None, "waiting_since": None}
            if event.result in HOLD_BRIDGED and s.answered_at is None:
                joined = s.hold_since if s.hold_since is not None else event.at - event.seconds
                left["answered_at"] = joined + event.seconds
            return left
        case VoicemailRecorded():
            seconds = max(s.voicemail_seconds, event.seconds)
            return {"voicemail_seconds": seconds, "recording_sid": event.recording_sid or None}
        case FallbackUsed():
            return {"fault": event.reason or "fault"}
        case TwilioStatus():
            status: dict[str, Any] = {}
            if event.status == "failed":
                status["twilio_failed"] = True
            if event.status in FINAL_STATUSES:
                status["ended_at"] = s.ended_at if s.ended_at is not None else event.at
                status["waiting_since"] = None
                if event.duration is not None:
                    status["duration"] = event.duration
                elif s.started_at is not None:
                    status["duration"] = round(event.at - s.started_at)
            return status
        case FlowHungUp() | StatusMissing() | CallEnded():
            ended: dict[str, Any] = {"waiting_since": None}
            if s.ended_at is None:
                ended["ended_at"] = event.at
            if isinstance(event, CallEnded):
                ended["closed"] = True
                if event.duration is not None:
                    ended["duration"] = event.duration
            if "duration" not in ended and s.duration is None and s.started_at is not None:
                ended["duration"] = round(event.at - s.started_at)
            return ended
        case TicketCreated():
            return {"ticket": event.ticket}
    return {}


def iso(instant: float | None) -> str | None:
    """An instant as ISO-8601 UTC with a `Z`, or None."""
    if instant is None:
        return None
    text = datetime.fromtimestamp(instant, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def from_mapping(data: Mapping[str, Any]) -> CallSummary:
    """A summary from a mapping of its fields (extra keys ignored)."""
    return CallSummary(**{k: v for k, v in data.items() if k in _NAMES})
