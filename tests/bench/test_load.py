"""The sustained-load bench at a small scale: real servers, the open-loop player, its figures."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from bench import load
from bench.webhooks import Prepared


@pytest.mark.server
def test_the_load_reaches_both_servers_and_reports_every_figure() -> None:
    figures = {f["name"]: f for f in load.run(rate=30, seconds=2)}
    for label in ("bare Flask", "ivr"):
        assert figures[f"{label}: errors"]["value"] == 0, figures[f"{label}: p50"]["note"]
        assert 0 < figures[f"{label}: p50"]["value"] <= figures[f"{label}: p99"]["value"]
    assert figures["ivr: p99"]["goal"] == load.P99_GOAL_MS
    assert figures["p99, ivr / bare Flask"]["value"] > 0


IDLE = 0.6  # seconds a connection of the peer may stay idle


class _Peer(socketserver.BaseRequestHandler):
    """A keep-alive HTTP peer whose answer the request path chooses: /ok, /close (answers and
    closes), /bad (HTTP 500), /drop (closes unanswered), /slow (answers after 0.3 s). It closes
    a connection idle for IDLE seconds, as a server's keep-alive timeout does."""

    def handle(self) -> None:
        received = b""
        self.request.settimeout(IDLE)
        while True:
            while b"\r\n\r\n" not in received:
                try:
                    chunk = self.request.recv(65536)
                except TimeoutError:
                    return
                if not chunk:
                    return
                received += chunk
            head, _, received = received.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(received) < length:
                received += self.request.recv(65536)
            received = received[length:]
            path = head.split(b" ")[1].decode()
            if path == "/drop":
                return
            if path == "/slow":
                time.sleep(0.3)
            status = "500 Oops" if path == "/bad" else "200 OK"
            body = b"<Response/>"
            closing = "Connection: close\r\n" if path == "/close" else ""
            self.request.sendall(
                f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{closing}\r\n".encode() + body
            )
            if closing:
                return


@pytest.fixture
def peer() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Peer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _calls(*paths: str, count: int = 20) -> list[list[Prepared]]:
    return [[Prepared(path, b"x=1", {}) for path in paths] for _ in range(count)]


def test_the_player_counts_every_answer_and_every_failure(
    peer: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load, "GAP", 0.01)
    tally = load.play(peer, _calls("/ok", "/close", "/ok"), rate=300)
    assert (len(tally.latencies_ms), tally.errors) == (60, 0)  # connections closed are made again
    tally = load.play(peer, _calls("/ok", "/bad", "/ok"), rate=300)
    assert (len(tally.latencies_ms), tally.errors) == (60, 20)  # an error answer, the call goes on
    assert tally.first_error.startswith("HTTP 500")
    tally = load.play(peer, _calls("/ok", "/drop", "/ok"), rate=300)
    assert (len(tally.latencies_ms), tally.errors) == (20, 20)  # no answer: the call is over
    assert "closed" in tally.first_error


def test_connections_the_server_closed_while_idle_are_made_again(
    peer: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load, "GAP", IDLE * 1.5)  # each call's next step finds its peer gone
    monkeypatch.setattr(load, "CONNECTIONS", 4)  # ... on a connection used before
    tally = load.play(peer, _calls("/ok", "/ok", count=10), rate=300)
    assert (len(tally.latencies_ms), tally.errors) == (20, 0), tally.first_error


def test_the_player_keeps_its_arrival_rate_while_answers_are_slow(
    peer: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Open loop: 12 calls 30 ms apart, each answered after 0.3 s, over 4 connections, are all
    # done in about a second, not one after another (3.6 s); the fifth, arriving at 120 ms,
    # waits for the first connection to come free at 300 ms, and that wait counts.
    monkeypatch.setattr(load, "CONNECTIONS", 4)
    began = time.monotonic()
    tally = load.play(peer, _calls("/slow", count=12), rate=100)  # a call every 3/100 s
    took = time.monotonic() - began
    assert (len(tally.latencies_ms), tally.errors) == (12, 0)
    assert took < 2.0
    assert min(tally.latencies_ms) >= 300
    assert max(tally.latencies_ms) >= 450


def test_a_request_unanswered_past_the_timeout_is_an_error(
    peer: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load, "TIMEOUT", 0.1)
    tally = load.play(peer, _calls("/slow", count=3), rate=100)
    assert (tally.latencies_ms, tally.errors) == ([], 3)
    assert tally.first_error.startswith("TimeoutError")
