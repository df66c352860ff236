"""Shifts as spans of real time across clock changes, midnight, holidays, closures and openings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from routing.calendar import Calendar, WallSpan
from routing.model import Pool, Shift
from routing.shifts import first_instant, spans

DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def shift(days: str, starts: str, ends: str) -> Shift:
    def minutes(clock: str) -> int:
        hours, minutes = clock.split(":")
        return int(hours) * 60 + int(minutes)

    chosen = range(7) if days == "daily" else [DAYS[d] for d in days.split(",")]
    return Shift(frozenset(chosen), minutes(starts), minutes(ends))


def pool(zone: str, *shifts: Shift, calendar: Calendar | None = None) -> Pool:
    return Pool("p", zone, ("q",), shifts=shifts, calendar=calendar or Calendar())


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def spans_between(p: Pool, first: date, last: date) -> list[tuple[datetime, datetime]]:
    start = datetime.combine(first, datetime.min.time(), UTC)
    return spans(p, start, datetime.combine(last, datetime.min.time(), UTC))


def length(span: tuple[datetime, datetime]) -> timedelta:
    return span[1] - span[0]


def wall(zone: str, day: date, hour: int, minute: int = 0, fold: int = 0) -> datetime:
    """The UTC instant of a wall-clock time; compared in UTC, as PEP 495 makes comparisons
    across zones of times in a repeated hour always unequal."""
    return datetime.combine(day, time(hour, minute, fold=fold), ZoneInfo(zone)).astimezone(UTC)


def night_of(p: Pool, day: date) -> tuple[datetime, datetime]:
    """The one span of `p` starting on `day` in its own zone."""
    found = spans_between(p, day - timedelta(days=1), day + timedelta(days=3))
    [span] = [s for s in found if s[0].astimezone(p.zone).date() == day]
    return span


# ---- overnight shifts over the clock changes: 9 real hours one night, 7 the other ----------------

OVERNIGHT = [
    # zone, the night the clocks go back (the shift starts that evening), the night they go forward
    ("Europe/London", date(2026, 10, 24), date(2026, 3, 28)),
    ("America/New_York", date(2026, 10, 31), date(2026, 3, 7)),
    ("Australia/Sydney", date(2026, 4, 4), date(2026, 10, 3)),
    ("Africa/Cairo", date(2026, 10, 29), date(2026, 4, 23)),
]


@pytest.mark.parametrize(("zone", "back", "forward"), OVERNIGHT)
def test_an_overnight_shift_is_longer_when_clocks_go_back(
    zone: str, back: date, forward: date
) -> None:
    night = pool(zone, shift("daily", "22:00", "06:00"))

    longer = night_of(night, back)
    shorter = night_of(night, forward)

    assert length(longer) == timedelta(hours=9)
    assert length(shorter) == timedelta(hours=7)
    assert longer[0] == wall(zone, back, 22)
    assert shorter[1] == wall(zone, forward + timedelta(days=1), 6)


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "Asia/Riyadh"])
def test_zones_without_clock_changes_keep_eight_hour_nights_all_year(zone: str) -> None:
    night = pool(zone, shift("daily", "22:00", "06:00"))

    found = spans_between(night, date(2025, 12, 31), date(2027, 1, 2))
    nights = [s for s in found if s[0].astimezone(night.zone).year == 2026]

    assert len(nights) == 365
    assert {s[0].astimezone(night.zone).time() for s in nights} == {time(22)}
    assert {length(s) for s in nights} == {timedelta(hours=8)}


def test_lord_howe_half_hour_change_makes_nights_half_an_hour_longer_or_shorter() -> None:
    night = pool("Australia/Lord_Howe", shift("sat", "22:00", "06:00"))

    back = spans_between(night, date(2026, 4, 4), date(2026, 4, 6))
    forward = spans_between(night, date(2026, 10, 3), date(2026, 10, 5))

    assert back == [(utc(2026, 4, 4, 11), utc(2026, 4, 4, 19, 30))]  # 8 h 30 m
    assert forward == [(utc(2026, 10, 3, 11, 30), utc(2026, 10, 3, 19))]  # 7 h 30 m


# ---- starting and ending inside skipped and repeated hours --------------------------------------


def test_a_shift_starting_in_a_skipped_hour_starts_when_the_clock_jumps() -> None:
    london = pool("Europe/London", shift("sun", "01:30", "03:00"))
    new_york = pool("America/New_York", shift("sun", "02:30", "05:00"))
    lord_howe = pool("Australia/Lord_Howe", shift("sun", "02:15", "04:00"))

    assert spans_between(london, date(2026, 3, 29), date(2026, 3, 30)) == [
        (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))
    ]
    assert spans_between(new_york, date(2026, 3, 8), date(2026, 3, 9)) == [
        (utc(2026, 3, 8, 7), utc(2026, 3, 8, 9))
    ]
    assert spans_between(lord_howe, date(2026, 10, 3), date(2026, 10, 5)) == [
        (utc(2026, 10, 3, 15, 30), utc(2026, 10, 3, 17))
    ]


def test_a_shift_wholly_inside_a_skipped_hour_never_happens() -> None:
    ghost = pool("Europe/London", shift("sun", "01:15", "01:45"))

    assert spans_between(ghost, date(2026, 3, 28), date(2026, 3, 31)) == []
    assert len(spans_between(ghost, date(2026, 4, 4), date(2026, 4, 6))) == 1


def test_a_shift_ending_in_a_repeated_hour_ends_at_its_first_showing() -> None:
    london = pool("Europe/London", shift("sun", "00:00", "01:30"))

    [(start, end)] = spans_between(london, date(2026, 10, 24), date(2026, 10, 26))

    assert end == wall("Europe/London", date(2026, 10, 25), 1, 30, fold=0)
    assert end != wall("Europe/London", date(2026, 10, 25), 1, 30, fold=1)
    assert (start, end) == (utc(2026, 10, 24, 23), utc(2026, 10, 25, 0, 30))


def test_a_shift_starting_in_a_repeated_hour_starts_at_its_first_showing() -> None:
    new_york = pool("America/New_York", shift("sun", "01:30", "03:00"))

    [(start, end)] = spans_between(new_york, date(2026, 11, 1), date(2026, 11, 2))

    assert start == wall("America/New_York", date(2026, 11, 1), 1, 30, fold=0)
    assert end - start == timedelta(hours=2, minutes=30)


def test_cairo_skips_midnight_in_spring_and_repeats_the_last_hour_in_autumn() -> None:
    late = pool("Africa/Cairo", shift("thu", "17:00", "24:00"), shift("fri", "00:00", "02:00"))

    spring = spans_between(late, date(2026, 4, 23), date(2026, 4, 25))
    autumn = spans_between(late, date(2026, 10, 29), date(2026, 10, 31))

    # 24:00 and the Friday's 00:00 are both the jump from 00:00 to 01:00: one span, 8 real hours.
    assert spring == [(utc(2026, 4, 23, 15), utc(2026, 4, 23, 23))]
    # The repeated 23:00-24:00 makes Thursday's 17:00-24:00 eight real hours.
    assert autumn == [(utc(2026, 10, 29, 14), utc(2026, 10, 30, 0))]
    assert autumn[0][0] == wall("Africa/Cairo", date(2026, 10, 29), 17)


def test_first_instant_takes_the_first_showing_of_a_repeated_time_whatever_its_fold() -> None:
    tz = ZoneInfo("Europe/London")
    repeated = datetime(2026, 10, 25, 1, 30)

    first = datetime(2026, 10, 25, 1, 30, fold=0, tzinfo=tz).timestamp()
    assert first_instant(tz, repeated) == first
    assert first_instant(tz, repeated.replace(fold=1)) == first
    assert first_instant(tz, datetime(2026, 3, 29, 1, 30)) == utc(2026, 3, 29, 1).timestamp()


def test_24_00_is_the_next_midnight() -> None:
    evening = pool("Europe/London", shift("mon", "18:00", "24:00"))

    assert spans_between(evening, date(2026, 6, 1), date(2026, 6, 3)) == [
        (utc(2026, 6, 1, 17), utc(2026, 6, 1, 23))
    ]


def test_back_to_back_shifts_merge_into_one_span() -> None:
    round_the_clock = pool(
        "Asia/Ho_Chi_Minh", shift("daily", "00:00", "12:00"), shift("daily", "12:00", "24:00")
    )

    assert spans_between(round_the_clock, date(2026, 1, 1), date(2026, 1, 8)) == [
        (utc(2026, 1, 1), utc(2026, 1, 8))
    ]


# ---- holidays, closures, openings ---------------------------------------------------------------


def test_a_holiday_cancels_the_shifts_starting_on_it_not_the_one_running_into_it() -> None:
    night = pool(
        "Asia/Ho_Chi_Minh",
        shift("daily", "22:00", "06:00"),
        calendar=Calendar(dates=frozenset({date(2026, 9, 2)})),
    )

    found = spans_between(night, date(2026, 9, 1), date(2026, 9, 4))

    assert found == [
        (utc(2026, 9, 1, 15), utc(2026, 9, 1, 23)),  # Sep 1 22:00 runs on into the holiday
        (utc(2026, 9, 3, 15), utc(2026, 9, 3, 23)),  # Sep 2 22:00 is cancelled
    ]


def test_holidays_on_either_side_of_midnight() -> None:
    night = pool("Asia/Ho_Chi_Minh", shift("daily", "22:00", "06:00"))
    before = Calendar(dates=frozenset({date(2026, 9, 1)}))
    after = Calendar(dates=frozenset({date(2026, 9, 2)}))
    window = (date(2026, 9, 1), date(2026, 9, 3))
    sep_1_night = (utc(2026, 9, 1, 15), utc(2026, 9, 1, 23))
    sep_2_night = (utc(2026, 9, 2, 15), utc(2026, 9, 2, 23))

    assert spans_between(night, *window) == [sep_1_night, sep_2_night]
    # Sep 1 is a holiday: the night starting on it is cancelled.
    assert spans_between(replace(night, calendar=before), *window) == [sep_2_night]
    # Sep 2 is a holiday: the night of Sep 1 still runs into it to its end, 06:00 on Sep 2.
    assert spans_between(replace(night, calendar=after), *window) == [sep_1_night]


def test_public_holidays_come_from_the_country_calendar() -> None:
    london = pool(
        "Europe/London",
        shift("mon,tue,wed,thu,fri", "09:00", "17:00"),
        calendar=Calendar(country="GB", subdivision="ENG"),
    )

    found = spans_between(london, date(2026, 12, 21), date(2026, 12, 31))

    worked = [s.date() for s, _ in found]
    assert date(2026, 12, 24) in worked
    assert date(2026, 12, 25) not in worked  # Christmas Day
    assert date(2026, 12, 28) not in worked  # Boxing Day, observed on the Monday


def test_closures_cut_shifts_and_openings_add_time_even_on_a_holiday() -> None:
    london = pool(
        "Europe/London",
        shift("mon,tue,wed,thu,fri", "09:00", "17:00"),
        calendar=Calendar(
            country="GB",
            closures=(WallSpan(datetime(2026, 12, 24, 14), datetime(2026, 12, 26)),),
            openings=(WallSpan(datetime(2027, 1, 1, 9), datetime(2027, 1, 1, 13)),),
        ),
    )

    assert spans_between(london, date(2026, 12, 24), date(2026, 12, 25)) == [
        (utc(2026, 12, 24, 9), utc(2026, 12, 24, 14))
    ]
    assert spans_between(london, date(2027, 1, 1), date(2027, 1, 2)) == [
        (utc(2027, 1, 1, 9), utc(2027, 1, 1, 13))
    ]


def test_spans_are_clipped_to_the_window() -> None:
    night = pool("Asia/Ho_Chi_Minh", shift("daily", "22:00", "06:00"))

    found = spans(night, utc(2026, 5, 1, 16, 30), utc(2026, 5, 1, 20, 15, 30))

    assert found == [(utc(2026, 5, 1, 16, 30), utc(2026, 5, 1, 20, 15, 30))]


def test_a_naive_instant_is_refused() -> None:
    night = pool("Asia/Ho_Chi_Minh", shift("daily", "22:00", "06:00"))

    with pytest.raises(ValueError, match="time zone"):
        spans(night, datetime(2026, 5, 1), utc(2026, 5, 2))
