"""Twilio's webhook parameters, checked and bounded before anything acts on them."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from ivr.calls.events import VoicemailRecorded
from ivr.errors import BadRequest
from ivr.flows.state import CallInfo, Dialed, Event, Gathered, Queued, Recorded

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}$")
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}$")
MAX_DIGITS = 32
MAX_SPEECH = 500
MAX_FIELD = 512
# Counts of seconds, positions: Twilio's are far below this, and a bigger one (garbage) would not
# fit the 64-bit integers the call's events are stored as.
MAX_INTEGER = 2**31 - 1


def parse_form(body: str) -> dict[str, str]:
    """A form-encoded body as a dict, the last value of a repeated name winning: what
    `dict(parse_qsl(body, keep_blank_values=True))` gives, in half the time on Twilio's forms,
    whose values are mostly plain (only a pair with `%` or `+` in it is unquoted)."""
    form = {}
    for pair in body.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in pair or "+" in pair:
            name, value = unquote_plus(name), unquote_plus(value)
        form[name] = value
    return form


@dataclass(frozen=True)
class CallParams:
    """The parameters of one voice webhook that the product reads."""

    sid: str
    caller: str = ""
    called: str = ""
    from_country: str = ""
    digits: str = ""
    speech: str = ""
    confidence: float | None = None
    dial_status: str = ""
    dial_seconds: int | None = None
    parent_sid: str = ""
    recording_url: str = ""
    recording_sid: str = ""
    recording_duration: int = 0
    recording_status: str = ""
    call_status: str = ""
    call_duration: int | None = None
    transcript: str = ""
    transcript_status: str = ""
    queue_result: str = ""
    queue_position: int | None = None
    queue_seconds: int = 0
    average_queue_seconds: int | None = None

    @property
    def call(self) -> CallInfo:
        """Who calls whom."""
        return CallInfo(self.sid, self.caller, self.called, self.from_country)

    def event(self, kind: str) -> Event:
        """What the webhook of `kind` reports about the waiting step."""
        if kind == "dial":
            return Dialed(self.dial_status or "failed", self.dial_seconds)
        if kind == "recorded":
            return Recorded(self.recording_url, self.recording_duration, self.recording_sid)
        if kind == "queue":
            return Queued(self.queue_result or "error", self.queue_seconds)
        return Gathered(self.digits, self.speech, self.confidence)

    def voicemail(self, at: float, source: str) -> VoicemailRecorded:
        """The recording this request reports, as a call event."""
        return VoicemailRecorded(
            at,
            recording_sid=self.recording_sid,
            url=self.recording_url,
            seconds=self.recording_duration,
            status=self.recording_status,
            source=source,
        )

    def fingerprint(self, kind: str) -> str:
        """The request's input, to tell a retry from a different request."""
        return json.dumps(
            [
                kind,
                self.digits,
                self.speech,
                self.dial_status,
                self.recording_url,
                self.queue_result,
            ]
        )


def parse_params(form: Mapping[str, str]) -> CallParams:
    """Checked parameters, or BadRequest naming what is wrong."""
    sid = form.get("CallSid", "")
    if not CALL_SID.match(sid):
        raise BadRequest("CallSid is missing or malformed")
    digits = form.get("Digits", "")
    if len(digits) > MAX_DIGITS or not re.fullmatch(r"[0-9*#wW]*", digits):
        # Keys the caller cannot have pressed: an invalid choice, never a crash.
        digits = "?"
    return CallParams(
        sid=sid,
        caller=_field(form, "From"),
        called=_field(form, "To"),
        from_country=_field(form, "FromCountry")[:2].upper(),
        digits=digits,
        speech=form.get("SpeechResult", "")[:MAX_SPEECH],
        confidence=_number(form.get("Confidence")),
        dial_status=_field(form, "DialCallStatus").lower(),
        dial_seconds=_integer(form.get("DialCallDuration")),
        parent_sid=parent if CALL_SID.match(parent := form.get("ParentCallSid", "")) else "",
        recording_url=_field(form, "RecordingUrl"),
        recording_sid=recording
        if RECORDING_SID.match(recording := form.get("RecordingSid", ""))
        else "",
        recording_duration=_integer(form.get("RecordingDuration")) or 0,
        recording_status=_field(form, "RecordingStatus").lower(),
        call_status=_field(form, "CallStatus").lower(),
        call_duration=_integer(form.get("CallDuration")),
        transcript=form.get("TranscriptionText", "")[:20000],
        transcript_status=_field(form, "TranscriptionStatus").lower(),
        queue_result=_field(form, "QueueResult").lower(),
        queue_position=_integer(form.get("QueuePosition")),
        queue_seconds=_integer(form.get("QueueTime")) or 0,
        average_queue_seconds=_integer(form.get("AvgQueueTime")),
    )


def _field(form: Mapping[str, str], name: str) -> str:
    return form.get(name, "")[:MAX_FIELD].strip()


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _integer(raw: str | None) -> int | None:
    """A count Twilio sent, or None when it is missing or not one (negative, absurdly large)."""
    if not raw or len(raw) > 12:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 0 <= value <= MAX_INTEGER else None
