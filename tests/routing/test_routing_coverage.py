"""Coverage gaps: exact across clock changes, clipped to the window, maximal; and their drawing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from routing.coverage import gaps, serving
from routing.model import Agent, Pool, Pools, Shift
from routing.svg import CHAR_WIDTH, TOP, render

EVERY_DAY = frozenset(range(7))
SVG = "{http://www.w3.org/2000/svg}"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def pool(name: str, zone: str, starts: int, ends: int, *, languages: tuple[str, ...] = ()) -> Pool:
    return Pool(
        name=name,
        timezone=zone,
        queues=("q",),
        languages=languages,
        shifts=(Shift(EVERY_DAY, starts * 60, ends * 60),),
        agents=(Agent("a", "A", phone="+15005550006"),),
    )


LONDON = pool("london", "Europe/London", 9, 17, languages=("en-GB",))
NEW_YORK = pool("new-york", "America/New_York", 9, 17, languages=("en-US",))


def test_gaps_follow_each_zone_across_its_clock_change() -> None:
    # New York moves its clocks on Sunday 8 March 2026; London not until the 29th.
    found = gaps(Pools((LONDON, NEW_YORK)), "q", None, utc(2026, 3, 7), utc(2026, 3, 10))

    assert found == [
        (utc(2026, 3, 7), utc(2026, 3, 7, 9)),
        (utc(2026, 3, 7, 22), utc(2026, 3, 8, 9)),  # New York worked until 17:00 EST
        (utc(2026, 3, 8, 21), utc(2026, 3, 9, 9)),  # and now until 17:00 EDT
        (utc(2026, 3, 9, 21), utc(2026, 3, 10)),
    ]


def test_gaps_are_clipped_to_the_window() -> None:
    found = gaps(Pools((LONDON,)), "q", None, utc(2026, 1, 5, 12, 30), utc(2026, 1, 6, 10, 15))

    assert found == [(utc(2026, 1, 5, 17), utc(2026, 1, 6, 9))]
    assert gaps(Pools((LONDON,)), "q", None, utc(2026, 1, 5, 10), utc(2026, 1, 5, 11)) == []
    assert gaps(Pools((LONDON,)), "q", None, utc(2026, 1, 5, 20), utc(2026, 1, 5, 21)) == [
        (utc(2026, 1, 5, 20), utc(2026, 1, 5, 21))
    ]


def test_gaps_are_maximal_when_pools_hand_over() -> None:
    morning = pool("morning", "UTC", 0, 12)
    afternoon = pool("afternoon", "UTC", 12, 18)
    evening = pool("evening", "UTC", 17, 23)

    found = gaps(Pools((morning, afternoon, evening)), "q", None, utc(2026, 1, 1), utc(2026, 1, 3))

    assert found == [(utc(2026, 1, 1, 23), utc(2026, 1, 2)), (utc(2026, 1, 2, 23), utc(2026, 1, 3))]


def test_only_pools_serving_the_queue_in_the_language_count() -> None:
    pools = Pools((LONDON, NEW_YORK))

    assert serving(pools, "q", "en-US") == (NEW_YORK,)
    assert serving(pools, "other") == ()
    assert gaps(pools, "q", "en-US", utc(2026, 1, 5), utc(2026, 1, 6)) == [
        (utc(2026, 1, 5), utc(2026, 1, 5, 14)),
        (utc(2026, 1, 5, 22), utc(2026, 1, 6)),
    ]
    assert gaps(pools, "other", None, utc(2026, 1, 5), utc(2026, 1, 6)) == [
        (utc(2026, 1, 5), utc(2026, 1, 6))
    ]


def test_a_pool_whose_agents_take_no_callers_of_the_language_does_not_count() -> None:
    english_only = Agent("b", "B", phone="+15005550007", languages=("en-US",))
    bilingual = replace(NEW_YORK, languages=("en-US", "es-US"), agents=(english_only,))
    pools = Pools((bilingual,))

    assert serving(pools, "q", "es-US") == ()
    assert gaps(pools, "q", "es-US", utc(2026, 1, 5), utc(2026, 1, 6)) == [
        (utc(2026, 1, 5), utc(2026, 1, 6))
    ]
    assert serving(pools, "q", "en-US") == (bilingual,)


def test_empty_and_naive_windows() -> None:
    pools = Pools((LONDON,))

    assert gaps(pools, "q", None, utc(2026, 1, 6), utc(2026, 1, 5)) == []
    with pytest.raises(ValueError, match="time zone"):
        gaps(pools, "q", None, datetime(2026, 1, 5), utc(2026, 1, 6))


def test_the_drawing_has_a_row_per_pool_bars_for_shifts_and_the_gaps_marked() -> None:
    text = render((LONDON, NEW_YORK), utc(2026, 3, 7), utc(2026, 3, 10), "Queue q & co")

    root = ET.fromstring(text)
    labels = [t.text for t in root.iter(f"{SVG}text")]
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    tips = [r.findtext(f"{SVG}title") or "" for r in bars]
    assert root.findtext(f"{SVG}title") == "Queue q & co"
    assert "london (Europe/London)" in labels and "new-york (America/New_York)" in labels
    assert sum(tip.startswith("london:") for tip in tips) == 3
    assert sum(tip.startswith("new-york:") for tip in tips) == 3
    assert sum(tip.startswith("gap ") for tip in tips) == 4
    assert "new-york: Sun 09:00 to Sun 17:00 America/New_York (13:00 to 21:00 UTC)" in tips


@pytest.mark.parametrize("days", [1, 3, 7])
def test_the_time_axis_labels_never_overlap(days: int) -> None:
    start = utc(2026, 11, 30)
    root = ET.fromstring(render((LONDON,), start, start + timedelta(days=days), "q"))
    axis = [t for t in root.iter(f"{SVG}text") if t.get("y") == str(TOP - 18)]
    texts = [t.text or "" for t in axis]
    assert texts.count("Mon 11-30") == 1 and sum(t.endswith("h") for t in texts) >= days
    assert sum(" " in t for t in texts) == days  # every day keeps its label
    xs = [float(t.get("x") or 0) for t in axis]
    for (left, text), right in zip(zip(xs, texts, strict=True), xs[1:], strict=False):
        assert right >= left + CHAR_WIDTH * len(text), (text, left, right)
    if days == 1:  # room for every six hours
        assert texts == ["Mon 11-30", "06h", "12h", "18h"]
