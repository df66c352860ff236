"""TwiML verbs as plain values, and their rendering through twilio's VoiceResponse.

A verb's XML depends only on its value, so each one is rendered once and reused: prompts, menus
and recordings do not depend on the call. The turn number of action URLs does, and is filled in
last by a plain substitution of TURN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from twilio.twiml import TwiML
from twilio.twiml.voice_response import (
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Leave,
    Pause,
    Play,
    Record,
    Redirect,
    Say,
    VoiceResponse,
)

TURN = "__TURN__"  # stands for the call's turn number in action URLs
_HEAD = '<?xml version="1.0" encoding="UTF-8"?><Response>'
_TAIL = "</Response>"


@dataclass(frozen=True)
class SayVerb:
    text: str
    language: str
    voice: str | None = None
    loop: int = 1


@dataclass(frozen=True)
class PlayVerb:
    url: str
    loop: int = 1


@dataclass(frozen=True)
class PauseVerb:
    seconds: int = 1


@dataclass(frozen=True)
class GatherVerb:
    action: str
    prompts: tuple[SayVerb | PlayVerb | PauseVerb, ...]
    speech: bool = False
    language: str = "en-US"
    num_digits: int | None = None
    timeout: int = 5
    finish_on_key: str = "#"
    hints: str = ""


@dataclass(frozen=True)
class RecordVerb:
    action: str
    max_seconds: int = 120
    finish_on_key: str = "#"
    transcribe: bool = True
    transcribe_callback: str = ""
    recording_callback: str = ""


@dataclass(frozen=True)
class DialTarget:
    kind: str  # "number" | "client" | "sip" | "queue"
    address: str
    answered_url: str | None = None  # told when this party picks up


@dataclass(frozen=True)
class DialVerb:
    action: str
    targets: tuple[DialTarget, ...]
    timeout: int = 20
    caller_id: str | None = None


@dataclass(frozen=True)
class EnqueueVerb:
    queue: str
    action: str
    wait_url: str


@dataclass(frozen=True)
class LeaveVerb:
    pass


@dataclass(frozen=True)
class HangupVerb:
    pass


@dataclass(frozen=True)
class RedirectVerb:
    url: str


Verb = (
    SayVerb
    | PlayVerb
    | PauseVerb
    | GatherVerb
    | RecordVerb
    | DialVerb
    | EnqueueVerb
    | LeaveVerb
    | HangupVerb
    | RedirectVerb
)


def render(verbs: Iterable[Verb], turn: int | None = None) -> str:
    """The whole TwiML document for `verbs`, with TURN replaced by `turn`."""
    body = "".join(_fragment(verb) for verb in verbs)
    if turn is not None:
        body = body.replace(TURN, str(turn))
    return _HEAD + body + _TAIL


def render_uncached(verbs: Iterable[Verb]) -> str:
    """The same document built in one VoiceResponse, for tests and as the reference."""
    response = VoiceResponse()
    for verb in verbs:
        response.append(_element(verb))
    return str(response)


@lru_cache(maxsize=4096)
def _fragment(verb: Verb) -> str:
    return str(_element(verb).to_xml(xml_declaration=False))


def _element(verb: Verb) -> TwiML:
    match verb:
        case SayVerb():
            return Say(verb.text, language=verb.language, voice=verb.voice, **_loop(verb.loop))
        case PlayVerb():
            return Play(verb.url, **_loop(verb.loop))
        case PauseVerb():
            return Pause(length=verb.seconds)
        case GatherVerb():
            gather = Gather(
                action=verb.action,
                method="POST",
                input="dtmf speech" if verb.speech else "dtmf",
                num_digits=verb.num_digits,
                timeout=verb.timeout,
                finish_on_key=verb.finish_on_key,
                action_on_empty_result=True,
                **_speech(verb),
            )
            for prompt in verb.prompts:
                gather.append(_element(prompt))
            return gather
        case RecordVerb():
            return Record(
                action=verb.action,
                method="POST",
                max_length=verb.max_seconds,
                finish_on_key=verb.finish_on_key,
                play_beep=True,
                trim="trim-silence",
                transcribe=verb.transcribe,
                transcribe_callback=verb.transcribe_callback or None,
                recording_status_callback=verb.recording_callback or None,
                recording_status_callback_event="completed absent",
            )
        case DialVerb():
            dial = Dial(
                action=verb.action, method="POST", timeout=verb.timeout, caller_id=verb.caller_id
            )
            for target in verb.targets:
                told = _answered(target)
                if target.kind == "number":
                    dial.number(target.address, **told)
                elif target.kind == "client":
                    dial.client(target.address, **told)
                elif target.kind == "queue":
                    # The queue's url is asked on the waiting caller's line as it is taken.
                    taken = {"url": target.answered_url, "method": "POST"}
                    dial.queue(target.address, **(taken if target.answered_url else {}))
                else:
                    dial.sip(target.address, **told)
            return dial
        case EnqueueVerb():
            return Enqueue(
                verb.queue, action=verb.action, method="POST", wait_url=verb.wait_url,
                wait_url_method="POST",
            )  # fmt: skip
        case LeaveVerb():
            return Leave()
        case HangupVerb():
            return Hangup()
        case RedirectVerb():
            return Redirect(verb.url, method="POST")
    raise TypeError(f"not a verb: {verb!r}")  # pragma: no cover


def _answered(target: DialTarget) -> dict[str, Any]:
    if not target.answered_url:
        return {}
    return {
        "status_callback": target.answered_url,
        "status_callback_event": "answered",
        "status_callback_method": "POST",
    }


def _loop(loop: int) -> dict[str, Any]:
    return {"loop": loop} if loop != 1 else {}


def _speech(verb: GatherVerb) -> dict[str, Any]:
    if not verb.speech:
        return {}
    extra: dict[str, Any] = {"language": verb.language, "speech_timeout": "auto"}
    if verb.hints:
        extra["hints"] = verb.hints
    return extra
