"""Faults of ticket delivery with the real `ivr worker`: killed mid-delivery while a batch goes
out, and a full recordings disk. Every ticket is kept; each is delivered, and recorded, once."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import redis

from ivr.settings import Settings
from ivr.tickets.model import Ticket
from ivr.tickets.store import TicketStore
from tests.faults.conftest import REPORTED
from tests.tickets.conftest import VoicemailFactory, webhook_yaml, write_sinks
from tests.tickets.fakes import FakeServices, Reply
from tests.tickets.test_cli_and_sigkill import WAIT, start_worker, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.server]

TICKETS = 12
BEFORE_KILL = 5  # deliveries answered before the one the worker dies in


def make_tickets(store: TicketStore, voicemail: VoicemailFactory, count: int) -> list[Ticket]:
    made = [store.create(voicemail()) for _ in range(count)]
    assert all(m is not None for m in made)
    return [m[0] for m in made if m is not None]


def statuses(store: TicketStore, tickets: list[Ticket]) -> list[str]:
    return [t.status if (t := store.get(ticket.id)) else "missing" for ticket in tickets]


def stop(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then the exit code must say it stopped gracefully."""
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(WAIT) == 0


def test_worker_sigkill_mid_batch_delivers_the_rest_once(
    tmp_path: Path,
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    release = threading.Event()
    answered = [Reply(200, b'{"ok": true}') for _ in range(BEFORE_KILL)]
    services.script("POST", "/hooks/ivr", *answered, Reply(200, b"{}", hold=release))
    store = TicketStore(connection)
    tickets = make_tickets(store, voicemail, TICKETS)
    first = start_worker(ticket_settings, tmp_path, "first")
    try:
        wait_for(
            lambda: len(services.seen("POST", "/hooks/ivr")) > BEFORE_KILL,
            "the worker to reach the held delivery",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(WAIT)
    finally:
        release.set()
        if first.poll() is None:
            first.kill()
    killed_in = services.seen("POST", "/hooks/ivr")[BEFORE_KILL].headers["Idempotency-Key"]
    second = start_worker(ticket_settings, tmp_path, "second")
    try:
        wait_for(
            lambda: statuses(store, tickets) == ["delivered"] * TICKETS,
            "every ticket delivered: " + (tmp_path / "second.log").read_text(),
        )
        stop(second)
    finally:
        if second.poll() is None:
            second.kill()
    posts = [p.headers["Idempotency-Key"] for p in services.seen("POST", "/hooks/ivr")]
    REPORTED.append(
        f"ticket worker SIGKILL: tickets={TICKETS} posts={len(posts)} "
        f"repeated={len(posts) - len(set(posts))} outbox_left={store.outbox_length()}"
    )
    ids = {ticket.id for ticket in tickets}
    assert set(posts) == ids  # each delivered at least once
    # Only the delivery the worker died in is repeated; every other ticket went out once.
    assert len(posts) == TICKETS + 1 and posts.count(killed_in) == 2
    for ticket in tickets:
        done = store.get(ticket.id)
        assert done is not None and done.status == "delivered"
        assert done.attempts["webhook"] == (2 if ticket.id == killed_in else 1)
    assert store.outbox_length() == 0


def test_recordings_disk_full_keeps_every_ticket_with_the_error(
    tmp_path: Path,
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    store = TicketStore(connection)
    tickets = make_tickets(store, voicemail, 6)
    ticket_settings.recordings_dir.mkdir(parents=True)
    parts = [ticket_settings.recordings_dir / f".{t.recording_sid}.part" for t in tickets]
    for part in parts:  # /dev/full answers every write with ENOSPC
        os.symlink("/dev/full", part)
    worker = start_worker(ticket_settings, tmp_path, "full")
    try:
        wait_for(
            lambda: all(
                (t := store.get(ticket.id)) is not None and "disk full" in (t.last_error or "")
                for ticket in tickets
            ),
            "every ticket to meet the full disk: " + (tmp_path / "full.log").read_text(),
        )
        kept = [store.get(ticket.id) for ticket in tickets]
        assert all(k is not None and k.status == "new" for k in kept), kept
        assert all(k is not None and k.recording.path is None for k in kept)
        assert not list(ticket_settings.recordings_dir.glob("*.wav"))

        for part in parts:  # space freed (the worker may have removed its partial file already)
            part.unlink(missing_ok=True)
        for ticket in tickets:  # the operator asks again rather than wait for the backoff
            store.retry(ticket.id)
        wait_for(
            lambda: statuses(store, tickets) == ["delivered"] * len(tickets),
            "delivery once space was freed: " + (tmp_path / "full.log").read_text(),
        )
        stop(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
    posts = [p.headers["Idempotency-Key"] for p in services.seen("POST", "/hooks/ivr")]
    REPORTED.append(
        f"recordings disk full: tickets={len(tickets)} kept={len(statuses(store, tickets))} "
        f"posts={len(posts)}"
    )
    assert sorted(posts) == sorted(ticket.id for ticket in tickets)
    for ticket in tickets:
        done = store.get(ticket.id)
        assert done is not None and done.recording.path
        assert Path(done.recording.path).stat().st_size > 0
