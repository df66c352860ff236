"""Sustained load at a fixed arrival rate: `ivr serve` under 1,000 webhooks a second for 60 s.

Open loop, as Twilio's traffic is: calls arrive at a fixed rate whatever the server does with
the ones before. Each call posts its incoming webhook when due, its language choice a second
later and its final status callback a second after that, so that in the steady state each of the
three webhooks is a third of the rate. A request whose previous answer has not come back yet is
sent when it has (as Twilio would). Latency counts from the moment a request could be sent: the
wait for a free connection (the server falling behind) is in it, the timer's own lateness is
reported apart. The same load is played against the bare Flask floor of `bench.baseline_app`,
under the same gunicorn settings, in the same run.

Requests go over a bounded pool of keep-alive connections on loopback, every one of them signed
and encoded before the clock starts; the number of requests is fixed by rate x seconds. The
player is one thread around one selector: it shares the server's two cores, and an asyncio
player (streams, a task and a timeout per request) took 250-400 us of CPU a request, a quarter
of a core at 1,000/s that the server then did not have; this one takes about 100 us.
"""

from __future__ import annotations

import heapq
import os
import selectors
import socket
import statistics
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import webhooks
from bench.webhooks import Prepared
from ivr.simulate import new_call_sid
from ivr.voice.security import SignatureChecker

RATE = 1000  # webhooks per second, all kinds together
SECONDS = 60
CONNECTIONS = 64  # keep-alive connections the load may use at once
GAP = 1.0  # seconds between a call's webhooks
TIMEOUT = 10.0  # a request not answered by then is an error
P99_GOAL_MS = 10.0


@dataclass
class Tally:
    """What one run of the load saw."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    late_ms: list[float] = field(default_factory=list)  # how long after due each was sent
    first_error: str = ""

    def error(self, text: str) -> None:
        """One more request failed; the first failure's words are kept."""
        self.errors += 1
        self.first_error = self.first_error or text

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def _encode(request: Prepared, port: int) -> bytes:
    headers = "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
    head = (
        f"POST {request.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}"
        f"Content-Length: {len(request.body)}\r\n\r\n"
    )
    return head.encode() + request.body


STEPS_OF_A_CALL = ("incoming", "menu", "status")  # the language menu, then the end


def calls_for(
    checker: SignatureChecker, base: str, paths: dict[str, str], count: int
) -> list[list[Prepared]]:
    """`count` calls, each its incoming, menu and final status request, signed for `base`."""
    calls = []
    for _ in range(count):
        sid = new_call_sid()
        calls.append([webhooks._step(checker, base, paths, step, sid) for step in STEPS_OF_A_CALL])
    return calls


@dataclass
class _Exchange:
    """One request on its way: its call and step, when it could go, its wire bytes."""

    call: int
    step: int
    ready: float  # monotonic time from which it could be sent; its latency counts from here
    wire: bytes


@dataclass(eq=False)  # each is itself: kept in a set, found by identity
class _Connection:
    """A keep-alive connection of the player, and the exchange it carries, if any."""

    sock: socket.socket
    exchange: _Exchange | None = None
    received: bytearray = field(default_factory=bytearray)


class _Player:
    """The open-loop load in one thread around one selector, at a few tens of microseconds of
    CPU a request: the generator shares the server's cores, and what it spends the server
    cannot use. Each call's steps are due at its arrival plus GAP each; a step goes when it is
    due and its call's previous answer is in, over the first free of CONNECTIONS keep-alive
    connections (opened when first used, taken in turn), or waits for one."""

    def __init__(self, port: int, calls: Sequence[Sequence[Prepared]], rate: float) -> None:
        self.port = port
        self.wire = [[_encode(request, port) for request in requests] for requests in calls]
        self.every = len(STEPS_OF_A_CALL) / rate  # seconds between two calls' arrivals
        self.tally = Tally()
        self.selector = selectors.DefaultSelector()
        self.free: deque[_Connection | None] = deque([None] * CONNECTIONS)
        self.waiting: deque[_Exchange] = deque()  # ready, no free connection yet
        self.busy: set[_Connection] = set()
        self.timers: list[tuple[float, int, int]] = []  # (due, call, step), a heap
        self.checked = 0.0  # when requests were last checked for their timeout
        self.start = 0.0  # when the first call arrives, set as the play begins

    def run(self) -> Tally:
        self.start = time.monotonic() + 0.2
        next_call = 0
        try:
            while next_call < len(self.wire) or self.timers or self.waiting or self.busy:
                now = time.monotonic()
                # Calls are put on the timer shortly before they are due, so it never holds all.
                while next_call < len(self.wire) and self._arrival(next_call) <= now + 0.05:
                    heapq.heappush(self.timers, (self._arrival(next_call), next_call, 0))
                    next_call += 1
                while self.timers and self.timers[0][0] <= now:
                    due, call, step = heapq.heappop(self.timers)
                    self.tally.late_ms.append(max(0.0, now - due) * 1000)
                    self._send(_Exchange(call, step, max(due, now), self.wire[call][step]))
                wake = self.timers[0][0] if self.timers else now + 0.05
                if next_call < len(self.wire):
                    wake = min(wake, self._arrival(next_call) - 0.05)
                for key, _ in self.selector.select(max(0.0, min(wake - time.monotonic(), 0.1))):
                    self._readable(key.data)
                now = time.monotonic()
                if now >= self.checked + 0.01:
                    self.checked = now
                    self._expire(now)
        finally:
            for connection in list(self.busy) + [c for c in self.free if c is not None]:
                connection.sock.close()
            self.selector.close()
        return self.tally

    def _arrival(self, call: int) -> float:
        return self.start + call * self.every

    def _send(self, exchange: _Exchange) -> None:
        if not self.free:
            self.waiting.append(exchange)
            return
        connection = self.free.popleft()
        try:
            if connection is None:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                connection = _Connection(sock)
                self.selector.register(sock, selectors.EVENT_READ, connection)
            connection.sock.sendall(exchange.wire)
        except OSError as exc:
            if connection is None:
                self.free.append(None)
            else:
                self._drop(connection)
            self._failed(exchange, f"{type(exc).__name__}: {exc}")
            return
        connection.exchange = exchange
        self.busy.add(connection)

    def _readable(self, connection: _Connection) -> None:
        exchange = connection.exchange
        try:
            chunk = connection.sock.recv(65536)
        except OSError as exc:
            chunk, error = b"", f"{type(exc).__name__}: {exc}"
        else:
            error = "IncompleteReadError: the server closed the connection"
        if not chunk:
            if exchange is None:  # an idle connection the server closed (its keep-alive ran out)
                self.free.remove(connection)
            self._drop(connection)
            if exchange is not None:
                self._failed(exchange, error)
            self._next()
            return
        connection.received += chunk
        answer = _answer(connection.received)
        if answer is None or exchange is None:
            return
        status, body, closing = answer
        done = time.monotonic()
        self.tally.latencies_ms.append((done - exchange.ready) * 1000)
        if status != 200 or b"<Response" not in body:
            self.tally.error(f"HTTP {status}: {body[:200]!r}")  # an answer: the call goes on
        connection.exchange = None
        connection.received = bytearray()
        self.busy.discard(connection)
        if closing:
            self._drop(connection)
        else:
            self.free.append(connection)
        if exchange.step + 1 < len(self.wire[exchange.call]):
            due = self._arrival(exchange.call) + (exchange.step + 1) * GAP
            heapq.heappush(self.timers, (max(due, done), exchange.call, exchange.step + 1))
        self._next()

    def _next(self) -> None:
        """A connection came free: the longest-waiting request takes it."""
        if self.waiting and self.free:
            self._send(self.waiting.popleft())

    def _expire(self, now: float) -> None:
        """Requests past TIMEOUT, sent or still waiting for a connection, are errors."""
        for connection in [c for c in self.busy if c.exchange and now - c.exchange.ready > TIMEOUT]:
            exchange = connection.exchange
            self._drop(connection)
            if exchange is not None:
                self._failed(exchange, f"TimeoutError: no answer in {TIMEOUT:.0f} s")
        while self.waiting and now - self.waiting[0].ready > TIMEOUT:
            self._failed(self.waiting.popleft(), f"TimeoutError: no connection in {TIMEOUT:.0f} s")
        self._next()

    def _failed(self, exchange: _Exchange, error: str) -> None:
        """No answer: Twilio would play its error message, and the call is over (none of its
        steps is put on the timer again)."""
        self.tally.error(error)

    def _drop(self, connection: _Connection) -> None:
        """Close `connection`; its place in the pool is free again, to be opened when used."""
        self.busy.discard(connection)
        self.selector.unregister(connection.sock)
        connection.sock.close()
        self.free.append(None)


def _answer(received: bytearray) -> tuple[int, bytes, bool] | None:
    """(status, body, whether the server closes) once `received` holds a whole answer."""
    end = received.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(received[:end]).lower()
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip() == b"content-length":
            length = int(value)
    if len(received) < end + 4 + length:
        return None
    body = bytes(received[end + 4 : end + 4 + length])
    return int(head[9:12]), body, b"connection: close" in head


def play(port: int, calls: Sequence[Sequence[Prepared]], rate: float) -> Tally:
    """Play `calls` against the server on `port` at `rate` webhooks a second."""
    return _Player(port, calls, rate).run()


def run(rate: int = RATE, seconds: int = SECONDS) -> list[dict[str, Any]]:
    """The load on the real app, then on the floor; one figure per dict."""
    count = max(1, round(rate * seconds / len(STEPS_OF_A_CALL)))
    checker = SignatureChecker(webhooks.TOKEN)
    tallies: dict[str, Tally] = {}
    with webhooks._servers(eventless=False) as (ivr, _, floor, paths):
        for server in (floor, ivr):
            warm = calls_for(checker, server.base, paths, max(1, min(200, count // 4)))
            play(server.port, warm, rate)
            calls = calls_for(checker, server.base, paths, count)
            tallies[server.name] = play(server.port, calls, rate)
    return _figures(tallies[ivr.name], tallies[floor.name], rate, seconds)


def _figures(ivr: Tally, floor: Tally, rate: int, seconds: int) -> list[dict[str, Any]]:
    figure = webhooks._figure
    setting = (
        f"{rate} webhooks/s for {seconds} s (incoming, menu, status), open loop over "
        f"{CONNECTIONS} keep-alive connections, {webhooks.WORKERS} workers x "
        f"{webhooks.THREADS} threads"
    )
    figures = []
    for label, tally in (("bare Flask", floor), ("ivr", ivr)):
        note = setting if label == "bare Flask" else ""
        if tally.errors:
            note = f"{tally.errors} errors, first: {tally.first_error}"
        late = statistics.mean(tally.late_ms) if tally.late_ms else 0.0
        figures += [
            figure(f"{label}: p50", tally.percentile(50), "ms", None, note),
            figure(
                f"{label}: p99", tally.percentile(99), "ms", P99_GOAL_MS if label == "ivr" else None
            ),
            figure(f"{label}: max", max(tally.latencies_ms, default=float("nan")), "ms"),
            figure(f"{label}: errors", tally.errors, "requests"),
            figure(
                f"{label}: sent late, mean",
                late,
                "ms",
                None,
                "the load generator's own lag, not in latency",
            ),
        ]
    ratio = ivr.percentile(99) / floor.percentile(99)
    figures.append(figure("p99, ivr / bare Flask", ratio, "x"))
    return figures


if __name__ == "__main__":
    # python -m bench.load [rate] [seconds]: this section alone.
    from bench.__main__ import table

    arguments = [int(a) for a in sys.argv[1:3]]
    began = time.perf_counter()
    print(table([(f"sustained load ({os.cpu_count()} cores)", run(*arguments))]))
    print(f"\n{time.perf_counter() - began:.0f} s")
