"""Webhook latency: `ivr serve` against a bare Flask floor, under the same gunicorn settings.

Three servers run at once, each with the same workers and threads: the real app on the sample
flows with its embedded Redis in a temporary data dir; the same app with the call events switched
off (`bench.eventless`, its own Redis), whose difference from the real one is the cost of writing
the events; and `bench.baseline_app` answering constant TwiML (the very documents the real app
answered, so size and shape match). A fixed number of keep-alive connections post identical,
pre-signed requests to each, after a warm-up, the servers taking turns in slices of a series:
- incoming: a new call per request (the number's Voice URL);
- menu: the language choice of a call prepared with an incoming request, one request per call.
`run()` returns one figure per dict ({name, value, unit, goal, ratio, note}); a ratio is
goal / measured, so above 1 means the goal is met.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

from ivr import redis_url
from ivr.commands.serve import SAMPLE_NUMBER
from ivr.simulate import new_call_sid
from ivr.store import CALLS_KEY
from ivr.voice.security import SignatureChecker

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-auth-token-0123456789abcdef"
WORKERS = 2
THREADS = 4
CLIENTS = 4
REQUESTS = 800  # per measured series
WARM_UP = 100
ROUNDS = 20  # turns the servers take in each measured series: finer turns, less drift between them
P50_GOAL = 1.5  # the real app's median within this factor of the floor's
RATE_GOAL = 0.6  # ... and its throughput at least this share of the floor's
EVENTS_GOAL = 10.0  # percent of the webhook's median spent writing its events, at most
INCOMING = "/voice/incoming"
VIETNAMESE = b'language="vi-VN"'  # what the menu answer to Digits=2 must contain


@dataclass(frozen=True)
class Prepared:
    """One request, encoded and signed before any timing starts."""

    path: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Series:
    """The timings of one series of requests against one server."""

    latencies_ms: list[float]
    seconds: float
    failures: int

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    @classmethod
    def joined(cls, parts: Sequence[Series]) -> Series:
        """Several series of one server as one."""
        latencies = [t for part in parts for t in part.latencies_ms]
        return cls(latencies, sum(p.seconds for p in parts), sum(p.failures for p in parts))

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[p - 1]


class Server:
    """A server process on a loopback port, its output kept in a file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], folder: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.command = [*command, "--port", str(self.port), "--workers", str(WORKERS)]
        self.env = env
        self.log = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not _ready(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} did not start:\n{tail}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


# The webhooks measured: what a call posts, in order, and what its answer must contain.
WEBHOOKS = ("incoming", "menu", "route", "status")
EXPECT = {
    "incoming": b"<Gather",
    "menu": VIETNAMESE,
    "route": b"<Response>",
    "status": b"<Response",
}


def run(requests: int = REQUESTS, clients: int = CLIENTS) -> list[dict[str, Any]]:
    """Measure each webhook on every server; one figure per dict."""
    with _servers() as (ivr, eventless, floor, paths):
        durable = _durable_floor(ivr, floor)
        try:
            rounds = _measure(ivr, eventless, floor, durable, paths, requests, clients)
        finally:
            durable.stop()
        sizes = {name: len(path.read_bytes()) for name, path in _documents(ivr.log.parent)}
        _check_records(ivr, eventless)
    setting = f"{WORKERS} workers x {THREADS} threads, {clients} keep-alive clients"
    figures: list[dict[str, Any]] = []
    for webhook in WEBHOOKS:
        size = sizes.get(_DOCUMENT[webhook], 0)
        note = f"{requests} requests, {setting}; answers of {size} bytes on all"
        servers = (ivr, floor, durable)
        results = {s.name: Series.joined(rounds[webhook, s.name]) for s in servers}
        ivr_series = results[ivr.name]
        figures += _compare(webhook, results[floor.name], ivr_series, note)
        figures += _versus_durable(webhook, results[durable.name], ivr_series)
        if webhook != "status":  # a status callback is nothing but its events
            figures += _events_cost(
                webhook, rounds[webhook, ivr.name], rounds[webhook, eventless.name]
            )
    return figures


_DOCUMENT = {"incoming": "incoming", "menu": "input-1", "route": "input-2", "status": "status"}


def _measure(
    ivr: Server,
    eventless: Server,
    floor: Server,
    durable: Server,
    paths: dict[str, str],
    requests: int,
    clients: int,
) -> dict[tuple[str, str], list[Series]]:
    """Each server's series of each webhook, one per round."""
    checker = SignatureChecker(TOKEN)
    servers = [floor, durable, ivr, eventless]
    # Each call of a series is brought to the step measured by untimed requests first.
    calls = {webhook: [new_call_sid() for _ in range(requests)] for webhook in WEBHOOKS}
    warm = [new_call_sid() for _ in range(WARM_UP)]
    posts: dict[tuple[str, str], list[Prepared]] = {}
    for server in servers:
        base = server.base
        for webhook in WEBHOOKS:
            _series(server, [_step(checker, base, paths, webhook, sid) for sid in warm], clients)
        for webhook in WEBHOOKS:
            before = WEBHOOKS[: WEBHOOKS.index(webhook)] if webhook != "status" else ("incoming",)
            for earlier in before if server in (ivr, eventless) else ():
                prepare = [_step(checker, base, paths, earlier, sid) for sid in calls[webhook]]
                _series(server, prepare, clients)
            posts[webhook, server.name] = [
                _step(checker, base, paths, webhook, sid) for sid in calls[webhook]
            ]
    rounds: dict[tuple[str, str], list[Series]] = {}
    for webhook in WEBHOOKS:
        # The servers take turns, a slice each, so a slow moment of the shared machine falls
        # on all of them rather than on one series; every other round in the reverse order,
        # so that none always follows the same server.
        for turn in range(ROUNDS):
            for server in servers if turn % 2 == 0 else servers[::-1]:
                share = posts[webhook, server.name][turn::ROUNDS]
                rounds.setdefault((webhook, server.name), []).append(
                    _series(server, share, clients, EXPECT[webhook])
                )
    return rounds


def _step(
    checker: SignatureChecker, base: str, paths: dict[str, str], webhook: str, sid: str
) -> Prepared:
    """Request `webhook` of call `sid`: its number rung, a language chosen (2, Vietnamese), the
    technical support queue chosen (2, a route), its final status."""
    if webhook == "incoming":
        return _incoming(checker, base, sid)
    if webhook == "menu":
        return _menu(checker, base, paths["menu"], sid)
    if webhook == "route":
        return _menu(checker, base, paths["route"], sid)
    params = _call(sid) | {"CallStatus": "completed", "CallDuration": "12"}
    return _prepared(checker, base, "/voice/status", params)


def _durable_floor(ivr: Server, floor: Server) -> Server:
    """The second floor, on the real app's Redis (idle while the others take their turn)."""
    url = (ivr.log.parent / "var" / "redis.url").read_text().strip()
    twiml = ivr.log.parent / "twiml"
    command = [sys.executable, "-m", "bench.baseline_app", "--twiml", str(twiml), "--redis", url]
    durable = Server("baseline-durable", command, floor.env, ivr.log.parent)
    durable.start()
    return durable


def _versus_durable(webhook: str, durable: Series, ivr: Series) -> list[dict[str, Any]]:
    failed = f"{durable.failures} requests FAILED" if durable.failures else ""
    label = f"{webhook} webhook, Flask + HMAC + one Redis write"
    versus = f"{webhook} webhook {{}}, ivr / Flask + HMAC + one Redis write"
    return [
        _figure(f"{label}: rate", durable.rate, "req/s", None, failed),
        _figure(f"{label}: p50", durable.percentile(50), "ms"),
        _figure(f"{label}: p99", durable.percentile(99), "ms"),
        _figure(versus.format("p50"), ivr.percentile(50) / durable.percentile(50), "x"),
        _figure(versus.format("rate"), ivr.rate / durable.rate, "x"),
    ]


def _check_records(ivr: Server, eventless: Server) -> None:
    """The real app recorded the calls, the eventless one none: else its figures mean nothing."""
    calls = {}
    for server, folder in ((ivr, "var"), (eventless, "var-eventless")):
        url = (ivr.log.parent / folder / "redis.url").read_text().strip()
        connection = redis_url.client(url, 10.0)
        calls[server.name] = int(connection.zcard(CALLS_KEY))
        connection.close()
    if calls[ivr.name] == 0 or calls[eventless.name] != 0:
        raise RuntimeError(f"calls on record, by server: {calls}; expected some, then none")


def _events_cost(
    webhook: str, ivr_rounds: Sequence[Series], eventless_rounds: Sequence[Series]
) -> list[dict[str, Any]]:
    """The eventless app's figures, and the share of the real app's median that writing the
    turn's events takes.

    The share is paired by round: each round's difference of the two medians, over the real
    app's median of that round, and the median of those. The two servers take their turns
    next to each other, so a slow minute of the shared machine weighs on both sides of a pair;
    the difference of the two overall medians would carry it whole into the figure. The note
    gives the spread of the rounds (their middle half): how far one run's figure stands above
    the noise of the shared machine.
    """
    eventless = Series.joined(eventless_rounds)
    failed = f"{eventless.failures} requests FAILED" if eventless.failures else ""
    label = f"{webhook} webhook, ivr without events"
    pairs = zip(ivr_rounds, eventless_rounds, strict=True)
    shares = [(i.percentile(50) - e.percentile(50)) / i.percentile(50) * 100 for i, e in pairs]
    share = statistics.median(shares)
    low, _, high = statistics.quantiles(shares, n=4)
    note = (
        f"median over {len(ivr_rounds)} rounds of (ivr p50 - ivr without events p50) / ivr p50;"
        f" the middle half of the rounds {low:.1f} to {high:.1f} %"
    )
    if share <= 0:
        note += "; no cost measurable above the noise"
    return [
        _figure(f"{label}: rate", eventless.rate, "req/s", None, failed),
        _figure(f"{label}: p50", eventless.percentile(50), "ms"),
        _figure(f"{label}: p99", eventless.percentile(99), "ms"),
        _figure(f"{webhook} webhook event writing, share of p50", share, "%", EVENTS_GOAL, note),
    ]


def _compare(webhook: str, floor: Series, ivr: Series, note: str) -> list[dict[str, Any]]:
    """The figures of one webhook: each server's rate and percentiles, then their ratios."""
    runs = (("bare Flask", floor, note), ("ivr", ivr, ""))
    figures = []
    for label, series, said in runs:
        failed = f"{series.failures} requests FAILED" if series.failures else ""
        text = "; ".join(part for part in (said, failed) if part)
        name = f"{webhook} webhook, {label}: rate"
        figures.append(_figure(name, series.rate, "req/s", None, text))
    for p in (50, 99):
        for label, series, _ in runs:
            figures.append(_figure(f"{webhook} webhook, {label}: p{p}", series.percentile(p), "ms"))
    versus = f"{webhook} webhook {{}}, ivr / bare Flask"
    p50 = ivr.percentile(50) / floor.percentile(50)
    figures.append(_figure(versus.format("p50"), p50, "x", P50_GOAL))
    figures.append(_figure(versus.format("p99"), ivr.percentile(99) / floor.percentile(99), "x"))
    figures.append(
        _figure(versus.format("rate"), ivr.rate / floor.rate, "x", RATE_GOAL, higher=True)
    )
    return figures


@contextmanager
def _servers(
    eventless: bool = True,
) -> Iterator[tuple[Server, Server, Server, dict[str, str]]]:
    """The real app, the app without events (not started unless `eventless`) and, once the
    real answers are known, the floor serving those same answers."""
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as temp:
        folder = Path(temp)
        env = environment(folder)
        ivr = Server("ivr", [sys.executable, "-m", "ivr", "serve"], env, folder)
        eventless = Server(
            "ivr-without-events",
            [sys.executable, "-m", "bench.eventless", "serve"],
            env | {"IVR_DATA_DIR": str(folder / "var-eventless")},
            folder,
        )
        floor: Server | None = None
        try:
            ivr.start()
            if eventless:
                eventless.start()
            paths = _keep_answers(ivr, folder / "twiml")
            floor = Server(
                "baseline",
                [sys.executable, "-m", "bench.baseline_app", "--twiml", str(folder / "twiml")],
                env,
                folder,
            )
            floor.start()
            yield ivr, eventless, floor, paths
        finally:
            if floor is not None:
                floor.stop()
            eventless.stop()
            ivr.stop()


def environment(folder: Path) -> dict[str, str]:
    """The environment of an `ivr serve` on a copy of the sample flows in `folder`, with its own
    embedded Redis in `folder/var` and the bench's auth token."""
    flows = folder / "call_flows"
    shutil.copytree(ROOT / "call_flows", flows, ignore=shutil.ignore_patterns("scenarios"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "IVR_DEV")}
    env.update(
        TWILIO_AUTH_TOKEN=TOKEN,
        IVR_DATA_DIR=str(folder / "var"),
        IVR_FLOWS_DIR=str(flows),
        IVR_RECORDINGS_DIR=str(folder / "recordings"),
    )
    env.pop("IVR_PUBLIC_URL", None)
    return env


def _keep_answers(ivr: Server, folder: Path) -> dict[str, str]:
    """Keep the real answers to one call's webhooks, for the floors to serve; return the
    action paths of its two menus (`menu`: the language choice, `route`: the main menu)."""
    folder.mkdir()
    checker = SignatureChecker(TOKEN)
    sid = new_call_sid()
    paths: dict[str, str] = {}
    answers: dict[str, bytes] = {}
    for webhook in WEBHOOKS:
        answer = _post(ivr, _step(checker, ivr.base, paths, webhook, sid))
        answers[_DOCUMENT[webhook]] = answer
        if webhook == "incoming":
            paths["menu"] = _action(answer)
        elif webhook == "menu":
            if VIETNAMESE not in answer:
                raise RuntimeError(f"pressing 2 did not choose Vietnamese: {answer!r}")
            paths["route"] = _action(answer)
    for name, answer in answers.items():
        (folder / f"{name}.xml").write_bytes(answer)
    return paths


def _action(answer: bytes) -> str:
    gather = ET.fromstring(answer).find("Gather")
    if gather is None:
        raise RuntimeError(f"the answer has no menu: {answer!r}")
    return gather.attrib["action"]


def _post(server: Server, request: Prepared) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", request.path, request.body, request.headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"{server.name} answered {response.status} to {request.path}: {body!r}")
    return body


def _documents(folder: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted((folder / "twiml").glob("*.xml")):
        yield path.stem, path


def _incoming(checker: SignatureChecker, base: str, sid: str) -> Prepared:
    params = _call(sid) | {"CallStatus": "ringing"}
    return _prepared(checker, base, INCOMING, params)


def _menu(checker: SignatureChecker, base: str, path: str, sid: str) -> Prepared:
    params = _call(sid) | {"CallStatus": "in-progress", "Digits": "2"}
    return _prepared(checker, base, path, params)


def _call(sid: str) -> dict[str, str]:
    return {
        "CallSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": "+84901234567",
        "To": SAMPLE_NUMBER,
        "FromCountry": "VN",
        "Direction": "inbound",
    }


def _prepared(checker: SignatureChecker, base: str, path: str, params: dict[str, str]) -> Prepared:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": checker.sign(base + path, params),
    }
    return Prepared(path, urlencode(params).encode(), headers)


def _series(
    server: Server, requests: Sequence[Prepared], clients: int, expect: bytes = b"<Response>"
) -> Series:
    """Send `requests` over `clients` keep-alive connections at once; time each one."""
    shares = [requests[i::clients] for i in range(clients)]
    latencies: list[list[float]] = [[] for _ in shares]
    failures = [0] * len(shares)
    start = threading.Barrier(len(shares) + 1)

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        clock = time.perf_counter
        timings = latencies[index]
        with suppress(OSError):  # connected before timing starts; a failure shows on a request
            connection.connect()
        start.wait()
        for request in shares[index]:
            began = clock()
            try:
                connection.request("POST", request.path, request.body, request.headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                failures[index] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                continue
            timings.append((clock() - began) * 1000)
            if response.status != 200 or expect not in body:
                failures[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(shares))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    return Series([t for share in latencies for t in share], seconds, sum(failures))


def _figure(
    name: str,
    value: float,
    unit: str,
    goal: float | None = None,
    note: str = "",
    higher: bool = False,
) -> dict[str, Any]:
    """One figure; its ratio is how far it is from its goal, above 1 when met (`higher`: a
    figure whose goal is a least value, a throughput)."""
    ratio = None
    if goal is not None and value > 0:
        ratio = round(value / goal if higher else goal / value, 2)
    return {"name": name, "value": round(value, 2), "unit": unit, "goal": goal, "ratio": ratio} | {
        "note": note
    }


def _ready(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/readyz")
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
