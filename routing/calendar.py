"""Days off and one-off changes to a pool's hours: holidays, listed dates, closures, openings.

Public holidays come from the `holidays` package (a country, optionally a subdivision); names are
in US English where the country's calendar offers it, else in the country's own language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

import holidays


@dataclass(frozen=True)
class WallSpan:
    """A stretch of a pool's wall-clock time, from `start` up to (not including) `end`."""

    start: datetime  # naive: the pool's local wall time
    end: datetime

    def label(self) -> str:
        """The span as written: "2026-12-24 14:00 to 2026-12-26 00:00"."""
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class Calendar:
    """A pool's days off (cancelling the shifts that start on them), closures and openings."""

    country: str | None = None
    subdivision: str | None = None
    dates: frozenset[date] = frozenset()
    closures: tuple[WallSpan, ...] = ()  # cut out of the shifts
    openings: tuple[WallSpan, ...] = ()  # on shift regardless of shifts, holidays and closures

    def is_holiday(self, day: date) -> bool:
        """Whether `day` is a day off."""
        if day in self.dates:
            return True
        return self.country is not None and day in public_holidays(
            self.country, self.subdivision, day.year
        )

    def holiday(self, day: date) -> str | None:
        """The name of the day off on `day`, or None on a working day."""
        if self.country is not None:
            name = public_holidays(self.country, self.subdivision, day.year).get(day)
            if name is not None:
                return name
        return f"listed date {day.isoformat()}" if day in self.dates else None


@lru_cache(maxsize=256)
def public_holidays(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    """The public holidays of one year, by date."""
    found = holidays.country_holidays(
        country, subdiv=subdivision, years=year, language=_language(country)
    )
    return dict(found.items())


def calendar_problem(country: str, subdivision: str | None) -> str | None:
    """Why `holidays` cannot give a calendar for this country and subdivision, or None."""
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError:
        if subdivision is None or calendar_problem(country, None) is not None:
            return f"unknown holiday country {country!r} (an ISO 3166 code, e.g. VN, GB, US)"
        known = ", ".join(holidays.country_holidays(country).subdivisions) or "none"
        return f"unknown subdivision {subdivision!r} of {country} (known: {known})"
    return None


def _language(country: str) -> str | None:
    supported = holidays.country_holidays(country).supported_languages
    return "en_US" if "en_US" in supported else None
