"""`ivr worker`: delivers tickets from the outbox to their sinks, rq-style.

One loop: beat the heartbeat, queue the retries that are due, take over the entries of workers
that died mid-delivery (XAUTOCLAIM), read new entries, and run one delivery round per ticket:
keep the recording (once, shared by every sink), transcribe it, then try each sink still pending.
Every fact a round learns is written to Redis before the next step, so a worker killed at any
point loses nothing; a sink already delivered is skipped, and one being delivered when the worker
died is sent again with the same Idempotency-Key, so an idempotent sink takes it once.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import redis

from ivr.settings import Settings
from ivr.tickets.config import sinks_for_worker
from ivr.tickets.model import TRANSCRIPTION_OFF, Ticket, Transcript
from ivr.tickets.recordings import RecordingClient, RecordingRefused, RecordingUnavailable
from ivr.tickets.sinks import Delivery, Sink, SinkRefused, SinkRetry, build_sinks
from ivr.tickets.store import TicketStore
from ivr.tickets.transcribe import TranscriptionClient, TranscriptionFailed, twilio_transcribes

log = logging.getLogger(__name__)

RECORDING = "recording"  # the attempts counter of the download, beside the sinks'


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker paces itself; tests shorten these."""

    batch: int = 10
    block_ms: int = 1000
    claim_idle_ms: int = 5 * 60 * 1000  # longer than any one delivery round can take
    reclaim_every: float = 15.0
    heartbeat_ttl: int = 60
    transcript_wait: float = 150.0  # how long to wait for Twilio's own transcription callback
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0


def backoff(attempt: int, retry_after: float | None, options: WorkerOptions, rand: float) -> float:
    """Seconds until the next try: exponential with jitter, never sooner than Retry-After."""
    ceiling = min(options.backoff_cap, options.backoff_base * 2 ** max(attempt - 1, 0))
    delay = ceiling / 2 + rand * ceiling / 2
    return float(max(delay, retry_after or 0.0))


class Worker:
    """One consumer of the outbox."""

    def __init__(
        self,
        settings: Settings,
        connection: redis.Redis,
        sinks: list[Sink],
        options: WorkerOptions | None = None,
        now: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = TicketStore(connection)
        self.sinks = sinks
        self.options = options or WorkerOptions()
        self.now = now
        self.rand = rand
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**6):06x}"
        self.recordings = RecordingClient(settings)
        self.transcriber = (
            TranscriptionClient(
                settings.transcribe_url,
                settings.transcribe_model,
                api_key=settings.transcribe_api_key,
            )
            if settings.transcribe_url
            else None
        )
        self.started = now()
        self.rounds = 0
        self._last_beat = 0.0
        self._last_reclaim = 0.0

    def run(self, stop: threading.Event, max_ticks: int | None = None) -> int:
        """Work until `stop` is set (or `max_ticks` loops); the delivery rounds run."""
        ticks = 0
        grouped = False
        log.info("worker %s started, %d sinks", self.name, len(self.sinks))
        while not stop.is_set() and (max_ticks is None or ticks < max_ticks):
            ticks += 1
            try:
                # Inside the loop: a worker started before Redis answers waits for it.
                if not grouped:
                    self.store.ensure_group()
                    grouped = True
                self.tick(stop)
            except redis.RedisError as exc:
                log.error("worker %s: Redis: %s", self.name, exc)
                stop.wait(1.0)
        try:
            self.store.retire(self.name)
        except redis.RedisError as exc:  # Redis gone while stopping
            log.warning("worker %s could not retire: %s", self.name, exc)
        log.info("worker %s stopped after %d rounds", self.name, self.rounds)
        return self.rounds

    def tick(self, stop: threading.Event | None = None) -> int:
        """One loop: heartbeat, due retries, reclaimed and new entries; the rounds run."""
        now = self.now()
        if now - self._last_beat >= self.options.heartbeat_ttl / 3:
            info = {"pid": os.getpid(), "started": self.started, "seen": now, "rounds": self.rounds}
            self.store.heartbeat(self.name, info, self.options.heartbeat_ttl)
            self._last_beat = now
        self.store.promote_due(now)
        entries: list[tuple[str, str]] = []
        if now - self._last_reclaim >= self.options.reclaim_every:
            self._last_reclaim = now
            entries = self.store.reclaim(self.name, self.options.claim_idle_ms, self.options.batch)
            for entry_id, ticket_id in entries:
                log.warning("worker %s took over %s (%s)", self.name, ticket_id, entry_id)
        if not entries:
            entries = self.store.read(self.name, self.options.batch, self.options.block_ms)
        done = 0
        for entry_id, ticket_id in entries:
            if stop is not None and stop.is_set():
                break  # the rest stay pending: the next worker reclaims them
            try:
                self.deliver(ticket_id, entry_id)
            except redis.RedisError:
                raise
            except Exception:  # a fault in one round must not stop the others
                log.exception("ticket %s: delivery round failed; it will be reclaimed", ticket_id)
                continue
            done += 1
        return done

    def deliver(self, ticket_id: str, entry_id: str | None = None) -> Ticket | None:
        """One delivery round of a ticket; the ticket as it then stands."""
        ticket = self.store.get(ticket_id) if ticket_id else None
        if ticket is None:
            if entry_id:
                self.store.drop_entry(entry_id)
            return None
        self.rounds += 1
        now = self.now()
        pending = [s for s in self.sinks if ticket.sinks.get(s.name, "pending") == "pending"]
        if not pending and ticket.status == "delivered":
            self.store.finish_round(ticket_id, "delivered", entry_id, None)
            return ticket
        audio, wait_until = self._recording(ticket, now)
        if wait_until is not None:
            self.store.finish_round(ticket_id, "new", entry_id, wait_until)
            return self.store.get(ticket_id)
        wait_until = self._transcript(ticket, audio, now)
        if wait_until is not None:
            self.store.finish_round(ticket_id, "new", entry_id, wait_until)
            return self.store.get(ticket_id)
        ticket = self.store.get(ticket_id) or ticket
        due = [self._attempt(ticket, sink, audio, now) for sink in pending]
        later = [d for d in due if d is not None]
        ticket = self.store.get(ticket_id) or ticket
        states = [ticket.sinks.get(s.name, "pending") for s in self.sinks]
        if later:
            status = "new"
        elif "dead" in states:
            status = "dead"
        elif "failed" in states:
            status = "failed"
        else:
            status = "delivered"
        self.store.finish_round(ticket_id, status, entry_id, min(later) if later else None)
        if status == "delivered":
            self._delete_remote(ticket, audio)
        return self.store.get(ticket_id)

    def _recording(self, ticket: Ticket, now: float) -> tuple[Path | None, float | None]:
        """The kept audio (or None), or when to try the download again."""
        if ticket.recording.path and Path(ticket.recording.path).is_file():
            return Path(ticket.recording.path), None
        if ticket.recording.error and ticket.recording.error.startswith("refused:"):
            return None, None
        attempt = self.store.begin_attempt(ticket.id, RECORDING)
        try:
            fetched = self.recordings.fetch(ticket.recording_sid, ticket.recording.url)
        except RecordingRefused as exc:
            log.warning("ticket %s: recording refused: %s", ticket.id, exc)
            self.store.set_recording(ticket.id, ticket.recording.with_error(f"refused: {exc}"))
            self.store.note_error(ticket.id, f"{RECORDING}: refused: {exc}")
            return None, None
        except RecordingUnavailable as exc:
            log.warning("ticket %s: recording unavailable (try %d): %s", ticket.id, attempt, exc)
            self.store.note_error(ticket.id, f"{RECORDING}: {exc}")
            if attempt >= self.settings.ticket_max_attempts:
                # The message still matters without its audio: deliver what is known.
                self.store.set_recording(ticket.id, ticket.recording.with_error(str(exc)))
                return None, None
            return None, now + backoff(attempt, exc.retry_after, self.options, self.rand())
        self.store.set_recording(ticket.id, ticket.recording.kept_at(str(fetched.path)))
        return fetched.path, None

    def _transcript(self, ticket: Ticket, audio: Path | None, now: float) -> float | None:
        """Fill in the transcript, or say until when to wait for Twilio's."""
        if ticket.transcript.text is not None or ticket.transcript.reason == TRANSCRIPTION_OFF:
            return None
        language = ticket.language or ""
        if twilio_transcribes(language, ticket.recording.seconds):
            if ticket.transcript.reason.startswith("Twilio's transcription"):
                return None  # Twilio's callback came, and said it failed
            waited_until = ticket.created_at.timestamp() + self.options.transcript_wait
            if now < waited_until:
                return waited_until
            found = Transcript(reason="Twilio's transcription did not arrive")
        elif self.transcriber is None:
            found = Transcript(reason=f"no IVR_TRANSCRIBE_URL to transcribe {language or 'it'}")
        elif audio is None:
            found = Transcript(reason=f"no audio ({ticket.recording.error or 'not kept'})")
        else:
            try:
                found = self.transcriber.transcribe(audio, language)
            except TranscriptionFailed as exc:
                log.warning("ticket %s: transcription failed: %s", ticket.id, exc)
                found = Transcript(reason=f"transcription failed: {exc}")
        self.store.set_transcript(ticket.id, found)
        return None

    def _attempt(self, ticket: Ticket, sink: Sink, audio: Path | None, now: float) -> float | None:
        """One attempt at a sink if it is due; when it is next due, if ever."""
        due = self.store.due_at(ticket.id, sink.name)
        if due is not None and due > now:
            return due
        attempt = self.store.begin_attempt(ticket.id, sink.name)
        try:
            sink.deliver(Delivery(ticket, audio))
        except SinkRefused as exc:
            log.warning("ticket %s: %s refused it: %s", ticket.id, sink.name, exc)
            self.store.sink_result(ticket.id, sink.name, "failed", str(exc))
            return None
        except (SinkRetry, Exception) as exc:
            if not isinstance(exc, SinkRetry):
                log.exception("ticket %s: %s failed unexpectedly", ticket.id, sink.name)
            retry_after = exc.retry_after if isinstance(exc, SinkRetry) else None
            if attempt >= self.settings.ticket_max_attempts:
                log.error("ticket %s: %s gave up after %d: %s", ticket.id, sink.name, attempt, exc)
                self.store.sink_result(ticket.id, sink.name, "dead", f"{exc} (gave up)")
                return None
            next_due = now + backoff(attempt, retry_after, self.options, self.rand())
            self.store.sink_result(ticket.id, sink.name, "pending", str(exc), next_due)
            return next_due
        self.store.sink_result(ticket.id, sink.name, "delivered", None)
        return None

    def _delete_remote(self, ticket: Ticket, audio: Path | None) -> None:
        if self.settings.delete_remote_recordings and audio is not None and audio.is_file():
            try:
                gone = self.recordings.delete_remote(ticket.recording.url)
            except RecordingRefused as exc:
                gone = False
                log.warning("ticket %s: not deleting the remote recording: %s", ticket.id, exc)
            if not gone:
                self.store.note_error(ticket.id, "recording: could not delete it from Twilio")


def run_worker(
    settings: Settings,
    connection: redis.Redis,
    stop_event: threading.Event,
    options: WorkerOptions | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run one worker over the sinks of `tickets.yaml` until `stop_event` is set."""
    env = os.environ if env is None else env
    sinks = build_sinks(sinks_for_worker(settings.flows_dir, env), settings, env)
    return Worker(settings, connection, sinks, options).run(stop_event)
