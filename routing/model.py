"""Agent pools as frozen values, built once by the loader from `pools.yaml`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from routing.calendar import Calendar

if TYPE_CHECKING:
    from routing.decide import Schedule

STRATEGIES = ("simultaneous", "sequential", "round_robin", "longest_idle")
DEFAULT_PRIORITY = 100
DEFAULT_RING_SECONDS = 20
MINUTES_PER_DAY = 24 * 60
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Agent:
    """A person (or desk phone) a pool rings; reachable at exactly one address."""

    id: str  # presence is kept under this id, so one person in two pools shares it
    name: str
    phone: str | None = None
    client: str | None = None
    sip: str | None = None
    languages: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """How the agent is dialled: "phone", "client" or "sip"."""
        if self.phone is not None:
            return "phone"
        return "client" if self.client is not None else "sip"

    @property
    def address(self) -> str:
        """The number, client identity or SIP URI to dial."""
        return self.phone or self.client or self.sip or ""

    def takes(self, language: str | None) -> bool:
        """Whether the agent takes callers of `language`: any, unless she lists her languages."""
        return language is None or not self.languages or language in self.languages

    def known_as(self, text: str) -> bool:
        """Whether `text` is the agent's id or name, in any letter case."""
        wanted = text.strip().casefold()
        return wanted in (self.id.casefold(), self.name.casefold())


@dataclass(frozen=True)
class Shift:
    """Working hours on some weekdays, in the pool's wall-clock time."""

    days: frozenset[int]  # 0 is Monday, as in date.weekday()
    start_minute: int  # minutes after midnight: 0..1439
    end_minute: int  # 1..1440, where 1440 is "24:00"; at or before start means the next day

    @property
    def ends(self) -> tuple[int, int]:
        """When it ends: (days after the day it starts on, minutes after that day's midnight)."""
        if self.end_minute == MINUTES_PER_DAY:
            return 1, 0
        return (1 if self.end_minute <= self.start_minute else 0), self.end_minute

    def week_minutes(self) -> list[tuple[int, int]]:
        """The wall-clock stretches of a week it covers, in minutes from Monday 00:00."""
        week = 7 * MINUTES_PER_DAY
        length = self.end_minute - self.start_minute
        length += MINUTES_PER_DAY if length <= 0 else 0
        found = []
        for day in sorted(self.days):
            start = day * MINUTES_PER_DAY + self.start_minute
            found.append((start, min(start + length, week)))
            if start + length > week:  # Sunday night into Monday morning
                found.append((0, start + length - week))
        return found


@dataclass(frozen=True)
class Pool:
    """Agents in one place who serve some queues while one of their shifts is running."""

    name: str
    timezone: str
    queues: tuple[str, ...]
    languages: tuple[str, ...] = ()
    priority: int = DEFAULT_PRIORITY
    shifts: tuple[Shift, ...] = ()
    calendar: Calendar = field(default_factory=Calendar)
    strategy: str = "simultaneous"
    ring_seconds: int = DEFAULT_RING_SECONDS
    agents: tuple[Agent, ...] = ()
    caller_id: str | None = None
    order: int = 0  # position in pools.yaml: the last tie-break

    @property
    def zone(self) -> ZoneInfo:
        """The pool's time zone (ZoneInfo keeps one instance per key, so this is cheap)."""
        return ZoneInfo(self.timezone)

    def serves(self, queue: str) -> bool:
        """Whether the pool takes calls for `queue`."""
        return queue in self.queues

    def speaks(self, language: str | None) -> bool:
        """Whether `language` is one of the pool's languages."""
        return language is not None and language in self.languages

    def agent(self, agent_id: str) -> Agent | None:
        """The agent with this id or name (any letter case), if the pool has one."""
        return next((a for a in self.agents if a.known_as(agent_id)), None)


@dataclass(frozen=True)
class Pools:
    """Every pool, in file order, with a schedule built on first use for fast decisions."""

    pools: tuple[Pool, ...] = ()

    def __iter__(self) -> Iterator[Pool]:
        return iter(self.pools)

    def __len__(self) -> int:
        return len(self.pools)

    def get(self, name: str) -> Pool | None:
        """The pool called `name`, if any."""
        return next((p for p in self.pools if p.name == name), None)

    def agent(self, id_or_name: str) -> Agent | None:
        """The agent with this id, else with this name, in any letter case, in file order."""
        everyone = [agent for pool in self.pools for agent in pool.agents]
        wanted = id_or_name.strip().casefold()
        by_id = next((a for a in everyone if a.id.casefold() == wanted), None)
        return by_id or next((a for a in everyone if a.known_as(wanted)), None)

    def reached_at(self, address: str, queue: str) -> tuple[Pool, Agent] | None:
        """The pool and agent a call from `address` (a number, `client:id` or a SIP URI, as
        Twilio gives `From`) comes from, in a pool serving `queue` first."""
        wanted = address.strip()
        client = wanted.removeprefix("client:").casefold() if wanted.startswith("client:") else None
        sip = wanted.split(";")[0].casefold() if wanted.casefold().startswith("sip:") else None

        def is_at(agent: Agent) -> bool:
            if client is not None:
                return agent.client is not None and agent.client.casefold() == client
            if sip is not None:
                return agent.sip is not None and agent.sip.split(";")[0].casefold() == sip
            return agent.phone is not None and agent.phone == wanted

        ordered = sorted(self.pools, key=lambda pool: not pool.serves(queue))  # stable
        return next(((p, a) for p in ordered for a in p.agents if is_at(a)), None)

    def queues(self) -> set[str]:
        """Every queue some pool serves."""
        return {queue for pool in self.pools for queue in pool.queues}

    @cached_property
    def schedule(self) -> Schedule:
        """Who is on shift when, precomputed a window at a time (see routing.decide)."""
        from routing.decide import Schedule

        return Schedule(self.pools)


def overlapping(shifts: Sequence[Shift]) -> list[tuple[int, int]]:
    """The pairs (i, j), i < j, of shifts whose wall-clock hours overlap on some weekday."""
    found = []
    for j, later in enumerate(shifts):
        for i, earlier in enumerate(shifts[:j]):
            if any(
                a_start < b_end and b_start < a_end
                for a_start, a_end in earlier.week_minutes()
                for b_start, b_end in later.week_minutes()
            ):
                found.append((i, j))
    return found
