"""The real `ivr worker` on a Sentinel URL through a failover: it resumes, and delivers once."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from ivr import redis_url as urls
from ivr.settings import Settings
from ivr.tickets.model import Voicemail
from ivr.tickets.store import TicketStore
from tests.tickets.conftest import (
    call_sid,
    recording_sid,
    settings_for,
    webhook_yaml,
    write_sinks,
)
from tests.tickets.fakes import FakeServices, running
from tests.tickets.test_cli_and_sigkill import start_worker
from tests.topology.conftest import FAILOVER_TIMEOUT, SentinelSet, _sentinel_field

pytestmark = pytest.mark.topology

DELIVERY_TIMEOUT = 30.0


@pytest.fixture
def services() -> Iterator[FakeServices]:
    with running() as fake:
        yield fake


def _settings(root: Path, services: FakeServices, url: str) -> Settings:
    settings = settings_for(root, services, url)
    write_sinks(settings.flows_dir, webhook_yaml(services))
    return settings


def _leave_voicemail(store: TicketStore, services: FakeServices) -> str:
    """A caller's voicemail, made into a ticket as the recording callback does; its id."""
    sid = recording_sid()
    facts = Voicemail(
        call_sid=call_sid(),
        recording_sid=sid,
        recording_url=services.recording_url(sid),
        seconds=9,
        from_="+84901111222",
        to="+15005550006",
        at=datetime.now(UTC),
        flow="support",
        language="vi-VN",  # transcribed by the loopback speech-to-text, not awaited from Twilio
    )
    made = store.create(facts)
    assert made is not None
    return made[0].id


def _delivered(store: TicketStore, services: FakeServices, ticket_id: str) -> bool:
    try:
        ticket = store.get(ticket_id)
    except redis.RedisError:
        return False
    return (
        ticket is not None
        and ticket.status == "delivered"
        and ticket_id in (services.webhook_tickets)
    )


def _wait(condition: object, what: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)


def test_the_ticket_worker_resumes_after_a_failover(
    sentinel_set: SentinelSet, services: FakeServices, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, services, sentinel_set.url)
    store = TicketStore(urls.client(sentinel_set.url, 2))
    log = tmp_path / "worker.log"
    worker = start_worker(settings, tmp_path, "worker")
    try:
        before = _leave_voicemail(store, services)
        _wait(lambda: _delivered(store, services, before), "the first ticket", 20.0, log)
        # Replication is ordered: once the replica has this marker, it has the delivery too.
        master = sentinel_set.master.client()
        master.set("ivr:test:marker", "1")
        assert master.execute_command("WAIT", 1, 5000) == 1

        sentinel_set.master.kill()
        promoted = str(sentinel_set.replica.port).encode()
        _wait(
            lambda: (
                _sentinel_field(sentinel_set.sentinels[0], sentinel_set.service, "port") == promoted
            ),
            "the sentinels to promote the replica",
            FAILOVER_TIMEOUT,
            log,
        )
        after = ""
        deadline = time.monotonic() + FAILOVER_TIMEOUT
        while not after:  # the clients find the promoted master on their next connection
            try:
                after = _leave_voicemail(store, services)
            except redis.RedisError:
                assert time.monotonic() < deadline, "no ticket could be made after the failover"
                time.sleep(0.2)
        _wait(lambda: _delivered(store, services, after), "the ticket after", DELIVERY_TIMEOUT, log)
        assert worker.poll() is None, "the worker gave up"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    posts = [p.headers["Idempotency-Key"] for p in services.seen("POST", "/hooks/ivr")]
    assert sorted(posts) == sorted([before, after])  # each delivered once, none again
    for ticket_id in (before, after):
        ticket = store.get(ticket_id)
        assert ticket is not None and ticket.attempts["webhook"] == 1
    assert store.outbox_length() == 0
