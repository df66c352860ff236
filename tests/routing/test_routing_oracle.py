"""Routing checked against a brute-force oracle written straight from the contract.

The oracle finds where a shift starts and ends by walking UTC minute by minute until the pool's wall
clock shows the wanted time or later (real-world clock changes happen on whole minutes), and decides
by testing every pool at the instant. Instants are drawn near clock changes on purpose.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from typing import NamedTuple
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.calendar import Calendar, WallSpan
from routing.coverage import gaps
from routing.decide import AROUND_DAYS, DAY, Away, _around, _why_not, decide, why_not
from routing.model import Agent, Pool, Pools, Shift
from routing.shifts import span_seconds, spans

ZONES = (
    "Australia/Lord_Howe",
    "America/New_York",
    "Europe/London",
    "Asia/Ho_Chi_Minh",
    "Africa/Cairo",
    "Asia/Riyadh",
    "Australia/Sydney",
)
EPOCH = datetime(1970, 1, 1)
FIRST_YEAR, LAST_YEAR = 2025, 2027


# ---- the oracle ------------------------------------------------------------------------------


def wall_at_minute(minute: int, zone: str) -> datetime:
    return datetime.fromtimestamp(minute * 60, ZoneInfo(zone)).replace(tzinfo=None)


@cache
def first_minute_showing(zone: str, wall: datetime) -> int:
    """The first UTC minute at which the clock in `zone` shows `wall` or later."""
    # Start a little before: the wall time read with a nearby offset, two hours early.
    guess = wall - (ZoneInfo(zone).utcoffset(wall) or timedelta()) - timedelta(hours=2)
    minute = int((guess - EPOCH).total_seconds()) // 60
    while wall_at_minute(minute, zone) >= wall:
        minute -= 60
    while wall_at_minute(minute, zone) < wall:
        minute += 1
    return minute


def oracle_shift_bounds(zone: str, shift: Shift, day: date) -> tuple[int, int]:
    """Seconds since the epoch at which the shift of `day` starts and ends."""
    start_wall = datetime.combine(day, time(shift.start_minute // 60, shift.start_minute % 60))
    end_day = day + timedelta(days=1) if shift.end_minute <= shift.start_minute else day
    end_minute = shift.end_minute
    if end_minute == 24 * 60:
        end_day, end_minute = day + timedelta(days=1), 0
    end_wall = datetime.combine(end_day, time(end_minute // 60, end_minute % 60))
    return first_minute_showing(zone, start_wall) * 60, first_minute_showing(zone, end_wall) * 60


def oracle_in_wall_span(zone: str, span: WallSpan, instant: float) -> bool:
    begin = first_minute_showing(zone, span.start) * 60
    return begin <= instant < first_minute_showing(zone, span.end) * 60


def oracle_on_shift(pool: Pool, instant: float) -> bool:
    utc_day = datetime.fromtimestamp(instant, UTC).date()
    shifted = False
    for offset in range(-3, 2):
        day = utc_day + timedelta(days=offset)
        if day in pool.calendar.dates:
            continue
        for shift in pool.shifts:
            if day.weekday() in shift.days:
                begin, end = oracle_shift_bounds(pool.timezone, shift, day)
                shifted = shifted or begin <= instant < end
    closed = any(oracle_in_wall_span(pool.timezone, c, instant) for c in pool.calendar.closures)
    opened = any(oracle_in_wall_span(pool.timezone, o, instant) for o in pool.calendar.openings)
    return (shifted and not closed) or opened


def oracle_decide(
    pools: list[Pool], queue: str, language: str | None, instant: float, away: set[str]
) -> list[tuple[str, list[str]]]:
    found = []
    for pool in pools:
        agents = [
            a.id
            for a in pool.agents
            if a.id not in away and (language is None or not a.languages or language in a.languages)
        ]
        if queue in pool.queues and agents and oracle_on_shift(pool, instant):
            speaks = language is not None and language in pool.languages
            found.append(((not speaks, pool.priority, pool.order), pool.name, agents))
    return [(name, agents) for _, name, agents in sorted(found)]


# ---- instants near clock changes --------------------------------------------------------------


def clock_changes(zone: str) -> list[int]:
    """Every minute (UTC, since the epoch) at which `zone` changes its offset."""
    changes = []
    hour = int((datetime(FIRST_YEAR, 1, 1) - EPOCH).total_seconds()) // 3600
    last = int((datetime(LAST_YEAR + 1, 1, 1) - EPOCH).total_seconds()) // 3600
    tz = ZoneInfo(zone)

    def offset(minute: int) -> timedelta | None:
        return datetime.fromtimestamp(minute * 60, tz).utcoffset()

    while hour < last:
        if offset(hour * 60) != offset((hour + 1) * 60):
            minute = hour * 60
            while offset(minute) == offset(hour * 60):
                minute += 1
            changes.append(minute)
        hour += 1
    return changes


CHANGES = {zone: clock_changes(zone) for zone in ZONES}
ALL_CHANGES = sorted({minute for found in CHANGES.values() for minute in found})
YEAR_SECONDS = (
    int((datetime(FIRST_YEAR, 1, 1) - EPOCH).total_seconds()),
    int((datetime(LAST_YEAR, 12, 31) - EPOCH).total_seconds()),
)


def minute_of_day(minute: int, zone: str) -> int:
    wall = wall_at_minute(minute, zone)
    return wall.hour * 60 + wall.minute


# Local times around each zone's clock changes (just before, inside the skipped or repeated
# stretch, just after) and around midnight, where mistakes hide.
CHANGE_MINUTES = {
    zone: sorted(
        {
            (minute_of_day(change + step, zone) + extra) % (24 * 60)
            for change in CHANGES[zone]
            for step in (-1, 0)
            for extra in (0, 1, 15, 30, 59)
        }
    )
    for zone in ZONES
}
MIDNIGHT_MINUTES = [0, 1, 30, 59, 60, 1380, 1410, 1439]


class Scenario(NamedTuple):
    zone: str
    near: float  # seconds since the epoch
    change_day: date | None  # the local day of the clock change `near` is close to, if any


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A zone and an instant, mostly within 20 hours of one of the zone's clock changes."""
    zone = draw(st.sampled_from(ZONES))
    if not CHANGES[zone] or draw(st.integers(0, 5)) == 0:
        return Scenario(zone, float(draw(st.integers(*YEAR_SECONDS))), None)
    change = draw(st.sampled_from(CHANGES[zone]))
    offset = draw(st.one_of(st.integers(-120, 120), st.integers(-20 * 3600, 20 * 3600)))
    return Scenario(zone, float(change * 60 + offset), wall_at_minute(change - 1, zone).date())


def minutes_of_day(zone: str, lowest: int, highest: int) -> st.SearchStrategy[int]:
    near_change = [m for m in CHANGE_MINUTES[zone] if lowest <= m <= highest]
    near_midnight = [m for m in MIDNIGHT_MINUTES if lowest <= m <= highest]
    return st.one_of(
        *([st.sampled_from(near_change)] * 2 if near_change else []),
        st.sampled_from(near_midnight),
        st.integers(lowest, highest),
    )


@st.composite
def shifts(draw: st.DrawFn, zone: str, change_day: date | None) -> Shift:
    days = set(draw(st.frozensets(st.integers(0, 6), min_size=1)))
    if change_day is not None and draw(st.booleans()):
        # Make the shift run on the day of the change, or start the evening before.
        days.add((change_day.weekday() - draw(st.sampled_from((0, 0, 1)))) % 7)
    start = draw(minutes_of_day(zone, 0, 24 * 60 - 1))
    end = draw(minutes_of_day(zone, 1, 24 * 60).filter(lambda m: m % (24 * 60) != start))
    return Shift(frozenset(days), start, end)


@st.composite
def wall_spans(draw: st.DrawFn, scenario: Scenario, zone: str) -> WallSpan:
    near_day = datetime.fromtimestamp(scenario.near, UTC).date()
    day = near_day + timedelta(days=draw(st.integers(-2, 1)))
    start = datetime.combine(day, time()) + timedelta(minutes=draw(minutes_of_day(zone, 0, 1439)))
    return WallSpan(start, start + timedelta(minutes=draw(st.integers(1, 36 * 60))))


# Most agents take any caller; some list the languages they take.
AGENT_LANGUAGES = st.sampled_from(
    ((), (), (), ("en-US",), ("vi-VN",), ("en-US", "vi-VN"), ("ar-XA",))
)


@st.composite
def pools(draw: st.DrawFn, scenario: Scenario, count: int) -> list[Pool]:
    """Pools (the first in the scenario's zone) with shifts, days off and closures near it."""
    found = []
    near_day = datetime.fromtimestamp(scenario.near, UTC).date()
    for order in range(count):
        zone = scenario.zone if order == 0 else draw(st.sampled_from(ZONES))
        change_day = scenario.change_day if zone == scenario.zone else None
        nearby_days = st.integers(-3, 1).map(lambda d: near_day + timedelta(days=d))
        calendar = Calendar(
            dates=draw(st.frozensets(nearby_days, max_size=2)),
            closures=tuple(draw(st.lists(wall_spans(scenario, zone), max_size=1))),
            openings=tuple(draw(st.lists(wall_spans(scenario, zone), max_size=1))),
        )
        found.append(
            Pool(
                name=f"p{order}",
                timezone=zone,
                queues=tuple(draw(st.sets(st.sampled_from("ab"), min_size=1))),
                languages=tuple(draw(st.sets(st.sampled_from(["en-US", "vi-VN"])))),
                priority=draw(st.sampled_from((1, 2, 100))),
                shifts=tuple(draw(st.lists(shifts(zone, change_day), min_size=1, max_size=3))),
                calendar=calendar,
                agents=tuple(
                    Agent(f"p{order}-{i}", f"Agent {i}", languages=draw(AGENT_LANGUAGES))
                    for i in range(draw(st.integers(1, 3)))
                ),
                order=order,
            )
        )
    return found


# ---- the properties ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decide_matches_the_oracle(data: st.DataObject) -> None:
    scenario = data.draw(scenarios())
    instant = scenario.near
    candidates = data.draw(pools(scenario, data.draw(st.integers(1, 5))))
    queue = data.draw(st.sampled_from("ab"))
    language = data.draw(st.sampled_from([None, "en-US", "vi-VN", "ar-XA"]))
    everyone = [a.id for p in candidates for a in p.agents]
    away = data.draw(st.sets(st.sampled_from(everyone)))

    as_set = data.draw(st.booleans())
    decision = decide(
        Pools(tuple(candidates)),
        queue,
        language,
        datetime.fromtimestamp(instant, UTC),
        Away(away) if as_set else lambda pool, agent: agent.id not in away,
    )

    found = [(c.pool.name, [a.id for a in c.agents]) for c in decision.pools]
    assert found == oracle_decide(candidates, queue, language, instant, away)
    assert (decision.pool.name if decision.pool else None) == (found[0][0] if found else None)
    for pool in (c.pool for c in decision.pools):
        takes = [
            a for a in pool.agents if language is None or not a.languages or language in a.languages
        ]
        expected = [
            (a.id, "speaks only " + ", ".join(a.languages)) for a in pool.agents if a not in takes
        ]
        expected += [(a.id, "away") for a in takes if a.id in away]
        assert sorted((s.agent.id, s.reason) for s in decision.skipped(pool)) == sorted(expected)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_why_not_from_the_days_spans_is_the_window_around_the_instant(data: st.DataObject) -> None:
    # why_not keeps each pool's spans by UTC day; cut to the instant's own window they must be
    # exactly the spans of that window, whatever the instant's time of day.
    scenario = data.draw(scenarios())
    pool = data.draw(pools(scenario, 1))[0]
    instant = scenario.near + data.draw(st.integers(0, DAY - 1))
    now = int(instant)
    window = (now - AROUND_DAYS * DAY, now + AROUND_DAYS * DAY)

    kept = [(max(s, window[0]), min(e, window[1])) for s, e in _around(pool, now // DAY)]

    assert [(s, e) for s, e in kept if s < e] == span_seconds(pool, *window)
    reason = why_not(pool, pool.queues[0], datetime.fromtimestamp(instant, UTC))
    assert (reason is None) == (oracle_on_shift(pool, instant) and bool(pool.agents)), reason
    # Kept for the minute: any other instant of it gets what it would have been told afresh.
    other = instant // 60 * 60 + data.draw(st.floats(0, 59.999))
    kept = why_not(pool, pool.queues[0], datetime.fromtimestamp(other, UTC))
    assert kept == _why_not(pool, other)[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_spans_match_the_oracle_minute_by_minute(data: st.DataObject) -> None:
    scenario = data.draw(scenarios())
    pool = data.draw(pools(scenario, 1))[0]
    start = int(scenario.near // 60) * 60 - 24 * 3600
    end = start + 2 * 24 * 3600

    found = spans(pool, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))

    edges = [moment.timestamp() for span in found for moment in span]
    assert all(edge % 60 == 0 for edge in edges), "clock changes and shifts are on whole minutes"
    assert edges == sorted(edges) and len(set(edges)) == len(edges), "sorted, merged, not touching"
    assert all(s < e for s, e in found)
    for minute in range(start, end, 60):
        inside = any(s.timestamp() <= minute < e.timestamp() for s, e in found)
        assert inside == oracle_on_shift(pool, minute), datetime.fromtimestamp(minute, UTC)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_gaps_are_the_minutes_no_pool_works(data: st.DataObject) -> None:
    scenario = data.draw(scenarios())
    candidates = data.draw(pools(scenario, data.draw(st.integers(1, 3))))
    candidates = [replace(p, queues=("a",)) for p in candidates]
    start = int(scenario.near // 60) * 60 - 12 * 3600
    end = start + 36 * 3600

    found = gaps(
        Pools(tuple(candidates)),
        "a",
        None,
        datetime.fromtimestamp(start, UTC),
        datetime.fromtimestamp(end, UTC),
    )

    for (_, previous_end), (next_start, _) in pairwise(found):
        assert previous_end < next_start, "gaps are maximal"
    for minute in range(start, end, 60):
        in_gap = any(s.timestamp() <= minute < e.timestamp() for s, e in found)
        assert in_gap == (not any(oracle_on_shift(p, minute) for p in candidates))
