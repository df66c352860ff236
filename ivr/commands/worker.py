"""`ivr worker`: deliver tickets to their sinks until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click

from ivr.embedded import ensure_redis
from ivr.errors import IvrError
from ivr.settings import Settings
from ivr.store import connect
from ivr.tickets.worker import WorkerOptions, run_worker


@click.command()
@click.option(
    "--claim-idle",
    type=click.FloatRange(0.1, 86400),
    default=WorkerOptions.claim_idle_ms / 1000,
    show_default=True,
    help="Seconds after which another worker's unfinished delivery is taken over.",
)
@click.option(
    "--transcript-wait",
    type=click.FloatRange(0, 3600),
    default=WorkerOptions.transcript_wait,
    show_default=True,
    help="Seconds to wait for Twilio's own transcription before delivering without it.",
)
def worker(claim_idle: float, transcript_wait: float) -> None:
    """Deliver voicemail tickets from the outbox to the sinks of tickets.yaml."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()

    def graceful(signum: int, frame: FrameType | None) -> None:
        # The delivery under way finishes (its timeouts bound it); then the loop ends.
        stop.set()

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGINT, graceful)
    options = WorkerOptions(
        claim_idle_ms=int(claim_idle * 1000),
        reclaim_every=min(WorkerOptions.reclaim_every, claim_idle),
        transcript_wait=transcript_wait,
    )
    try:
        settings = Settings.from_env()
        with ensure_redis(settings) as ready:
            run_worker(ready, connect(ready.with_(redis_timeout=5.0)), stop, options)
    except IvrError as exc:
        raise click.ClickException(str(exc)) from None


COMMANDS = [worker]
