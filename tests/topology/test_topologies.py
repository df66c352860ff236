"""Two `ivr serve` hosts sharing one Redis topology: Sentinel, then Cluster.

A call whose webhooks alternate between the hosts completes, and round-robin stays exactly fair;
on a Cluster, a call's KPI facts follow it although they live in another slot.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ivr import redis_url
from ivr.calls.kpis import KpiFacts
from ivr.calls.records import CallRecords
from ivr.store import KPI_FACTS_KEY, Store
from tests.calls.builders import T0, call_events
from tests.server.conftest import Server, dialled, verbs
from tests.server.test_routing_e2e import (
    POOLS,
    ROUND_ROBIN,
    ROUND_ROBIN_LINE,
    SUPPORT_LINE,
    _line,
)
from tests.topology.conftest import ClusterSet, SentinelSet, two_hosts

pytestmark = pytest.mark.topology


def _flows(root: Path) -> Path:
    flows = root / "call_flows"
    flows.mkdir(parents=True)
    (flows / "support.yaml").write_text(_line("support", SUPPORT_LINE, "support"))
    (flows / "turns.yaml").write_text(_line("turns", ROUND_ROBIN_LINE, "turns"))
    (flows / "pools.yaml").write_text(POOLS)
    return flows


@pytest.fixture(params=["sentinel", "cluster"])
def hosts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    topology = request.getfixturevalue(f"{request.param}_set")
    assert isinstance(topology, SentinelSet | ClusterSet)
    with two_hosts(topology.url, tmp_path, _flows) as both:
        yield both


def test_a_call_alternating_between_hosts_completes(hosts: tuple[Server, Server]) -> None:
    a, b = hosts
    caller = a.caller(to=SUPPORT_LINE)
    root = caller.twiml("/voice/incoming")
    turns = 0
    while root.find("Dial") is not None:
        caller.base = (b if turns % 2 == 0 else a).base
        root = caller.follow(root, DialCallStatus="no-answer")
        turns += 1
    # `first` rings both at once, `second` one by one, then voicemail.
    assert turns == 3 and verbs(root)[-1] == "Record"
    caller.base = b.base
    assert caller.status().status_code in (200, 204)
    log = a.store().call_log(caller.sid)
    assert log == b.store().call_log(caller.sid)
    assert [e["kind"] for e in log].count("status") == 1


def _first_dialled(server: Server, start: threading.Barrier) -> str:
    caller = server.caller(to=ROUND_ROBIN_LINE)
    start.wait()
    numbers = dialled(caller.twiml("/voice/incoming"))
    assert len(numbers) == 1, numbers
    return numbers[0]


def test_round_robin_is_exactly_fair_across_hosts(hosts: tuple[Server, Server]) -> None:
    count = 30
    start = threading.Barrier(count)
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(_first_dialled, hosts[i % 2], start) for i in range(count)]
        numbers = [future.result() for future in futures]
    assert Counter(numbers) == {number: count // 3 for number in ROUND_ROBIN}


def test_kpi_facts_follow_a_call_on_a_cluster(cluster_set: ClusterSet) -> None:
    connection = redis_url.client(cluster_set.url, 5.0)
    store = Store(connection)
    for event in call_events(T0, outcome="answered", wait=4):  # the facts change on the way
        store.record("CAcluster", [event])
    records = CallRecords(connection)
    facts = list(records.kpi_facts(T0, T0 + 60))
    assert facts == [KpiFacts.of(s) for s in records.between(T0, T0 + 60)]
    assert facts[0].outcome == "answered" and facts[0].wait_seconds == 4
    assert connection.zcard(KPI_FACTS_KEY) == 1
