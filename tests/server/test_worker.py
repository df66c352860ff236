"""The worker class of `ivr serve` (and of the bench's floors), under a real gunicorn."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from email.utils import formatdate, parsedate_to_datetime

import pytest
import requests
from gunicorn.config import Config
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader

from ivr.gthread import SWITCH_INTERVAL, OneWriteResponse, http_date
from tests.server.conftest import free_port

pytestmark = pytest.mark.server

# A worker's app answering with what its process was set up with.
APP = """
import sys
import gunicorn.http.wsgi
import gunicorn.util
from flask import Flask
from ivr.commands.serve import GunicornServer, gunicorn_options

def build():
    app = Flask("probe")
    app.get("/switch", endpoint="switch")(lambda: {"interval": sys.getswitchinterval()})
    app.get("/response", endpoint="response")(
        lambda: {"class": gunicorn.http.wsgi.Response.__name__}
    )
    app.get("/date", endpoint="date")(
        lambda: {"module": gunicorn.util.http_date.__module__}
    )
    return app

GunicornServer(build, gunicorn_options("127.0.0.1", int(sys.argv[1]), 1)).run()
"""


@pytest.fixture
def probe() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", APP, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(base + "/switch", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_worker_hands_the_interpreter_lock_over_sooner(probe: str) -> None:
    # Python's 5 ms let one webhook keep the lock while the thread holding the next answer, or
    # the loop handing out requests, waited: the tail of a loaded worker's latency.
    interval = requests.get(probe + "/switch", timeout=5).json()["interval"]
    assert interval == pytest.approx(SWITCH_INTERVAL)
    assert interval < sys.getswitchinterval()


def test_a_worker_answers_with_the_one_write_response(probe: str) -> None:
    answer = requests.get(probe + "/response", timeout=5).json()
    assert answer == {"class": OneWriteResponse.__name__}


def test_a_worker_formats_the_date_once_a_second(probe: str) -> None:
    response = requests.get(probe + "/date", timeout=5)
    assert response.json() == {"module": "ivr.gthread"}
    sent = parsedate_to_datetime(response.headers["Date"]).timestamp()
    assert abs(sent - time.time()) < 5


def test_the_date_is_made_once_a_second_and_right(monkeypatch: pytest.MonkeyPatch) -> None:
    instant = 1796681766.75  # 2026-12-07T22:16:06.75Z
    monkeypatch.setattr(time, "time", lambda: instant)
    first = http_date()
    assert first == "Mon, 07 Dec 2026 22:16:06 GMT" == formatdate(instant, usegmt=True)
    instant += 0.2
    assert http_date() is first  # the same second: not formatted again
    instant += 1
    assert http_date() == "Mon, 07 Dec 2026 22:16:07 GMT"
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"  # a given instant, as gunicorn's


def _answer(headers: list[tuple[str, str]], body: Iterable[bytes]) -> list[bytes]:
    """The writes a OneWriteResponse makes for `body`, one message each: a SEQPACKET socket
    keeps every write apart, as a segment on the wire."""
    cfg = Config()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        head = b"POST /voice/incoming HTTP/1.1\r\nHost: ivr.example\r\nContent-Length: 0\r\n\r\n"
        request = Request(cfg, IterUnreader([head]), ("127.0.0.1", 40000))
        response = OneWriteResponse(request, ours, cfg)
        response.start_response("200 OK", headers)
        for piece in body:
            response.write(piece)
        response.close()
        theirs.setblocking(False)
        messages = []
        while True:
            try:
                messages.append(theirs.recv(1 << 16))
            except BlockingIOError:
                return messages


def test_an_answer_goes_out_in_one_write() -> None:
    # gunicorn's own Response wrote the headers, then the body: two segments, two wake-ups.
    twiml = b"<Response><Say>Hello</Say></Response>"
    headers = [("Content-Type", "text/xml"), ("Content-Length", str(len(twiml)))]
    (message,) = _answer(headers, [twiml])
    head, _, body = message.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Type: text/xml" in head
    assert b"Connection: keep-alive" in head and body == twiml


def test_a_longer_or_unsized_answer_keeps_gunicorns_rules() -> None:
    # A second piece goes after the first; a body past its Content-Length is cut, as gunicorn
    # does; without a length, HTTP/1.1 answers are chunked.
    first, second = _answer([("Content-Length", "8")], [b"0123", b"456789"])
    assert first.endswith(b"\r\n\r\n0123") and second == b"4567"
    (head, cut) = _answer([("Content-Length", "4")], [b"0123456789"])
    assert head.endswith(b"\r\n\r\n") and cut == b"0123"
    chunked = b"".join(_answer([("Content-Type", "text/plain")], [b"abc"]))
    assert b"Transfer-Encoding: chunked" in chunked and chunked.endswith(b"3\r\nabc\r\n0\r\n\r\n")
