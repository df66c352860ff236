"""Routing a caller: the routing module decides which pools, Redis says who is away and
whose turn it is, and the result is the list of Dials the call will try in order."""

from __future__ import annotations

from datetime import UTC, datetime

from ivr.flows.engine import RoutePlan
from ivr.flows.model import Route
from ivr.flows.state import CallState, DialAttempt
from ivr.store import Store, now
from ivr.twiml import DialTarget
from routing.decide import Away, Candidate, decide
from routing.model import Agent, Pool, Pools

_NOUNS = {"phone": "number", "client": "client", "sip": "sip"}


class PoolRouter:
    """Plans a route over the pools of one flow version."""

    def __init__(self, pools: Pools, store: Store) -> None:
        self.pools = pools
        self.store = store

    def plan(self, route: Route, state: CallState) -> RoutePlan:
        """The Dials to try now for this caller, pool by pool, in the pools' strategies."""
        decision = decide(
            self.pools,
            route.queue,
            state.language,
            datetime.fromtimestamp(now(), UTC),
            Away(self.store.away()),
        )
        attempts: list[DialAttempt] = []
        for candidate in decision.pools:
            attempts += self._attempts(candidate, route)
        return RoutePlan(tuple(attempts), decision.reason)

    def _attempts(self, candidate: Candidate, route: Route) -> list[DialAttempt]:
        pool, agents = candidate.pool, list(candidate.agents)
        caller_id = route.caller_id or pool.caller_id
        if pool.strategy == "simultaneous":
            return [_attempt(pool, agents, caller_id)]
        if pool.strategy == "round_robin":
            start = self.store.next_round_robin(pool.name) % len(agents)
            agents = agents[start:] + agents[:start]
        elif pool.strategy == "longest_idle":
            order = self.store.claim_longest_idle(pool.name, [a.id for a in agents])
            by_id = {a.id: a for a in agents}
            agents = [by_id[agent_id] for agent_id in order]
        return [_attempt(pool, [agent], caller_id) for agent in agents]


def _attempt(pool: Pool, agents: list[Agent], caller_id: str | None) -> DialAttempt:
    return DialAttempt(
        pool=pool.name,
        targets=tuple(DialTarget(_NOUNS[a.kind], a.address) for a in agents),
        timeout=pool.ring_seconds,
        caller_id=caller_id,
        agents=tuple(a.id for a in agents),
    )
