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
before the clock starts; the number of requests is fixed by rate x seconds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
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

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


class Connections:
    """A bounded pool of keep-alive HTTP/1.1 connections to one server."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = (
            asyncio.Queue()
        )
        for _ in range(size):
            self.idle.put_nowait(None)  # opened when first used

    async def post(self, request: Prepared) -> tuple[int, bytes]:
        """Send one request and read its whole answer; (status, body)."""
        connection = await self.idle.get()
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = connection
            writer.write(_encode(request, self.port))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            if b"connection: close" in head.lower():
                writer.close()
                connection = None
            return status, body
        except BaseException:
            if connection is not None:
                connection[1].close()
            connection = None
            raise
        finally:
            self.idle.put_nowait(connection)

    async def close(self) -> None:
        while not self.idle.empty():
            connection = self.idle.get_nowait()
            if connection is not None:
                connection[1].close()


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


async def _play(port: int, calls: Sequence[Sequence[Prepared]], rate: float) -> Tally:
    tally = Tally()
    pool = Connections(port, CONNECTIONS)
    loop = asyncio.get_running_loop()
    every = len(STEPS_OF_A_CALL) / rate  # seconds between two calls' arrivals
    start = loop.time() + 0.2

    async def one(index: int, requests: Sequence[Prepared]) -> None:
        arrival = start + index * every
        for step, request in enumerate(requests):
            due = arrival + step * GAP
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            woke = loop.time()
            tally.late_ms.append(max(0.0, woke - due) * 1000)
            try:
                status, body = await asyncio.wait_for(pool.post(request), TIMEOUT)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                tally.errors += 1
                tally.first_error = tally.first_error or f"{type(exc).__name__}: {exc}"
                return  # Twilio would play its error message: the call is over
            # From the moment the request could go: the wait for a free connection (the server
            # being behind) counts, the timer's own lateness (reported apart) does not.
            tally.latencies_ms.append((loop.time() - max(due, woke)) * 1000)
            if status != 200 or b"<Response" not in body:
                tally.errors += 1
                tally.first_error = tally.first_error or f"HTTP {status}: {body[:200]!r}"

    tasks = []
    for index, requests in enumerate(calls):
        # Tasks are made shortly before their call is due, so the loop never holds them all.
        ahead = start + index * every - loop.time() - 0.05
        if ahead > 0:
            await asyncio.sleep(ahead)
        tasks.append(asyncio.ensure_future(one(index, requests)))
    await asyncio.gather(*tasks)
    await pool.close()
    return tally


def play(port: int, calls: Sequence[Sequence[Prepared]], rate: float) -> Tally:
    """Play `calls` against the server on `port` at `rate` webhooks a second."""
    return asyncio.run(_play(port, calls, rate))


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
