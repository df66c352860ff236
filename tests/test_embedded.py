"""The embedded Redis: one server per data dir, shared by every process, persisted, stopped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from ivr import embedded
from ivr.embedded import EmbeddedRedis

# Each process starts (or joins) the data dir's server and increments one counter.
INCREMENT = """
import sys, time
from pathlib import Path
import redis
from ivr.embedded import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1]))
url = server.start()
redis.Redis.from_url(url).incr("counter")
print(url, flush=True)
time.sleep(float(sys.argv[2]))
server.stop()
"""


def test_concurrent_launchers_share_one_server(tmp_path: Path) -> None:
    owner = EmbeddedRedis(tmp_path)
    owner.start()
    try:
        runs = [
            subprocess.Popen([sys.executable, "-c", INCREMENT, str(tmp_path), "0.5"],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(3)
        ]  # fmt: skip
        urls = {run.communicate(timeout=30)[0].strip() for run in runs}
        assert urls == {owner.url}
        assert int(redis.Redis.from_url(owner.url).get("counter") or 0) == 3
    finally:
        owner.stop()


def test_launchers_racing_to_start_start_only_one(tmp_path: Path) -> None:
    runs = [
        subprocess.Popen([sys.executable, "-c", INCREMENT, str(tmp_path), "3"],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    urls = {run.stdout.readline().strip() for run in runs if run.stdout}
    assert len(urls) == 1
    url = urls.pop()
    assert int(redis.Redis.from_url(url).get("counter") or 0) == 3
    for run in runs:
        run.wait(timeout=30)


def test_data_persists_across_restarts_and_server_stops(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as server:
        redis.Redis.from_url(server.url).set("kept", "yes")
        url = server.url
    try:
        redis.Redis.from_url(url, socket_timeout=0.5).ping()
        stopped = False
    except (redis.ConnectionError, OSError):
        stopped = True
    assert stopped
    with EmbeddedRedis(tmp_path) as again:
        assert redis.Redis.from_url(again.url).get("kept") == b"yes"


def test_long_data_dir_falls_back_to_loopback_tcp(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedRedis(deep) as server:
        assert server.url.startswith("redis://127.0.0.1:")
        assert redis.Redis.from_url(server.url).ping()


@pytest.mark.parametrize("name", ["a#b", "a?b", "a%20b", "a b"])
def test_a_data_dir_whose_name_means_something_in_a_url(tmp_path: Path, name: str) -> None:
    # Its socket's URL was unix:///.../a#b/redis.sock, read as the path ".../a": the server
    # started, nobody could reach it, and the launcher gave up saying it "did not start".
    with EmbeddedRedis(tmp_path / name) as server:
        assert redis.Redis.from_url(server.url).ping()
        assert (tmp_path / name / "redis.sock").exists()


def test_a_start_given_up_midway_stops_the_server_it_spawned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)
        spawned.append(process)
        return process

    def interrupted(url: str) -> bool:
        raise KeyboardInterrupt  # Ctrl-C while waiting for the server to answer

    monkeypatch.setattr(embedded.subprocess, "Popen", recording)
    monkeypatch.setattr(embedded, "_answers", interrupted)
    with pytest.raises(KeyboardInterrupt):
        EmbeddedRedis(tmp_path).start()
    assert len(spawned) == 1
    # Started in a session of its own, it would not have seen the Ctrl-C: it was stopped.
    assert spawned[0].poll() is not None
    assert not (tmp_path / "redis.url").exists()


# Starts (or joins) the data dir's server, then stops using it when told, on its stdin.
USE_UNTIL_TOLD = """
import sys
from pathlib import Path
from ivr.embedded import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1]))
print(server.start(), server.owned, flush=True)
sys.stdin.readline()
server.stop()
"""


def test_the_server_stays_up_while_another_process_uses_it(tmp_path: Path) -> None:
    # An `ivr worker` (or any command) that started the server, stopping, took it away from the
    # `ivr serve` that had joined it: every call after that went to the fallback.
    starter = subprocess.Popen(
        [sys.executable, "-c", USE_UNTIL_TOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdin is not None and starter.stdout is not None
    joined = EmbeddedRedis(tmp_path)
    try:
        url, owned = starter.stdout.readline().split()
        assert owned == "True"
        assert joined.start() == url and not joined.owned
        starter.communicate("stop\n", timeout=30)  # the starter stops first, cleanly
        assert starter.returncode == 0
        assert redis.Redis.from_url(url).ping()
        with EmbeddedRedis(tmp_path) as briefly:  # a one-off command comes and goes
            assert briefly.url == url
        assert redis.Redis.from_url(url).ping()
        joined.stop()  # the last user shuts it down, though it did not start it
        with pytest.raises((redis.ConnectionError, OSError)):
            redis.Redis.from_url(url, socket_timeout=0.5).ping()
        assert not (tmp_path / "redis.url").exists()
    finally:
        starter.kill()
        joined.stop()
