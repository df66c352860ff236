"""A Cluster node that stops answering for a while (SIGSTOP, then SIGCONT): callers hear words
within a webhook's Redis time meanwhile, and once it is back the host finds it again, the stalled
call's events reach its timeline and the call is in the listings. A node that holds only the
event stream costs its callers nothing: they hear the flow, and the stream is written later."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from ivr.store import CALL_KEY, CALLS_KEY, EVENTS_KEY, PRESENCE_KEY, PRESENCE_TOKEN_KEY
from tests.conftest import parse_twiml
from tests.server.conftest import HttpCaller, Server, action_of, running_server, says, verbs
from tests.topology.conftest import ANSWER_BOUND, ClusterSet, RedisProcess, wait_until
from tests.topology.test_topologies import SUPPORT_LINE, _flows

pytestmark = pytest.mark.topology

STALL_SECONDS = 3.0  # longer than a webhook's Redis time and than a command's timeout


@pytest.fixture
def host(cluster_set: ClusterSet, tmp_path: Path) -> Iterator[Server]:
    with running_server(
        tmp_path / "a", _flows(tmp_path), workers=2, redis_url=cluster_set.url
    ) as a:
        yield a


def _node_of(cluster_set: ClusterSet, key: str) -> RedisProcess:
    port = cluster_set.master_of(key)
    return next(n for n in cluster_set.nodes if n.port == port)


def _post_while_stalled(
    node: RedisProcess, caller: HttpCaller, path: str, **extra: str
) -> ET.Element:
    """`caller` posts `path` while `node` is stopped (for STALL_SECONDS in all): the TwiML
    heard, which came within a webhook's Redis time."""
    node.process.send_signal(signal.SIGSTOP)
    try:
        sent = time.monotonic()
        response = caller.post(path, **extra)
        waited = time.monotonic() - sent
        assert response.status_code == 200, response.text
        assert waited < ANSWER_BOUND, waited
        time.sleep(max(0.0, STALL_SECONDS - waited))
    finally:
        node.process.send_signal(signal.SIGCONT)
    return parse_twiml(response.text)


def test_a_stalled_node_costs_its_calls_a_fallback_not_their_record(
    cluster_set: ClusterSet, host: Server
) -> None:
    caller = host.caller(to=SUPPORT_LINE)
    root = caller.twiml("/voice/incoming")
    assert root.find("Dial") is not None
    node = _node_of(cluster_set, CALL_KEY.format(caller.sid))
    heard = _post_while_stalled(node, caller, action_of(root), DialCallStatus="no-answer")
    assert says(heard) and verbs(heard)[-1] == "Record"  # the apology, then a voicemail
    assert "/voice/fallback" in action_of(heard)

    def a_new_call_goes_on() -> bool:
        fresh = host.caller(to=SUPPORT_LINE)
        answer = fresh.twiml("/voice/incoming")
        return answer.find("Dial") is not None and bool(host.store().load_call(fresh.sid))

    wait_until(a_new_call_goes_on, "calls to be stored again after the node came back")
    # The stalled webhook's events were kept on the host's disk and replayed into the call's
    # timeline once its node answered again.
    wait_until(
        lambda: "fallback" in [e["kind"] for e in host.store().call_log(caller.sid)],
        "the stalled webhook's events to reach the call's timeline",
    )
    assert caller.status().status_code in (200, 204)


def test_a_stalled_node_of_the_call_index_loses_no_call_from_the_listings(
    cluster_set: ClusterSet, host: Server
) -> None:
    # The index of every call lives in a slot of its own, on the node that also holds the
    # agents' presence token, which a route reads: the read takes the webhook's Redis time, so
    # the caller hears the fallback, but the call is not left out of the listings once the
    # node is back.
    caller = host.caller(to=SUPPORT_LINE)
    node = _node_of(cluster_set, CALLS_KEY)
    assert node is _node_of(cluster_set, PRESENCE_TOKEN_KEY)
    assert says(_post_while_stalled(node, caller, "/voice/incoming"))
    wait_until(
        lambda: node.client().zscore(CALLS_KEY, caller.sid) is not None,
        "the call in the index of every call",
    )


def test_a_stalled_node_of_the_event_stream_costs_a_caller_nothing(
    cluster_set: ClusterSet, host: Server
) -> None:
    # The stream of every call's events lives in a slot of its own: on a Cluster it is written
    # after the call's own script. The call is written, so its caller hears the flow, not the
    # fallback, once the stream's node has timed out; the stream entry is kept on the host's
    # disk and written, once, when the node is back.
    node = _node_of(cluster_set, EVENTS_KEY)
    # Keys this webhook reads must be elsewhere: a read that times out ends the request's Redis.
    callers = (host.caller(to=SUPPORT_LINE) for _ in range(1000))
    caller = next(c for c in callers if _node_of(cluster_set, CALL_KEY.format(c.sid)) is not node)
    assert all(node is not _node_of(cluster_set, k) for k in (PRESENCE_KEY, PRESENCE_TOKEN_KEY))
    assert _post_while_stalled(node, caller, "/voice/incoming").find("Dial") is not None

    def streamed() -> int:
        entries = [fields for _, fields in node.client().xrange(EVENTS_KEY)]
        return [f[b"sid"] for f in entries].count(caller.sid.encode())

    wait_until(lambda: streamed() > 0, "the call's stream entry, from the host's disk")
    assert streamed() == 1
    assert _node_of(cluster_set, CALLS_KEY).client().zscore(CALLS_KEY, caller.sid) is not None
    assert "fallback" not in [e["kind"] for e in host.store().call_log(caller.sid)]
