"""The pool router on real Redis: the decision of the routing module turned into Dials, with
presence, round-robin turns and longest-idle claims kept in Redis, at a pinned instant."""

from __future__ import annotations

import redis

from ivr.flows.model import Route
from ivr.flows.state import CallState
from ivr.pools import parse_pools
from ivr.store import Store
from ivr.voice.router import PoolRouter
from ivr.yamlsource import parse
from routing.model import Pools

# Wednesday 2026-12-02 03:00 UTC: 10:00 in Hanoi, 05:00 in Cairo.
AT = 1_796_180_400.0
POOLS = """\
pools:
  hanoi:
    timezone: Asia/Ho_Chi_Minh
    queues: [billing]
    languages: [vi-VN, en-US]
    shifts: [{days: mon-fri, from: "08:00", to: "17:00"}]
    strategy: round_robin
    agents:
      - {name: Lan, phone: "+84901234567"}
      - {name: Minh, client: minh}
      - {name: Huong, phone: "+84907654321", languages: [vi-VN]}
  cairo:
    timezone: Africa/Cairo
    queues: [billing]
    shifts: [{days: mon-fri, from: "09:00", to: "17:00"}]
    agents:
      - {name: Amr, phone: "+201001234567"}
  idle:
    timezone: UTC
    queues: [tech]
    shifts: [{days: mon-sun, from: "00:00", to: "24:00"}]
    strategy: longest_idle
    agents:
      - {name: A, phone: "+15550000001"}
      - {name: B, phone: "+15550000002"}
"""


def pools() -> Pools:
    source, problems = parse(POOLS, "pools.yaml")
    assert source is not None, problems
    loaded, problems = parse_pools(source)
    assert loaded is not None, problems
    return loaded


def state(language: str) -> CallState:
    return CallState("CA" + "c" * 32, "support", "v1", "billing", language)


def test_round_robin_turns_and_the_reasons_of_the_pools_passed_over(
    connection: redis.Redis,
) -> None:
    router = PoolRouter(pools(), Store(connection))
    first = router.plan(Route("billing"), state("vi-VN"), AT)
    assert [a.pool for a in first.attempts] == ["hanoi"] * 3
    assert first.strategy == "round_robin"
    assert [(p.pool, p.reason.split(",")[0]) for p in first.passed_over] == [("cairo", "off shift")]
    second = router.plan(Route("billing"), state("vi-VN"), AT)
    turned = [a.agents for a in first.attempts]
    assert [*turned[1:], turned[0]] == [a.agents for a in second.attempts]
    english = router.plan(Route("billing"), state("en-US"), AT)
    assert all("huong" not in a.agents for a in english.attempts)  # she speaks only vi-VN


def test_presence_in_redis_is_honoured(connection: redis.Redis) -> None:
    store = Store(connection)
    store.set_presence("lan", "away")
    store.set_presence("minh", "away")
    plan = PoolRouter(pools(), store).plan(Route("billing"), state("en-US"), AT)
    assert plan.attempts == () and "no agent available" in plan.reason


def test_longest_idle_claims_differ_between_calls(connection: redis.Redis) -> None:
    router = PoolRouter(pools(), Store(connection))
    one = router.plan(Route("tech"), state("en-US"), AT)
    two = router.plan(Route("tech"), state("en-US"), AT + 1)
    assert one.attempts[0].agents != two.attempts[0].agents
