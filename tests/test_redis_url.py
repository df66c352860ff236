"""`REDIS_URL` parsing (every form, a clear error for the rest), and the clients' time limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from ivr import redis_url as urls
from ivr.embedded import EmbeddedRedis
from ivr.errors import IvrError
from ivr.redis_url import RedisTarget, RedisUrlError, parse


def test_plain_forms_are_redis_pys_own() -> None:
    for url in ("redis://h:6379/2", "rediss://:pw@h:6380/0", "unix:///tmp/r.sock?db=1",
                "unix://:pw@/tmp/r.sock"):  # fmt: skip
        assert parse(url) == RedisTarget("plain", url)


def test_sentinel_url_names_sentinels_service_db_and_password() -> None:
    url = "redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/3"
    assert parse(url) == RedisTarget(
        "sentinel", url, (("10.0.0.1", 26379), ("10.0.0.2", 26380)), "mymaster", 3, "s@cret"
    )
    assert parse("redis+sentinel://h:1/svc").db == 0


def test_cluster_url_names_seed_nodes() -> None:
    url = "redis+cluster://a:7000,b:7001"
    assert parse(url) == RedisTarget("cluster", url, (("a", 7000), ("b", 7001)))


@pytest.mark.parametrize(
    "url",
    [
        "http://h:6379",
        "",
        "redis+sentinel://h:26379",
        "redis+sentinel://h:26379/svc/x",
        "redis+sentinel://h:26379/svc/1/2",
        "redis+sentinel:///svc",
        "redis+sentinel://h/svc",
        "redis+sentinel://h:0/svc",
        "redis+cluster://a:7000,b",
        "redis+cluster://a:7000/0",
        "redis+cluster://a:port",
        # Plain forms redis-py would reject only as each worker connects, or misread.
        "redis://h:notaport/0",
        "redis://h:99999/0",
        "redis://[::1:6379/0",
        "redis://h:6379/abc",
        "redis://h:6379/0?no_such_option=1",
        "unix://",
        "unix:///tmp/r.sock?db=x",
        "unix://var/redis.sock",  # would have been /redis.sock
        "unix://./var/redis.sock",
        "redis+sentinel://h:26379/svc?ssl=true",
        "redis+cluster://a:7000?ssl=true",
    ],
)
def test_malformed_urls_are_refused_with_the_url_named(url: str) -> None:
    with pytest.raises(RedisUrlError) as error:
        parse(url)
    assert isinstance(error.value, IvrError)
    assert repr(url) in str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret@h:notaport/0",
        "rediss://user:s3cret@h/x",
        "redis+sentinel://:s3cret@h:1",
        "redis://:s3cret#x@h:6379/0",  # an unquoted # ends the address inside the password
    ],
)
def test_a_refused_url_keeps_its_password_out_of_the_message(url: str) -> None:
    with pytest.raises(RedisUrlError) as error:
        parse(url)
    assert "s3cret" not in str(error.value)
    assert ":***@h" in str(error.value)


def test_client_builds_the_kind_the_url_names() -> None:
    plain = urls.client("redis://127.0.0.1:1/4", 0.2)
    assert plain.connection_pool.connection_kwargs["db"] == 4
    assert plain.connection_pool.connection_kwargs["socket_timeout"] == 0.2
    sentinel = urls.client("redis+sentinel://127.0.0.1:1/svc/2", 0.2)
    assert sentinel.connection_pool.service_name == "svc"  # type: ignore[attr-defined]
    assert sentinel.connection_pool.connection_kwargs["db"] == 2


@pytest.mark.redis
def test_plain_client_talks_to_the_test_redis(redis_url: str) -> None:
    connection: redis.Redis = urls.client(redis_url, 0.5)
    assert connection.ping()


@pytest.fixture
def stallable(tmp_path: Path) -> Iterator[str]:
    """A Redis of this test's own, free to be held with DEBUG SLEEP."""
    with EmbeddedRedis(tmp_path / "redis") as server:
        yield server.url


def hold(url: str, seconds: float) -> threading.Thread:
    """Hold the Redis at `url` for `seconds`, from another client; started and running."""
    thread = threading.Thread(
        target=redis.Redis.from_url(url).execute_command, args=("DEBUG", "SLEEP", seconds)
    )
    thread.start()
    time.sleep(0.05)  # the sleep has begun
    return thread


def timed(call: Callable[[], object]) -> tuple[float, BaseException | None]:
    """How long `call` took, and what it raised."""
    start = time.monotonic()
    try:
        call()
    except redis.RedisError as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


@pytest.mark.redis
def test_a_time_limit_waits_one_timeout_for_a_stalled_redis_then_not_at_all(
    stallable: str,
) -> None:
    connection = urls.client(stallable, 0.5)
    connection.set("k", "v")
    holding = hold(stallable, 1.5)
    with urls.time_limit(1.0):
        first, failed = timed(lambda: connection.get("k"))
        assert isinstance(failed, redis.TimeoutError) and 0.4 < first < 0.8  # not retried
        then, failed = timed(lambda: connection.get("k"))
        assert isinstance(failed, redis.TimeoutError) and then < 0.05  # Redis is not waited for
    holding.join()
    assert connection.get("k") == b"v"  # the limit ended with its block


@pytest.mark.redis
def test_a_time_limit_bounds_the_redis_time_in_all(stallable: str) -> None:
    connection = urls.client(stallable, 0.5)
    holding = hold(stallable, 1.0)
    with urls.time_limit(0.2):
        spent, failed = timed(lambda: connection.get("k"))
    assert isinstance(failed, redis.TimeoutError) and spent < 0.4
    holding.join()


@pytest.mark.redis
def test_without_a_limit_the_client_waits_out_a_short_stall(stallable: str) -> None:
    connection = urls.client(stallable, 0.5)  # the ticket worker's and the CLI's behaviour
    connection.set("k", "v")
    holding = hold(stallable, 0.8)
    spent, failed = timed(lambda: connection.get("k"))
    assert failed is None and spent > 0.6  # timed out once, retried, answered
    holding.join()


def test_thread_connections_run_scripts_through_a_lost_cache_and_a_dropped_connection(
    redis_url: str,
) -> None:
    client = urls.client(redis_url, 5.0)
    direct = urls.ThreadConnections(client)
    script = client.register_script("return redis.call('INCR', KEYS[1])")
    client.delete("test:direct")
    assert direct.evalsha(script, ["test:direct"], []) == 1
    client.script_flush()  # Redis restarted, or a promoted replica that never ran it
    assert direct.evalsha(script, ["test:direct"], []) == 2
    # The server drops the connection (that one only: REDIS_URL may be a shared server).
    client.client_kill_filter(_id=direct.read(("CLIENT", "ID"))[0])
    assert direct.evalsha(script, ["test:direct"], []) == 3
    with pytest.raises(redis.ResponseError):
        direct.evalsha(client.register_script("return redis.call('NOPE')"), [], [])
    assert direct.evalsha(script, ["test:direct"], []) == 4  # an error reply leaves it usable
    seen: list[int] = []
    worker = threading.Thread(
        target=lambda: seen.append(direct.evalsha(script, ["test:direct"], []))
    )
    worker.start()
    worker.join()
    assert seen == [5]
    client.delete("test:direct")


def test_thread_connections_read_batches_and_survive_error_replies_and_drops(
    redis_url: str,
) -> None:
    client = urls.client(redis_url, 5.0)
    direct = urls.ThreadConnections(client)
    client.delete("test:read:list", "test:read:string")
    client.rpush("test:read:list", "a", "b")
    client.set("test:read:string", "x")
    assert direct.read(("GET", "test:read:string"), ("LLEN", "test:read:list")) == [b"x", 2]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        direct.read(("LLEN", "test:read:string"), ("GET", "test:read:string"))
    # Every reply of the failed batch was read: the next one gets its own answers.
    assert direct.read(("GET", "test:read:string"), ("LLEN", "test:read:list")) == [b"x", 2]
    client.client_kill_filter(_id=direct.read(("CLIENT", "ID"))[0])
    assert direct.read(("LLEN", "test:read:list"), ("GET", "test:read:none")) == [2, None]
    client.delete("test:read:list", "test:read:string")
