"""A Sentinel failover during calls: callers always hear words, replicated calls survive."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import Server, says
from tests.topology.conftest import (
    ANSWER_BOUND,
    FAILOVER_TIMEOUT,
    SentinelSet,
    _sentinel_field,
    two_hosts,
)
from tests.topology.test_topologies import SUPPORT_LINE, _flows

pytestmark = pytest.mark.topology


@pytest.fixture
def hosts(sentinel_set: SentinelSet, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    with two_hosts(sentinel_set.url, tmp_path, _flows) as both:
        yield both


def test_callers_hear_words_through_a_failover(
    sentinel_set: SentinelSet, hosts: tuple[Server, Server]
) -> None:
    before = [hosts[i % 2].caller(to=SUPPORT_LINE) for i in range(6)]
    for caller in before:
        caller.twiml("/voice/incoming")
    # Replication is ordered: once the replica has this marker, it has every call before it.
    master = sentinel_set.master.client()
    master.set("ivr:test:marker", "1")
    assert master.execute_command("WAIT", 1, 5000) == 1
    sentinel_set.master.kill()
    replica_port = str(sentinel_set.replica.port).encode()
    deadline = time.monotonic() + FAILOVER_TIMEOUT
    answered = 0
    waited: list[float] = []
    while _sentinel_field(sentinel_set.sentinels[0], sentinel_set.service, "port") != replica_port:
        assert time.monotonic() < deadline, "the sentinels did not promote the replica"
        sent = time.monotonic()
        response = hosts[answered % 2].caller(to=SUPPORT_LINE).post("/voice/incoming")
        waited.append(time.monotonic() - sent)
        assert response.status_code == 200, response.text
        assert response.text.lstrip().startswith(("<?xml", "<Response"))
        assert "<Response" in response.text and "<Say" in response.text
        answered += 1
    assert answered > 0
    # The master's lookup and reconnections count in the webhook's Redis time like any wait.
    assert max(waited) < ANSWER_BOUND, sorted(waited)[-5:]
    after = hosts[1].caller(to=SUPPORT_LINE)
    deadline = time.monotonic() + FAILOVER_TIMEOUT
    root = after.twiml("/voice/incoming")
    while after.sid and hosts[0].store().load_call(after.sid) is None:
        assert time.monotonic() < deadline, "calls are not stored on the promoted master"
        after = hosts[1].caller(to=SUPPORT_LINE)
        root = after.twiml("/voice/incoming")
    assert says(root)
    store = hosts[0].store()
    for caller in before:
        assert store.load_call(caller.sid) is not None, caller.sid
