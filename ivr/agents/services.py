"""Agents across pools with their presence, and the one way to change it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivr.errors import IvrError
from ivr.store import Store
from routing.model import Pools

STATUSES = ("available", "away")


class UnknownAgent(IvrError):
    """No pool has an agent with that id or name."""


class AmbiguousAgent(UnknownAgent):
    """A name that several agents (with different ids) go by: only an id says which."""


class BadStatus(IvrError):
    """A presence status the product does not know."""


@dataclass(frozen=True)
class AgentView:
    """An agent as supervisors see it: where it works and whether it takes calls."""

    id: str
    name: str
    pools: tuple[str, ...]
    address: str
    status: str
    since: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "name": self.name, "pools": list(self.pools),
                "address": self.address, "status": self.status, "since": self.since}  # fmt: skip


def list_agents(pools: Pools | None, store: Store) -> list[AgentView]:
    """Every agent of every pool, once each, in file order, with its presence."""
    presence = store.presence()
    seen: dict[str, AgentView] = {}
    for pool in pools or ():
        for agent in pool.agents:
            known = seen.get(agent.id)
            if known is not None:
                seen[agent.id] = AgentView(known.id, known.name, (*known.pools, pool.name),
                                           known.address, known.status, known.since)  # fmt: skip
                continue
            record = presence.get(agent.id, {})
            seen[agent.id] = AgentView(
                agent.id, agent.name, (pool.name,), agent.address,
                record.get("status", "available"), record.get("since"),
            )  # fmt: skip
    return list(seen.values())


def resolve(pools: Pools | None, id_or_name: str) -> str:
    """The id of the agent known by this id or name, in any letter case."""
    agent = pools.agent(id_or_name) if pools is not None else None
    if agent is None or pools is None:
        raise UnknownAgent(f"no pool has an agent {id_or_name!r}")
    if agent.id.casefold() != id_or_name.strip().casefold():
        # Found by name: another agent of that name would be changed as silently.
        named = {a.id: pool.name for pool in pools for a in pool.agents if a.known_as(id_or_name)}
        if len(named) > 1:
            which = ", ".join(f"{agent_id} ({pool})" for agent_id, pool in named.items())
            raise AmbiguousAgent(f"{id_or_name!r} names several agents: {which}; give the id")
    return agent.id


def set_status(pools: Pools | None, store: Store, agent: str, status: str, by: str) -> AgentView:
    """Mark a known agent (by id or name, any letter case) available or away."""
    if status not in STATUSES:
        raise BadStatus(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    agent_id = resolve(pools, agent)
    store.set_presence(agent_id, status, by)
    return next(view for view in list_agents(pools, store) if view.id == agent_id)
