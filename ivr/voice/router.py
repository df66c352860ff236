"""Routing a caller: the routing module decides which pools, Redis says who is away and
whose turn it is, and the result is the list of Dials the call will try in order.

A pool's turn (round robin, longest idle) is taken when the call reaches the pool: at once for
the first pool, and for a later one only when the pools before it did not answer. Taken at the
route, it would go to calls that another pool answers first: a longest-idle agent would count as
offered a call that never rang, and a round robin would skip agents for nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
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
# Twilio rings at most ten nouns of one <Dial> at once, and refuses a Dial with more.
MAX_DIAL_TARGETS = 10


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
        unordered: list[str] = []
        rung: set[tuple[str, str]] = set()
        for rank, listed in enumerate(decision.pools):
            # An agent in several pools is rung once a call, by the first of them that tries:
            # ringing the same phone again only keeps the caller waiting.
            fresh = tuple(a for a in listed.agents if (a.kind, a.address) not in rung)
            if not fresh:
                continue
            rung.update((a.kind, a.address) for a in fresh)
            candidate = listed._replace(agents=fresh)
            if rank > 0 and candidate.pool.strategy in CHECKED_IN_REDIS:
                unordered.append(candidate.pool.name)  # its turn is taken if the call gets there
                attempts += _in_file_order(candidate, route)
                continue
            attempts += self._attempts(candidate, route, at, presence)
            if candidate.pool.strategy in CHECKED_IN_REDIS:
                presence = None  # the pool's turn was taken on that presence: the plan stands
        passed = tuple(
            PassedPool(p.pool.name, p.reason)
            for p in decision.passed_over
            if p.pool.serves(route.queue)
        )
        first = decision.pools[0].pool.strategy if decision.pools else None
        return RoutePlan(
            tuple(attempts), decision.reason, passed, first, presence, tuple(unordered)
        )

    def away(self) -> tuple[frozenset[str], str | None]:
        """The agents away now, and the token of that presence for the commit to check."""
        return self.store.away_snapshot()

    def order(
        self, attempts: tuple[DialAttempt, ...], at: float, presence: str | None = None
    ) -> tuple[DialAttempt, ...]:
        """A later pool's attempts (one agent each, in file order) in the order its turn gives
        now that the call has reached it (its turn taken only if `presence` still holds)."""
        pool = self.pools.get(attempts[0].pool) if attempts else None
        if pool is None:
            return attempts
        return self._in_turn(pool, attempts, at, presence)

    def _attempts(
        self, candidate: Candidate, route: Route, at: float, presence: str | None
    ) -> list[DialAttempt]:
        pool = candidate.pool
        if pool.strategy == "simultaneous":
            # A larger pool rings ten agents at a time, in file order.
            caller_id = route.caller_id or pool.caller_id
            agents = candidate.agents
            return [
                _attempt(pool, list(agents[i : i + MAX_DIAL_TARGETS]), caller_id)
                for i in range(0, len(agents), MAX_DIAL_TARGETS)
            ]
        return list(self._in_turn(pool, _in_file_order(candidate, route), at, presence))

    def _in_turn(
        self, pool: Pool, attempts: Sequence[DialAttempt], at: float, presence: str | None
    ) -> tuple[DialAttempt, ...]:
        """A pool's attempts, one agent each, in the order its strategy rings them now."""
        ids = [a.agents[0] if a.agents else "" for a in attempts]
        by_id = dict(zip(ids, attempts, strict=True))
        return tuple(by_id[agent_id] for agent_id in self._turn(pool, ids, at, presence))

    def _turn(self, pool: Pool, ids: list[str], at: float, presence: str | None) -> list[str]:
        """Agent ids in the order the pool's strategy rings them now, its turn taken."""
        if pool.strategy == "round_robin":
            roster = [agent.id for agent in pool.agents]
            first = self.store.next_round_robin(pool.name, roster, ids, presence)
            start = ids.index(first) if first in ids else 0
            return ids[start:] + ids[:start]
        if pool.strategy == "longest_idle":
            return self.store.claim_longest_idle(pool.name, ids, at, presence)
        return ids


def _in_file_order(candidate: Candidate, route: Route) -> list[DialAttempt]:
    caller_id = route.caller_id or candidate.pool.caller_id
    return [_attempt(candidate.pool, [agent], caller_id) for agent in candidate.agents]


def _attempt(pool: Pool, agents: list[Agent], caller_id: str | None) -> DialAttempt:
    return DialAttempt(
        pool=pool.name,
        targets=tuple(Endpoint(_NOUNS[a.kind], a.address) for a in agents),
        timeout=pool.ring_seconds,
        caller_id=caller_id,
        agents=tuple(a.id for a in agents),
    )
