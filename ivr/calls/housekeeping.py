"""Background upkeep of the call records, off every webhook's path: the disk spool replayed once
Redis answers again, records older than the retention period trimmed from the indexes, and calls
whose final status never came closed (`ivr.calls.reconcile`).

Each gunicorn worker runs one daemon thread; the spool is the host's own (a file lock keeps two
workers from replaying it at once) and the trim and the closing are each taken by one host at a
time (a Redis lock).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ivr.errors import IvrError
from ivr.services import Services
from ivr.store import now

log = logging.getLogger(__name__)

REPLAY_EVERY = 5.0
TRIM_EVERY = 3600.0
TRIM_LOCK_KEY = "ivr:housekeeping:trim"
RECONCILE_EVERY = 300.0
RECONCILE_LOCK_KEY = "ivr:housekeeping:reconcile"


class Housekeeper:
    """Replays the spool, trims old call records and closes forgotten calls, periodically,
    until stopped."""

    def __init__(self, services: Services, clock: Callable[[], float] = now) -> None:
        self.services = services
        self.clock = clock
        self.stopping = threading.Event()
        # Each periodic job: what it does, how often, and when this process last ran it.
        self._jobs: list[tuple[str, Callable[[float], int], float]] = [
            ("retention trim", self.trim, TRIM_EVERY),
            ("closing calls without a final status", self.reconcile, RECONCILE_EVERY),
        ]
        self._last_run = [0.0] * len(self._jobs)

    def run_once(self) -> None:
        """One round: replay what the spool holds, then each job whose time has come."""
        self._quietly("spool replay", lambda _: self.services.replay_spool(), self.clock())
        instant = self.clock()
        for i, (name, job, every) in enumerate(self._jobs):
            if instant - self._last_run[i] < every:
                continue
            self._last_run[i] = instant
            self._quietly(name, job, instant)

    @staticmethod
    def _quietly(name: str, job: Callable[[float], int], instant: float) -> None:
        """Run one job; whatever it fails with, the others still run (each fails on its own)."""
        try:
            job(instant)
        except IvrError as exc:
            log.warning("%s failed: %s", name, exc)
        except Exception:
            log.exception("%s failed", name)

    def reconcile(self, instant: float) -> int:
        """Close the calls under way too long (see `ivr.calls.reconcile`); how many."""
        from ivr.calls.reconcile import Reconciler, TwilioCalls

        if not self._take(RECONCILE_LOCK_KEY, RECONCILE_EVERY / 2):
            return 0
        services = self.services
        twilio = TwilioCalls.from_settings(services.settings)
        done = Reconciler(services.store, services.voice, twilio).run(instant)
        return done.closed_by_twilio + done.closed_unreported

    def trim(self, instant: float) -> int:
        """Drop records older than the retention period from the indexes; how many calls."""
        from ivr.calls.records import CallRecords

        if not self._take(TRIM_LOCK_KEY, TRIM_EVERY / 2):
            return 0
        connection = self.services.store.redis
        cutoff = instant - self.services.settings.retention_days * 24 * 3600
        trimmed = CallRecords(connection).trim(cutoff)
        if trimmed:
            log.info("retention: %d call records older than the retention period dropped", trimmed)
        return trimmed

    def _take(self, lock: str, seconds: float) -> bool:
        """Whether this host takes a periodic job now: no other host has within `seconds`."""
        try:
            return bool(self.services.store.redis.set(lock, "1", nx=True, ex=int(seconds)))
        except Exception as exc:  # redis errors: try again next round
            log.warning("%s skipped: %s", lock, exc)
            return False

    def start(self) -> threading.Thread:
        """Run in a daemon thread."""
        thread = threading.Thread(target=self._loop, name="ivr-housekeeping", daemon=True)
        thread.start()
        return thread

    def _loop(self) -> None:
        while not self.stopping.wait(REPLAY_EVERY):
            try:
                self.run_once()
            except Exception:
                log.exception("housekeeping round failed")
