"""Loopback servers that play Twilio's media and REST API, helpdesks, and a speech-to-text endpoint.

Each request is recorded; replies are scripted per (method, path) and fall back to what the real
API answers. A scripted reply can be slow, drop the connection mid-body, or hold until released.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "twilio-test-token"
HOLD_LIMIT = 20.0  # a held reply never waits longer than this


def wav_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A real, playable mono 16-bit PCM WAV of silence."""
    frames = int(seconds * rate)
    data = b"\x00\x00" * frames
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return header + fmt + b"data" + struct.pack("<I", len(data)) + data


MP3_BYTES = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 400


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop_mid_body: bool = False
    chunked: bool = False
    hold: threading.Event | None = None
    acted: bool = False  # the service does what it would (made a ticket, say), then answers this


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeServices:
    """One threaded HTTP server on 127.0.0.1 playing every outside HTTP service at once."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Seen] = []
        self.scripts: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self.arrived = threading.Event()
        self.webhook_tickets: dict[str, Any] = {}  # by Idempotency-Key: an idempotent receiver
        self.zendesk_tickets: dict[str, Any] = {}
        self.freshdesk_tickets: list[dict[str, Any]] = []  # oldest first
        self.lock = threading.Lock()
        self.media: dict[str, bytes] = {}
        self.httpd = ThreadingHTTPServer((host, 0), _handler(self))
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.host = host
        self.base = f"http://{host}:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def recording_url(
        self, recording_sid: str, body: bytes | None = None, kind: str = "wav"
    ) -> str:
        """A Twilio-style recording URL served here (the audio at `.wav`/`.mp3`)."""
        path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"
        self.media[f"{path}.{kind}"] = wav_bytes() if body is None else body
        return self.base + path

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Answer the next requests to (method, path) with these replies, in order."""
        self.scripts[(method, path)].extend(replies)

    def seen(self, method: str, path_start: str) -> list[Seen]:
        """The requests received so far to paths starting with `path_start`."""
        with self.lock:
            return [
                r for r in self.requests if r.method == method and r.path.startswith(path_start)
            ]

    def default(self, seen: Seen) -> Reply:
        if seen.method == "GET" and seen.path in self.media:
            return Reply(200, self.media[seen.path], {"Content-Type": "audio/x-wav"})
        if seen.method == "DELETE" and "/Recordings/" in seen.path:
            return Reply(204)
        if seen.path == "/hooks/ivr":
            key = seen.headers.get("Idempotency-Key", "")
            with self.lock:
                self.webhook_tickets.setdefault(key, seen.json())
            return Reply(200, b'{"ok": true}', {"Content-Type": "application/json"})
        if seen.path == "/api/v2/uploads.json":
            body = {"upload": {"token": f"upload-{len(self.seen('POST', '/api/v2/uploads'))}"}}
            return _json(201, body)
        if seen.path == "/api/v2/tickets.json":
            key = seen.headers.get("Idempotency-Key", "")
            with self.lock:
                number = self.zendesk_tickets.setdefault(key, len(self.zendesk_tickets) + 1)
            return _json(201, {"ticket": {"id": number}})
        if seen.path == "/api/v2/tickets":
            return self.freshdesk(seen)
        if seen.path == "/v1/audio/transcriptions":
            return _json(200, {"text": " Xin chào, tôi cần giúp đỡ. "})
        if seen.path.endswith("/Messages.json"):
            return _json(201, {"sid": "SM" + "0" * 32, "status": "queued"})
        return Reply(404, b"not found")

    def add_freshdesk_ticket(self, subject: str) -> dict[str, Any]:
        """A ticket made in Freshdesk now (by us, or by anyone else)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.lock:
            ticket = {"id": len(self.freshdesk_tickets) + 1, "subject": subject}
            self.freshdesk_tickets.append(ticket | {"created_at": stamp, "updated_at": stamp})
        return ticket

    def freshdesk(self, seen: Seen) -> Reply:
        """Freshdesk's tickets: a multipart POST makes one; a GET lists those updated since a
        time, newest first, a page at a time."""
        if seen.method == "POST":
            form = BytesParser().parsebytes(
                b"Content-Type: " + seen.headers["Content-Type"].encode() + b"\r\n\r\n" + seen.body
            )
            fields = {
                part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                for part in form.get_payload()
            }
            return _json(201, self.add_freshdesk_ticket(fields["subject"].decode()))
        query = dict(parse_qsl(seen.query))
        since = query.get("updated_since", "")
        with self.lock:
            found = [t for t in reversed(self.freshdesk_tickets) if t["updated_at"] >= since]
        per_page = int(query.get("per_page", "30"))
        start = (int(query.get("page", "1")) - 1) * per_page
        return _json(200, found[start : start + per_page])

    def __enter__(self) -> FakeServices:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _json(status: int, body: Any) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _handler(services: FakeServices) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            seen = Seen(self.command, path, query, dict(self.headers.items()), body)
            with services.lock:
                services.requests.append(seen)
                queue = services.scripts.get((self.command, path))
                reply = queue.popleft() if queue else None
            services.arrived.set()
            if reply is None:
                reply = services.default(seen)
            elif reply.acted:
                services.default(seen)
            if reply.hold is not None:
                reply.hold.wait(HOLD_LIMIT)
            if reply.delay:
                threading.Event().wait(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.drop_mid_body:
                    self.send_header("Content-Length", str(len(reply.body) * 2))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(reply.body), 1000):
                        piece = reply.body[start : start + 1000]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_DELETE = do_PUT = _serve

    return Handler


@contextmanager
def running(host: str = "127.0.0.1") -> Iterator[FakeServices]:
    """A started FakeServices, shut down afterwards."""
    with FakeServices(host) as services:
        yield services
