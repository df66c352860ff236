"""A graceful reload (`kill -HUP` of the master) on one kept-alive connection, step by step."""

from __future__ import annotations

import http.client
import os
import signal
import time
from pathlib import Path

import pytest

from ivr.commands.serve import gunicorn_options
from tests.server.conftest import (
    copy_sample_flows,
    process_alive,
    running_server,
    worker_pids,
)

pytestmark = pytest.mark.server

KEEPALIVE = gunicorn_options("127.0.0.1", 0, 1)["keepalive"]
NOTICED = 1.5  # a worker notices SIGTERM within its event loop's 1 s wait


def test_a_request_on_a_kept_alive_connection_is_answered_after_the_reload(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path, copy_sample_flows(tmp_path / "flows"), workers=1) as server:
        assert server.process is not None
        (old,) = worker_pids(server)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.request("GET", "/healthz")
            first = connection.getresponse()
            first.read()
            assert first.status == 200 and first.getheader("Connection") != "close"

            os.kill(server.process.pid, signal.SIGHUP)  # the old worker is told to stop at once
            time.sleep(NOTICED)
            assert process_alive(old), "the old worker left with a connection kept alive"

            # Sent on the old worker's connection after its stop began: answered, and the last.
            connection.request("GET", "/healthz")
            second = connection.getresponse()
            second.read()
            assert second.status == 200
            assert second.getheader("Connection") == "close"
        finally:
            connection.close()
        # It leaves once its connections are closed, idle ones when their keep-alive runs out,
        # not at the graceful timeout.
        deadline = time.monotonic() + KEEPALIVE + 1
        while process_alive(old) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(old)
