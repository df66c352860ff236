"""KPIs against a brute-force oracle (Hypothesis), and the definitions on small cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.calls.kpis import FIELDS, KpiFacts, kpis, totals
from ivr.calls.summary import CallSummary

ZONES = ["UTC", "America/New_York", "Asia/Ho_Chi_Minh", "Australia/Lord_Howe", "Africa/Cairo"]
# Windows of four days with clock changes: US clocks go forward on 8 March and back on 1 November,
# Lord Howe's go back half an hour on 5 April, Cairo's back an hour on 29 October.
FIRST_DAYS = [date(2026, 3, 7), date(2026, 4, 3), date(2026, 10, 28), date(2026, 10, 30)]


@st.composite
def summaries(draw: st.DrawFn, first: date = FIRST_DAYS[0]) -> CallSummary:
    base = datetime.combine(first, datetime.min.time(), UTC).timestamp()
    start = base + draw(st.floats(0, 4 * 86400, allow_nan=False))
    routed = draw(st.booleans())
    route_at = start + draw(st.floats(0, 60)) if routed else None
    answered_at = None
    if draw(st.booleans()):
        answered_at = (route_at if route_at is not None else start) + draw(
            st.sampled_from([0.0, 5.0, 19.999, 20.0, 20.001, 45.5, 300.0])
        )
    ended = draw(st.booleans())  # an answered call may still be under way
    return CallSummary(
        sid=f"CA{draw(st.integers(0, 10**9))}",
        queue=draw(st.sampled_from([None, "billing", "tech"])),
        pool=draw(st.sampled_from([None, "hanoi", "cairo"])),
        language=draw(st.sampled_from(["", "en-US", "vi-VN"])),
        started_at=start,
        route_at=route_at,
        answered_at=answered_at,
        ended_at=(answered_at or start) + 60 if ended else None,
        voicemail_seconds=draw(st.sampled_from([0, 0, 12])),
        fault=draw(st.sampled_from([None, None, "redis"])),
        agent_line=draw(st.sampled_from([False, False, False, True])),
    )


def oracle(
    calls: list[CallSummary], by: str, threshold: float, zone: ZoneInfo, first: date, last: date
) -> dict[str, Any]:
    def local(c: CallSummary) -> datetime:
        assert c.started_at is not None
        return datetime.fromtimestamp(c.started_at, UTC).astimezone(zone)

    def key(c: CallSummary) -> str | None:
        if by == "day":
            return local(c).date().isoformat()
        if by == "hour":
            return hour_of(local(c))
        return getattr(c, by) or None

    def hour_of(t: datetime) -> str:
        label = f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:00"
        return label + offset(t) if len(offsets(t)) > 1 else label

    def offsets(t: datetime) -> set[str]:
        """The UTC offsets of every real minute whose wall clock shows t's date and hour."""
        start = int(t.timestamp()) // 60 * 60
        minutes = (datetime.fromtimestamp(start + m * 60, zone) for m in range(-180, 181))
        return {offset(w) for w in minutes if (w.date(), w.hour) == (t.date(), t.hour)}

    def offset(t: datetime) -> str:
        return t.isoformat()[-6:]

    def earliest(k: str | None) -> tuple[bool, float, str]:
        """Hours in the order they happened; days and other keys by name."""
        if by != "hour":
            return k is None, 0.0, k or ""
        return False, hours[k], ""  # type: ignore[index]

    def row(k: str | None, group: list[CallSummary]) -> dict[str, Any]:
        offered = [c for c in group if c.route_at is not None]
        waits = [
            c.answered_at - c.route_at
            for c in offered
            if c.answered_at is not None and c.route_at is not None
        ]
        waits = [round(max(0.0, w), 3) for w in waits]

        def rank(p: int) -> float | None:
            fits = [v for v in waits if sum(1 for w in waits if w <= v) * 100 >= p * len(waits)]
            return min(fits) if fits else None

        out: dict[str, Any] = {"key": k, "calls": len(group), "offered": len(offered)}
        for name in ("answered", "abandoned", "voicemail", "self_service", "failed"):
            out[name] = sum(1 for c in group if c.outcome == name)
        n = len(offered)
        out["service_level"] = sum(w <= threshold for w in waits) / n if n else None
        out["asa_seconds"] = sum(waits) / len(waits) if waits else None
        out["answer_p50"], out["answer_p90"] = rank(50), rank(90)
        out["abandon_rate"] = sum(c.outcome == "abandoned" for c in offered) / n if n else None
        return out

    # An agent's call to the agents' line is not a customer's: it counts nowhere.
    inside = [c for c in calls if first <= local(c).date() <= last and not c.agent_line]
    keys = {key(c) for c in inside}
    if by == "day":
        keys |= {(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    hours: dict[str, float] = {}  # every hour of the days asked for, and when it began
    if by == "hour":
        start = datetime.combine(first, datetime.min.time(), zone).timestamp()
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone).timestamp()
        for quarter in range(int(start), int(end), 900):  # quarters: zones shift by 30 minutes
            hours.setdefault(hour_of(datetime.fromtimestamp(quarter, zone)), quarter)
        keys |= set(hours)
    ordered = sorted(keys, key=earliest)
    return {
        "rows": [row(k, [c for c in inside if key(c) == k]) for k in ordered],
        "total": row(None, inside),
    }


def close(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert list(got) == list(FIELDS)
    for name in FIELDS:
        if isinstance(want[name], float):
            assert got[name] == pytest.approx(want[name], abs=1e-3), name
        else:
            assert got[name] == want[name], name


@st.composite
def window(draw: st.DrawFn) -> tuple[date, list[CallSummary]]:
    first = draw(st.sampled_from(FIRST_DAYS))
    return first, draw(st.lists(summaries(first), max_size=30))


@settings(max_examples=150, deadline=None)
@given(
    window=window(),
    by=st.sampled_from(["day", "hour", "queue", "pool", "language"]),
    threshold=st.sampled_from([0.0, 20.0, 30.0]),
    zone=st.sampled_from(ZONES),
    first=st.integers(0, 3),
    days=st.integers(0, 3),
)
def test_kpis_match_the_oracle(
    window: tuple[date, list[CallSummary]],
    by: str,
    threshold: float,
    zone: str,
    first: int,
    days: int,
) -> None:
    base, calls = window
    start = base + timedelta(days=first)
    end = start + timedelta(days=days)
    got = kpis(calls, by, threshold, ZoneInfo(zone), start, end)
    want = oracle(calls, by, threshold, ZoneInfo(zone), start, end)
    assert [r["key"] for r in got["rows"]] == [r["key"] for r in want["rows"]]
    for got_row, want_row in zip(got["rows"], want["rows"], strict=True):
        close(got_row, want_row)
    close(got["total"], want["total"])


def test_service_level_counts_every_abandon_among_offered_calls() -> None:
    start = datetime(2026, 5, 4, 9, tzinfo=UTC).timestamp()

    def call(sid: str, wait: float | None, routed: bool = True) -> CallSummary:
        route = start + 10 if routed else None
        answered = None if wait is None else start + 10 + wait
        return CallSummary(sid, started_at=start, route_at=route, answered_at=answered,
                           ended_at=start + 200, queue="billing")  # fmt: skip

    calls = [call("a", 3), call("b", 20), call("c", 21), call("d", None), call("e", None, False)]
    total = kpis(calls, "queue", 20, ZoneInfo("UTC"), date(2026, 5, 4), date(2026, 5, 4))["total"]
    assert total["calls"] == 5 and total["offered"] == 4
    assert total["answered"] == 3 and total["abandoned"] == 1 and total["self_service"] == 1
    assert total["service_level"] == 0.5  # a and b within 20 s, over four offered
    assert total["asa_seconds"] == pytest.approx(44 / 3, abs=1e-3)
    assert total["answer_p50"] == 20 and total["answer_p90"] == 21
    assert total["abandon_rate"] == 0.25


def test_the_hour_clocks_go_back_over_is_two_rows_in_order() -> None:
    zone = ZoneInfo("Europe/London")  # 25 October 2026: 02:00 BST is 01:00 GMT again
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()  # 01:30 BST
    starts = [first, first + 3600, first + 7200]  # 01:30 BST, 01:30 GMT, 02:30 GMT
    calls = [CallSummary(f"CA{i}", started_at=t) for i, t in enumerate(starts)]
    day = date(2026, 10, 25)
    rows = [(r["key"], r["calls"]) for r in kpis(calls, "hour", 20, zone, day, day)["rows"]]
    assert len(rows) == 25  # every hour of the day, with calls or not
    assert rows[:4] == [
        ("2026-10-25 00:00", 0),
        ("2026-10-25 01:00+01:00", 1),
        ("2026-10-25 01:00+00:00", 1),
        ("2026-10-25 02:00", 1),
    ]
    assert rows[-1] == ("2026-10-25 23:00", 0)


def test_by_hour_every_hour_has_a_row_23_on_the_day_clocks_go_forward() -> None:
    zone = ZoneInfo("America/New_York")  # 8 March 2026: 02:00 EST is 03:00 EDT
    day = date(2026, 3, 8)
    rows = kpis([], "hour", 20, zone, day, day)["rows"]
    assert [r["key"][-5:] for r in rows][:3] == ["00:00", "01:00", "03:00"] and len(rows) == 23
    assert {r["calls"] for r in rows} == {0} and rows[0]["service_level"] is None


def test_a_call_answered_and_still_under_way_counts_its_wait() -> None:
    start = datetime(2026, 5, 4, 9, tzinfo=UTC).timestamp()
    talking = CallSummary("a", started_at=start, route_at=start + 10, answered_at=start + 14)
    ended = CallSummary("b", started_at=start, route_at=start + 10, answered_at=start + 40,
                        ended_at=start + 100)  # fmt: skip
    day = date(2026, 5, 4)
    total = kpis([talking, ended], "day", 20, ZoneInfo("UTC"), day, day)["total"]
    assert total["offered"] == 2 and total["answered"] == 1  # "a" is not over yet
    assert total["service_level"] == 0.5  # "a" was answered in 4 s: not a miss
    assert total["asa_seconds"] == 17 and total["answer_p50"] == 4 and total["answer_p90"] == 30


def test_days_are_local_and_the_last_day_is_inclusive() -> None:
    zone = ZoneInfo("Asia/Ho_Chi_Minh")  # UTC+7: 18:00 UTC is already the next local day
    late = datetime(2026, 5, 4, 18, tzinfo=UTC).timestamp()
    report = kpis([CallSummary("a", started_at=late)], "day", 20, zone,
                  date(2026, 5, 4), date(2026, 5, 5))  # fmt: skip
    rows = [(r["key"], r["calls"]) for r in report["rows"]]
    assert rows == [("2026-05-04", 0), ("2026-05-05", 1)]
    assert report["rows"][0]["service_level"] is None


@settings(max_examples=100, deadline=None)
@given(calls=st.lists(summaries(), max_size=20), by=st.sampled_from(["hour", "queue"]))
def test_kpi_facts_keep_what_the_kpis_read(calls: list[CallSummary], by: str) -> None:
    facts = [KpiFacts.of(c) for c in calls]
    assert all(f is not None for f in facts)
    kept = [KpiFacts.from_member(f.to_member()) for f in facts if f is not None]
    assert kept == facts
    day, zone = date(2026, 3, 8), ZoneInfo("America/New_York")
    assert kpis(kept, by, 20, zone, day, day) == kpis(calls, by, 20, zone, day, day)
    everything = kpis(kept, by, 20, ZoneInfo("UTC"), date(2026, 3, 7), date(2026, 3, 11))
    assert totals(kept, 20) == everything["total"]  # every call falls in those days
    assert KpiFacts.of(CallSummary("CAnot-started")) is None
    with pytest.raises(ValueError, match="version"):
        KpiFacts.from_member('[0, "CA1"]')
    # A customer's call keeps the members written before the agents' line flag existed.
    member = '[1,"CA1",1.0,"answered",true,4.0,"billing","hanoi","vi-VN"]'
    before = KpiFacts.from_member(member)
    assert not before.agent_line and before.to_member() == member
