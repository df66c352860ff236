"""The agent pools of `pools.yaml`, validated into routing's frozen values with located problems.

Beyond the keys of the contract, a pool may have:
- `caller_id`: the E.164 number agents see calling them;
- under `holidays`: `subdivision` (a state or region code of the `holidays` package, with
  `country`), `closed: [{from: "2026-12-24 14:00", to: "2026-12-26 00:00"}]` cutting time out of
  the shifts, and `open: [{from: "2027-01-01 09:00", to: "2027-01-01 13:00"}]` adding on-shift time
  even on a holiday or in a closure — both in the pool's wall-clock time, `to` excluded.
An agent may have `languages` and an `id` (by default the name, lower-cased, spaces as `-`): agent
presence is kept under the id, so the same person in two pools shares one presence.
`days` is a day (`sat`), a range (`mon-fri`, wrapping as in `fri-mon`), `daily` or `all`, or a list
of those. Times are quoted "HH:MM"; `to` may be "24:00", the next midnight.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ivr.config import E164, LANGUAGE_TAG, closest
from ivr.errors import Problem
from ivr.yamlsource import Path as Where
from ivr.yamlsource import Source, parse
from routing.calendar import Calendar, WallSpan, calendar_problem
from routing.model import (
    DAY_NAMES,
    DEFAULT_PRIORITY,
    DEFAULT_RING_SECONDS,
    MINUTES_PER_DAY,
    STRATEGIES,
    Agent,
    Pool,
    Pools,
    Shift,
    overlapping,
)

SIP_URI = re.compile(r"^sips?:[^\s@:;]+@[A-Za-z0-9.-]+(:\d{1,5})?(;\S*)?$")
CLIENT = re.compile(r"^[A-Za-z0-9_.@-]{1,256}$")
LANGUAGE = LANGUAGE_TAG
CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_RING_SECONDS = 600  # Twilio's longest Dial timeout

POOL_KEYS: tuple[str, ...] = ("timezone", "queues", "languages", "priority", "shifts")
POOL_KEYS += ("holidays", "strategy", "ring_seconds", "agents", "caller_id")
SHIFT_KEYS = ("days", "from", "to")
HOLIDAY_KEYS = ("country", "subdivision", "dates", "closed", "open")
AGENT_KEYS = ("name", "id", "phone", "client", "sip", "languages")
ADDRESS_KEYS = ("phone", "client", "sip")
FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAYS = {n.lower(): i for names in (DAY_NAMES, FULL_DAY_NAMES) for i, n in enumerate(names)}


def load_pools(path: Path) -> tuple[Pools | None, list[Problem]]:
    """Read and validate a pools file; the pools are None when any problem is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), 1, 1, f"cannot read the pools: {exc}")]
    source, problems = parse(text, str(path))
    if source is None:
        return None, problems
    pools, found = parse_pools(source)
    problems += found
    return (None if _has_errors(problems) else pools), problems


def parse_pools(source: Source) -> tuple[Pools | None, list[Problem]]:
    """Validate parsed `pools.yaml`; the pools are None when any problem is an error."""
    reader = _Reader(source)
    pools = reader.document()
    return (None if _has_errors(reader.problems) else pools), reader.problems


def unserved_queues(pools: Pools, queues: Iterable[str]) -> set[str]:
    """The queues among `queues` that no pool serves."""
    return set(queues) - pools.queues()


def _has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


class _Reader:
    """Walks the parsed document, building values and collecting every problem on the way."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def error(self, where: Where, message: str) -> None:
        self.problems.append(self.source.problem(where, message))

    def warn(self, where: Where, message: str) -> None:
        self.problems.append(self.source.problem(where, message, "warning"))

    def document(self) -> Pools:
        data = self.source.data
        if not isinstance(data, dict) or "pools" not in data:
            self.error((), "expected `pools:` with one entry per agent pool")
            return Pools()
        self.known_keys(data, (), ("pools",))
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

    def known_keys(self, body: dict[str, Any], where: Where, allowed: tuple[str, ...]) -> None:
        for key in body:
            if key not in allowed:
                hint = closest(key, allowed)
                also = f"; did you mean {hint!r}?" if hint else f" (known: {', '.join(allowed)})"
                self.error((*where, key), f"unknown key {key!r}{also}")

    def mapping(self, value: Any, where: Where, what: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.error(where, f"{what} must be a mapping of keys to values")
        return {}

    def items(self, value: Any, where: Where, what: str) -> list[Any]:
        if isinstance(value, list):
            return value
        self.error(where, f"`{what}` must be a list")
        return []

    def text(self, value: Any, where: Where, what: str) -> str | None:
        if isinstance(value, str) and value.strip():
            return value.strip()
        self.error(where, f"{what} must be a non-empty string, got {value!r}")
        return None

    def tags(self, value: Any, where: Where) -> tuple[str, ...]:
        found: list[str] = []
        for i, item in enumerate(self.items(value, where, "languages")):
            tag = self.text(item, (*where, i), "a language")
            if tag is not None and not LANGUAGE.match(tag):
                self.error((*where, i), f"{tag!r} is not a language tag such as en-US or vi-VN")
            elif tag is not None:
                found.append(tag)
        return tuple(found)

    def whole(self, body: dict[str, Any], key: str, where: Where, default: int) -> int:
        value = body.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.error((*where, key), f"`{key}` must be a whole number, got {value!r}")
        return default

    def pool(self, name: str, raw: Any, order: int) -> Pool:
        where: Where = ("pools", name)
        body = self.mapping(raw, where, f"pool {name!r}")
        self.known_keys(body, where, POOL_KEYS)
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
        if caller_id is not None and not (isinstance(caller_id, str) and E164.match(caller_id)):
            self.error(
                (*where, "caller_id"),
                f"`caller_id` must be an E.164 number such as +15005550006, got {caller_id!r}",
            )
            caller_id = None
        shifts = self.shifts(body.get("shifts", []), (*where, "shifts"))
        calendar = self.calendar(body.get("holidays"), (*where, "holidays"))
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
        if isinstance(value, str):
            try:
                zoneinfo.ZoneInfo(value)
                return value
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                pass
        hint = closest(str(value), zoneinfo.available_timezones(), 0.85)
        also = f"; did you mean {hint}?" if hint else ""
        self.error(
            where, f"unknown time zone {value!r} (an IANA name such as Asia/Ho_Chi_Minh){also}"
        )
        return "UTC"

    def shifts(self, value: Any, where: Where) -> tuple[Shift, ...]:
        found: list[tuple[int, Shift]] = []
        for i, raw in enumerate(self.items(value, where, "shifts")):
            at: Where = (*where, i)
            body = self.mapping(raw, at, "a shift")
            self.known_keys(body, at, SHIFT_KEYS)
            missing = [key for key in SHIFT_KEYS if key not in body]
            if missing or not body:
                self.error(at, "a shift needs `days`, `from` and `to`")
                continue
            days = self.days(body["days"], (*at, "days"))
            start = self.clock(body["from"], (*at, "from"), midnight_after=False)
            end = self.clock(body["to"], (*at, "to"), midnight_after=True)
            # Compared as minutes, so "00:00" to "24:00" is a whole day, not an empty shift.
            if start is not None and end is not None and start == end:
                self.error((*at, "to"), "a shift cannot end when it starts (`from` equals `to`)")
            elif days and start is not None and end is not None:
                found.append((i, Shift(days, start, end)))
        self.overlaps(found, where)
        return tuple(shift for _, shift in found)

    def days(self, value: Any, where: Where) -> frozenset[int]:
        spec = value if isinstance(value, list) else [value]
        days: set[int] = set()
        if not spec:
            self.error(where, "`days` lists no day")
        for i, item in enumerate(spec):
            at = (*where, i) if isinstance(value, list) else where
            text = item.strip().lower() if isinstance(item, str) else ""
            if text in ("daily", "all"):
                days.update(range(7))
                continue
            first, _, last = text.partition("-")
            if first in WEEKDAYS and (not last or last in WEEKDAYS):
                start, stop = WEEKDAYS[first], WEEKDAYS[last or first]
                days.update((start + k) % 7 for k in range((stop - start) % 7 + 1))
            else:
                self.error(
                    at, f"bad days {item!r}: use a day (sat), a range (mon-fri), daily, or a list"
                )
        return frozenset(days)

    def clock(self, value: Any, where: Where, *, midnight_after: bool) -> int | None:
        match = CLOCK.match(value) if isinstance(value, str) else None
        if match is None:
            self.error(where, f'a time must be "HH:MM" in quotes, e.g. "08:00"; got {value!r}')
            return None
        hours, minutes = int(match[1]), int(match[2])
        if midnight_after and (hours, minutes) == (24, 0):
            return MINUTES_PER_DAY
        if hours > 23 or minutes > 59:
            later = ' ("24:00" is allowed only in `to`)' if hours == 24 else ""
            self.error(where, f"{value!r} is not a time of day{later}")
            return None
        return hours * 60 + minutes

    def overlaps(self, found: list[tuple[int, Shift]], where: Where) -> None:
        index = [i for i, _ in found]
        for first, second in overlapping([shift for _, shift in found]):
            message = f"this shift overlaps shift {index[first] + 1} of the same pool"
            self.warn((*where, index[second]), message)

    def calendar(self, value: Any, where: Where) -> Calendar:
        if value is None:
            return Calendar()
        body = self.mapping(value, where, "`holidays`")
        self.known_keys(body, where, HOLIDAY_KEYS)
        country = body.get("country")
        subdivision = body.get("subdivision")
        subdivision = str(subdivision) if subdivision is not None else None
        if country is not None and not isinstance(country, str):
            self.error((*where, "country"), f"`country` must be a code such as VN, got {country!r}")
            country = None
        elif country is not None:
            problem = calendar_problem(country, subdivision)
            if problem is not None:
                key = "country" if calendar_problem(country, None) else "subdivision"
                self.error((*where, key), problem)
                country = None
        if subdivision is not None and "country" not in body:
            self.error((*where, "subdivision"), "`subdivision` needs a `country`")
        dates: set[date] = set()
        for i, item in enumerate(self.items(body.get("dates", []), (*where, "dates"), "dates")):
            day = self.date(item, (*where, "dates", i))
            dates.update([day] if day else [])
        return Calendar(
            country=country,
            subdivision=subdivision if country else None,
            dates=frozenset(dates),
            closures=self.wall_spans(body.get("closed", []), (*where, "closed")),
            openings=self.wall_spans(body.get("open", []), (*where, "open")),
        )

    def date(self, value: Any, where: Where) -> date | None:
        try:
            if isinstance(value, str) and DATE.match(value):
                return date.fromisoformat(value)
        except ValueError:
            pass
        self.error(where, f"a date must be written YYYY-MM-DD, got {value!r}")
        return None

    def wall_spans(self, value: Any, where: Where) -> tuple[WallSpan, ...]:
        found: list[WallSpan] = []
        for i, raw in enumerate(self.items(value, where, str(where[-1]))):
            at: Where = (*where, i)
            body = self.mapping(raw, at, "a closed or open entry")
            self.known_keys(body, at, ("from", "to"))
            start, end = (self.wall_time(body.get(key), (*at, key)) for key in ("from", "to"))
            if start is not None and end is not None:
                if end <= start:
                    self.error((*at, "to"), "`to` must come after `from`")
                else:
                    found.append(WallSpan(start, end))
        return tuple(found)

    def wall_time(self, value: Any, where: Where) -> datetime | None:
        try:
            if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}$", value):
                return datetime.fromisoformat(value)
        except ValueError:
            pass
        self.error(where, f'a wall time must be written "YYYY-MM-DD HH:MM", got {value!r}')
        return None

    def agents(self, value: Any, where: Where, pool: str) -> tuple[Agent, ...]:
        found: list[Agent] = []
        names: set[str] = set()
        ids: set[str] = set()
        entries = self.items(value, where, "agents")
        if isinstance(value, list) and not entries:
            self.error(where, f"pool {pool!r} has no agents")
        for i, raw in enumerate(entries):
            at: Where = (*where, i)
            body = self.mapping(raw, at, "an agent")
            self.known_keys(body, at, AGENT_KEYS)
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
                found.append(Agent(agent_id, name, languages=languages, **address))
        return tuple(found)

    def address(self, body: dict[str, Any], where: Where, name: str) -> dict[str, str] | None:
        given = [key for key in ADDRESS_KEYS if key in body]
        if not given:
            self.error(where, f"agent {name!r} has no address: give one of phone, client or sip")
            return None
        if len(given) > 1:
            both = ", ".join(given)
            self.error((*where, given[1]), f"agent {name!r} has more than one address ({both})")
            return None
        key = given[0]
        value = body[key]
        checks = {
            "phone": (E164, "an E.164 number such as +84901234567"),
            "client": (CLIENT, "a Twilio Client identity (letters, digits, _ . @ -)"),
            "sip": (SIP_URI, "a SIP URI such as sip:desk@pbx.example.com"),
        }
        pattern, expected = checks[key]
        if not isinstance(value, str) or not pattern.match(value):
            self.error((*where, key), f"`{key}` must be {expected}, got {value!r}")
            return None
        return {key: value}
