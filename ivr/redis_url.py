"""`REDIS_URL` parsing and client building: one server, Sentinel or Cluster.

Forms: `redis://`, `rediss://`, `unix://` (redis-py's own), and
`redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]`,
`redis+cluster://host:port[,host:port...]`.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from ivr.errors import IvrError

T = TypeVar("T")

SENTINEL_SCHEME = "redis+sentinel://"
CLUSTER_SCHEME = "redis+cluster://"
PLAIN_SCHEMES = ("redis://", "rediss://", "unix://")
PASSWORD = re.compile(r"^([a-z+]+://[^/@]*?:)[^/@]+@")  # the password of [user]:password@
RETRIES = 3  # enough to ride out a failover's reconnects, bounded so a dead Redis fails fast


class RedisUrlError(IvrError):
    """A `REDIS_URL` that cannot be used."""


class RedisTimeSpent(redis.TimeoutError):
    """The Redis time allowed to what is running (a webhook) is used up: not waited for."""


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
            raise RedisUrlError(f"REDIS_URL {shown(url)!r}: {part!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    return tuple(hosts)


def parse(url: str) -> RedisTarget:
    """Read a `REDIS_URL`; raises RedisUrlError naming what is wrong."""
    if url.startswith(PLAIN_SCHEMES):
        _check_plain(url)
        return RedisTarget("plain", url)
    kinds = {SENTINEL_SCHEME: "sentinel", CLUSTER_SCHEME: "cluster"}
    scheme = next((known for known in kinds if url.startswith(known)), None)
    if scheme is None:
        raise RedisUrlError(
            f"REDIS_URL {shown(url)!r}: scheme must be one of redis://, rediss://, unix://, "
            "redis+sentinel://, redis+cluster://"
        )
    kind = kinds[scheme]
    rest = url[len(scheme) :]
    if "?" in rest or "#" in rest:
        # Read as part of the service name, an option would only show as "no master found".
        raise RedisUrlError(f"REDIS_URL {shown(url)!r}: a {kind} URL takes no ?options")
    password: str | None = None
    if "@" in rest:
        auth, rest = rest.rsplit("@", 1)
        password = unquote(auth.partition(":")[2]) or None
    netloc, _, path = rest.partition("/")
    if not netloc:
        raise RedisUrlError(f"REDIS_URL {shown(url)!r}: no host:port")
    hosts = _hosts(netloc, url)
    parts = [p for p in path.split("/") if p]
    if kind == "cluster":
        if parts:
            raise RedisUrlError(
                f"REDIS_URL {shown(url)!r}: a cluster URL has no path (Cluster has db 0)"
            )
        return RedisTarget(kind, url, hosts, password=password)
    if not parts or len(parts) > 2:
        raise RedisUrlError(
            f"REDIS_URL {shown(url)!r}: expected /service_name[/db] after the hosts"
        )
    if len(parts) == 2 and not parts[1].isdigit():
        raise RedisUrlError(f"REDIS_URL {shown(url)!r}: db {parts[1]!r} is not a number")
    db = int(parts[1]) if len(parts) == 2 else 0
    return RedisTarget(kind, url, hosts, service=unquote(parts[0]), db=db, password=password)


def _check_plain(url: str) -> None:
    """Refuse a plain URL redis-py would reject only once a worker connects, or read wrongly
    (it takes a db it cannot read, `redis://h/abc`, as db 0)."""
    try:
        parts = urlsplit(url)
        # Builds a connection without connecting: an option redis-py does not know fails here.
        redis.Redis.from_url(url).connection_pool.make_connection()
    except ValueError as exc:
        # redis-py quotes what it could not read, which may be a piece of the password.
        reason = str(exc)
        if shown(url) != url:
            reason = "cannot be read (a # / ? or @ in the password must be percent-encoded: %23)"
        raise RedisUrlError(f"REDIS_URL {shown(url)!r}: {reason}") from exc
    except TypeError as exc:
        unknown = str(exc).rpartition(" ")[2]
        raise RedisUrlError(f"REDIS_URL {shown(url)!r}: unknown option {unknown}") from exc
    if url.startswith("unix://"):
        if not parts.path:
            raise RedisUrlError(f"REDIS_URL {shown(url)!r}: no socket path (unix:///path/to/sock)")
        if parts.hostname:
            # unix://var/redis.sock names /redis.sock: redis-py reads the path alone.
            raise RedisUrlError(
                f"REDIS_URL {shown(url)!r}: the socket path must be absolute, after three slashes"
                f" (unix:///path/to/sock); this one names {parts.path}"
            )
        return
    db = unquote(parts.path).strip("/")
    if db and not db.isdigit():
        raise RedisUrlError(f"REDIS_URL {shown(url)!r}: db {db!r} is not a number")


def shown(url: str) -> str:
    """`url` with its password masked, for messages and logs."""
    return PASSWORD.sub(r"\1***@", url)


def client(url: str, timeout: float) -> redis.Redis:
    """A client for `url` with bounded timeouts and a few retries with backoff on failover;
    within `time_limit`, its commands also keep to the time left."""
    target = parse(url)
    retry = LimitedRetry(ExponentialBackoff(cap=timeout, base=0.05), RETRIES)
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": retry,
        "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        "decode_responses": False,
    }
    if target.kind == "plain":
        plain = redis.Redis.from_url(url, health_check_interval=30, **options)
        _limit_pool(plain.connection_pool)
        return plain
    if target.kind == "sentinel":
        # redis-py leaves Sentinel and ClusterNode untyped.
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.hosts),
            # One try per sentinel: the lookup itself moves on to the next one. (redis-py's
            # default retry would back off for seconds, past any time limit.)
            sentinel_kwargs={
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
                "retry": LimitedRetry(ExponentialBackoff(cap=timeout, base=0.05), 0),
            },
            **options,
        )
        for watcher in sentinel.sentinels:
            _limit_pool(watcher.connection_pool)  # finding the master counts too
        # The master is looked up again on every (re)connection, so a failover is followed.
        master = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, db=target.db, password=target.password, health_check_interval=30
        )
        _limit_pool(master.connection_pool)
        return cast(redis.Redis, master)
    (first, port), *others = target.hosts
    nodes = [ClusterNode(h, p) for h, p in others]  # type: ignore[no-untyped-call]
    cluster = RedisCluster(
        # Given a URL, RedisCluster builds each node's pool from the options, connection class
        # included; from host and port alone it would drop the class.
        url=f"redis://[{first}]:{port}" if ":" in first else f"redis://{first}:{port}",
        startup_nodes=nodes,
        password=target.password,
        connection_class=_limited(redis.Connection),
        **options,
    )
    # RedisCluster answers the commands Store uses with Redis's signatures; the types do not say so.
    return cast(redis.Redis, cluster)


# Time limits ------------------------------------------------------------------------------------
#
# A webhook must answer while the caller listens: it gets a fixed amount of Redis time in all
# (`time_limit`). Inside it, a command waits at most the time left, a command that timed out
# ends the limit (Redis is stalled: the rest of the webhook does without it), and retries stop
# when the time is spent. Outside a limit (the ticket worker, the CLI, background threads) the
# client behaves as configured.


@dataclass
class _Limit:
    until: float  # time.monotonic() after which Redis is no longer waited for


_limit: ContextVar[_Limit | None] = ContextVar("ivr_redis_time_limit", default=None)


def start_time_limit(seconds: float) -> Token[_Limit | None]:
    """Allow what runs from now on in this context `seconds` of Redis time in all."""
    return _limit.set(_Limit(time.monotonic() + seconds))


def end_time_limit(token: Token[_Limit | None]) -> None:
    """Lift the limit `start_time_limit` set."""
    _limit.reset(token)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """`seconds` of Redis time in all for the body of the `with`."""
    token = start_time_limit(seconds)
    try:
        yield
    finally:
        end_time_limit(token)


def time_left() -> float | None:
    """Seconds of Redis time left under this context's limit; None when there is none."""
    limit = _limit.get()
    return None if limit is None else limit.until - time.monotonic()


def _stalled() -> None:
    """Redis did not answer in time: the rest of the limited work goes without it."""
    limit = _limit.get()
    if limit is not None:
        limit.until = 0.0


class _LimitedConnection:
    """Mixed before a redis-py connection class: each wait keeps to the time left."""

    socket_timeout: float | None
    socket_connect_timeout: float | None
    _sock: socket.socket | None

    def _wait_at_most(self) -> None:
        left = time_left()
        if left is None:
            wait = self.socket_timeout
        elif left <= 0:
            raise RedisTimeSpent("the Redis time of this request is spent")
        else:
            wait = min(self.socket_timeout or left, left)
        sock = self._sock
        if sock is not None and sock.gettimeout() != wait:
            sock.settimeout(wait)

    def _connect(self) -> socket.socket:
        left = time_left()
        if left is not None and left <= 0:
            raise TimeoutError("the Redis time of this request is spent")
        configured = self.socket_connect_timeout
        if left is not None:
            self.socket_connect_timeout = min(configured or left, left)
        try:
            sock: socket.socket = super()._connect()  # type: ignore[misc]
        except TimeoutError:
            _stalled()
            raise
        finally:
            self.socket_connect_timeout = configured
        return sock

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._wait_at_most()
        super().send_packed_command(command, check_health)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self._wait_at_most()
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[misc]
        except redis.TimeoutError:
            _stalled()
            raise


_LIMITED: dict[type, type] = {}


def _limited(base: type) -> type:
    """`base` (a redis-py connection class) keeping to the time limit."""
    if base not in _LIMITED:
        _LIMITED[base] = type(f"Limited{base.__name__}", (_LimitedConnection, base), {})
    return _LIMITED[base]


def _limit_pool(pool: Any) -> None:
    """Make the connections `pool` opens from now on keep to the time limit."""
    pool.connection_class = _limited(pool.connection_class)


class LimitedRetry(Retry):
    """redis-py's Retry, that neither retries nor sleeps past the time limit."""

    def call_with_retry(self, do: Callable[[], T], fail: Callable[[Exception], Any]) -> T:
        self._backoff.reset()  # type: ignore[no-untyped-call]
        failures = 0
        while True:
            try:
                return do()
            except self._supported_errors as error:
                failures += 1
                fail(error)
                left = time_left()
                if (self._retries >= 0 and failures > self._retries) or (
                    left is not None and left <= 0
                ):
                    raise error
                pause = self._backoff.compute(failures)
                if left is not None:
                    pause = min(pause, left)
                if pause > 0:
                    time.sleep(pause)


# Direct calls ------------------------------------------------------------------------------------


class ThreadConnections:
    """A connection of its own per thread, for the few scripts every webhook runs.

    Taking a connection from redis-py's pool and giving it back, with the checks made each time
    (is it this process's, has it unread data), cost about as much as the webhook's own work
    around the round trip. A thread here keeps one connection of the pool's kind (so Sentinel
    still finds the master, and time limits and retries apply as on any other command) and
    sends on it directly. Only for single servers and Sentinel: a Cluster routes each command.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._local = threading.local()

    def evalsha(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """Run a registered script (`Redis.register_script`), loading it if Redis lost it."""
        try:
            return self._call("EVALSHA", script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            # Loaded on this very connection: after a failover the pool may point elsewhere.
            self._call("SCRIPT", "LOAD", script.script)
            return self._call("EVALSHA", script.sha, len(keys), *keys, *args)

    def read(self, *commands: tuple[Any, ...]) -> list[Any]:
        """The replies to read-only `commands`, sent together in one round trip (a pipeline
        without a transaction); the first error reply is raised once all are read."""

        def send_and_read(connection: Any) -> list[Any]:
            connection.send_packed_command(connection.pack_commands(commands))
            replies = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis.exceptions.ResponseError as error:
                    replies.append(error)
            for reply in replies:
                if isinstance(reply, redis.exceptions.ResponseError):
                    raise reply
            return replies

        return self._on_connection(send_and_read)

    def _call(self, *args: Any) -> Any:
        def send_and_read(connection: Any) -> Any:
            connection.send_command(*args)
            return connection.read_response()

        return self._on_connection(send_and_read)

    def _on_connection(self, exchange: Callable[[Any], T]) -> T:
        """`exchange` on this thread's connection, with the connection's retries."""
        connection: Any = getattr(self._local, "connection", None)
        if connection is None or connection.pid != os.getpid():
            connection = self._local.connection = self.client.connection_pool.make_connection()

        def connected() -> T:
            # Connected through the connection's own connect(): a Sentinel connection asks
            # there for the master, where sending unconnected would go to its default address.
            connection.connect()
            return exchange(connection)

        try:
            return cast(
                T,
                connection.retry.call_with_retry(connected, lambda error: connection.disconnect()),
            )
        except redis.exceptions.ResponseError:
            raise  # the reply was read whole: the connection is fine
        except BaseException:
            connection.disconnect()  # whatever was half sent or unread goes with it
            raise
