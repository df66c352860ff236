"""The parts of a running app, built once and shared by its requests."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from ivr.flows.engine import NoRouter, Router
from ivr.flows.registry import FlowRegistry, FlowSet
from ivr.settings import Settings
from ivr.store import Store, now
from ivr.voice.params import CallParams
from ivr.voice.security import SignatureChecker
from ivr.voice.services import VoiceService

log = logging.getLogger(__name__)


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
            raise ValueError("an auth token is required to check webhook signatures")
        store = Store(connection, settings.call_ttl_seconds)
        registry = FlowRegistry(
            settings.flows_dir,
            interval=settings.reload_interval,
            save=store.save_flowset,
            fetch=store.load_flowset,
        )
        voice = VoiceService(registry, store, lambda flowset: make_router(flowset, store))
        signatures = SignatureChecker(settings.auth_token, settings.public_url)
        return cls(settings, store, registry, voice, signatures)

    def keep_recording_event(self, kind: str, params: CallParams) -> None:
        """Keep a recording or transcription callback with its call; spool it if Redis fails."""
        entry = {
            "kind": kind,
            "recording_sid": params.recording_sid,
            "recording_url": params.recording_url,
            "duration": params.recording_duration,
        }
        if kind == "transcription":
            entry.update(transcript=params.transcript, status=params.transcript_status)
        self.record_quietly(params.sid, entry)

    def record_quietly(self, sid: str, entry: Mapping[str, Any]) -> None:
        """Add to a call's timeline; on a Redis failure write it to the local spool instead."""
        try:
            self.store.append_log(sid, [entry])
        except redis.RedisError as exc:
            log.warning("call %s: Redis unavailable (%s); event spooled to disk", sid, exc)
            spool(self.settings.data_dir, {"sid": sid, "at": now(), **entry})


def make_router(flowset: FlowSet, store: Store) -> Router:
    """The router for a flow version: over its pools, or none when it has no pools."""
    if flowset.pools is None:
        return NoRouter()
    from ivr.voice.router import PoolRouter

    return PoolRouter(flowset.pools, store)


def spool(data_dir: Path, record: Mapping[str, Any]) -> None:
    """Append one record to the local spool, durably, for delivery once Redis is back."""
    folder = data_dir / "spool"
    folder.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with open(folder / "events.jsonl", "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
