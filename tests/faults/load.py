"""A bounded load of signed webhook traffic: concurrent simulated callers walking the sample flow.

Each caller plays Twilio for one call over real HTTP (every request signed) and keeps what it saw:
status codes, connection errors, fallbacks, and any answer that was not TwiML with something to
hear or do. The load stops after a fixed number of calls or a deadline, whichever comes first.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from tests.server.conftest import HttpCaller

# Verbs a caller hears or that make the call go on; an answer with none of them is dead air.
AUDIBLE = {"Say", "Play", "Gather", "Record", "Dial", "Enqueue", "Leave", "Hangup", "Redirect"}
WAITING = ("Gather", "Dial", "Record")
MAX_TURNS = 12  # the sample walk takes 5; a fallback path fewer
CONNECT_RETRIES = 3  # Twilio retries a request that got no answer at all


@dataclass
class Figures:
    """What the load saw, over every caller."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    connection_failures: list[str] = field(default_factory=list)
    fallbacks: int = 0
    bad_answers: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def line(self, name: str) -> str:
        """One line of figures for the summary."""
        statuses = " ".join(f"{code}={n}" for code, n in sorted(self.by_status.items()))
        return (
            f"{name}: calls={len(self.calls)} requests={self.requests} [{statuses}] "
            f"connection_errors={self.connection_errors} fallbacks={self.fallbacks} "
            f"bad_answers={len(self.bad_answers)}"
        )

    @property
    def server_errors(self) -> int:
        """Answers Twilio would see as an application error."""
        return sum(n for code, n in self.by_status.items() if code >= 500)


@dataclass(frozen=True)
class Answer:
    """One webhook that was answered: when it was sent (monotonic clock), how long it took."""

    path: str
    sent: float
    seconds: float

    def overlaps(self, start: float, end: float) -> bool:
        """Whether it was waiting at some instant between `start` and `end`."""
        return self.sent < end and self.sent + self.seconds > start


@dataclass
class CallRecord:
    """One simulated call: its sid, whether it hung up cleanly, what it left on record."""

    sid: str
    completed: bool = False
    fell_back: bool = False
    recording_sid: str | None = None
    status_sent: bool = False


class Load:
    """N callers in threads, each placing calls one after the other until stopped."""

    def __init__(self, base: str, callers: int, calls: int, seconds: float) -> None:
        self.base = base
        self.callers = callers
        self.calls = calls
        self.seconds = seconds
        self.figures = Figures()
        self.stopping = threading.Event()
        self._placed = 0
        self._executor: ThreadPoolExecutor | None = None
        self._futures: list[object] = []

    def __enter__(self) -> Load:
        self._deadline = time.monotonic() + self.seconds
        self._executor = ThreadPoolExecutor(self.callers)
        self._futures = [self._executor.submit(self._caller, i) for i in range(self.callers)]
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        assert self._executor is not None
        for future in self._futures:
            future.result(timeout=self.seconds + 60)  # type: ignore[attr-defined]
        self._executor.shutdown()

    def wait_for_calls(self, count: int, timeout: float = 30.0) -> None:
        """Block until `count` calls have been placed (the load is really running)."""
        deadline = time.monotonic() + timeout
        while self._placed < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def _next_call(self) -> bool:
        with self.figures.lock:
            if self.stopping.is_set() or self._placed >= self.calls:
                return False
            if time.monotonic() > self._deadline:
                return False
            self._placed += 1
            return True

    def _caller(self, index: int) -> None:
        number = 0
        while self._next_call():
            number += 1
            caller = HttpCaller(self.base, caller=f"+8490{index:03d}{number:04d}")
            record = CallRecord(caller.sid)
            with self.figures.lock:
                self.figures.calls.append(record)
            try:
                self._walk(caller, record, index)
            finally:
                caller.close()

    def _post(self, caller: HttpCaller, path: str, **extra: str) -> requests.Response | None:
        """One webhook, retried on connection errors as Twilio would; None if never answered."""
        for _ in range(CONNECT_RETRIES):
            sent = time.monotonic()
            try:
                response = caller.post(path, **extra)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                # no answer, or half of one (a worker killed mid-reply): Twilio retries both
                with self.figures.lock:
                    self.figures.connection_errors += 1
                    self.figures.connection_failures.append(f"{path}: {exc}"[:300])
                time.sleep(0.1)
                continue
            answer = Answer(path.partition("?")[0], sent, time.monotonic() - sent)
            with self.figures.lock:
                self.figures.requests += 1
                self.figures.by_status[response.status_code] += 1
                self.figures.answers.append(answer)
            return response
        return None

    def _twiml(self, caller: HttpCaller, path: str, **extra: str) -> ET.Element | None:
        response = self._post(caller, path, **extra)
        if response is None:
            return None
        problem = _check(response)
        if problem:
            with self.figures.lock:
                self.figures.bad_answers.append(f"{path}: {problem}")
            return None
        return ET.fromstring(response.text)

    def _walk(self, caller: HttpCaller, record: CallRecord, index: int) -> None:
        """Incoming, a language, the hours, the menu again, goodbye; or the fallback voicemail."""
        keys = iter([str(index % 3 + 1), "3", "1", "0"])
        root = self._twiml(caller, "/voice/incoming")
        for _ in range(MAX_TURNS):
            if root is None:
                break
            waiting = [verb for verb in root if verb.tag in WAITING]
            action = waiting[0].attrib.get("action", "") if waiting else ""
            if "/voice/fallback" in action:
                record.fell_back = True
                with self.figures.lock:
                    self.figures.fallbacks += 1
            if not waiting:
                record.completed = root[-1].tag == "Hangup"
                break
            if waiting[0].tag == "Record":
                record.recording_sid = "RE" + caller.sid[2:]
                url = f"https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/{record.recording_sid}"
                extra = {"RecordingUrl": url, "RecordingSid": record.recording_sid}
                root = self._twiml(caller, action, RecordingDuration="5", **extra)
            elif waiting[0].tag == "Dial":
                root = self._twiml(caller, action, DialCallStatus="no-answer")
            else:
                root = self._twiml(caller, action, Digits=next(keys, "0"))
        response = self._post(caller, "/voice/status", CallStatus="completed", CallDuration="30")
        record.status_sent = response is not None and response.status_code == 200


def _check(response: requests.Response) -> str:
    """Why an answer is not safe TwiML for Twilio, or '' when it is."""
    if response.status_code != 200:
        return f"status {response.status_code}"
    if not response.headers.get("Content-Type", "").startswith("text/xml"):
        return "not text/xml"
    try:
        root = ET.fromstring(response.text)
    except ET.ParseError as exc:
        return f"not XML: {exc}"
    if root.tag != "Response":
        return f"root is <{root.tag}>"
    if not any(verb.tag in AUDIBLE for verb in root):
        return "nothing to hear or do: " + response.text[:200]
    return ""
