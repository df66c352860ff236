"""Tickets as values: the voicemail facts the voice edge hands over, and the ticket built from them.

A ticket is serialized one way only (`Ticket.as_dict` / `Ticket.from_dict`), with a version
field, for Redis, the CLI, the API and the webhook sink alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.errors import IvrError

VERSION = 1
TRANSCRIPTION_OFF = "transcription is off for this voicemail step"
STATUSES = ("new", "delivered", "failed", "dead")
SINK_STATES = ("pending", "delivered", "failed", "dead")
RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
# The account of `ivr simulate`'s calls: no Twilio account has it, so no recording of it has audio.
SIMULATED_ACCOUNT_SID = "AC" + "0" * 32
CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
TICKET_ID = re.compile(r"^T-\d{8}-\d{4,}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")


class TicketError(IvrError):
    """A ticket that cannot be made, found or changed as asked."""


@dataclass(frozen=True)
class PoolTried:
    """One pool a call was offered to (or passed over), and why nobody there answered."""

    pool: str
    reason: str


@dataclass(frozen=True)
class Voicemail:
    """What the voice edge knows when a caller has left a message: the input of a ticket."""

    call_sid: str
    recording_sid: str
    recording_url: str
    seconds: int | None
    from_: str
    to: str
    at: datetime
    flow: str = ""
    language: str = ""
    queue: str = ""
    pools_tried: tuple[PoolTried, ...] = ()
    caller_country: str | None = None
    pool_zones: Mapping[str, str] = field(default_factory=dict)
    recording_status: str = "completed"
    transcribe: bool = True  # the voicemail step's `transcribe`: false keeps the words unread

    def is_empty(self) -> bool:
        """Whether there is nothing to listen to: Twilio's `absent`, or no seconds at all."""
        return self.recording_status == "absent" or not self.seconds

    def validate(self) -> None:
        """Refuse facts that cannot make a ticket (a bad SID would name a file)."""
        if not RECORDING_SID.match(self.recording_sid):
            raise TicketError(f"not a RecordingSid: {self.recording_sid!r}")
        if not CALL_SID.match(self.call_sid):
            raise TicketError(f"not a CallSid: {self.call_sid!r}")
        if self.at.tzinfo is None:
            raise TicketError("the instant of a voicemail must carry its time zone")
        if not self.recording_url.startswith(("https://", "http://")):
            raise TicketError(f"not a recording URL: {self.recording_url!r}")


@dataclass(frozen=True)
class Transcript:
    """The words of a voicemail and who wrote them down, or why nobody did."""

    text: str | None = None
    source: str | None = None
    reason: str = "not yet transcribed"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: text and source, or a `no transcript: <reason>` note."""
        if self.text is not None:
            return {"text": self.text, "source": self.source}
        return {"text": None, "source": None, "note": f"no transcript: {self.reason}"}

    def __str__(self) -> str:
        return self.text if self.text is not None else f"no transcript: {self.reason}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Transcript:
        """The inverse of `as_dict`."""
        if not data:
            return cls()
        if data.get("text") is not None:
            return cls(str(data["text"]), data.get("source"))
        note = str(data.get("note") or "")
        return cls(reason=note.removeprefix("no transcript: ") or "not yet transcribed")


@dataclass(frozen=True)
class Recording:
    """Where a voicemail's audio is: Twilio's URL, the local file once kept, and its length."""

    url: str
    seconds: int | None
    path: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`error` only when the download was refused or failed)."""
        out: dict[str, Any] = {"path": self.path, "url": self.url, "seconds": self.seconds}
        if self.error:
            out["error"] = self.error
        return out

    def with_error(self, error: str) -> Recording:
        """The same recording, flagged with why it was not kept."""
        return replace(self, error=error)

    def kept_at(self, path: str) -> Recording:
        """The same recording, kept at `path`."""
        return replace(self, path=path, error=None)


@dataclass(frozen=True)
class Ticket:
    """A voicemail become a ticket: the call's facts plus its delivery state."""

    id: str
    recording_sid: str
    call_sid: str
    from_: str
    to: str
    flow: str
    language: str
    queue: str
    created_at: datetime
    recording: Recording
    pools_tried: tuple[dict[str, Any], ...] = ()
    caller_local: dict[str, Any] | None = None
    transcript: Transcript = Transcript()
    status: str = "new"
    attempts: Mapping[str, int] = field(default_factory=dict)
    sinks: Mapping[str, str] = field(default_factory=dict)
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The one serialized form of a ticket."""
        return {
            "version": VERSION,
            "id": self.id,
            "recording_sid": self.recording_sid,
            "call_sid": self.call_sid,
            "from": self.from_,
            "to": self.to,
            "flow": self.flow,
            "language": self.language,
            "queue": self.queue,
            "pools_tried": [dict(p) for p in self.pools_tried],
            "created_at": iso(self.created_at),
            "caller_local": self.caller_local,
            "recording": self.recording.as_dict(),
            "transcript": self.transcript.as_dict(),
            "status": self.status,
            "attempts": dict(self.attempts),
            "sinks": dict(self.sinks),
            "last_error": self.last_error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ticket:
        """The inverse of `as_dict`; refuses a version it does not know."""
        if data.get("version") != VERSION:
            raise TicketError(f"ticket version {data.get('version')!r} is not {VERSION}")
        rec = data["recording"]
        return cls(
            id=data["id"],
            recording_sid=data["recording_sid"],
            call_sid=data["call_sid"],
            from_=data["from"],
            to=data["to"],
            flow=data["flow"],
            language=data["language"],
            queue=data["queue"],
            pools_tried=tuple(data.get("pools_tried") or ()),
            created_at=datetime.fromisoformat(data["created_at"].replace("Z", "+00:00")),
            caller_local=data.get("caller_local"),
            recording=Recording(rec["url"], rec.get("seconds"), rec.get("path"), rec.get("error")),
            transcript=Transcript.from_dict(data.get("transcript")),
            status=data.get("status", "new"),
            attempts=dict(data.get("attempts") or {}),
            sinks=dict(data.get("sinks") or {}),
            last_error=data.get("last_error"),
        )

    def with_(self, **changes: Any) -> Ticket:
        """A copy with some fields changed."""
        return replace(self, **changes)


def new_ticket(facts: Voicemail, ticket_id: str) -> Ticket:
    """The ticket of a voicemail, before any delivery; the clock is the voicemail's instant."""
    at = facts.at.astimezone(UTC)
    pools = tuple(
        {"pool": p.pool, "reason": p.reason, **local_time(at, facts.pool_zones.get(p.pool))}
        for p in facts.pools_tried
    )
    caller_zone = country_zone(facts.caller_country) if facts.caller_country else None
    return Ticket(
        id=ticket_id,
        recording_sid=facts.recording_sid,
        call_sid=facts.call_sid,
        from_=facts.from_,
        to=facts.to,
        flow=facts.flow,
        language=facts.language,
        queue=facts.queue,
        created_at=at,
        recording=Recording(facts.recording_url, facts.seconds),
        transcript=Transcript() if facts.transcribe else Transcript(reason=TRANSCRIPTION_OFF),
        pools_tried=pools,
        caller_local=(
            {"country": facts.caller_country, **local_time(at, caller_zone)}
            if facts.caller_country
            else None
        ),
    )


def ticket_prefix(at: datetime) -> str:
    """The day part of the ids of tickets made at `at` (the UTC day): `T-YYYYMMDD-`."""
    return at.astimezone(UTC).strftime("T-%Y%m%d-")


def local_time(at: datetime, zone: str | None) -> dict[str, Any]:
    """`{"timezone", "local_time"}` of an instant in a zone (nulls when the zone is unknown)."""
    if not zone:
        return {"timezone": None, "local_time": None}
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return {"timezone": zone, "local_time": None}
    return {"timezone": zone, "local_time": at.astimezone(tz).isoformat(timespec="seconds")}


def country_zone(country: str) -> str | None:
    """The main time zone of an ISO 3166 country (the first tzdata lists for it), if known."""
    return _country_zones().get(country.upper())


@cache
def _country_zones() -> dict[str, str]:
    # tzdata's zone.tab lists a country's zones most-populous region first (New York for US).
    try:
        text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - tzdata is a dependency
        return {}
    zones: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            zones.setdefault(parts[0], parts[2])
    return zones


def iso(at: datetime) -> str:
    """An instant as ISO-8601 UTC with a Z."""
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
