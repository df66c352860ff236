"""Ticket delivery speed: 1,000 voicemails through one worker to a loopback webhook sink.

Each ticket is made through the store (as the voice webhooks will), its WAV downloaded from a
loopback "Twilio", then POSTed, signed, to a loopback webhook that notes when it arrived. The
tickets are made in one burst, so p99 is the time to drain a backlog of 1,000, not a quiet-time
latency. Goal: 100 tickets/s. Run with `python -m bench.tickets`.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import redis

from ivr.embedded import EmbeddedRedis
from ivr.settings import Settings
from ivr.tickets.model import Voicemail
from ivr.tickets.sinks import WebhookSink
from ivr.tickets.store import TicketStore
from ivr.tickets.worker import Worker, WorkerOptions

TICKETS = 1000
GOAL_PER_SECOND = 100.0
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 2000


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one segment: else Nagle and delayed ACKs add 40 ms a request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    arrivals: ClassVar[dict[str, float]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(WAV)))
        self.end_headers()
        self.wfile.write(WAV)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.arrivals.setdefault(self.headers["Idempotency-Key"], time.perf_counter())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def run(tickets: int = TICKETS) -> list[dict[str, Any]]:
    """Make `tickets` tickets, deliver them, and return the figures."""
    _Sink.arrivals = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    httpd.daemon_threads = True
    port = int(httpd.server_address[1])
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as server:
        connection = redis.Redis.from_url(server.url)
        settings = Settings(
            redis_url=server.url,
            recordings_dir=Path(tmp) / "recordings",
            flows_dir=Path(tmp),
            recording_hosts=(f"127.0.0.1:{port}",),
            account_sid="AC" + "0" * 32,
            auth_token="bench",
        )
        sink = WebhookSink("webhook", f"http://127.0.0.1:{port}/hooks", "bench-secret")
        store = TicketStore(connection)
        store.ensure_group()
        made: dict[str, float] = {}
        began = time.perf_counter()
        for _ in range(tickets):
            sid = "RE" + secrets.token_hex(16)
            facts = Voicemail(
                call_sid="CA" + secrets.token_hex(16),
                recording_sid=sid,
                recording_url=f"http://127.0.0.1:{port}/Recordings/{sid}",
                seconds=12,
                from_="+84901111222",
                to="+15005550006",
                at=datetime.now(UTC),
                language="ar-XA",
            )
            result = store.create(facts)
            assert result is not None
            made[result[0].id] = time.perf_counter()
        worker = Worker(settings, connection, [sink], WorkerOptions(batch=50, block_ms=50))
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        thread.start()
        deadline = time.monotonic() + 300
        while len(_Sink.arrivals) < tickets and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.perf_counter() - began
        stop.set()
        thread.join(10)
        connection.close()
    httpd.shutdown()
    latencies = sorted(_Sink.arrivals[i] - made[i] for i in made if i in _Sink.arrivals)
    rate = len(latencies) / elapsed
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
    note = f"{len(latencies)}/{tickets} delivered; burst, so p99 is the backlog drain"
    return [
        {
            "name": "tickets delivered",
            "value": rate,
            "unit": "tickets/s",
            "goal": GOAL_PER_SECOND,
            "ratio": rate / GOAL_PER_SECOND,
            "note": note,
        },
        {"name": "creation to delivery p99", "value": p99, "unit": "s", "note": note},
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
