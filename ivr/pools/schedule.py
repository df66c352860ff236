"""The shifts and holidays of a pool in pools.yaml, read with located problems."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date as Date
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ivr.yamlsource import Path as Where
from routing.calendar import Calendar, WallSpan, calendar_problem
from routing.model import DAY_NAMES, MINUTES_PER_DAY, Shift, overlapping

if TYPE_CHECKING:
    from ivr.pools.reader import PoolsReader

T = TypeVar("T")

CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
WALL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}$")
SHIFT_KEYS = ("days", "from", "to")
HOLIDAY_KEYS = ("country", "subdivision", "dates", "closed", "open")
FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAYS = {n.lower(): i for names in (DAY_NAMES, FULL_DAY_NAMES) for i, n in enumerate(names)}


def shifts(reader: PoolsReader, value: Any, where: Where) -> tuple[Shift, ...]:
    """A pool's shifts; overlapping ones are warned about."""
    found: list[tuple[int, Shift]] = []
    for i, raw in enumerate(reader.items(value, where, "shifts")):
        at: Where = (*where, i)
        body = reader.mapping(raw, at, "a shift")
        reader.unknown_keys(body, at, SHIFT_KEYS)
        missing = [key for key in SHIFT_KEYS if key not in body]
        if missing or not body:
            reader.error(at, "a shift needs `days`, `from` and `to`")
            continue
        weekdays = _days(reader, body["days"], (*at, "days"))
        start = _clock(reader, body["from"], (*at, "from"), midnight_after=False)
        end = _clock(reader, body["to"], (*at, "to"), midnight_after=True)
        # Compared as minutes, so "00:00" to "24:00" is a whole day, not an empty shift.
        if start is not None and end is not None and start == end:
            reader.error((*at, "to"), "a shift cannot end when it starts (`from` equals `to`)")
        elif weekdays and start is not None and end is not None:
            found.append((i, Shift(weekdays, start, end)))
    _overlaps(reader, found, where)
    return tuple(shift for _, shift in found)


def _days(reader: PoolsReader, value: Any, where: Where) -> frozenset[int]:
    spec = value if isinstance(value, list) else [value]
    found: set[int] = set()
    if not spec:
        reader.error(where, "`days` lists no day")
    for i, item in enumerate(spec):
        at = (*where, i) if isinstance(value, list) else where
        text = item.strip().lower() if isinstance(item, str) else ""
        if text in ("daily", "all"):
            found.update(range(7))
            continue
        first, _, last = text.partition("-")
        if first in WEEKDAYS and (not last or last in WEEKDAYS):
            start, stop = WEEKDAYS[first], WEEKDAYS[last or first]
            found.update((start + k) % 7 for k in range((stop - start) % 7 + 1))
        else:
            reader.error(
                at, f"bad days {item!r}: use a day (sat), a range (mon-fri), daily, or a list"
            )
    return frozenset(found)


def _clock(reader: PoolsReader, value: Any, where: Where, *, midnight_after: bool) -> int | None:
    match = CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        reader.error(where, f'a time must be "HH:MM" in quotes, e.g. "08:00"; got {value!r}')
        return None
    hours, minutes = int(match[1]), int(match[2])
    if midnight_after and (hours, minutes) == (24, 0):
        return MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        later = ' ("24:00" is allowed only in `to`)' if hours == 24 else ""
        reader.error(where, f"{value!r} is not a time of day{later}")
        return None
    return hours * 60 + minutes


def _overlaps(reader: PoolsReader, found: list[tuple[int, Shift]], where: Where) -> None:
    index = [i for i, _ in found]
    for first, second in overlapping([shift for _, shift in found]):
        message = f"this shift overlaps shift {index[first] + 1} of the same pool"
        reader.warn((*where, index[second]), message)


def calendar(reader: PoolsReader, value: Any, where: Where) -> Calendar:
    """A pool's `holidays`: public holidays of a country, dates, closures and openings."""
    if value is None:
        return Calendar()
    body = reader.mapping(value, where, "`holidays`")
    reader.unknown_keys(body, where, HOLIDAY_KEYS)
    country = body.get("country")
    subdivision = body.get("subdivision")
    subdivision = str(subdivision) if subdivision is not None else None
    if country is not None and not isinstance(country, str):
        reader.error((*where, "country"), f"`country` must be a code such as VN, got {country!r}")
        country = None
    elif country is not None:
        problem = calendar_problem(country, subdivision)
        if problem is not None:
            key = "country" if calendar_problem(country, None) else "subdivision"
            reader.error((*where, key), problem)
            country = None
    if subdivision is not None and "country" not in body:
        reader.error((*where, "subdivision"), "`subdivision` needs a `country`")
    dates: set[Date] = set()
    for i, item in enumerate(reader.items(body.get("dates", []), (*where, "dates"), "dates")):
        day = _date(reader, item, (*where, "dates", i))
        dates.update([day] if day else [])
    return Calendar(
        country=country,
        subdivision=subdivision if country else None,
        dates=frozenset(dates),
        closures=_wall_spans(reader, body.get("closed", []), (*where, "closed")),
        openings=_wall_spans(reader, body.get("open", []), (*where, "open")),
    )


def _date(reader: PoolsReader, value: Any, where: Where) -> Date | None:
    message = f"a date must be written YYYY-MM-DD, got {value!r}"
    return _written(reader, value, where, DATE, Date.fromisoformat, message)


def _wall_spans(reader: PoolsReader, value: Any, where: Where) -> tuple[WallSpan, ...]:
    found: list[WallSpan] = []
    for i, raw in enumerate(reader.items(value, where, str(where[-1]))):
        at: Where = (*where, i)
        body = reader.mapping(raw, at, "a closed or open entry")
        reader.unknown_keys(body, at, ("from", "to"))
        start, end = (_wall_time(reader, body.get(key), (*at, key)) for key in ("from", "to"))
        if start is not None and end is not None:
            if end <= start:
                reader.error((*at, "to"), "`to` must come after `from`")
            else:
                found.append(WallSpan(start, end))
    return tuple(found)


def _wall_time(reader: PoolsReader, value: Any, where: Where) -> datetime | None:
    message = f'a wall time must be written "YYYY-MM-DD HH:MM", got {value!r}'
    return _written(reader, value, where, WALL_TIME, datetime.fromisoformat, message)


def _written(
    reader: PoolsReader,
    value: Any,
    where: Where,
    shape: re.Pattern[str],
    parse: Callable[[str], T],
    message: str,
) -> T | None:
    """`value` parsed, when it is text of that shape that parses, else None and `message`."""
    try:
        if isinstance(value, str) and shape.match(value):
            return parse(value)
    except ValueError:  # the right shape, but no such day or time, such as 2026-02-30
        pass
    reader.error(where, message)
    return None
