"""`REDIS_URL` parsing and client building: one server, Sentinel or Cluster.

Forms: `redis://`, `rediss://`, `unix://` (redis-py's own), and
`redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]`,
`redis+cluster://host:port[,host:port...]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from ivr.errors import IvrError

SENTINEL_SCHEME = "redis+sentinel://"
CLUSTER_SCHEME = "redis+cluster://"
PLAIN_SCHEMES = ("redis://", "rediss://", "unix://")
RETRIES = 3  # enough to ride out a failover's reconnects, bounded so a dead Redis fails fast


class RedisUrlError(IvrError):
    """A `REDIS_URL` that cannot be used."""


@dataclass(frozen=True)
class RedisTarget:
    """What a `REDIS_URL` names: a kind, its seed hosts and the rest."""

    kind: str  # "plain" | "sentinel" | "cluster"
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    password: str | None = None


def _hosts(text: str, url: str) -> tuple[tuple[str, int], ...]:
    hosts: list[tuple[str, int]] = []
    for part in text.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisUrlError(f"REDIS_URL {url!r}: {part!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    return tuple(hosts)


def parse(url: str) -> RedisTarget:
    """Read a `REDIS_URL`; raises RedisUrlError naming what is wrong."""
    if url.startswith(PLAIN_SCHEMES):
        return RedisTarget("plain", url)
    kinds = {SENTINEL_SCHEME: "sentinel", CLUSTER_SCHEME: "cluster"}
    scheme = next((known for known in kinds if url.startswith(known)), None)
    if scheme is None:
        raise RedisUrlError(
            f"REDIS_URL {url!r}: scheme must be one of redis://, rediss://, unix://, "
            "redis+sentinel://, redis+cluster://"
        )
    kind = kinds[scheme]
    rest = url[len(scheme) :]
    password: str | None = None
    if "@" in rest:
        auth, rest = rest.rsplit("@", 1)
        password = unquote(auth.partition(":")[2]) or None
    netloc, _, path = rest.partition("/")
    if not netloc:
        raise RedisUrlError(f"REDIS_URL {url!r}: no host:port")
    hosts = _hosts(netloc, url)
    parts = [p for p in path.split("/") if p]
    if kind == "cluster":
        if parts:
            raise RedisUrlError(f"REDIS_URL {url!r}: a cluster URL has no path (Cluster has db 0)")
        return RedisTarget(kind, url, hosts, password=password)
    if not parts or len(parts) > 2:
        raise RedisUrlError(f"REDIS_URL {url!r}: expected /service_name[/db] after the hosts")
    if len(parts) == 2 and not parts[1].isdigit():
        raise RedisUrlError(f"REDIS_URL {url!r}: db {parts[1]!r} is not a number")
    db = int(parts[1]) if len(parts) == 2 else 0
    return RedisTarget(kind, url, hosts, service=unquote(parts[0]), db=db, password=password)


def client(url: str, timeout: float) -> redis.Redis:
    """A client for `url` with bounded timeouts and a few retries with backoff on failover."""
    target = parse(url)
    retry = Retry(ExponentialBackoff(cap=timeout, base=0.05), RETRIES)
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": retry,
        "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        "decode_responses": False,
    }
    if target.kind == "plain":
        return redis.Redis.from_url(url, health_check_interval=30, **options)
    if target.kind == "sentinel":
        # redis-py leaves Sentinel and ClusterNode untyped.
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.hosts),
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
            **options,
        )
        # The master is looked up again on every (re)connection, so a failover is followed.
        master = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, db=target.db, password=target.password, health_check_interval=30
        )
        return cast(redis.Redis, master)
    nodes = [ClusterNode(h, p) for h, p in target.hosts]  # type: ignore[no-untyped-call]
    cluster = RedisCluster(
        startup_nodes=nodes,
        password=target.password,
        **options,
    )
    # RedisCluster answers the commands Store uses with Redis's signatures; the types do not say so.
    return cast(redis.Redis, cluster)
