"""The sample roster answers around the clock, every day; its only gaps are explained holidays."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ivr.pools import load_pools
from routing.calendar import Calendar
from routing.coverage import gaps, serving, why_closed
from routing.model import Pool, Pools
from tests.conftest import SAMPLE_FLOWS

YEAR = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def sample() -> Pools:
    pools, problems = load_pools(SAMPLE_FLOWS / "pools.yaml")
    assert pools is not None, problems
    return pools


def without_days_off(pools: Pools) -> Pools:
    return Pools(tuple(replace(pool, calendar=Calendar()) for pool in pools))


def explained(pool: Pool, start: datetime, end: datetime) -> str | None:
    """The holiday or closure of `pool` that falls within [start, end), if any."""
    zone = pool.zone
    day = start.astimezone(zone).date() - timedelta(days=1)  # a night shift starts the day before
    while day <= end.astimezone(zone).date():
        name = pool.calendar.holiday(day)
        if name is not None:
            return f"{pool.name}: {name}"
        day += timedelta(days=1)
    local_start = start.astimezone(zone).replace(tzinfo=None)
    local_end = end.astimezone(zone).replace(tzinfo=None)
    for span in pool.calendar.closures:
        if span.start < local_end and local_start < span.end:
            return f"{pool.name}: closed {span.label()}"
    return None


@pytest.mark.parametrize("queue", ["billing", "tech"])
def test_without_days_off_the_roster_has_no_gap_all_year(sample: Pools, queue: str) -> None:
    assert gaps(without_days_off(sample), queue, None, *YEAR) == []


@pytest.mark.parametrize("queue", ["billing", "tech"])
def test_every_gap_is_a_weekday_holiday_of_a_pool(sample: Pools, queue: str) -> None:
    found = gaps(sample, queue, None, *YEAR)
    assert found, "the sample keeps its public holidays"
    for start, end in found:
        assert start.weekday() < 5, f"{start}: the on-call pool covers weekends"
        reasons = [r for pool in sample if (r := explained(pool, start, end)) is not None]
        assert reasons, f"gap {start} to {end} has no holiday behind it"
        # ... and the product says which: `ivr coverage` prints why each pool is closed.
        said = [why for _, why in why_closed(serving(sample, queue), queue, start)]
        assert any(why.startswith(("holiday, ", "closed ")) for why in said), (start, said)


def test_the_weekend_is_covered_by_the_on_call_pool(sample: Pools) -> None:
    saturday, monday = datetime(2026, 7, 4, tzinfo=UTC), datetime(2026, 7, 6, tzinfo=UTC)
    weekday_pools = Pools(tuple(p for p in sample if p.name != "oncall"))
    assert gaps(sample, "billing", None, saturday, monday) == []
    assert gaps(weekday_pools, "billing", None, saturday, monday) != []
