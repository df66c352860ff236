"""`ivr serve` at its edges: forwarded headers only behind a trusted proxy, broken flow files."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import requests

from tests.server.conftest import (
    RELOAD_INTERVAL,
    HttpCaller,
    Server,
    copy_sample_flows,
    running_server,
    says,
    shared_redis_url,
)

GREETING = "Thank you for calling customer support."

pytestmark = pytest.mark.server


def _post_signed_for(caller: HttpCaller, url: str, proto: str) -> int:
    """POST /voice/incoming signed for `url`, claiming `proto` in X-Forwarded-Proto."""
    signature = caller.checker.sign(url, caller.params)
    headers = {"X-Twilio-Signature": signature, "X-Forwarded-Proto": proto}
    return caller.send("/voice/incoming", caller.params, headers).status_code


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_forwarded_proto_counts_only_behind_a_trusted_proxy(tmp_path: Path, trusted: bool) -> None:
    env = {"IVR_TRUST_PROXY": "1"} if trusted else {}
    with running_server(tmp_path, copy_sample_flows(tmp_path / "flows"), 1, env=env) as server:
        plain = server.base + "/voice/incoming"
        secure = plain.replace("http://", "https://")
        caller = server.caller()
        try:
            if trusted:
                assert _post_signed_for(caller, secure, "https") == 200
                assert _post_signed_for(server.caller(), plain, "https") == 403
            else:
                assert _post_signed_for(caller, plain, "https") == 200
                assert _post_signed_for(server.caller(), secure, "https") == 403
        finally:
            caller.close()


def _break(flows: Path) -> Path:
    """Make the support flow point at a step that does not exist; the broken file."""
    path = flows / "support.yaml"
    text = path.read_text()
    assert "next: choose_language" in text
    path.write_text(text.replace("next: choose_language", "next: no_such_step", 1))
    return path


def test_broken_flows_and_no_good_version_refuse_to_start(tmp_path: Path) -> None:
    broken = _break(copy_sample_flows(tmp_path / "flows"))
    server = Server(tmp_path, tmp_path / "flows", 1)
    if server.given_redis_url:
        redis.Redis.from_url(server.given_redis_url).flushdb()
    command = [sys.executable, "-m", "ivr", "serve", "--port", str(server.port)]
    done = subprocess.run(
        command, cwd=tmp_path, env=server.environment(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert re.search(rf"^{re.escape(str(broken))}:\d+:\d+: .*no_such_step", done.stderr, re.M)
    assert "Listening at" not in done.stderr  # refused before gunicorn
    assert not (tmp_path / "var" / "redis.url").exists()  # the embedded Redis went with it


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    server = Server(tmp_path, copy_sample_flows(tmp_path / "flows"), 1)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", server.port))
        holder.listen()
        command = [sys.executable, "-m", "ivr", "serve", "--port", str(server.port)]
        done = subprocess.run(
            command, cwd=tmp_path, env=server.environment(), capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"Error: cannot listen on 127.0.0.1:{server.port}: Address already in use" in (
        done.stderr
    )
    assert "--port (make run PORT=N)" in done.stderr
    # Nothing offered or started: no greeting naming a server that is not this one, no Redis.
    assert "simulate" not in done.stderr and "Starting gunicorn" not in done.stderr
    assert not (tmp_path / "var" / "redis.url").exists()


def test_broken_flows_start_from_the_last_good_version(tmp_path: Path) -> None:
    flows = copy_sample_flows(tmp_path / "flows")
    shared = shared_redis_url()
    if shared:
        redis.Redis.from_url(shared).flushdb()
    try:
        with running_server(tmp_path, flows, 1, flush=False) as first:
            good = first.get("/readyz").json()["flows_version"]
            assert first.store().good_flowset_version() == good
        broken = _break(flows)
        with running_server(tmp_path, flows, 1, flush=False) as second:
            ready = second.get("/readyz").json()
            assert ready["flows_version"] == good
            assert any(str(broken) in error for error in ready["errors"])
            assert "DO NOT LOAD" in second.log() and "no_such_step" in second.log()
            caller = second.caller()
            assert says(caller.twiml("/voice/incoming"))[0][1] == GREETING
            caller.close()
            # Fixed files take over from the kept version without a restart.
            broken.write_text(broken.read_text().replace("no_such_step", "choose_language"))
            _wait_for_version(second, lambda version: version == good and not ready_errors(second))
    finally:
        if shared:
            redis.Redis.from_url(shared).flushdb()


def ready_errors(server: Server) -> list[str]:
    """The flow errors /readyz reports."""
    errors: list[str] = server.get("/readyz").json()["errors"]
    return errors


def _wait_for_version(server: Server, done: Callable[[str], bool]) -> None:
    deadline = time.monotonic() + 10
    while not done(server.get("/readyz").json()["flows_version"]):
        assert time.monotonic() < deadline, server.log()
        time.sleep(RELOAD_INTERVAL)


def test_an_ipv6_address_is_listened_on_and_named_in_brackets(tmp_path: Path) -> None:
    server = Server(tmp_path, copy_sample_flows(tmp_path / "flows"), 1)
    command = [sys.executable, "-m", "ivr", "serve", "--host", "::1", "--port", str(server.port)]
    command += ["--workers", "1"]
    base = f"http://[::1]:{server.port}"
    with open(server.log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=server.environment(), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, server.log()  # gunicorn read "::1:PORT" as no port
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        assert f"--url {base} " in server.log()  # the greeting names a URL that works
    finally:
        process.terminate()
        process.wait(20)
