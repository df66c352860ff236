"""The parts of a running app, built once and shared by its requests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import redis

from ivr.calls.events import (
    CallEvent,
    FallbackUsed,
    RouteDecided,
    StepEntered,
    TicketCreated,
    TranscriptionArrived,
    VoicemailRecorded,
)
from ivr.calls.spool import new_batch_id, replay, spool, spool_cross_call
from ivr.calls.summary import CallSummary
from ivr.errors import IvrError, StoreUnavailable
from ivr.flows.engine import NoRouter, Router
from ivr.flows.model import Voicemail as VoicemailStep
from ivr.flows.registry import FlowRegistry, FlowSet
from ivr.settings import Settings
from ivr.store import Store, now
from ivr.tickets.model import PoolTried, TicketError, Voicemail
from ivr.tickets.services import TicketService
from ivr.voice.params import CallParams
from ivr.voice.security import SignatureChecker
from ivr.voice.services import VoiceService
from ivr.voice.urls import VoiceUrls

log = logging.getLogger(__name__)
DAY = 24 * 3600


@dataclass
class Services:
    """Everything a request may need, wired from the settings."""

    settings: Settings
    store: Store
    registry: FlowRegistry
    voice: VoiceService
    signatures: SignatureChecker
    tickets: TicketService
    clock: Callable[[], float] = now  # the edge's one clock; tests pin it

    @classmethod
    def build(cls, settings: Settings, connection: redis.Redis) -> Services:
        """Wire the app's parts; the Redis connection is made by the caller."""
        if not settings.auth_token:
            raise IvrError("an auth token is required to check webhook signatures")
        store = Store(connection, settings.call_ttl_seconds, settings.retention_days * DAY)
        store.keep_cross_call = partial(spool_cross_call, settings.data_dir)
        registry = FlowRegistry(
            settings.flows_dir,
            interval=settings.reload_interval,
            save=store.save_flowset,
            fetch=store.load_flowset,
        )
        services: Services

        def record_quietly(sid: str, events: Sequence[CallEvent]) -> None:
            services.record_quietly(sid, events)

        voice = VoiceService(
            registry,
            store,
            lambda flowset: make_router(flowset, store),
            record_quietly,
            VoiceUrls.under(settings.public_url),
        )
        signatures = SignatureChecker(settings.auth_token, settings.public_url)
        services = cls(settings, store, registry, voice, signatures, TicketService(connection))
        return services

    def keep_recording_event(
        self, kind: str, params: CallParams, at: float, form: Mapping[str, str]
    ) -> None:
        """Keep a recording or transcription callback with its call; spool it if Redis fails."""
        event: CallEvent
        if kind == "transcription":
            event = TranscriptionArrived(
                at,
                recording_sid=params.recording_sid,
                text=params.transcript,
                status=params.transcript_status,
            )
        else:
            event = params.voicemail(at, "callback")
        self.record_quietly(params.sid, [event])
        try:
            if isinstance(event, VoicemailRecorded):
                self.take_voicemail(params.sid, event)
            elif params.recording_sid:
                self.tickets.transcribed(form)
        except (StoreUnavailable, redis.RedisError) as exc:
            # The event is in the spool: its replay makes the ticket.
            log.warning("call %s: ticket not updated now (%s)", params.sid, exc)
        except TicketError as exc:
            log.warning("call %s: %s", params.sid, exc)

    def replay_spool(self) -> int:
        """Replay the disk spool into Redis; voicemails in it become their tickets, final
        statuses close their calls (the call's end, its outcome counted)."""

        def replayed(sid: str, event: CallEvent) -> None:
            if isinstance(event, VoicemailRecorded):
                self.take_voicemail(sid, event)

        return replay(self.settings.data_dir, self.store, replayed, self.voice.close)

    def keep_voicemail(self, params: CallParams, at: float, source: str = "action") -> None:
        """After a voicemail's Record action (`source`: "fallback" for the fallback's): its
        ticket, if the callback did not make it yet."""
        try:
            self.take_voicemail(params.sid, params.voicemail(at, source))
        except (StoreUnavailable, redis.RedisError, TicketError) as exc:
            # The recording callback (or its spooled copy) will make it.
            log.warning("call %s: no ticket from the Record action (%s)", params.sid, exc)

    def take_voicemail(self, sid: str, message: VoicemailRecorded) -> str | None:
        """The ticket a non-empty recording becomes (made once per RecordingSid), linked from
        the call's record; None for an empty recording."""
        if not message.recording_sid or message.seconds <= 0 or message.status == "absent":
            return None
        summary = self.store.summary(sid) or CallSummary(sid)
        events = self.store.events(sid)
        routes = [e for e in events if isinstance(e, RouteDecided)]
        tried: list[tuple[str, str]] = []
        if routes:
            tried = [(pool, "rung, nobody answered") for pool in routes[-1].pools]
            tried += [(p.pool, p.reason) for p in routes[-1].passed_over]
        flowset = self.registry.current()
        zones = {p.name: p.timezone for p in flowset.pools} if flowset and flowset.pools else {}
        facts = Voicemail(
            call_sid=sid,
            recording_sid=message.recording_sid,
            recording_url=message.url,
            seconds=message.seconds,
            from_=summary.caller,
            to=summary.called,
            at=datetime.fromtimestamp(message.at, UTC),
            flow=summary.flow,
            language=summary.language,
            queue=summary.queue or "",
            pools_tried=tuple(PoolTried(pool, why) for pool, why in tried),
            caller_country=summary.from_country or None,
            pool_zones=zones,
            recording_status=message.status or "completed",
            transcribe=transcription_wanted(flowset, summary.flow, events, message),
        )
        ticket = self.tickets.voicemail(facts)
        if ticket is None:
            return None
        for event in events:
            # Twilio's transcription may have come while the recording's own report waited in
            # the spool: its words are kept with the call, and belong on the ticket.
            if (
                isinstance(event, TranscriptionArrived)
                and event.recording_sid == ticket.recording_sid
            ):
                self.tickets.transcribed(
                    {
                        "RecordingSid": event.recording_sid,
                        "TranscriptionStatus": event.status,
                        "TranscriptionText": event.text,
                    }
                )
        if summary.ticket != ticket.id:
            event = TicketCreated(message.at, ticket=ticket.id, recording_sid=message.recording_sid)
            self.store.record(sid, [event])
        return ticket.id

    def record_quietly(self, sid: str, events: Sequence[CallEvent]) -> None:
        """Add to a call's record; when Redis fails, to the local spool instead."""
        batch = new_batch_id()
        try:
            self.store.record(sid, events, spooled_id=batch)
        except StoreUnavailable as exc:
            log.warning("call %s: Redis unavailable (%s); events spooled to disk", sid, exc)
            self.spool_quietly(sid, events, batch)

    def spool_quietly(self, sid: str, events: Sequence[CallEvent], batch: str) -> None:
        """Keep events on this host's disk until Redis is back (their write may have landed:
        `batch` is the id it was tried with, so the replay then skips them)."""
        spool(self.settings.data_dir, sid, events, batch)


def transcription_wanted(
    flowset: FlowSet | None, flow_name: str, events: Sequence[CallEvent], message: VoicemailRecorded
) -> bool:
    """Whether the voicemail step that took `message` lets its words be transcribed (`true`
    unless that step, or the flow's fallback for a fallback voicemail, says `transcribe: false`)."""
    flow = flowset.flows.get(flow_name) if flowset else None
    if flow is None:
        return True
    step_name = flow.fallback if message.source == "fallback" else None
    for event in events if step_name is None else ():
        if isinstance(event, StepEntered | VoicemailRecorded) and event.step:
            step_name = event.step
        elif isinstance(event, FallbackUsed):
            step_name = flow.fallback
    step = flow.steps.get(step_name) if step_name else None
    action = step.action if step else None
    return action.transcribe if isinstance(action, VoicemailStep) else True


def make_router(flowset: FlowSet, store: Store) -> Router:
    """The router for a flow version: over its pools, or none when it has no pools."""
    if flowset.pools is None:
        return NoRouter()
    from ivr.voice.router import PoolRouter

    return PoolRouter(flowset.pools, store)
