"""The dashboard at volume: its pages and the live wallboard of a real `ivr serve`, over HTTP.

One `ivr serve` (gunicorn, the webhook bench's settings) runs on the sample flows with its
embedded Redis in a temporary data dir. The call records of `bench.records.load` are written
into that Redis, over the `DAYS` days up to now, so that the wallboard's "today" holds real
calls. A supervisor logs in through the login form and times, over one keep-alive loopback
connection:
- `/dashboard/calls`: the newest page, a page filtered by queue and outcome, and the next page
  of that filter by its cursor;
- `/dashboard/kpis` for one whole day by hour;
- the wallboard's event latency: a signed `/voice/incoming` posted while `/dashboard/live` is
  open, until the Server-Sent Events message that counts that call in progress arrives. The
  viewer's zone is one where it is 22:00 or later, so "today" holds most of a day's calls.
Every loop is bounded by a count, every socket by a timeout.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.records import CALLS, DAYS, _figure, _timed, load
from bench.webhooks import TOKEN, Server, _incoming, environment
from ivr import redis_url
from ivr.dashboard.users import Users
from ivr.simulate import new_call_sid
from ivr.voice.security import SignatureChecker

PAGE_RUNS = 20
KPI_RUNS = 5
EVENTS = 100  # wallboard latency samples
PAGE_GOAL_MS = 150.0
KPI_GOAL_MS = 500.0
LIVE_GOAL_MS = 1000.0
TIMEOUT = 30.0  # seconds, any one request
LIVE_WAIT = 10.0  # seconds for one SSE message before the sample counts as lost
LIVE_REOPEN = 15.0  # seconds: the server ends a stream after 25 s; open a new one before
NAME = "bench-supervisor"
PASSWORD = "bench password 0123"
COOKIE = "ivr_dashboard"
FILTER = {"queue": "billing", "outcome": "abandoned"}


class Visitor:
    """A browser that keeps the dashboard's session cookie, over one keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie = ""
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        """Send one request with the session cookie; keep a new cookie if one is set."""
        headers = {"Cookie": f"{COOKIE}={self.cookie}"} if self.cookie else {}
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body, headers)
        response = self.connection.getresponse()
        content = response.read()
        self._keep_cookie(response)
        return response.status, response, content

    def get(self, path: str) -> bytes:
        """The body of a page that must answer 200."""
        status, _, body = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        return body

    def log_in(self, name: str, password: str) -> None:
        """Sign in through the login form, CSRF token and all."""
        form = self.get("/dashboard/login")
        found = re.search(rb'name="csrf_token" value="([^"]+)"', form)
        if found is None:
            raise RuntimeError("the login form has no CSRF token")
        fields = {"csrf_token": found.group(1).decode(), "name": name, "password": password}
        status, response, _ = self.request("POST", "/dashboard/login", fields)
        if status != 302 or response.getheader("Location") != "/dashboard":
            raise RuntimeError(f"logging in as {name} answered {status}")

    def open_stream(self, path: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """A streaming GET on a connection of its own, with the session cookie."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=LIVE_WAIT)
        connection.request("GET", path, headers={"Cookie": f"{COOKIE}={self.cookie}"})
        response = connection.getresponse()
        if response.status != 200:
            connection.close()
            raise RuntimeError(f"GET {path} answered {response.status}")
        return connection, response

    def close(self) -> None:
        self.connection.close()

    def _keep_cookie(self, response: http.client.HTTPResponse) -> None:
        for header in response.headers.get_all("Set-Cookie") or ():
            name, _, rest = header.partition("=")
            if name.strip() == COOKIE:
                self.cookie = rest.split(";", 1)[0]


def run(calls: int = CALLS, events: int = EVENTS) -> list[dict[str, Any]]:
    """Serve the dashboard over `calls` stored calls and time its pages and live updates."""
    if calls < 1 or events < 2:
        raise ValueError(f"at least one call and two events to time, not {calls} and {events}")
    with tempfile.TemporaryDirectory(prefix="ivr-bench-dashboard-") as temp:
        folder = Path(temp)
        command = [sys.executable, "-m", "ivr", "serve"]
        server = Server("ivr-dashboard", command, environment(folder), folder)
        server.start()
        try:
            began = time.time()
            _load(folder / "var", calls, began)
            visitor = Visitor(server.port)
            try:
                visitor.log_in(NAME, PASSWORD)
                figures = _pages(visitor, calls, began)
                figures += _live(visitor, server, events)
            finally:
                visitor.close()
        finally:
            server.stop()
    return figures


def _load(data_dir: Path, calls: int, now: float) -> None:
    """The calls of `bench.records`, over the `DAYS` days before `now`, and the supervisor,
    written into the server's own Redis."""
    url = (data_dir / "redis.url").read_text().strip()
    connection = redis_url.client(url, 30.0)
    try:
        # Throwaway data: no AOF nor snapshots while loading.
        connection.config_set("appendonly", "no")
        connection.config_set("save", "")
        start = datetime.fromtimestamp(now, UTC) - timedelta(days=DAYS)
        load(connection, calls, random.Random(20261001), start)
        Users(connection).add(NAME, "supervisor", PASSWORD, now)
    finally:
        connection.close()


def _pages(visitor: Visitor, calls: int, now: float) -> list[dict[str, Any]]:
    """The calls pages and a day's KPIs, each timed after one warm-up."""
    rows = re.compile(rb'id="call-')
    label = " & ".join(f"{k}={v}" for k, v in FILTER.items())
    filtered = "/dashboard/calls?" + urlencode(FILTER)
    pages = [("newest page", "/dashboard/calls"), (label, filtered)]
    older = re.search(rb'rel="next" href="([^"]+)"', visitor.get(filtered))
    if older is not None:
        pages.append(
            (f"{label}, next page by cursor", older.group(1).decode().replace("&amp;", "&"))
        )
    figures = []
    for name, path in pages:
        timings, body = _timed(lambda p=path: visitor.get(p), PAGE_RUNS)
        note = f"{len(rows.findall(body))} rows, {PAGE_RUNS} runs, {calls:,} calls stored"
        figures += _stats(f"calls page, {name}", timings, PAGE_GOAL_MS, note)
    day = (datetime.fromtimestamp(now, UTC) - timedelta(days=DAYS // 2)).date().isoformat()
    path = "/dashboard/kpis?" + urlencode({"from": day, "to": day, "by": "hour", "tz": "UTC"})
    timings, body = _timed(lambda: visitor.get(path), KPI_RUNS)
    if b"<svg" not in body:
        raise RuntimeError("the KPI page has no chart")
    note = f"{day} UTC by hour (about {calls // DAYS:,} calls), {KPI_RUNS} runs"
    figures += _stats("kpis page, one day", timings, KPI_GOAL_MS, note)
    return figures


def _stats(name: str, timings: list[float], goal: float, note: str) -> list[dict[str, Any]]:
    return [
        _figure(f"{name}: p50", statistics.median(timings), "ms", goal, note),
        _figure(f"{name}: max", max(timings), "ms", goal),
    ]


def late_zone(now: float) -> str:
    """A fixed-offset zone whose clock shows 22:xx at `now`: its day so far is nearly whole."""
    offset = (22 - datetime.fromtimestamp(now, UTC).hour) % 24
    if offset > 14:  # zones run from UTC-12 to UTC+14
        offset -= 24
    # The Etc zones' signs are POSIX ones: Etc/GMT-3 is three hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


class Wallboard:
    """An open `/dashboard/live` stream, and new calls posted to the server's webhook."""

    def __init__(self, visitor: Visitor, server: Server, path: str) -> None:
        self.visitor = visitor
        self.server = server
        self.path = path
        self.checker = SignatureChecker(TOKEN)
        self.webhook = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        self.stream: http.client.HTTPResponse | None = None
        self.stream_connection: http.client.HTTPConnection | None = None
        self.opened = 0.0
        self.expected = 0  # calls in progress once the last call posted is counted

    def sample(self) -> float | None:
        """Milliseconds from a new call's webhook sent to the message counting it; None if no
        message counted it within LIVE_WAIT (the stream is then opened anew)."""
        if self.stream is None or time.monotonic() - self.opened > LIVE_REOPEN:
            self._open()
        sent = self._call()
        arrived = self._counted()
        if arrived is None:
            self._close_stream()
            return None
        return (arrived - sent) * 1000

    def close(self) -> None:
        self._close_stream()
        self.webhook.close()

    def _open(self) -> None:
        """A fresh stream reads the event stream from its end, once it first asks Redis; a call
        posted before that is missed. So warm it with calls until one is counted."""
        self._close_stream()
        self.stream_connection, self.stream = self.visitor.open_stream(self.path)
        self.opened = time.monotonic()
        for _ in range(3):
            self._call()
            if self._counted() is not None:
                return
        raise RuntimeError(f"{self.path} sent no figures for three calls")

    def _call(self) -> float:
        """Post one new call's incoming webhook; the instant it was sent."""
        request = _incoming(self.checker, self.server.base, new_call_sid())
        sent = time.perf_counter()
        self.webhook.request("POST", request.path, request.body, request.headers)
        response = self.webhook.getresponse()
        if response.status != 200 or b"<Response>" not in response.read():
            raise RuntimeError(f"the incoming webhook answered {response.status}")
        self.expected += 1
        return sent

    def _counted(self) -> float | None:
        """The instant a message counting `expected` calls in progress arrives; None if none
        does within LIVE_WAIT."""
        assert self.stream is not None
        deadline = time.monotonic() + LIVE_WAIT
        event = ""
        while time.monotonic() < deadline:  # idle beats come every 2 s
            try:
                line = self.stream.readline()
            except (OSError, http.client.HTTPException):
                return None
            if not line:
                return None
            text = line.decode().rstrip("\r\n")
            if text.startswith("event:"):
                event = text.partition(":")[2].strip()
            elif text.startswith("data:") and event == "figures":
                figures = json.loads(text.partition(":")[2])
                if int(figures["In progress"]) >= self.expected:
                    return time.perf_counter()
        return None

    def _close_stream(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        if self.stream_connection is not None:
            self.stream_connection.close()
            self.stream_connection = None


def _live(visitor: Visitor, server: Server, events: int) -> list[dict[str, Any]]:
    """Wallboard latency: a call's first webhook sent, to the SSE message that counts it."""
    zone = late_zone(time.time())
    board = Wallboard(visitor, server, "/dashboard/live?" + urlencode({"tz": zone}))
    latencies: list[float] = []
    lost = 0
    try:
        for _ in range(events):
            latency = board.sample()
            if latency is None:
                lost += 1
                latency = LIVE_WAIT * 1000
            latencies.append(latency)
    finally:
        board.close()
    note = f"{events} calls one at a time; the day so far of {zone} folded for each message"
    if lost:
        note += f"; {lost} LOST (counted as {LIVE_WAIT:.0f} s)"
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    name = "wallboard, call event to SSE message"
    return [
        _figure(f"{name}: p50", statistics.median(latencies), "ms", note=note),
        _figure(f"{name}: p99", p99, "ms", LIVE_GOAL_MS),
        _figure(f"{name}: max", max(latencies), "ms"),
    ]
