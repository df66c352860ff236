"""The worker class of `ivr serve` (and of the bench's floors), under a real gunicorn."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from ivr.gthread import SWITCH_INTERVAL
from tests.server.conftest import free_port

pytestmark = pytest.mark.server

# A worker's app answering with what its process was set up with.
APP = """
import sys
from flask import Flask
from ivr.commands.serve import GunicornServer, gunicorn_options

def build():
    app = Flask("probe")
    app.get("/switch")(lambda: {"interval": sys.getswitchinterval()})
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
