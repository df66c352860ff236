"""Which pools take a call, in which order, and the reasons given for the others."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from bench.routing import LANGUAGES, QUEUES, synthetic_pools
from routing.calendar import Calendar, WallSpan
from routing.decide import _REASONS, WINDOW_SECONDS, Away, Decision, decide, why_not
from routing.model import Agent, Pool, Pools, Shift

WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


def agents(*names: str) -> tuple[Agent, ...]:
    return tuple(Agent(name.lower(), name, phone="+15005550006") for name in names)


HANOI = Pool(
    name="hanoi",
    timezone="Asia/Ho_Chi_Minh",
    queues=("billing", "tech"),
    languages=("vi-VN", "en-US"),
    priority=1,
    shifts=(Shift(WEEKDAYS, 8 * 60, 17 * 60), Shift(frozenset({5}), 22 * 60, 6 * 60)),
    calendar=Calendar(country="VN"),
    agents=agents("Lan", "Minh", "Desk"),
    order=0,
)
CAIRO = Pool(
    name="cairo",
    timezone="Africa/Cairo",
    queues=("billing",),
    languages=("ar-XA", "en-US"),
    shifts=(Shift(frozenset({6, 0, 1, 2, 3}), 9 * 60, 16 * 60),),
    agents=agents("Omar", "Nour"),
    order=1,
)
LONDON = Pool(
    name="london",
    timezone="Europe/London",
    queues=("billing", "tech"),
    languages=("en-US",),
    priority=50,
    shifts=(Shift(EVERY_DAY, 8 * 60, 20 * 60),),
    calendar=Calendar(closures=(WallSpan(datetime(2026, 12, 24, 14), datetime(2026, 12, 26)),)),
    agents=agents("Ann"),
    order=2,
)
MANILA = Pool(
    name="manila",
    timezone="Asia/Manila",
    queues=("billing",),
    languages=("en-US",),
    shifts=(Shift(WEEKDAYS, 0, 24 * 60),),
    agents=agents("Jo"),
    order=3,
)
POOLS = Pools((HANOI, CAIRO, LONDON, MANILA))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def names(decision: Decision) -> list[str]:
    return [c.pool.name for c in decision.pools]


def reasons(decision: Decision) -> dict[str, str]:
    return {p.pool.name: p.reason for p in decision.passed_over}


def test_the_pool_on_shift_takes_the_call_with_a_one_line_reason() -> None:
    decision = decide(POOLS, "billing", "vi-VN", utc(2026, 3, 2, 2, 12))  # Monday

    assert decision.pool is HANOI
    assert names(decision) == ["hanoi", "manila"]
    assert (
        decision.reason == "hanoi on shift (Mon 09:12 Asia/Ho_Chi_Minh), speaks vi-VN, priority 1"
    )
    assert decision.pools[0].agents == HANOI.agents


def test_pools_speaking_the_language_come_first_then_priority_then_file_order() -> None:
    at = utc(2026, 3, 2, 8)  # Monday: 15:00 in Hanoi, 10:00 in Cairo, 08:00 in London

    assert names(decide(POOLS, "billing", None, at)) == ["hanoi", "london", "cairo", "manila"]
    assert names(decide(POOLS, "billing", "ar-XA", at)) == ["cairo", "hanoi", "london", "manila"]
    assert names(decide(POOLS, "billing", "en-US", at)) == ["hanoi", "london", "cairo", "manila"]
    assert names(decide(POOLS, "tech", "en-US", at)) == ["hanoi", "london"]


def test_when_no_pool_speaks_the_language_the_reason_says_so() -> None:
    decision = decide(POOLS, "tech", "ja-JP", utc(2026, 3, 2, 12))

    assert decision.reason == (
        "london on shift (Mon 12:00 Europe/London), no available pool speaks ja-JP, priority 50"
    )


def test_a_shift_includes_its_start_and_excludes_its_end() -> None:
    starts = utc(2026, 3, 2, 1)  # 08:00 in Hanoi
    ends = utc(2026, 3, 2, 10)  # 17:00 in Hanoi

    assert decide(POOLS, "tech", None, starts).pool is HANOI
    assert decide(POOLS, "tech", None, starts - timedelta(microseconds=1)).pool is None
    assert decide(POOLS, "tech", None, ends - timedelta(seconds=1)).pool is HANOI
    assert names(decide(POOLS, "tech", None, ends)) == ["london"]


def test_availability_removes_agents_and_pools_with_nobody_left() -> None:
    at = utc(2026, 3, 2, 8)
    seen: list[tuple[Pool, Agent]] = []

    def available(pool: Pool, agent: Agent) -> bool:
        seen.append((pool, agent))
        return agent.id not in {"lan", "desk", "ann"}

    decision = decide(POOLS, "billing", "en-US", at, available)

    assert names(decision) == ["hanoi", "cairo", "manila"]
    assert [a.name for a in decision.pools[0].agents] == ["Minh"]
    assert reasons(decision)["london"] == "no agent available"
    assert (HANOI, HANOI.agents[0]) in seen


def test_an_away_set_gives_the_same_decisions_as_any_callable() -> None:
    at = utc(2026, 3, 2, 8)
    for ids in ({"lan", "desk", "ann"}, {"omar", "nour", "jo"}, set(), {"lan", "minh", "desk"}):

        def available(pool: Pool, agent: Agent, gone: set[str] = ids) -> bool:
            return agent.id not in gone

        as_set = decide(POOLS, "billing", "ar-XA", at, Away(ids))
        as_callable = decide(POOLS, "billing", "ar-XA", at, available)
        assert as_set.pools == as_callable.pools
        assert as_set.passed_over == as_callable.passed_over
    assert Away({"lan"})(HANOI, HANOI.agents[0]) is False


def test_passed_over_pools_each_get_a_reason() -> None:
    decision = decide(POOLS, "tech", "ar-XA", utc(2026, 3, 6, 14, 5))  # Friday

    assert decision.pool is LONDON
    assert reasons(decision) == {
        "hanoi": "off shift, Fri 21:05 Asia/Ho_Chi_Minh, shift ended 17:00, next starts Sat 22:00",
        "cairo": "does not serve queue tech",
        "manila": "does not serve queue tech",
    }
    billing = decide(POOLS, "billing", None, utc(2026, 3, 6, 14, 5))
    assert reasons(billing)["cairo"] == (
        "off shift, Fri 16:05 Africa/Cairo, shift ended Thu 16:00, next starts Sun 09:00"
    )


def test_a_reason_is_kept_for_its_minute_when_a_shift_runs_across_the_window_edge() -> None:
    # A weekend pool asked on a Monday, mid-minute: its shift eight days back runs across the
    # edge of the window the reason is looked for in. The reason changes only on whole minutes
    # all the same, so every other call of the minute must find it kept.
    weekend = Pool(
        name="weekend",
        timezone="Etc/UTC",
        queues=("tech",),
        shifts=(Shift(frozenset({5, 6}), 0, 24 * 60),),
        agents=agents("Sam"),
    )
    at = utc(2026, 12, 7, 16, 9, 23)

    reason = why_not(weekend, "tech", at)

    assert reason == "off shift, Mon 16:09 Etc/UTC, shift ended 00:00, next starts Sat 00:00"
    assert _REASONS.get(weekend, int(at.timestamp()) // 60) == (reason,)
    assert why_not(weekend, "tech", at + timedelta(seconds=30)) == reason


def test_a_holiday_is_named_as_the_reason() -> None:
    decision = decide(POOLS, "tech", "vi-VN", utc(2026, 9, 2, 3))  # Wednesday, 10:00 in Hanoi

    assert reasons(decision)["hanoi"] == "holiday, National Day"
    assert decision.pool is None
    assert decision.reason == "no pool serving tech is on shift"


def test_a_closure_is_given_as_the_reason() -> None:
    decision = decide(POOLS, "tech", None, utc(2026, 12, 24, 15))

    assert reasons(decision)["london"] == "closed 2026-12-24 14:00 to 2026-12-26 00:00"


def test_reasons_when_nobody_takes_the_call() -> None:
    at = utc(2026, 3, 2, 8)

    unknown = decide(POOLS, "claims", None, at)
    nobody = decide(POOLS, "billing", None, at, lambda pool, agent: False)

    assert (unknown.pool, unknown.pools) == (None, ())
    assert unknown.reason == "no pool serves queue claims"
    assert nobody.reason == "no agent available in the pools serving billing on shift"
    assert set(reasons(nobody).values()) == {"no agent available"}


def test_a_pool_without_agents_never_takes_a_call() -> None:
    empty = replace(MANILA, name="empty", agents=(), order=4)
    pools = Pools((*POOLS.pools, empty))

    decision = decide(pools, "billing", None, utc(2026, 3, 2, 8))

    assert "empty" not in names(decision)
    assert reasons(decision)["empty"] == "has no agents"


def test_decisions_at_and_across_the_edges_of_precomputed_weeks() -> None:
    # Weeks are precomputed from multiples of WINDOW_SECONDS: midnights UTC. Work across them.
    nights = Pools((replace(MANILA, timezone="UTC", shifts=(Shift(EVERY_DAY, 22 * 60, 2 * 60),)),))
    for week in range(2900, 2960, 7):
        edge = week * WINDOW_SECONDS
        for moment, on_shift in (
            (edge - 1, True),
            (edge, True),
            (edge + 1, True),
            (edge + 7200, False),
        ):
            at = datetime.fromtimestamp(moment, UTC)
            assert (decide(nights, "billing", None, at).pool is not None) == on_shift, at


def test_decisions_stay_right_when_old_weeks_are_forgotten() -> None:
    start = utc(2026, 1, 5, 1, 30)  # a Monday, 08:30 in Hanoi
    for week in range(80):
        at = start + timedelta(weeks=week)
        expected = why_not(HANOI, "tech", at) is None
        assert (decide(POOLS, "tech", None, at).pool is HANOI) == expected


def test_instants_long_ago_and_far_ahead() -> None:
    assert decide(POOLS, "tech", None, utc(1969, 12, 29, 1, 30)).pool is HANOI  # a Monday
    assert decide(POOLS, "tech", None, utc(2099, 3, 2, 1, 30)).pool is HANOI  # a Monday


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        decide(POOLS, "billing", None, datetime(2026, 3, 2, 8))


def test_pools_lookups() -> None:
    assert POOLS.get("cairo") is CAIRO
    assert POOLS.get("nowhere") is None
    assert POOLS.queues() == {"billing", "tech"}
    assert [p.name for p in POOLS] == ["hanoi", "cairo", "london", "manila"]
    assert date(2026, 9, 2) not in HANOI.calendar.dates
    assert HANOI.calendar.is_holiday(date(2026, 9, 2))


def test_an_agent_with_languages_takes_only_callers_of_those_languages() -> None:
    lan = Agent("lan", "Lan", phone="+84901234567", languages=("vi-VN",))
    hanoi = replace(HANOI, agents=(lan, *HANOI.agents[1:]))
    pools = Pools((hanoi, CAIRO, LONDON, MANILA))
    at = utc(2026, 3, 2, 2, 12)  # Monday, 09:12 in Hanoi

    vietnamese = decide(pools, "billing", "vi-VN", at)
    english = decide(pools, "billing", "en-US", at, Away({"desk"}))
    unknown = decide(pools, "billing", None, at)

    assert [a.id for a in vietnamese.pools[0].agents] == ["lan", "minh", "desk"]
    assert [a.id for a in english.pools[0].agents] == ["minh"]
    assert [(s.agent.id, s.reason) for s in english.skipped(hanoi)] == [
        ("lan", "speaks only vi-VN"),
        ("desk", "away"),
    ]
    assert [a.id for a in unknown.pools[0].agents] == ["lan", "minh", "desk"]


def test_a_pool_whose_agents_do_not_take_the_language_is_passed_over_with_why() -> None:
    only_vi = tuple(replace(a, languages=("vi-VN",)) for a in HANOI.agents)
    hanoi = replace(HANOI, agents=only_vi)
    pools = Pools((hanoi,))
    at = utc(2026, 3, 2, 2, 12)

    for availability in (Away(), Away({"minh"}), lambda pool, agent: agent.id != "minh"):
        arabic = decide(pools, "billing", "ar-XA", at, availability)
        assert arabic.pools == ()
        assert reasons(arabic)["hanoi"].startswith(
            "no agent available for ar-XA: Lan speaks only vi-VN"
        )
        assert arabic.reason == (
            "no agent available for ar-XA in the pools serving billing on shift"
        )
    assert names(decide(pools, "billing", "vi-VN", at)) == ["hanoi"]


def test_decisions_kept_per_presence_snapshot_match_a_fresh_check_of_each_agent() -> None:
    # One schedule asked again and again, as a worker is: the same snapshot object, an equal
    # one built anew, another presence, then the first again, at instants across two weeks.
    pools = synthetic_pools(40, 6, seed=5)
    everyone = [a.id for p in pools for a in p.agents]
    rng = random.Random(11)
    presences = [frozenset(rng.sample(everyone, k)) for k in (0, 1, len(everyone) // 3)]
    presences.append(frozenset(everyone))  # nobody available anywhere
    snapshots = {gone: Away(gone) for gone in presences}
    start = utc(2026, 3, 23).timestamp()
    for step in range(600):
        at = datetime.fromtimestamp(start + step * 2017.0, UTC)
        queue, language = rng.choice(QUEUES), rng.choice((*LANGUAGES, None))
        gone = presences[step % len(presences)]
        fresh = decide(pools, queue, language, at, lambda pool, agent, g=gone: agent.id not in g)
        for away in (snapshots[gone], Away(gone)):
            kept = decide(pools, queue, language, at, away)
            assert kept.pools == fresh.pools
            assert all(c.agents for c in kept.pools)
