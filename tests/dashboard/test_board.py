"""The wallboard's pure figures at pinned instants: shifts now, the next change, the next gap."""

from __future__ import annotations

from datetime import UTC, datetime

from ivr.dashboard.board import next_gaps, pools_now
from ivr.pools import parse_pools
from ivr.yamlsource import parse
from routing.model import Pools
from tests.conftest import SAMPLE_FLOWS
from tests.dashboard.conftest import without_weekend_cover


def sample() -> Pools:
    text = without_weekend_cover((SAMPLE_FLOWS / "pools.yaml").read_text(encoding="utf-8"))
    source, problems = parse(text, "pools.yaml")
    assert source is not None, problems
    pools, problems = parse_pools(source)
    assert pools is not None, problems
    return pools


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_pools_on_shift_and_their_next_change() -> None:
    rows = {row.name: row for row in pools_now(sample(), {"lan", "omar"}, at("2026-12-02T10:00"))}
    assert not rows["hanoi"].on_shift and rows["hanoi"].next_change == at("2026-12-03T00:00")
    assert rows["cairo"].on_shift and rows["cairo"].next_change == at("2026-12-02T16:00")
    # London's day and late shifts touch: one span, off at 01:00 London time (= UTC in winter).
    assert rows["london"].on_shift and rows["london"].next_change == at("2026-12-03T01:00")
    assert rows["hanoi"].away == ("Lan",) and rows["hanoi"].available == ("Huong", "Minh")
    assert rows["cairo"].available == ("Mona",)


def test_the_next_gap_is_the_weekend_and_a_running_gap_is_now() -> None:
    upcoming = {gap.queue: gap for gap in next_gaps(sample(), at("2026-12-02T10:00"))}
    billing = upcoming["billing"]
    assert not billing.now and billing.start == at("2026-12-05T01:00")
    assert billing.end == at("2026-12-06T07:00")  # Cairo opens Sunday 09:00 local
    running = {gap.queue: gap for gap in next_gaps(sample(), at("2026-12-05T12:00"))}
    assert running["tech"].now and running["tech"].start == at("2026-12-05T01:00")


def test_a_gap_names_the_holiday_or_closure_behind_it() -> None:
    christmas = {gap.queue: gap for gap in next_gaps(sample(), at("2026-12-24T10:00"))}
    billing = christmas["billing"]
    assert billing.start == at("2026-12-24T16:00") and billing.end == at("2026-12-25T00:00")
    assert billing.why == ("london: closed 2026-12-24 13:00 to 2026-12-25 00:00",)
    weekend = {gap.queue: gap for gap in next_gaps(sample(), at("2026-12-02T10:00"))}
    assert weekend["billing"].why == ()  # every pool simply off shift: nothing to add


def test_no_pools_no_rows() -> None:
    assert pools_now(Pools(), set(), at("2026-12-02T10:00")) == []
    assert next_gaps(Pools(), at("2026-12-02T10:00")) == []
