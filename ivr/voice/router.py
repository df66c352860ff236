"""Routing a caller: the routing module decides which pools, Redis says who is away and
whose turn it is, and the result is the list of Dials the call will try in order."""

from __future__ import annotations

from datetime import UTC, datetime

from ivr.calls.events import PassedPool
from ivr.flows.engine import RoutePlan
from ivr.flows.model import Route
from ivr.flows.state import CallState, DialAttempt, Endpoint
from ivr.store import Store
from routing.decide import Candidate, decide
from routing.model import Agent, Pool, Pools

_NOUNS = {"phone": "number", "client": "client", "sip": "sip"}
# Strategies whose turn is taken in Redis, there checked against the presence planned with.
CHECKED_IN_REDIS = frozenset({"round_robin", "longest_idle"})


class PoolRouter:
    """Plans a route over the pools of one flow version."""

    def __init__(self, pools: Pools, store: Store) -> None:
        self.pools = pools
        self.store = store

    def plan(self, route: Route, state: CallState, at: float) -> RoutePlan:
        """The Dials to try at `at` for this caller, pool by pool, in the pools' strategies."""
        away, presence = self.store.away_snapshot()
        decision = decide(
            self.pools, route.queue, state.language, datetime.fromtimestamp(at, UTC), away
        )
        attempts: list[DialAttempt] = []
        for candidate in decision.pools:
            attempts += self._attempts(candidate, route, at, presence)
            if candidate.pool.strategy in CHECKED_IN_REDIS:
                presence = None  # the pool's turn was taken on that presence: the plan stands
        passed = tuple(
            PassedPool(p.pool.name, p.reason)
            for p in decision.passed_over
            if p.pool.serves(route.queue)
        )
        first = decision.pools[0].pool.strategy if decision.pools else None
        return RoutePlan(tuple(attempts), decision.reason, passed, first, presence)

    def _attempts(
        self, candidate: Candidate, route: Route, at: float, presence: str | None
    ) -> list[DialAttempt]:
        pool, agents = candidate.pool, list(candidate.agents)
        caller_id = route.caller_id or pool.caller_id
        if pool.strategy == "simultaneous":
            return [_attempt(pool, agents, caller_id)]
        if pool.strategy == "round_robin":
            start = self.store.next_round_robin(pool.name, presence) % len(agents)
            agents = agents[start:] + agents[:start]
        elif pool.strategy == "longest_idle":
            order = self.store.claim_longest_idle(pool.name, [a.id for a in agents], at, presence)
            by_id = {a.id: a for a in agents}
            agents = [by_id[agent_id] for agent_id in order]
        return [_attempt(pool, [agent], caller_id) for agent in agents]


def _attempt(pool: Pool, agents: list[Agent], caller_id: str | None) -> DialAttempt:
    return DialAttempt(
        pool=pool.name,
        targets=tuple(Endpoint(_NOUNS[a.kind], a.address) for a in agents),
        timeout=pool.ring_seconds,
        caller_id=caller_id,
        agents=tuple(a.id for a in agents),
    )
