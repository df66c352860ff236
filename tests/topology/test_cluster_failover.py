"""A Cluster master lost for good (SIGKILL): its replica takes its slots over, callers hear words
within a webhook's Redis time meanwhile, both hosts find the new master, and the calls it had
replicated are still there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.store import CALL_KEY
from tests.server.conftest import HttpCaller, Server
from tests.topology.conftest import (
    ANSWER_BOUND,
    FAILOVER_TIMEOUT,
    ClusterSet,
    RedisProcess,
    two_hosts,
    wait_until,
)
from tests.topology.test_topologies import SUPPORT_LINE, _flows

pytestmark = pytest.mark.topology


@pytest.fixture
def hosts(replicated_cluster: ClusterSet, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    with two_hosts(replicated_cluster.url, tmp_path, _flows) as both:
        yield both


def test_a_lost_master_is_replaced_by_its_replica(
    replicated_cluster: ClusterSet, hosts: tuple[Server, Server]
) -> None:
    cluster = replicated_cluster
    before = [hosts[i % 2].caller(to=SUPPORT_LINE) for i in range(6)]
    for caller in before:
        assert caller.twiml("/voice/incoming").find("Dial") is not None
    lost = next(
        n for n in cluster.nodes if n.port == cluster.master_of(CALL_KEY.format(before[0].sid))
    )
    replica = cluster.replicas[cluster.nodes.index(lost)]
    survivor = next(n for n in cluster.nodes if n is not lost)
    on_lost = [c for c in before if cluster.master_of(CALL_KEY.format(c.sid)) == lost.port]
    # Replication is ordered: once the replica has this marker, it has every call before it.
    marker = CALL_KEY.format(on_lost[-1].sid) + ":marker"
    master = lost.client()
    master.set(marker, "1")
    assert master.execute_command("WAIT", 1, 5000) == 1
    lost.kill()

    deadline = time.monotonic() + FAILOVER_TIMEOUT
    waited: list[float] = []
    meanwhile: dict[str, bool] = {}  # call -> whether it heard the fallback
    while cluster.master_of(marker, ask=survivor) != replica.port:
        assert time.monotonic() < deadline, "the replica did not take the lost master's slots"
        sent = time.monotonic()
        caller = hosts[len(waited) % 2].caller(to=SUPPORT_LINE)
        response = caller.post("/voice/incoming")
        waited.append(time.monotonic() - sent)
        assert response.status_code == 200, response.text
        assert "<Response" in response.text and "<Say" in response.text
        meanwhile[caller.sid] = "/voice/fallback" in response.text
        time.sleep(0.05)
    assert waited, "the failover was over before a call could be tried"
    # Finding the lost node dead, and the cluster's new map, count in a webhook's Redis time.
    assert max(waited) < ANSWER_BOUND, sorted(waited)[-5:]

    # A new call whose keys live in the slots taken over is stored there, by either host.
    for host in hosts:

        def stored(host: Server = host) -> bool:
            caller = _caller_on(host, cluster, replica.port, survivor)
            root = caller.twiml("/voice/incoming")
            return root.find("Dial") is not None and host.store().load_call(caller.sid) is not None

        wait_until(
            stored, f"a call stored on the promoted replica by {host.base}", FAILOVER_TIMEOUT
        )
    store = hosts[0].store()
    for caller in before:
        assert store.load_call(caller.sid) is not None, caller.sid
    # What the calls of the failover heard was kept on their host's disk when Redis could not
    # take it, and reaches their timelines once Redis answers again.
    assert any(meanwhile.values())

    def on_record() -> bool:
        for sid, fell_back in meanwhile.items():
            kinds = [e["kind"] for e in store.call_log(sid)]
            if "call_started" not in kinds or fell_back != ("fallback" in kinds):
                return False
        return True

    wait_until(on_record, "the calls during the failover on record")


def _caller_on(host: Server, cluster: ClusterSet, port: int, ask: RedisProcess) -> HttpCaller:
    """A new call of `host` whose keys live on the node at `port`."""
    for _ in range(10_000):
        caller = host.caller(to=SUPPORT_LINE)
        if cluster.master_of(CALL_KEY.format(caller.sid), ask=ask) == port:
            return caller
    raise AssertionError(f"no call id lands on the node at {port}")
