"""What is remembered of a call between two webhooks, and what Twilio tells us in each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import orjson


@dataclass(frozen=True)
class Endpoint:
    """Where an agent is rung: a phone number, a Twilio client or a SIP address."""

    kind: str  # "number" | "client" | "sip"
    address: str


@dataclass(frozen=True)
class DialAttempt:
    """One Dial of a route: a pool's agents rung together, or one agent of a sequence."""

    pool: str
    targets: tuple[Endpoint, ...]
    timeout: int
    caller_id: str | None = None
    agents: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteProgress:
    """A route under way: the attempts planned when the caller reached it, and the current one.

    `unordered` names the pools whose turn (round robin, longest idle) is taken only when the
    call reaches them: their attempts stand in file order until then.
    """

    queue: str
    attempts: tuple[DialAttempt, ...]
    index: int = 0
    unordered: tuple[str, ...] = ()

    @property
    def current(self) -> DialAttempt:
        """The attempt being rung now."""
        return self.attempts[self.index]


@dataclass(frozen=True)
class CallState:
    """A call between webhooks: where it waits, in which language, and what it carries."""

    sid: str
    flow: str
    version: str
    step: str
    language: str
    turn: int = 0
    attempts: int = 0
    variables: Mapping[str, str] = field(default_factory=dict)
    caller: str = ""
    called: str = ""
    from_country: str = ""
    route: RouteProgress | None = None
    ended: bool = False
    outcome: str = ""

    def evolve(self, **changes: Any) -> CallState:
        """A copy with some fields changed."""
        # Each webhook evolves the state several times; replace() re-runs the frozen __init__.
        if not changes.keys() <= _STATE_NAMES:
            raise TypeError(f"CallState has no field {sorted(changes.keys() - _STATE_NAMES)}")
        copy = object.__new__(CallState)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        return copy

    def to_json(self) -> str:
        """The state as compact JSON, for Redis."""
        # Built by hand, the route left to orjson's own dataclass encoding: dataclasses.asdict
        # deep-copies every value and cost more than the rest of the webhook.
        data = {name: getattr(self, name) for name in _STATE_FIELDS}
        data["variables"] = dict(self.variables)
        return orjson.dumps(data).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> CallState:
        """The state read back from `to_json`."""
        data = orjson.loads(text)
        route = data.pop("route", None)
        if route is not None:
            route = RouteProgress(
                queue=route["queue"],
                index=route["index"],
                attempts=tuple(
                    DialAttempt(
                        pool=a["pool"],
                        timeout=a["timeout"],
                        caller_id=a["caller_id"],
                        agents=tuple(a["agents"]),
                        targets=tuple(Endpoint(t["kind"], t["address"]) for t in a["targets"]),
                    )
                    for a in route["attempts"]
                ),
                # States written before pools were ordered on reaching them have none.
                unordered=tuple(route.get("unordered", ())),
            )
        return cls(route=route, **data)


_STATE_FIELDS = tuple(f.name for f in fields(CallState))
_STATE_NAMES = frozenset(_STATE_FIELDS)


@dataclass(frozen=True)
class CallInfo:
    """Who calls whom, as Twilio tells it on the first webhook."""

    sid: str
    caller: str = ""
    called: str = ""
    from_country: str = ""


@dataclass(frozen=True)
class Gathered:
    """A menu's result: keys pressed and/or words said (all empty when the caller was silent)."""

    digits: str = ""
    speech: str = ""
    confidence: float | None = None


@dataclass(frozen=True)
class Dialed:
    """A Dial's result, Twilio's DialCallStatus, and how long the dialled party talked."""

    status: str
    seconds: int | None = None


@dataclass(frozen=True)
class Recorded:
    """A voicemail's result."""

    recording_url: str = ""
    duration: int = 0
    recording_sid: str = ""


@dataclass(frozen=True)
class Queued:
    """How a wait in a hold queue ended, Twilio's QueueResult, and how long it lasted."""

    result: str
    seconds: int = 0


Event = Gathered | Dialed | Recorded | Queued
