"""Every fact about a call, as a typed event: the spine that call records, tickets and the
dashboard read.

Events are frozen values with a `kind` and the instant `at` (Unix seconds, read once per webhook
at the edge). One serializer turns them into JSON objects carrying a format version `v`; an event
of a kind this version does not know is read back as `Unknown`, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import orjson

FORMAT_VERSION = 1


@dataclass(frozen=True)
class CallEvent:
    """Base of every event: when it happened."""

    kind: ClassVar[str] = ""
    at: float


@dataclass(frozen=True)
class CallStarted(CallEvent):
    kind: ClassVar[str] = "call_started"
    caller: str = ""
    called: str = ""
    from_country: str = ""
    flow: str = ""
    version: str = ""
    language: str = ""


@dataclass(frozen=True)
class StepEntered(CallEvent):
    kind: ClassVar[str] = "step"
    step: str = ""


@dataclass(frozen=True)
class InputReceived(CallEvent):
    """Keys pressed or words said at a menu; `problem` is "" for a valid choice."""

    kind: ClassVar[str] = "input"
    step: str = ""
    digits: str = ""
    speech: str = ""
    confidence: float | None = None
    chosen: str | None = None
    problem: str = ""


@dataclass(frozen=True)
class LanguageChosen(CallEvent):
    kind: ClassVar[str] = "language"
    language: str = ""


@dataclass(frozen=True)
class MenuExhausted(CallEvent):
    kind: ClassVar[str] = "menu_exhausted"
    step: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class PassedPool:
    """A pool that could not take the call, and why."""

    pool: str
    reason: str


@dataclass(frozen=True)
class RouteDecided(CallEvent):
    """The caller reached a route step: the pools to try, in order, and the ones passed over."""

    kind: ClassVar[str] = "route"
    step: str = ""
    queue: str = ""
    language: str = ""
    pools: tuple[str, ...] = ()
    passed_over: tuple[PassedPool, ...] = ()
    chosen: str | None = None
    strategy: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class DialStarted(CallEvent):
    """One Dial: a pool's agents rung together, one agent of a sequence, or an outside number."""

    kind: ClassVar[str] = "dial"
    pool: str | None = None
    agents: tuple[str, ...] = ()
    number: str | None = None
    timeout: int = 0
    queue: str | None = None  # an agents' line taking the next caller waiting in this queue


@dataclass(frozen=True)
class DialEnded(CallEvent):
    """Twilio's DialCallStatus for a Dial; `seconds` is how long the dialled party talked."""

    kind: ClassVar[str] = "dial_result"
    pool: str | None = None
    agents: tuple[str, ...] = ()
    number: str | None = None
    status: str = ""
    seconds: int | None = None
    rung_seconds: float | None = None


@dataclass(frozen=True)
class AgentAnswered(CallEvent):
    """An agent picked up (the status callback of one dialled agent)."""

    kind: ClassVar[str] = "agent_answered"
    pool: str = ""
    agent: str = ""


@dataclass(frozen=True)
class HoldJoined(CallEvent):
    kind: ClassVar[str] = "hold_joined"
    queue: str = ""


@dataclass(frozen=True)
class HoldLeft(CallEvent):
    """How a wait in the hold line ended (Twilio's QueueResult) and how long it lasted."""

    kind: ClassVar[str] = "hold_left"
    queue: str = ""
    result: str = ""
    seconds: int = 0


@dataclass(frozen=True)
class VoicemailRecorded(CallEvent):
    """A voicemail's Record finished (its action, or the recording callback)."""

    kind: ClassVar[str] = "voicemail"
    step: str = ""
    recording_sid: str = ""
    url: str = ""
    seconds: int = 0
    status: str = ""
    source: str = "action"  # "action" | "callback" | "fallback"


@dataclass(frozen=True)
class TranscriptionArrived(CallEvent):
    kind: ClassVar[str] = "transcription"
    recording_sid: str = ""
    text: str = ""
    status: str = ""
    source: str = "twilio"


@dataclass(frozen=True)
class FallbackUsed(CallEvent):
    """The safe fallback answered instead of the flow, and why."""

    kind: ClassVar[str] = "fallback"
    reason: str = ""
    webhook: str = ""


@dataclass(frozen=True)
class TwilioStatus(CallEvent):
    """Twilio's status of the call: its status callback, or (`fetched`) asked of its REST API
    when no final callback came."""

    kind: ClassVar[str] = "status"
    status: str = ""
    duration: int | None = None
    fetched: bool | None = None  # None: called back, as nearly every status is


@dataclass(frozen=True)
class FlowHungUp(CallEvent):
    """The flow ended the call (a Hangup was answered)."""

    kind: ClassVar[str] = "hangup"
    step: str = ""


@dataclass(frozen=True)
class StatusMissing(CallEvent):
    """No final status came from Twilio, nor could be fetched, `waited` seconds after the
    call's last event: the record is closed as of that event (`at`)."""

    kind: ClassVar[str] = "status_missing"
    waited: int = 0


@dataclass(frozen=True)
class CallEnded(CallEvent):
    """Twilio's final status closed the call record."""

    kind: ClassVar[str] = "call_ended"
    outcome: str = ""
    duration: int | None = None


@dataclass(frozen=True)
class TicketCreated(CallEvent):
    kind: ClassVar[str] = "ticket"
    ticket: str = ""
    recording_sid: str = ""


@dataclass(frozen=True)
class Unknown(CallEvent):
    """An event of a kind this version does not know, kept as it was read."""

    name: str = ""
    data: dict[str, Any] = field(default_factory=dict)


KINDS: dict[str, type[CallEvent]] = {
    cls.kind: cls
    for cls in (
        CallStarted,
        StepEntered,
        InputReceived,
        LanguageChosen,
        MenuExhausted,
        RouteDecided,
        DialStarted,
        DialEnded,
        AgentAnswered,
        HoldJoined,
        HoldLeft,
        VoicemailRecorded,
        TranscriptionArrived,
        FallbackUsed,
        TwilioStatus,
        FlowHungUp,
        StatusMissing,
        CallEnded,
        TicketCreated,
    )
}
_FIELDS = {
    kind: tuple(f.name for f in fields(cls) if f.name != "at") for kind, cls in KINDS.items()
}


def to_dict(event: CallEvent) -> dict[str, Any]:
    """The event as a JSON-ready object: `v`, `kind`, `at`, then its fields."""
    if isinstance(event, Unknown):
        return {**event.data, "v": FORMAT_VERSION, "kind": event.name, "at": event.at}
    data: dict[str, Any] = {"v": FORMAT_VERSION, "kind": event.kind, "at": event.at}
    for name in _FIELDS[event.kind]:
        value = getattr(event, name)
        if isinstance(value, tuple) and value and isinstance(value[0], PassedPool):
            value = [{"pool": p.pool, "reason": p.reason} for p in value]
        data[name] = value
    return data


def to_json(event: CallEvent) -> str:
    """The event as compact JSON."""
    return orjson.dumps(to_dict(event)).decode()


def from_dict(data: dict[str, Any]) -> CallEvent:
    """An event read back from `to_dict` (of this or an older format version)."""
    kind = str(data.get("kind", ""))
    at = float(data.get("at", 0.0))
    cls = KINDS.get(kind)
    if cls is None:
        rest = {k: v for k, v in data.items() if k not in ("v", "kind", "at")}
        return Unknown(at=at, name=kind, data=rest)
    values: dict[str, Any] = {}
    for name in _FIELDS[kind]:
        if name not in data:
            continue
        value = data[name]
        if name == "passed_over":
            value = tuple(PassedPool(str(p["pool"]), str(p["reason"])) for p in value)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return cls(at=at, **values)


def from_json(text: str | bytes) -> CallEvent:
    """An event read back from `to_json`."""
    return from_dict(orjson.loads(text))
