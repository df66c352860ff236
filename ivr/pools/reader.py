"""pools.yaml's document, pools and agents read into routing's values, every mistake located."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from typing import Any

from ivr.config import E164, LANGUAGE_TAG, canonical_language, known_zone
from ivr.pools import schedule
from ivr.yamlsource import Path as Where
from ivr.yamlsource import Reader, Source, closest, suggest_or_list
from routing.model import (
    DEFAULT_PRIORITY,
    DEFAULT_RING_SECONDS,
    STRATEGIES,
    Agent,
    Pool,
    Pools,
)

SIP_URI = re.compile(r"^sips?:[^\s@:;]+@[A-Za-z0-9.-]+(:\d{1,5})?(;\S*)?$")
CLIENT = re.compile(r"^[A-Za-z0-9_.@-]{1,256}$")
MAX_RING_SECONDS = 600  # Twilio's longest Dial timeout

POOL_KEYS: tuple[str, ...] = ("timezone", "queues", "languages", "priority", "shifts")
POOL_KEYS += ("holidays", "strategy", "ring_seconds", "agents", "caller_id")
AGENT_KEYS = ("name", "id", "phone", "client", "sip", "languages")
ADDRESSES = {
    "phone": (E164, "an E.164 number such as +84901234567"),
    "client": (CLIENT, "a Twilio Client identity (letters, digits, _ . @ -)"),
    "sip": (SIP_URI, "a SIP URI such as sip:desk@pbx.example.com"),
}


class PoolsReader(Reader):
    """Walks the parsed document, building values and collecting every problem on the way."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        # Agent id -> (pool, address) where first seen: one id is one person's presence.
        self.agent_ids: dict[str, tuple[str, str]] = {}

    def hint(self, word: str, choices: Iterable[str]) -> str:
        return suggest_or_list(word, choices)

    def mapping(self, value: Any, where: Where, what: str) -> dict[str, Any]:
        """`value` as a map, or an empty one after an error."""
        return self.typed(where, value, dict, f"{what} must be a mapping of keys to values") or {}

    def items(self, value: Any, where: Where, what: str) -> list[Any]:
        """`value` as a list, or an empty one after an error."""
        return self.typed(where, value, list, f"`{what}` must be a list") or []

    def text(self, value: Any, where: Where, what: str) -> str | None:
        """`value` as non-empty text, stripped."""
        if isinstance(value, str) and value.strip():
            return value.strip()
        self.error(where, f"{what} must be a non-empty string, got {value!r}")
        return None

    def tags(self, value: Any, where: Where) -> tuple[str, ...]:
        """`value` as a list of language tags."""
        found: list[str] = []
        for i, item in enumerate(self.items(value, where, "languages")):
            tag = self.text(item, (*where, i), "a language")
            if tag is not None and not LANGUAGE_TAG.match(tag):
                self.error((*where, i), f"{tag!r} is not a language tag such as en-US or vi-VN")
            elif tag is not None:
                found.append(canonical_language(tag))
        return tuple(found)

    def whole(self, body: dict[str, Any], key: str, where: Where, default: int) -> int:
        """`body[key]` as a whole number, `default` when absent or after an error."""
        value = body.get(key, default)
        number = self.typed(
            (*where, key), value, int, f"`{key}` must be a whole number, got {value!r}"
        )
        return default if number is None else number

    def document(self) -> Pools:
        """The pools of the file."""
        data = self.source.data
        if not isinstance(data, dict) or "pools" not in data:
            self.error((), "expected `pools:` with one entry per agent pool")
            return Pools()
        self.unknown_keys(data, (), ("pools",))
        entries = data["pools"]
        if not isinstance(entries, dict):
            self.error(("pools",), "`pools` must map each pool's name to its settings")
            return Pools()
        if not entries:
            self.warn(("pools",), "no pools: every route goes straight to its `otherwise` step")
        return Pools(
            tuple(
                self.pool(name, body, order) for order, (name, body) in enumerate(entries.items())
            )
        )

    def pool(self, name: str, raw: Any, order: int) -> Pool:
        """One pool's settings."""
        where: Where = ("pools", name)
        body = self.mapping(raw, where, f"pool {name!r}")
        self.unknown_keys(body, where, POOL_KEYS)
        for key in ("timezone", "queues", "agents"):
            if isinstance(raw, dict) and key not in body:
                self.error(where, f"pool {name!r} needs `{key}`")
        timezone = "UTC"
        if "timezone" in body:
            timezone = self.timezone(body["timezone"], (*where, "timezone"))
        queues: list[str] = []
        for i, item in enumerate(self.items(body.get("queues", []), (*where, "queues"), "queues")):
            queue = self.text(item, (*where, "queues", i), "a queue name")
            queues += [queue] if queue else []
        if "queues" in body and not queues:
            self.error((*where, "queues"), f"pool {name!r} serves no queue")
        strategy = body.get("strategy", STRATEGIES[0])
        if strategy not in STRATEGIES:
            known = ", ".join(STRATEGIES)
            self.error((*where, "strategy"), f"unknown strategy {strategy!r} (one of: {known})")
            strategy = STRATEGIES[0]
        ring_seconds = self.whole(body, "ring_seconds", where, DEFAULT_RING_SECONDS)
        if not 1 <= ring_seconds <= MAX_RING_SECONDS:
            self.error(
                (*where, "ring_seconds"),
                f"`ring_seconds` must be from 1 to {MAX_RING_SECONDS}, got {ring_seconds}",
            )
        caller_id = body.get("caller_id")
        if caller_id is not None:
            message = f"`caller_id` must be an E.164 number such as +15005550006, got {caller_id!r}"
            caller_id = self.matching((*where, "caller_id"), caller_id, E164, message)
        shifts = schedule.shifts(self, body.get("shifts", []), (*where, "shifts"))
        calendar = schedule.calendar(self, body.get("holidays"), (*where, "holidays"))
        if isinstance(raw, dict) and not body.get("shifts") and not calendar.openings:
            self.warn(where, f"pool {name!r} has no shifts: it is never on shift")
        languages: tuple[str, ...] = ()
        if "languages" in body:
            languages = self.tags(body["languages"], (*where, "languages"))
        return Pool(
            name=name,
            timezone=timezone,
            queues=tuple(queues),
            languages=languages,
            priority=self.whole(body, "priority", where, DEFAULT_PRIORITY),
            shifts=shifts,
            calendar=calendar,
            strategy=strategy,
            ring_seconds=ring_seconds,
            agents=self.agents(body.get("agents", []), (*where, "agents"), name),
            caller_id=caller_id,
            order=order,
        )

    def timezone(self, value: Any, where: Where) -> str:
        """`value` as an IANA time zone name, UTC after an error."""
        if isinstance(value, str) and known_zone(value) is not None:
            return value
        zones = zoneinfo.available_timezones()
        # Zone names are case-sensitive files: "utc" or "europe/london" is only mis-cased.
        same = [zone for zone in zones if zone.casefold() == str(value).casefold()]
        hint = same[0] if same else closest(str(value), zones, 0.85)
        also = f"; did you mean {hint}?" if hint else ""
        self.error(
            where, f"unknown time zone {value!r} (an IANA name such as Asia/Ho_Chi_Minh){also}"
        )
        return "UTC"

    def agents(self, value: Any, where: Where, pool: str) -> tuple[Agent, ...]:
        """A pool's agents, each with a unique name and id."""
        found: list[Agent] = []
        names: set[str] = set()
        ids: set[str] = set()
        entries = self.items(value, where, "agents")
        if isinstance(value, list) and not entries:
            self.error(where, f"pool {pool!r} has no agents")
        for i, raw in enumerate(entries):
            at: Where = (*where, i)
            body = self.mapping(raw, at, "an agent")
            self.unknown_keys(body, at, AGENT_KEYS)
            name = self.text(body.get("name"), (*at, "name"), "an agent's `name`")
            if name is None:
                continue
            agent_id = body.get("id", re.sub(r"\s+", "-", name.lower()))
            if not isinstance(agent_id, str) or not agent_id or re.search(r"\s", agent_id):
                self.error((*at, "id"), f"an agent `id` must be text without spaces: {agent_id!r}")
                continue
            if name in names:
                self.error((*at, "name"), f"agent {name!r} appears twice in pool {pool!r}")
            elif agent_id in ids:
                self.error((*at, "id"), f"agent id {agent_id!r} appears twice in pool {pool!r}")
            names.add(name)
            ids.add(agent_id)
            address = self.address(body, at, name)
            languages: tuple[str, ...] = ()
            if "languages" in body:
                languages = self.tags(body["languages"], (*at, "languages"))
            if address is not None:
                agent = Agent(agent_id, name, languages=languages, **address)
                if "id" not in body:  # an id written out says one person, meant to be shared
                    self.same_id_elsewhere(at, agent, pool)
                found.append(agent)
        return tuple(found)

    def same_id_elsewhere(self, where: Where, agent: Agent, pool: str) -> None:
        """Warn when a name already stands for someone at another address in another pool."""
        first = self.agent_ids.setdefault(agent.id, (pool, agent.address))
        if first[0] != pool and first[1] != agent.address:
            self.warn(
                where,
                f"agent {agent.name!r} is also in pool {first[0]!r}, at {first[1]}: presence is "
                f"kept by id ({agent.id}), so marking one away marks both (give one its own "
                "`id`, or both the same `id` if they are one person)",
            )

    def address(self, body: dict[str, Any], where: Where, name: str) -> dict[str, str] | None:
        """The one way an agent is called: phone, client or sip."""
        given = [key for key in ADDRESSES if key in body]
        if not given:
            self.error(where, f"agent {name!r} has no address: give one of phone, client or sip")
            return None
        if len(given) > 1:
            both = ", ".join(given)
            self.error((*where, given[1]), f"agent {name!r} has more than one address ({both})")
            return None
        key = given[0]
        pattern, expected = ADDRESSES[key]
        message = f"`{key}` must be {expected}, got {body[key]!r}"
        value = self.matching((*where, key), body[key], pattern, message)
        return None if value is None else {key: value}
