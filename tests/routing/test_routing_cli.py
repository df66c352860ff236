"""`ivr route` and `ivr coverage` through click's runner, JSON and human output."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from ivr.commands.agents import agents
from ivr.commands.routing import coverage, route
from ivr.store import Store

POOLS_YAML = """\
pools:
  hanoi:
    timezone: Asia/Ho_Chi_Minh
    queues: [billing, tech]
    languages: [vi-VN, en-US]
    priority: 1
    shifts:
      - {days: mon-fri, from: "08:00", to: "17:00"}
      - {days: [sat], from: "22:00", to: "06:00"}
    holidays: {country: VN, dates: ["2026-09-02"]}
    agents:
      - {name: Lan, phone: "+84901234567"}
      - {name: Minh, client: minh}
  cairo:
    timezone: Africa/Cairo
    queues: [billing]
    languages: [ar-XA, en-US]
    shifts:
      - {days: sun-thu, from: "09:00", to: "16:00"}
    agents:
      - {name: Omar, phone: "+201001234567"}
  london:
    timezone: Europe/London
    queues: [tech]
    languages: [en-US]
    shifts:
      - {days: daily, from: "08:00", to: "20:00"}
    agents:
      - {name: Ann Lee, phone: "+447700900123"}
"""


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # No Redis holds presence here unless a test gives one.
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "no-data-yet"))
    directory = tmp_path / "call_flows"
    directory.mkdir()
    (directory / "pools.yaml").write_text(POOLS_YAML, encoding="utf-8")
    return directory


def run_json(
    runner: CliRunner, command: object, *args: str, env: dict[str, str] | None = None
) -> object:
    result = runner.invoke(command, list(args), env=env)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_route_json_names_the_pool_the_order_and_the_reason(runner: CliRunner, flows: Path) -> None:
    found = run_json(
        runner,
        route,
        *("--flows", str(flows), "--queue", "billing", "--language", "ar-XA"),
        *("--at", "2026-03-02T08:00:00Z", "--json"),
    )

    assert found == {
        "pool": "cairo",
        "pools": ["cairo", "hanoi"],
        "reason": "cairo on shift (Mon 10:00 Africa/Cairo), speaks ar-XA, priority 100",
        "at": "2026-03-02T08:00:00Z",
        "agents": {"cairo": ["omar"], "hanoi": ["lan", "minh"]},
        "skipped": {},
        "passed_over": [{"pool": "london", "reason": "does not serve queue billing"}],
        "away": [],
    }


def test_route_json_when_nobody_is_on_shift(runner: CliRunner, flows: Path) -> None:
    found = run_json(
        runner,
        route,
        *("--flows", str(flows), "--queue", "billing", "--at", "2026-09-02T03:00", "--json"),
    )

    assert isinstance(found, dict)
    assert (found["pool"], found["pools"]) == (None, [])
    assert found["reason"] == "no pool serving billing is on shift"
    assert found["passed_over"][0] == {"pool": "hanoi", "reason": "holiday, National Day"}


def test_route_reads_an_instant_without_offset_as_utc(runner: CliRunner, flows: Path) -> None:
    naive = run_json(
        runner,
        route,
        "--flows",
        str(flows),
        "--queue",
        "tech",
        "--at",
        "2026-03-06T14:05",
        "--json",
    )
    offset = run_json(
        runner,
        route,
        "--flows",
        str(flows),
        "--queue",
        "tech",
        "--at",
        "2026-03-06T21:05+07:00",
        "--json",
    )

    assert naive == offset


def test_route_for_people_lists_the_order_and_who_was_passed_over(
    runner: CliRunner, flows: Path
) -> None:
    result = runner.invoke(
        route,
        [
            "--flows",
            str(flows),
            "--queue",
            "tech",
            "--at",
            "2026-03-06T14:05Z",
            "--away",
            "Ann Lee",
        ],
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "At 2026-03-06 14:05:00 UTC, a call for tech goes to the route's `otherwise` step: "
        "no agent available in the pools serving tech on shift",
        "Passed over:",
        "  hanoi: off shift, Fri 21:05 Asia/Ho_Chi_Minh, shift ended 17:00, next starts Sat 22:00",
        "  cairo: does not serve queue tech",
        "  london: no agent available",
    ]


def test_route_for_people_when_a_pool_takes_the_call(runner: CliRunner, flows: Path) -> None:
    result = runner.invoke(
        route,
        [
            "--flows",
            str(flows),
            "--queue",
            "tech",
            "--language",
            "vi-VN",
            "--at",
            "2026-03-02T08:00Z",
        ],
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:4] == [
        "At 2026-03-02 08:00:00 UTC, a call for tech in vi-VN goes to hanoi: "
        "hanoi on shift (Mon 15:00 Asia/Ho_Chi_Minh), speaks vi-VN, priority 1",
        "Pools in order:",
        "  1. hanoi (simultaneous): Lan, Minh",
        "  2. london (simultaneous): Ann Lee",
    ]


def test_route_finds_pools_through_the_environment(runner: CliRunner, flows: Path) -> None:
    result = runner.invoke(
        route,
        ["--queue", "tech", "--at", "2026-03-02T08:00Z", "--json"],
        env={"IVR_FLOWS_DIR": str(flows)},
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pool"] == "hanoi"


def test_route_warns_about_an_unknown_away_agent(runner: CliRunner, flows: Path) -> None:
    result = runner.invoke(
        route,
        ["--flows", str(flows), "--queue", "tech", "--away", "Zed", "--at", "2026-03-02T08:00Z"],
    )

    assert result.exit_code == 0
    assert "warning: --away Zed: no agent has this id or name" in result.stderr


def test_away_by_a_name_two_agents_share_is_refused_not_the_first_taken(
    runner: CliRunner, flows: Path
) -> None:
    text = POOLS_YAML.replace("{name: Ann Lee,", "{name: Lan, id: lan-london,")
    text = text.replace("{name: Lan, phone", "{name: Lan, id: lan-hanoi, phone")
    (flows / "pools.yaml").write_text(text, encoding="utf-8")
    asked = ["--flows", str(flows), "--queue", "tech", "--at", "2026-03-02T08:00Z"]
    result = runner.invoke(route, [*asked, "--away", "lan"])
    assert result.exit_code == 2 and "names several agents" in result.output, result.output
    assert "lan-hanoi" in result.output and "lan-london" in result.output
    by_id = run_json(runner, route, *asked, "--away", "lan-london", "--json")
    assert by_id["away"] == ["lan-london"]  # type: ignore[index]


def test_a_bad_instant_is_a_usage_error(runner: CliRunner, flows: Path) -> None:
    result = runner.invoke(route, ["--flows", str(flows), "--queue", "tech", "--at", "tomorrow"])

    assert result.exit_code == 2
    assert "not an ISO-8601 instant: 'tomorrow'" in result.stderr


def test_a_misspelt_language_is_a_usage_error(runner: CliRunner, flows: Path) -> None:
    for command, extra in ((route, []), (coverage, ["--from", "2026-03-02", "--days", "1"])):
        args = ["--flows", str(flows), "--queue", "billing", "--language", "vi_VN", *extra]
        result = runner.invoke(command, args)

        assert result.exit_code == 2
        assert "'vi_VN' is not a language tag such as en-US" in result.stderr


def test_a_queue_or_language_no_pool_has_is_warned_about(runner: CliRunner, flows: Path) -> None:
    for command, extra in ((route, []), (coverage, ["--from", "2026-03-02", "--days", "1"])):
        args = ["--flows", str(flows), "--queue", "biling", "--language", "fr-FR", "--json"]
        result = runner.invoke(command, [*args, *extra])

        assert result.exit_code == 0
        json.loads(result.stdout)  # the warnings stay off stdout
        assert (
            "warning: no pool serves queue 'biling' (queues served: billing, tech)" in result.stderr
        )
        assert "warning: no pool speaks fr-FR (languages spoken: ar-XA, en-US, vi-VN)" in (
            result.stderr
        )


def test_a_language_in_another_letter_case_is_the_same_language(
    runner: CliRunner, flows: Path
) -> None:
    args = ["--flows", str(flows), "--queue", "billing", "--at", "2026-03-02T03:00Z", "--json"]
    lower = run_json(runner, route, *args, "--language", "vi-vn")
    usual = run_json(runner, route, *args, "--language", "vi-VN")

    assert lower == usual


@pytest.mark.parametrize("at", ["0001-01-01T00:00Z", "9999-12-31T23:59Z"])
def test_an_instant_at_the_edge_of_the_calendar_is_a_usage_error(
    runner: CliRunner, flows: Path, at: str
) -> None:
    result = runner.invoke(route, ["--flows", str(flows), "--queue", "tech", "--at", at])

    assert result.exit_code == 2
    assert "outside the years routing can plan for" in result.stderr


@pytest.mark.parametrize(("first", "days"), [("0001-01-01", "1"), ("9999-12-25", "3")])
def test_coverage_at_the_edge_of_the_calendar_is_a_usage_error(
    runner: CliRunner, flows: Path, first: str, days: str
) -> None:
    args = ["--flows", str(flows), "--queue", "tech", "--from", first, "--days", days]
    result = runner.invoke(coverage, args)

    assert result.exit_code == 2
    assert "outside the years routing can plan for" in result.stderr


def test_configuration_errors_are_printed_with_their_place_and_exit_1(
    runner: CliRunner, flows: Path
) -> None:
    pools_file = flows / "pools.yaml"
    pools_file.write_text(POOLS_YAML.replace("Africa/Cairo", "Africa/Kairo"), encoding="utf-8")

    for command, extra in ((route, []), (coverage, ["--from", "2026-03-02", "--days", "1"])):
        result = runner.invoke(command, ["--flows", str(flows), "--queue", "billing", *extra])
        assert result.exit_code == 1
        assert result.stdout == ""
        assert f"{pools_file}:15:5: unknown time zone 'Africa/Kairo'" in result.stderr


def test_coverage_json_is_exactly_the_gaps_in_utc(runner: CliRunner, flows: Path) -> None:
    found = run_json(
        runner,
        coverage,
        *("--flows", str(flows), "--queue", "billing", "--from", "2026-03-02", "--days", "2"),
        "--json",
    )

    assert found == {
        "gaps": [
            {"start": "2026-03-02T00:00:00Z", "end": "2026-03-02T01:00:00Z"},
            {"start": "2026-03-02T14:00:00Z", "end": "2026-03-03T01:00:00Z"},
            {"start": "2026-03-03T14:00:00Z", "end": "2026-03-04T00:00:00Z"},
        ]
    }


def test_coverage_with_a_language_counts_only_pools_speaking_it(
    runner: CliRunner, flows: Path
) -> None:
    found = run_json(
        runner,
        coverage,
        *("--flows", str(flows), "--queue", "billing", "--language", "vi-VN"),
        *("--from", "2026-03-02", "--days", "1", "--json"),
    )

    assert found == {
        "gaps": [
            {"start": "2026-03-02T00:00:00Z", "end": "2026-03-02T01:00:00Z"},
            {"start": "2026-03-02T10:00:00Z", "end": "2026-03-03T00:00:00Z"},
        ]
    }


def test_coverage_for_people_shows_utc_and_each_pools_local_time(
    runner: CliRunner, flows: Path, tmp_path: Path
) -> None:
    drawing = tmp_path / "week.svg"
    result = runner.invoke(
        coverage,
        [
            *("--flows", str(flows), "--queue", "billing", "--from", "2026-03-02"),
            *("--days", "10", "--svg", str(drawing)),
        ],
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "Coverage of billing, 2026-03-02 00:00 to 2026-03-12 00:00 UTC",
        "Pools: hanoi (Asia/Ho_Chi_Minh), cairo (Africa/Cairo)",
        "11 gap(s), 5d 5h 00m in all:",
    ]
    assert lines[4].split() == [
        "start",
        "(UTC)",
        "end",
        "(UTC)",
        "length",
        "local",
        "time",
        "in",
        "each",
        "pool,",
        "and",
        "why",
    ]
    # Each pool's local times, then why it is closed as the gap begins: `ivr route`'s words.
    assert re.split(r"\s{2,}", lines[5]) == [
        *("2026-03-02 00:00", "2026-03-02 01:00", "1h 00m"),
        *("hanoi", "Mon 03-02 07:00 to Mon 03-02 08:00"),
        "off shift, Mon 07:00 Asia/Ho_Chi_Minh, shift ended Sun 06:00, next starts 08:00",
    ]
    assert re.split(r"\s{2,}", lines[6].strip()) == [
        "cairo",
        "Mon 03-02 02:00 to Mon 03-02 03:00",
        "off shift, Mon 02:00 Africa/Cairo, shift ended Sun 16:00, next starts 09:00",
    ]
    root = ET.parse(drawing).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    ticks = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "Sun 03-08" in ticks and "Mon 03-09" not in ticks  # seven days drawn at most
    assert f"wrote {drawing}" in result.stderr


def test_coverage_says_when_the_drawing_cannot_be_written(
    runner: CliRunner, flows: Path, tmp_path: Path
) -> None:
    drawing = tmp_path / "no-such-folder" / "week.svg"
    args = ["--flows", str(flows), "--queue", "billing", "--from", "2026-03-02", "--days", "1"]
    result = runner.invoke(coverage, [*args, "--svg", str(drawing)])

    assert result.exit_code == 1
    assert f"Error: cannot write {drawing}: No such file or directory" in result.stderr


def test_coverage_when_no_pool_serves_the_queue(runner: CliRunner, flows: Path) -> None:
    result = runner.invoke(
        coverage, ["--flows", str(flows), "--queue", "sales", "--from", "2026-03-02", "--days", "1"]
    )

    assert result.exit_code == 0
    assert "No pool serves sales: nobody takes these calls." in result.stdout
    assert "1 gap(s), 1d 0h 00m in all:" in result.stdout


def test_coverage_needs_at_least_one_day(runner: CliRunner, flows: Path) -> None:
    result = runner.invoke(
        coverage,
        ["--flows", str(flows), "--queue", "billing", "--from", "2026-03-02", "--days", "0"],
    )

    assert result.exit_code == 2


def test_an_agent_with_languages_is_skipped_for_other_callers_and_says_why(
    runner: CliRunner, flows: Path
) -> None:
    pools_file = flows / "pools.yaml"
    lan = '{name: Lan, phone: "+84901234567"}'
    pools_file.write_text(POOLS_YAML.replace(lan, lan[:-1] + ", languages: [vi-VN]}"))
    asked = ["--flows", str(flows), "--queue", "billing", "--at", "2026-03-02T08:00Z"]

    english = run_json(runner, route, *asked, "--language", "en-US", "--json")
    vietnamese = run_json(runner, route, *asked, "--language", "vi-VN", "--json")
    people = runner.invoke(route, [*asked, "--language", "ar-XA"])

    assert isinstance(english, dict) and isinstance(vietnamese, dict)
    assert english["agents"]["hanoi"] == ["minh"]
    assert english["skipped"] == {"hanoi": [{"agent": "lan", "reason": "speaks only vi-VN"}]}
    assert vietnamese["agents"]["hanoi"] == ["lan", "minh"]
    assert "  2. hanoi (simultaneous): Minh (skipped: Lan speaks only vi-VN)" in people.stdout


def test_route_takes_agents_away_in_redis_as_away_and_adds_away_names_in_any_case(
    runner: CliRunner, flows: Path, redis_url: str, connection: redis.Redis
) -> None:
    Store(connection).set_presence("minh", "away")
    asked = ["--flows", str(flows), "--queue", "billing", "--at", "2026-03-02T08:00Z", "--json"]
    env = {"REDIS_URL": redis_url}

    stored = run_json(runner, route, *asked, env=env)
    both = run_json(runner, route, *asked, "--away", "LAN", env=env)

    assert isinstance(stored, dict) and isinstance(both, dict)
    assert stored["agents"]["hanoi"] == ["lan"] and stored["away"] == ["minh"]
    assert stored["skipped"] == {"hanoi": [{"agent": "minh", "reason": "away"}]}
    assert both["pools"] == ["cairo"] and both["away"] == ["lan", "minh"]
    assert {"pool": "hanoi", "reason": "no agent available"} in both["passed_over"]


def test_route_reads_the_presence_kept_by_the_embedded_redis_of_the_data_dir(
    runner: CliRunner, flows_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    env = {"IVR_FLOWS_DIR": str(flows_dir), "IVR_DATA_DIR": str(tmp_path / "var")}
    marked = runner.invoke(agents, ["away", "LAN"], env=env)
    assert marked.exit_code == 0, marked.output
    assert marked.stdout.strip() == "lan is now away"

    found = run_json(
        runner, route, "--queue", "billing", "--language", "vi-VN", "--at", "2026-03-02T02:00Z",
        "--json", env=env,
    )  # fmt: skip

    assert isinstance(found, dict)
    assert found["agents"]["hanoi"] == ["huong", "minh"] and found["away"] == ["lan"]
    assert not (tmp_path / "var" / "redis.url").exists(), "the server it started is stopped"


def test_route_warns_and_goes_on_when_redis_does_not_answer(runner: CliRunner, flows: Path) -> None:
    result = runner.invoke(
        route,
        ["--flows", str(flows), "--queue", "billing", "--at", "2026-03-02T08:00Z", "--json"],
        env={"REDIS_URL": "unix:///nonexistent/redis.sock"},
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pools"] == ["hanoi", "cairo"]
    assert "warning: agent presence not read" in result.stderr
