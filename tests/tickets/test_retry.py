"""Retrying a ticket whose audio was not kept: the download is tried again, the sinks are not."""

from __future__ import annotations

import redis

from ivr.settings import Settings
from ivr.tickets.store import TicketStore
from tests.tickets.conftest import Clock, VoicemailFactory, webhook_yaml, write_sinks
from tests.tickets.fakes import FakeServices, Reply, running
from tests.tickets.test_sink_answers import worker_for


def test_retry_fetches_audio_that_was_refused_once_the_host_is_allowed(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    store = TicketStore(connection)
    with running("127.0.0.2") as media:
        sid = "RE" + "d" * 32
        made = store.create(voicemail(recording_sid=sid, recording_url=media.recording_url(sid)))
        assert made is not None
        ticket_id = made[0].id
        worker_for(ticket_settings, connection, clock).deliver(ticket_id)
        refused = store.get(ticket_id)
        assert refused is not None and refused.status == "delivered"
        assert refused.recording.path is None and "refused" in (refused.recording.error or "")
        # The operator adds the media host, then asks for the ticket again.
        allowed = ticket_settings.with_(
            recording_hosts=(*ticket_settings.recording_hosts, f"127.0.0.2:{media.port}")
        )
        again = store.retry(ticket_id)
        assert again.status == "new" and again.recording.error is None
        worker_for(allowed, connection, clock).deliver(ticket_id)
    done = store.get(ticket_id)
    assert done is not None and done.status == "delivered"
    assert done.recording.path and done.recording.path.endswith(f"{sid}.wav")
    assert done.transcript.text == "Xin chào, tôi cần giúp đỡ."
    assert len(services.seen("POST", "/hooks/ivr")) == 1  # the sink already had the ticket


def test_retry_tries_a_sink_waiting_out_its_backoff_now(
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    clock: Clock,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    services.script("POST", "/hooks/ivr", Reply(503, b"", {"Retry-After": "3600"}))
    store = TicketStore(connection)
    made = store.create(voicemail())
    assert made is not None
    worker = worker_for(ticket_settings, connection, clock)
    worker.store.ensure_group()
    worker.tick()
    waiting = store.get(made[0].id)
    assert waiting is not None and waiting.sinks["webhook"] == "pending"
    # The helpdesk is back; the operator asks for the ticket now, not in an hour.
    store.retry(made[0].id)
    worker.tick()
    done = store.get(made[0].id)
    assert done is not None and done.status == "delivered"
    assert len(services.seen("POST", "/hooks/ivr")) == 2
