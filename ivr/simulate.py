"""A phone call without a phone: plays Twilio's part against the real app, signed like Twilio.

The simulator reads each TwiML answer as Twilio would (speak, gather, dial, record, redirect,
hang up) and posts the next webhook with the caller's scripted or typed input.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode, urljoin, urlsplit

from flask.testing import FlaskClient

from ivr.phrases import PHRASES
from ivr.tickets.model import SIMULATED_ACCOUNT_SID
from ivr.voice.security import SignatureChecker

FALLBACK_PATH = "/voice/fallback"
APOLOGIES = frozenset(PHRASES["apology"].values())

MAX_REQUESTS = 100  # a call that needs more webhooks than this is stuck in a loop


class Transport(Protocol):
    base: str

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str]:
        """POST a webhook; return (status, body)."""


@dataclass
class InProcess:
    """Webhooks through the Flask test client: the real app, no network."""

    client: FlaskClient
    base: str = "http://localhost"  # IVR_PUBLIC_URL when set: the URL the app checks signatures of

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str]:
        """POST through the test client, to the URL as the app will see it."""
        parts = urlsplit(url)
        # Under an IVR_PUBLIC_URL with a path, the app sees requests below it, as behind the
        # proxy that serves it there.
        root = urlsplit(self.base).path.rstrip("/")
        path = parts.path.removeprefix(root) if root else parts.path
        path += f"?{parts.query}" if parts.query else ""
        response = self.client.post(
            path,
            base_url=f"{parts.scheme}://{parts.netloc}{root}",
            data=params,
            headers={"X-Twilio-Signature": signature},
        )
        return response.status_code, response.get_data(as_text=True)


@dataclass
class OverHttp:
    """Webhooks over real HTTP to a running server."""

    base: str
    timeout: float = 10.0

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str]:
        """POST with urllib."""
        return self._exchange(
            urllib.request.Request(
                url, data=urlencode(params).encode(), headers={"X-Twilio-Signature": signature}
            )
        )

    def get(self, path: str, token: str) -> tuple[int, str]:
        """GET one of the server's API URLs with a bearer token; (status, body)."""
        headers = {"Authorization": f"Bearer {token}"}
        return self._exchange(urllib.request.Request(self.base + path, headers=headers))

    def _exchange(self, request: urllib.request.Request) -> tuple[int, str]:
        """The answer's status and body, an HTTP error's too."""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


@dataclass(frozen=True)
class Heard:
    """One thing that happened on the line, as the caller would notice it."""

    kind: str  # say | play | pause | gather | record | dial | enqueue | redirect | hangup | error
    text: str = ""
    language: str = ""

    def __str__(self) -> str:
        label = f"[{self.language}] " if self.language else ""
        return f"{self.kind:>7}: {label}{self.text}".rstrip()


@dataclass(frozen=True)
class Input:
    """What the caller does at a prompt: keys, words, or nothing; or how a Dial/Record ends."""

    press: str = ""
    say: str = ""
    dial: str = "no-answer"
    record_seconds: int = 5
    queue: str = "leave"  # how waiting in a hold line ends: leave (key pressed), bridged, hangup


Prompter = Callable[[Heard], Input]


@dataclass
class SimulatedCall:
    """One call: its sid, what the caller heard, and how it ended."""

    sid: str
    heard: list[Heard] = field(default_factory=list)
    ended: bool = False
    requests: list[tuple[str, int]] = field(default_factory=list)  # (URL posted, HTTP status)

    def texts(self) -> list[str]:
        """Everything spoken to the caller, in order."""
        return [h.text for h in self.heard if h.kind == "say"]

    def refused(self) -> bool:
        """Whether the app refused a webhook's signature (HTTP 403)."""
        return any(status == 403 for _, status in self.requests)

    def application_error(self) -> str | None:
        """What a webhook answered that Twilio cannot play (an HTTP error, not TwiML), if any:
        the caller would hear Twilio's "application error" instead of the flow."""
        return next((h.text for h in self.heard if h.kind == "error"), None)

    def fell_back(self) -> bool:
        """Whether the call ended in the fallback: an apology heard or a fallback action posted."""
        if any(text in APOLOGIES for text in self.texts()):
            return True
        return any(urlsplit(url).path.endswith(FALLBACK_PATH) for url, _ in self.requests)


def new_call_sid() -> str:
    """A CallSid of Twilio's shape."""
    return "CA" + secrets.token_hex(16)


def place_call(
    transport: Transport,
    checker: SignatureChecker,
    answer: Prompter,
    caller: str = "+15551230000",
    called: str = "+15005550006",
    from_country: str = "US",
    on_heard: Callable[[Heard], None] = lambda heard: None,
) -> SimulatedCall:
    """Run a whole call; `answer` decides the caller's input at each prompt."""
    call = SimulatedCall(new_call_sid())
    base_params = {
        "CallSid": call.sid,
        "From": caller,
        "To": called,
        "FromCountry": from_country,
        "AccountSid": SIMULATED_ACCOUNT_SID,
        "Direction": "inbound",
    }
    url = transport.base + "/voice/incoming"
    params = {**base_params, "CallStatus": "ringing"}
    for _ in range(MAX_REQUESTS):
        status, body = transport.post(url, params, checker.sign(url, params))
        call.requests.append((url, status))
        next_request = None
        for heard, request in _play(body, status):
            call.heard.append(heard)
            on_heard(heard)
            if request is not None:
                path, extra = request(answer(heard))
                url, params = (
                    urljoin(url, path),
                    {**base_params, "CallStatus": "in-progress", **extra},
                )
                next_request = True
                break
        if next_request is None:
            break
    call.ended = True
    end = {**base_params, "CallStatus": "completed", "CallDuration": "42"}
    status_url = transport.base + "/voice/status"
    transport.post(status_url, end, checker.sign(status_url, end))
    return call


Request = Callable[[Input], tuple[str, dict[str, str]]] | None


def _play(body: str, status: int) -> Iterator[tuple[Heard, Request]]:
    """What the caller hears from one TwiML answer, and the webhook that follows, if any."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        yield (
            Heard("error", f"HTTP {status}: not TwiML (Twilio would say 'application error')"),
            None,
        )
        return
    if status != 200:
        yield Heard("error", f"HTTP {status} (Twilio would say 'application error')"), None
    for verb in root:
        yield from _verb(verb)
        if verb.tag in ("Gather", "Record", "Dial", "Enqueue", "Redirect", "Hangup"):
            return


def _verb(verb: ET.Element) -> Iterator[tuple[Heard, Request]]:
    attrs = verb.attrib
    if verb.tag == "Say":
        yield Heard("say", verb.text or "", attrs.get("language", "")), None
    elif verb.tag == "Play":
        yield Heard("play", verb.text or ""), None
    elif verb.tag == "Pause":
        yield Heard("pause", f"{attrs.get('length', '1')}s"), None
    elif verb.tag == "Gather":
        for child in verb:
            yield from _verb(child)
        inputs = attrs.get("input", "dtmf")
        yield Heard("gather", f"waiting for {inputs}"), _gather_request(attrs)
    elif verb.tag == "Record":
        yield (
            Heard("record", f"beep; recording up to {attrs.get('maxLength', '?')}s"),
            _record(attrs),
        )
    elif verb.tag == "Dial":
        targets = ", ".join(f"{child.tag.lower()} {child.text}" for child in verb)
        yield (
            Heard("dial", f"ringing {targets or verb.text} for {attrs.get('timeout', '30')}s"),
            _dial(attrs),
        )
    elif verb.tag == "Enqueue":
        yield Heard("enqueue", f"waiting in line {verb.text}"), _enqueue(attrs)
    elif verb.tag == "Redirect":
        url = verb.text or ""
        yield Heard("redirect", url), lambda _input: (url, {})
    elif verb.tag == "Hangup":
        yield Heard("hangup"), None


def _gather_request(attrs: dict[str, str]) -> Request:
    def request(given: Input) -> tuple[str, dict[str, str]]:
        extra: dict[str, Any] = {"Digits": given.press} if given.press else {}
        if given.say and not given.press:
            extra = {"SpeechResult": given.say, "Confidence": "0.9"}
        return attrs.get("action", ""), extra

    return request


def _record(attrs: dict[str, str]) -> Request:
    def request(given: Input) -> tuple[str, dict[str, str]]:
        sid = "RE" + secrets.token_hex(16)
        url = f"https://api.twilio.com/2010-04-01/Accounts/{SIMULATED_ACCOUNT_SID}/Recordings/{sid}"
        seconds = given.record_seconds
        extra = {
            "RecordingUrl": url if seconds else "",
            "RecordingSid": sid,
            "RecordingDuration": str(seconds),
            "Digits": "hangup",
        }
        return attrs.get("action", ""), extra

    return request


def _enqueue(attrs: dict[str, str]) -> Request:
    def request(given: Input) -> tuple[str, dict[str, str]]:
        return attrs.get("action", ""), {"QueueResult": given.queue, "QueueTime": "30"}

    return request


def _dial(attrs: dict[str, str]) -> Request:
    def request(given: Input) -> tuple[str, dict[str, str]]:
        return attrs.get("action", ""), {"DialCallStatus": given.dial}

    return request
