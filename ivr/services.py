"""The parts of a running app, built once and shared by its requests."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from ivr.calls.events import CallEvent, TranscriptionArrived, VoicemailRecorded
from ivr.calls.spool import spool
from ivr.errors import IvrError, StoreUnavailable
from ivr.flows.engine import NoRouter, Router
from ivr.flows.registry import FlowRegistry, FlowSet
from ivr.settings import Settings
from ivr.store import Store
from ivr.voice.params import CallParams
from ivr.voice.security import SignatureChecker
from ivr.voice.services import VoiceService

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

    @classmethod
    def build(cls, settings: Settings, connection: redis.Redis) -> Services:
        """Wire the app's parts; the Redis connection is made by the caller."""
        if not settings.auth_token:
            raise IvrError("an auth token is required to check webhook signatures")
        store = Store(connection, settings.call_ttl_seconds, settings.retention_days * DAY)
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
            registry, store, lambda flowset: make_router(flowset, store), record_quietly
        )
        signatures = SignatureChecker(settings.auth_token, settings.public_url)
        services = cls(settings, store, registry, voice, signatures)
        return services

    def keep_recording_event(self, kind: str, params: CallParams, at: float) -> None:
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
            event = VoicemailRecorded(
                at,
                recording_sid=params.recording_sid,
                url=params.recording_url,
                seconds=params.recording_duration,
                status=params.recording_status,
                source="callback",
            )
        self.record_quietly(params.sid, [event])

    def record_quietly(self, sid: str, events: Sequence[CallEvent]) -> None:
        """Add to a call's record; when Redis fails, to the local spool instead."""
        try:
            self.store.record(sid, events)
        except StoreUnavailable as exc:
            log.warning("call %s: Redis unavailable (%s); events spooled to disk", sid, exc)
            spool(self.settings.data_dir, sid, events)


def make_router(flowset: FlowSet, store: Store) -> Router:
    """The router for a flow version: over its pools, or none when it has no pools."""
    if flowset.pools is None:
        return NoRouter()
    from ivr.voice.router import PoolRouter

    return PoolRouter(flowset.pools, store)
