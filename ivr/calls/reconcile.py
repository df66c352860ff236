"""Closing the records of calls whose final status callback never came.

A record closes when Twilio's final status callback arrives. When it does not (every host down
at that moment, a proxy that dropped it), the call would stay under way for ever: counted as
live on the wallboard, missing from the KPIs, walked by every listing. So a call still under way
an hour after it started is asked of Twilio's REST API, and closed with the final status Twilio
gives, at the time Twilio says it ended. A call nobody can tell about (no REST credentials,
Twilio does not know it, or keeps failing) is closed a day after it started — its state has
expired by then, so no webhook can carry it on — as of its last event, with a `status_missing`
event saying so. Runs off the webhook path, in the housekeeping thread, one host at a time.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import urllib3

from ivr.calls.events import CallEvent, StatusMissing, TwilioStatus
from ivr.calls.summary import FINAL_STATUSES
from ivr.errors import IvrError
from ivr.metrics import CALLS_CLOSED_LATE
from ivr.settings import Settings
from ivr.store import Store
from ivr.tickets.recordings import retry_after_seconds
from ivr.voice.services import VoiceService

log = logging.getLogger(__name__)

ASK_AFTER = 3600.0  # a call under way this long after its start is asked of Twilio
GIVE_UP_AFTER = 24 * 3600.0  # ... and closed at its last event when nobody can say how it ended
MOST = 200  # calls looked at per round at most, oldest first ...
PAGE = 50  # ... read a page at a time
ROUND_SECONDS = 60.0  # and for this long at most: the same thread replays the spool
TIMEOUT = (3.05, 5.0)  # connect, read: seconds
TOTAL_SECONDS = 10.0  # the whole answer, however steadily it trickles in
MAX_BODY = 256 * 1024  # a call resource is a couple of kilobytes
CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
MAX_SECONDS = 2**31 - 1  # a longer `duration` is garbage (and would not fit the call's events)
RATE_LIMITED_PAUSE = 60.0  # no asking after a 429 without a readable Retry-After


class RateLimited(IvrError):
    """Twilio asked us to slow down (429), or refused the account: no more questions for
    `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class FetchedCall:
    """A call as Twilio's REST API describes it."""

    status: str
    duration: int | None = None
    ended_at: float | None = None


class TwilioCalls:
    """Twilio's REST API, for the one thing asked of it here: a call's status."""

    def __init__(
        self,
        api_url: str,
        account_sid: str,
        auth_token: str,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = TIMEOUT,
        total: float = TOTAL_SECONDS,
    ) -> None:
        self.base = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Calls"
        self.auth = (account_sid, auth_token)
        self.session = session or requests.Session()
        self.timeout = timeout
        self.total = total

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioCalls | None:
        """A client when the account SID and auth token are configured, else None."""
        if not settings.account_sid or not settings.auth_token:
            return None
        return cls(settings.twilio_api_url, settings.account_sid, settings.auth_token)

    def fetch(self, sid: str) -> FetchedCall | None:
        """The call as Twilio has it; None when Twilio does not know it. IvrError on failure."""
        if not CALL_SID.fullmatch(sid):
            return None  # not a sid Twilio gave: nothing to ask
        deadline = time.monotonic() + self.total
        try:
            answer = self.session.get(
                f"{self.base}/{sid}.json", auth=self.auth, timeout=self.timeout, stream=True
            )
        except requests.RequestException as exc:
            raise IvrError(f"Twilio REST API: {type(exc).__name__}: {exc}") from None
        with answer:
            body = _body(answer, deadline, sid)
        if answer.status_code == 404:
            return None
        if answer.status_code == 429:
            wait = retry_after_seconds(answer.headers.get("Retry-After"))
            pause = RATE_LIMITED_PAUSE if wait is None else min(wait, RATE_LIMITED_PAUSE * 10)
            raise RateLimited(f"Twilio REST API: HTTP 429 for call {sid}", pause)
        if answer.status_code in (401, 403):
            # The account's credentials, not this call: every other question fails alike.
            raise RateLimited(
                f"Twilio REST API: HTTP {answer.status_code}: check TWILIO_ACCOUNT_SID and "
                "TWILIO_AUTH_TOKEN",
                RATE_LIMITED_PAUSE * 10,
            )
        if not 200 <= answer.status_code < 300:
            raise IvrError(f"Twilio REST API: HTTP {answer.status_code} for call {sid}")
        try:
            data = json.loads(body)
        except ValueError:
            raise IvrError(f"Twilio REST API: call {sid}: not JSON") from None
        if not isinstance(data, dict):
            raise IvrError(f"Twilio REST API: call {sid}: not a call resource")
        return FetchedCall(str(data.get("status") or ""), _seconds(data), _ended_at(data))


@dataclass(frozen=True)
class Round:
    """What one round did: calls looked at, closed from Twilio's answer, closed without one."""

    looked_at: int = 0
    closed_by_twilio: int = 0
    closed_unreported: int = 0


class Reconciler:
    """Closes the records of calls under way too long, from Twilio's word or, failing it, their
    last event."""

    def __init__(self, store: Store, voice: VoiceService, twilio: TwilioCalls | None) -> None:
        self.store = store
        self.voice = voice
        self.twilio = twilio
        self.quiet_until = 0.0  # monotonic: Twilio rate-limited us, ask nothing before then

    def run(
        self, instant: float, most: int = MOST, page: int = PAGE, seconds: float = ROUND_SECONDS
    ) -> Round:
        """One round over the oldest calls under way since before `instant - ASK_AFTER` (with
        no one to ask, `GIVE_UP_AFTER`), `most` of them at most.

        Pages go on past the calls left under way, so that long calls Twilio says are still
        live do not keep the ones after them from being looked at.
        """
        horizon = ASK_AFTER if self.twilio is not None else GIVE_UP_AFTER
        looked = left = 0
        seen: set[str] = set()
        closed = {"twilio": 0, "unreported": 0}
        ends = time.monotonic() + seconds
        while looked < most and time.monotonic() < ends:
            stale = self.store.under_way_since(instant - horizon, min(page, most - looked), left)
            if not stale:
                break
            for sid, started in stale:
                if time.monotonic() >= ends:
                    break
                if sid in seen:
                    # Closed, but still listed live (its index write to be replayed): step over
                    # it rather than ask about it again.
                    left += 1
                    continue
                seen.add(sid)
                looked += 1
                if self.store.summary(sid) is None:
                    # Its record expired (a retention shorter than the wait for its status):
                    # nothing is left to close, and it must not count as live for ever.
                    log.warning("call %s: record expired while under way; no longer live", sid)
                    self.store.forget_under_way(sid)
                    closed["unreported"] += 1
                    CALLS_CLOSED_LATE.labels("unreported").inc()
                    continue
                final = self._final(sid, started, instant)
                if final is None:
                    left += 1
                    continue
                self.voice.close(sid, final)
                how = "twilio" if isinstance(final, TwilioStatus) else "unreported"
                closed[how] += 1
                CALLS_CLOSED_LATE.labels(how).inc()
        return Round(looked, closed["twilio"], closed["unreported"])

    def _final(self, sid: str, started: float, instant: float) -> CallEvent | None:
        """The event that closes the call now: Twilio's final status, or, a day on, word that
        none came; None while neither."""
        final = self._asked(sid, started, instant)
        if final is not None or instant - started < GIVE_UP_AFTER:
            return final
        last = self.store.last_event_at(sid)
        heard = last if last is not None else started
        log.warning("call %s: no final status from Twilio; closed at its last event", sid)
        return StatusMissing(heard, waited=round(instant - heard))

    def _asked(self, sid: str, started: float, instant: float) -> CallEvent | None:
        """Twilio's final status of the call, if Twilio can tell it, at the time it ended (else
        its start and length, else now)."""
        if self.twilio is None or time.monotonic() < self.quiet_until:
            return None
        try:
            fetched = self.twilio.fetch(sid)
        except RateLimited as exc:
            # Asking about the other calls now would only be refused too (and keep the limit
            # on): they wait for a later round, or for when Twilio said to come back.
            log.warning("call %s: %s; asking again in %.0f s", sid, exc, exc.retry_after)
            self.quiet_until = time.monotonic() + exc.retry_after
            return None
        except IvrError as exc:
            log.warning("call %s: status not fetched: %s", sid, exc)
            return None
        if fetched is None or fetched.status not in FINAL_STATUSES:
            return None
        at = fetched.ended_at
        if at is None:
            at = started + fetched.duration if fetched.duration is not None else instant
        return TwilioStatus(at, status=fetched.status, duration=fetched.duration, fetched=True)


def _body(answer: requests.Response, deadline: float, sid: str) -> bytes:
    """The answer's body, read by what arrives: the read timeout bounds each wait for bytes,
    not a body that trickles in, and the housekeeping thread must not wait on one for ever."""
    body = bytearray()
    raw = answer.raw
    # read1 gives what has arrived (urllib3 2); read, a kilobyte at a time, with urllib3 1.
    read = getattr(raw, "read1", None) or (lambda _, decode_content: raw.read(1024, decode_content))
    try:
        while chunk := read(64 * 1024, decode_content=True):
            body += chunk
            if len(body) > MAX_BODY:
                raise IvrError(f"Twilio REST API: call {sid}: answer over {MAX_BODY} bytes")
            if time.monotonic() > deadline:
                raise IvrError(f"Twilio REST API: call {sid}: answer too slow")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise IvrError(f"Twilio REST API: call {sid}: {type(exc).__name__}: {exc}") from None
    return bytes(body)


def _seconds(data: dict[str, Any]) -> int | None:
    """Twilio's `duration` of the call, if given and a plausible count of seconds."""
    try:
        seconds = int(data["duration"])
    except (KeyError, TypeError, ValueError):
        return None
    return seconds if 0 <= seconds <= MAX_SECONDS else None


def _ended_at(data: dict[str, Any]) -> float | None:
    """Twilio's `end_time` (RFC 2822) as Unix seconds, if given and readable."""
    text = data.get("end_time")
    if not isinstance(text, str) or not text:
        return None
    try:
        ended: datetime = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return ended.timestamp() if ended.tzinfo is not None else None
