"""`REDIS_URL` parsing: every accepted form, and a clear error for the rest."""

from __future__ import annotations

import pytest
import redis

from ivr import redis_url as urls
from ivr.errors import IvrError
from ivr.redis_url import RedisTarget, RedisUrlError, parse


def test_plain_forms_are_redis_pys_own() -> None:
    for url in ("redis://h:6379/2", "rediss://:pw@h:6380/0", "unix:///tmp/r.sock?db=1"):
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
    ],
)
def test_malformed_urls_are_refused_with_the_url_named(url: str) -> None:
    with pytest.raises(RedisUrlError) as error:
        parse(url)
    assert isinstance(error.value, IvrError)
    assert repr(url) in str(error.value)


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
