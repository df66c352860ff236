"""Fixtures of the ticket tests: loopback services, settings pointing at them, voicemails."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from ivr.settings import Settings
from ivr.tickets.config import sinks_for_worker
from ivr.tickets.model import PoolTried, Voicemail
from ivr.tickets.sinks import build_sinks
from ivr.tickets.worker import Worker, WorkerOptions
from tests.tickets.fakes import ACCOUNT_SID, AUTH_TOKEN, FakeServices, running

AT = datetime(2026, 12, 3, 7, 30, tzinfo=UTC)
WEBHOOK_SECRET = "whsec-test-0123456789"
OPTIONS = WorkerOptions(block_ms=10, reclaim_every=0.0, claim_idle_ms=60_000, transcript_wait=60)


class Clock:
    """A pinned clock the tests move by hand."""

    def __init__(self, at: datetime = AT) -> None:
        self.t = at.timestamp()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services() -> Iterator[FakeServices]:
    with running() as fake:
        yield fake


def settings_for(root: Path, services: FakeServices, redis_url: str) -> Settings:
    """Settings for a worker under `root` whose Twilio, media and speech-to-text are `services`."""
    flows = root / "flows"
    flows.mkdir()
    return Settings(
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
        redis_url=redis_url,
        data_dir=root / "var",
        flows_dir=flows,
        recordings_dir=root / "recordings",
        recording_hosts=(f"127.0.0.1:{services.port}",),
        transcribe_url=services.base,
        twilio_api_url=services.base,
    )


@pytest.fixture
def ticket_settings(tmp_path: Path, services: FakeServices, redis_url: str) -> Settings:
    return settings_for(tmp_path, services, redis_url)


def recording_sid() -> str:
    return "RE" + secrets.token_hex(16)


def call_sid() -> str:
    return "CA" + secrets.token_hex(16)


VoicemailFactory = Callable[..., Voicemail]


@pytest.fixture
def voicemail(services: FakeServices) -> VoicemailFactory:
    """Facts of a fresh voicemail whose audio the fake Twilio serves."""

    def make(**changes: Any) -> Voicemail:
        sid = changes.pop("recording_sid", None) or recording_sid()
        url = changes.pop("recording_url", None) or services.recording_url(sid)
        facts: dict[str, Any] = {
            "call_sid": call_sid(),
            "recording_sid": sid,
            "recording_url": url,
            "seconds": 14,
            "from_": "+84901111222",
            "to": "+15005550006",
            "at": AT,
            "flow": "support",
            "language": "vi-VN",
            "queue": "billing",
            "pools_tried": (
                PoolTried("hanoi", "nobody answered in 20 s"),
                PoolTried("cairo", "off shift"),
            ),
            "caller_country": "VN",
            "pool_zones": {"hanoi": "Asia/Ho_Chi_Minh", "cairo": "Africa/Cairo"},
        }
        facts.update(changes)
        return Voicemail(**facts)

    return make


def write_sinks(flows_dir: Path, text: str) -> Path:
    """Write tickets.yaml beside the flows."""
    path = flows_dir / "tickets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def webhook_yaml(services: FakeServices, extra: str = "") -> str:
    return (
        "sinks:\n"
        f'  - {{type: webhook, url: "{services.base}/hooks/ivr", '
        f'secret: "${{IVR_WEBHOOK_SECRET}}"{extra}}}\n'
    )


def make_worker(settings: Settings, connection: redis.Redis, clock: Clock, **env: str) -> Worker:
    """A worker over the sinks of `settings`' tickets.yaml, on a pinned clock."""
    environment = {"IVR_WEBHOOK_SECRET": WEBHOOK_SECRET, **env}
    sinks = build_sinks(sinks_for_worker(settings.flows_dir, environment), settings, environment)
    return Worker(settings, connection, sinks, OPTIONS, now=clock, rand=lambda: 0.5, name="w1")
