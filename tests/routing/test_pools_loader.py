"""pools.yaml into routing's values, and every mistake reported at its line and column."""

from __future__ import annotations

import textwrap
from datetime import date, datetime
from pathlib import Path

import pytest

from ivr.errors import Problem
from ivr.pools import load_pools, unserved_queues
from routing.calendar import WallSpan
from routing.model import Pools, Shift
from tests.contract_examples import CONTRACT_POOLS as CONTRACT_EXAMPLE

# One pool with a slot for each thing the cases below change.
TEMPLATE = """\
pools:
  hanoi:
    timezone: {timezone}
    queues: [billing]
    shifts:
      - {{days: {days}, from: {starts}, to: {ends}}}
    agents:
      - {{name: Lan, {address}}}
"""
GOOD = {
    "timezone": "Asia/Ho_Chi_Minh",
    "days": "mon-fri",
    "starts": '"08:00"',
    "ends": '"17:00"',
    "address": 'phone: "+84901234567"',
}


def load(tmp_path: Path, text: str) -> tuple[Pools | None, list[Problem]]:
    path = tmp_path / "pools.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_pools(path)


def located(problems: list[Problem]) -> list[str]:
    """Problems as "line:col: message", warnings marked."""
    return [str(p).split(":", 1)[1] for p in problems]


def test_the_contract_example_loads(tmp_path: Path) -> None:
    pools, problems = load(tmp_path, CONTRACT_EXAMPLE)

    assert problems == []
    assert pools is not None
    [hanoi] = pools.pools
    assert (hanoi.name, hanoi.timezone, hanoi.priority, hanoi.order) == (
        "hanoi",
        "Asia/Ho_Chi_Minh",
        1,
        0,
    )
    assert hanoi.queues == ("billing", "tech")
    assert hanoi.languages == ("vi-VN", "en-US")
    assert hanoi.shifts == (
        Shift(frozenset(range(5)), 8 * 60, 17 * 60),
        Shift(frozenset({5}), 22 * 60, 6 * 60),
    )
    assert hanoi.calendar.country == "VN"
    assert hanoi.calendar.dates == frozenset({date(2026, 9, 2)})
    assert (hanoi.strategy, hanoi.ring_seconds, hanoi.caller_id) == ("simultaneous", 20, None)
    assert [(a.id, a.name, a.kind, a.address) for a in hanoi.agents] == [
        ("lan", "Lan", "phone", "+84901234567"),
        ("minh", "Minh", "client", "minh"),
        ("desk", "Desk", "sip", "sip:desk@pbx.example.com"),
    ]


def test_the_additions_load(tmp_path: Path) -> None:
    pools, problems = load(
        tmp_path,
        """\
        pools:
          london:
            timezone: Europe/London
            queues: [tech]
            caller_id: "+442079460000"
            shifts:
              - {days: [mon, wed-thu], from: "8:30", to: "24:00"}
              - {days: sat-mon, from: "02:00", to: "04:00"}
              - {days: all, from: "05:00", to: "06:00"}
            holidays:
              country: GB
              subdivision: ENG
              closed: [{from: "2026-12-24 14:00", to: "2026-12-26 00:00"}]
              open: [{from: "2027-01-01 09:00", to: "2027-01-01 13:00"}]
            agents:
              - {name: Ann Lee, phone: "+447700900123", languages: [en-gb]}
              - {name: Bob, id: bob-7, client: bob}
        """,
    )

    assert pools is not None, problems
    [london] = pools.pools
    assert london.caller_id == "+442079460000"
    assert [s.days for s in london.shifts] == [
        frozenset({0, 2, 3}),
        frozenset({5, 6, 0}),
        frozenset(range(7)),
    ]
    assert (london.shifts[0].start_minute, london.shifts[0].end_minute) == (8 * 60 + 30, 24 * 60)
    assert london.calendar.subdivision == "ENG"
    assert london.calendar.closures == (
        WallSpan(datetime(2026, 12, 24, 14), datetime(2026, 12, 26)),
    )
    assert london.calendar.openings == (
        WallSpan(datetime(2027, 1, 1, 9), datetime(2027, 1, 1, 13)),
    )
    assert [(a.id, a.languages) for a in london.agents] == [("ann-lee", ("en-GB",)), ("bob-7", ())]
    assert problems == []  # the shifts never overlap


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"timezone": "Asia/Hanoi"},
            "3:5: unknown time zone 'Asia/Hanoi' (an IANA name such as Asia/Ho_Chi_Minh)",
        ),
        (
            {"timezone": "Europe/Londn"},
            "3:5: unknown time zone 'Europe/Londn' (an IANA name such as Asia/Ho_Chi_Minh); "
            "did you mean Europe/London?",
        ),
        (
            {"timezone": "europe/london"},
            "3:5: unknown time zone 'europe/london' (an IANA name such as Asia/Ho_Chi_Minh); "
            "did you mean Europe/London?",
        ),
        # An area alone is a directory in tzdata, and an overlong name too long for a file name:
        # both are unknown zones, not a crash.
        (
            {"timezone": "Europe"},
            "3:5: unknown time zone 'Europe' (an IANA name such as Asia/Ho_Chi_Minh)",
        ),
        (
            {"timezone": "x" * 300},
            f"3:5: unknown time zone {'x' * 300!r} (an IANA name such as Asia/Ho_Chi_Minh)",
        ),
        (
            {"days": "mon-fry"},
            "6:10: bad days 'mon-fry': use a day (sat), a range (mon-fri), daily, or a list",
        ),
        (
            {"days": "[mon, 3]"},
            "6:22: bad days 3: use a day (sat), a range (mon-fri), daily, or a list",
        ),
        ({"starts": "800"}, '6:25: a time must be "HH:MM" in quotes, e.g. "08:00"; got 800'),
        ({"starts": '"8am"'}, '6:25: a time must be "HH:MM" in quotes, e.g. "08:00"; got \'8am\''),
        (
            {"starts": '"24:00"'},
            "6:25: '24:00' is not a time of day (\"24:00\" is allowed only in `to`)",
        ),
        ({"ends": '"25:00"'}, "6:40: '25:00' is not a time of day"),
        ({"ends": '"08:61"'}, "6:40: '08:61' is not a time of day"),
        (
            {"ends": '"08:00"'},
            "6:40: a shift cannot end when it starts (`from` equals `to`)",
        ),
        (
            {"address": "languages: [en-US]"},
            "8:9: agent 'Lan' has no address: give one of phone, client or sip",
        ),
        (
            {"address": 'phone: "+84901234567", sip: "sip:lan@pbx.example.com"'},
            "8:44: agent 'Lan' has more than one address (phone, sip)",
        ),
        (
            {"address": 'phone: "0901234567"'},
            "8:21: `phone` must be an E.164 number such as +84901234567, got '0901234567'",
        ),
        (
            {"address": "phone: 84901234567"},
            "8:21: `phone` must be an E.164 number such as +84901234567, got 84901234567",
        ),
        (
            {"address": 'sip: "desk@pbx.example.com"'},
            "8:21: `sip` must be a SIP URI such as sip:desk@pbx.example.com, "
            "got 'desk@pbx.example.com'",
        ),
        (
            {"address": 'client: "has space"'},
            "8:21: `client` must be a Twilio Client identity (letters, digits, _ . @ -), "
            "got 'has space'",
        ),
    ],
)
def test_each_mistake_is_reported_where_it_was_written(
    tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    pools, problems = load(tmp_path, TEMPLATE.format(**{**GOOD, **change}))

    assert located(problems) == [expected]
    assert pools is None


def with_lines(*lines: str) -> str:
    """The good template's pool with `lines` added to it."""
    return TEMPLATE.format(**GOOD) + "".join(f"    {line}\n" for line in lines)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["colour: blue"],
            "9:5: unknown key 'colour' (known: timezone, queues, languages, "
            "priority, shifts, holidays, strategy, ring_seconds, agents, caller_id)",
        ),
        (["prority: 2"], "9:5: unknown key 'prority'; did you mean 'priority'?"),
        (
            ["strategy: random"],
            "9:5: unknown strategy 'random' (one of: simultaneous, sequential, "
            "round_robin, longest_idle)",
        ),
        (["ring_seconds: 0"], "9:5: `ring_seconds` must be from 1 to 600, got 0"),
        (["ring_seconds: -5"], "9:5: `ring_seconds` must be from 1 to 600, got -5"),
        (["ring_seconds: 12.5"], "9:5: `ring_seconds` must be a whole number, got 12.5"),
        (["priority: high"], "9:5: `priority` must be a whole number, got 'high'"),
        (
            ["caller_id: 12345"],
            "9:5: `caller_id` must be an E.164 number such as +15005550006, got 12345",
        ),
        (["languages: [english]"], "9:17: 'english' is not a language tag such as en-US or vi-VN"),
        (
            ["holidays: {country: XX}"],
            "9:16: unknown holiday country 'XX' (an ISO 3166 code, e.g. VN, GB, US)",
        ),
        (
            ["holidays: {country: GB, subdivision: XYZ}"],
            "9:29: unknown subdivision 'XYZ' of GB (known: ENG, NIR, SCT, WLS)",
        ),
        (["holidays: {subdivision: ENG}"], "9:16: `subdivision` needs a `country`"),
        (
            ["holidays: {dates: [2026-02-30]}"],
            "9:24: a date must be written YYYY-MM-DD, got '2026-02-30'",
        ),
        (
            ['holidays: {closed: [{from: "2026-12-24 14:00", to: "2026-12-24 09:00"}]}'],
            "9:52: `to` must come after `from`",
        ),
        (
            ['holidays: {open: [{from: "2027-01-01", to: "2027-01-01 13:00"}]}'],
            "9:24: a wall time must be written \"YYYY-MM-DD HH:MM\", got '2027-01-01'",
        ),
        (
            ["holidays: {easter: yes}"],
            "9:16: unknown key 'easter' (known: country, subdivision, dates, closed, open)",
        ),
    ],
)
def test_each_pool_setting_is_checked(tmp_path: Path, lines: list[str], expected: str) -> None:
    pools, problems = load(tmp_path, with_lines(*lines))

    assert located(problems) == [expected]
    assert pools is None


def test_a_whole_day_from_00_00_to_24_00_is_a_shift(tmp_path: Path) -> None:
    pools, problems = load(
        tmp_path, TEMPLATE.format(**{**GOOD, "starts": '"00:00"', "ends": '"24:00"'})
    )

    assert problems == []
    assert pools is not None
    assert pools.pools[0].shifts == (Shift(frozenset(range(5)), 0, 24 * 60),)


def test_overlapping_shifts_are_a_warning_only(tmp_path: Path) -> None:
    pools, problems = load(
        tmp_path,
        """\
        pools:
          hanoi:
            timezone: Asia/Ho_Chi_Minh
            queues: [billing]
            shifts:
              - {days: mon-fri, from: "08:00", to: "17:00"}
              - {days: sun, from: "22:00", to: "09:00"}
              - {days: sat, from: "10:00", to: "12:00"}
            agents:
              - {name: Lan, phone: "+84901234567"}
        """,
    )

    assert pools is not None
    assert located(problems) == ["7:9: warning: this shift overlaps shift 1 of the same pool"]


def test_duplicate_agents_and_missing_settings(tmp_path: Path) -> None:
    pools, problems = load(
        tmp_path,
        """\
        pools:
          hanoi:
            timezone: Asia/Ho_Chi_Minh
            shifts: []
            agents:
              - {name: Lan, phone: "+84901234567"}
              - {name: Lan, client: lan2}
              - {name: Lan Two, id: lan, client: lan3}
          cairo: {timezone: Africa/Cairo, queues: [billing], shifts: [], agents: []}
        """,
    )

    assert pools is None
    assert located(problems) == [
        "2:3: pool 'hanoi' needs `queues`",
        "2:3: warning: pool 'hanoi' has no shifts: it is never on shift",
        "7:10: agent 'Lan' appears twice in pool 'hanoi'",
        "8:25: agent id 'lan' appears twice in pool 'hanoi'",
        "9:3: warning: pool 'cairo' has no shifts: it is never on shift",
        "9:66: pool 'cairo' has no agents",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "1:1: expected `pools:` with one entry per agent pool"),
        ("[1, 2]\n", "1:1: expected `pools:` with one entry per agent pool"),
        ("pools: [a, b]\n", "1:1: `pools` must map each pool's name to its settings"),
        ("pools: {}\nextra: 1\n", "2:1: unknown key 'extra' (known: pools)"),
        (
            "pools: {}\n",
            "1:1: warning: no pools: every route goes straight to its `otherwise` step",
        ),
        ("pools:\n  hanoi: 3\n", "2:3: pool 'hanoi' must be a mapping of keys to values"),
        ("pools: {a: [\n", "2:1: YAML syntax: expected the node content, but found '<stream end>'"),
    ],
)
def test_the_shape_of_the_file_is_checked(tmp_path: Path, text: str, expected: str) -> None:
    _, problems = load(tmp_path, text)

    assert expected in located(problems)


def test_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    pools, problems = load_pools(tmp_path / "nowhere" / "pools.yaml")

    assert pools is None
    assert [p.line for p in problems] == [1]
    assert "cannot read the pools" in problems[0].message


def test_unserved_queues(tmp_path: Path) -> None:
    pools, _ = load(tmp_path, CONTRACT_EXAMPLE)

    assert pools is not None
    assert unserved_queues(pools, ["billing", "sales", "tech", "claims"]) == {"sales", "claims"}


@pytest.mark.parametrize(
    ("data", "where", "byte"),
    [
        # The column counts characters: "ă" is two bytes but one column.
        (b"pools:\n  hanoi:\n    queues: [\xc4\x83n\xff]\n", "3:16", "0xff at offset 32"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "1:1", "0x89 at offset 0"),
    ],
)
def test_an_undecodable_file_is_reported_at_its_first_bad_byte(
    tmp_path: Path, data: bytes, where: str, byte: str
) -> None:
    path = tmp_path / "pools.yaml"
    path.write_bytes(data)

    pools, problems = load_pools(path)

    assert pools is None
    assert located(problems) == [f"{where}: not UTF-8 text (byte {byte})"]


def test_a_call_from_an_agents_address_finds_her_pool_serving_the_queue_first(
    tmp_path: Path,
) -> None:
    pools, problems = load(
        tmp_path,
        """
        pools:
          cairo:
            timezone: Africa/Cairo
            queues: [tech]
            shifts: [{days: daily, from: "00:00", to: "24:00"}]
            agents: [{name: Lan, phone: "+84901234567"}]
          hanoi:
            timezone: Asia/Ho_Chi_Minh
            queues: [billing]
            shifts: [{days: daily, from: "00:00", to: "24:00"}]
            agents:
              - {name: Lan, phone: "+84901234567"}
              - {name: Minh, client: minh}
              - {name: Desk, sip: "sip:desk@pbx.example.com"}
        """,
    )
    assert pools is not None and not problems
    addresses = ("+84901234567", "client:Minh", "sip:DESK@pbx.example.com;transport=tls",
                 "+84900000000", "minh")  # fmt: skip
    hits = {address: pools.reached_at(address, "billing") for address in addresses}
    found = {address: hit and (hit[0].name, hit[1].name) for address, hit in hits.items()}
    assert found == {
        "+84901234567": ("hanoi", "Lan"),  # her pool that serves billing, not the first listed
        "client:Minh": ("hanoi", "Minh"),
        "sip:DESK@pbx.example.com;transport=tls": ("hanoi", "Desk"),
        "+84900000000": None,
        "minh": None,  # a client identity comes as client:minh
    }
    hit = pools.reached_at("+84901234567", "tech")
    assert hit is not None and hit[0].name == "cairo"


def test_one_name_at_two_addresses_in_two_pools_is_a_warning(tmp_path: Path) -> None:
    two_pools = TEMPLATE.format(**GOOD) + (
        "  london:\n    timezone: Europe/London\n    queues: [billing]\n"
        '    shifts: [{days: daily, from: "08:00", to: "17:00"}]\n'
        '    agents: [{name: Lan, phone: "+447700900123"}]\n'
    )
    pools, problems = load(tmp_path, two_pools)

    assert pools is not None
    assert located(problems) == [
        "13:14: warning: agent 'Lan' is also in pool 'hanoi', at +84901234567: presence is kept "
        "by id (lan), so marking one away marks both (give one its own `id`, or both the same "
        "`id` if they are one person)"
    ]
    shared = two_pools.replace("{name: Lan, phone", "{name: Lan, id: lan, phone")
    assert load(tmp_path, shared)[1] == []
