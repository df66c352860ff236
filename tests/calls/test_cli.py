"""`ivr calls`, `ivr calls show` and `ivr kpis` through the CLI runner, on a real Redis."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from ivr.cli import cli
from ivr.commands.calls import calls, kpis_command
from ivr.store import Store
from tests.calls.builders import T0, record_call
from tests.conftest import Caller


@pytest.fixture
def env(redis_url: str, tmp_path: Path, flows_dir: Path) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "IVR_DATA_DIR": str(tmp_path), "IVR_FLOWS_DIR": str(flows_dir)}


def test_a_call_placed_through_the_webhooks_is_listed(
    caller: Caller, runner: CliRunner, env: dict[str, str], connection: redis.Redis
) -> None:
    caller.twiml("/voice/incoming")
    assert caller.post("/voice/status", CallStatus="completed", CallDuration="9").status_code == 200
    result = runner.invoke(calls, ["--json", "--flow", "support"], env=env)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["sid"] == caller.sid and row["from"] == "+84901111222"
    assert row["outcome"] == "self_service" and row["duration"] == 9
    assert row["started_at"].endswith("Z") and row["ended_at"].endswith("Z")


def test_listing_filters_and_csv_neutralises_formulas(
    runner: CliRunner, env: dict[str, str], connection: redis.Redis
) -> None:
    store = Store(connection)
    record_call(store, "CA1", T0, caller="=HYPERLINK(1)", outcome="answered")
    record_call(store, "CA2", T0 + 60, outcome="abandoned", queue="tech")
    record_call(store, "CA0", T0 - 60, caller="\t=1+2", outcome="answered")
    result = runner.invoke(calls, ["--csv"], env=env)
    assert result.exit_code == 0, result.output
    table = list(csv.reader(io.StringIO(result.output)))
    assert table[0][:3] == ["sid", "from", "to"] and len(table[0]) == 15
    assert [r[0] for r in table[1:]] == ["CA2", "CA1", "CA0"]
    assert table[2][1] == "'=HYPERLINK(1)" and table[3][1] == "'\t=1+2"
    only = runner.invoke(calls, ["--json", "--outcome", "abandoned", "--queue", "tech"], env=env)
    assert [c["sid"] for c in json.loads(only.output)] == ["CA2"]
    since = runner.invoke(calls, ["--json", "--since", "2026-05-28T20:27:00"], env=env)
    assert [c["sid"] for c in json.loads(since.output)] == ["CA2"]
    text = runner.invoke(calls, ["--limit", "1"], env=env)
    assert text.exit_code == 0 and "CA2" in text.output and "CA1" not in text.output


def test_bad_input_exits_2_and_says_why(runner: CliRunner, env: dict[str, str]) -> None:
    for args, word in [
        (["--since", "yesterday"], "ISO-8601"),
        (["--outcome", "lost"], "lost"),
        (["--limit", "0"], "limit"),
        (["--since", "2026-05-28T21:00:00", "--until", "2026-05-28T20:00+00:00"], "--since"),
        (["--until", "0001-01-01T00:00:00+01:00"], "years 1 to 9999"),  # 31 December of year 0
        (["trim", "--before", "9999-12-31T23:30:00-01:00"], "years 1 to 9999"),
    ]:
        result = runner.invoke(calls, args, env=env)
        assert result.exit_code == 2 and word in result.output, result.output
    bad_zone = runner.invoke(kpis_command, ["--from", "2026-05-01", "--to", "2026-05-02",
                                            "--tz", "Mars/Olympus"], env=env)  # fmt: skip
    assert bad_zone.exit_code == 2 and "Mars/Olympus" in bad_zone.output
    for zone in ("Europe", "x" * 300):  # a tzdata directory; a name too long for a file
        area = runner.invoke(kpis_command, ["--from", "2026-05-01", "--to", "2026-05-02",
                                            "--tz", zone], env=env)  # fmt: skip
        assert area.exit_code == 2 and "unknown time zone" in area.output, area.output
    backwards = runner.invoke(kpis_command, ["--from", "2026-05-03", "--to", "2026-05-02"], env=env)
    assert backwards.exit_code == 2
    bad_day = runner.invoke(kpis_command, ["--from", "2026-13-01", "--to", "2026-05-02"], env=env)
    assert bad_day.exit_code == 2
    for far, word in [(["--to", "9999-12-31", "--by", "queue"], "out of range"),
                      (["--to", "9999-12-30"], "at most 3660 days"),
                      (["--to", "0003-01-01", "--by", "hour"], "at most 366 days")]:  # fmt: skip
        result = runner.invoke(kpis_command, ["--from", "0001-01-01", *far], env=env)
        assert result.exit_code == 2 and word in result.output, result.output


def test_show_prints_the_timeline_with_passed_over_pools(
    runner: CliRunner, env: dict[str, str], connection: redis.Redis
) -> None:
    record_call(Store(connection), "CA1", T0, outcome="answered", wait=4)
    body = json.loads(runner.invoke(calls, ["show", "CA1", "--json"], env=env).output)
    assert body["sid"] == "CA1" and body["wait_seconds"] == 4
    assert [e["kind"] for e in body["events"]][:3] == ["call_started", "route", "agent_answered"]
    assert body["events"][0]["at"] == "2026-05-28T20:26:40.000Z"
    text = runner.invoke(calls, ["show", "CA1"], env=env).output
    assert "+    10.0s  route" in text and "pools=hanoi " in text
    assert "passed over cairo: off shift" in text
    missing = runner.invoke(calls, ["show", "CAnone"], env=env)
    assert missing.exit_code == 1 and "CAnone" in missing.output


def test_kpis_json_and_table(
    runner: CliRunner, env: dict[str, str], connection: redis.Redis
) -> None:
    store = Store(connection)
    record_call(store, "CA1", T0, outcome="answered", wait=5)
    record_call(store, "CA2", T0 + 60, outcome="answered", wait=40)
    record_call(store, "CA3", T0 + 120, outcome="abandoned")
    record_call(store, "CA4", T0 + 86400 * 3, outcome="answered")  # outside the days asked
    args = ["--from", "2026-05-28", "--to", "2026-05-29", "--json"]
    report = json.loads(runner.invoke(kpis_command, args, env=env).output)
    assert [r["key"] for r in report["rows"]] == ["2026-05-28", "2026-05-29"]
    total = report["total"]
    assert total["calls"] == 3 and total["offered"] == 3 and total["answered"] == 2
    assert total["service_level"] == pytest.approx(1 / 3, abs=1e-4)
    assert total["asa_seconds"] == 22.5 and total["abandon_rate"] == pytest.approx(1 / 3, abs=1e-4)
    # Ho Chi Minh City is UTC+7: those 20:26 UTC calls fall on the 29th there.
    day = ["--from", "2026-05-29", "--to", "2026-05-29", "--json", "--by", "queue"]
    utc = json.loads(runner.invoke(kpis_command, day, env=env).output)
    local = json.loads(
        runner.invoke(kpis_command, [*day, "--tz", "Asia/Ho_Chi_Minh"], env=env).output
    )
    assert utc["total"]["calls"] == 0
    assert [(r["key"], r["calls"]) for r in local["rows"]] == [("billing", 3)]
    table = runner.invoke(kpis_command, args[:-1], env=env).output.splitlines()
    assert table[0].split()[:3] == ["key", "calls", "offered"]
    assert table[-1].split()[:2] == ["total", "3"] and "33.3%" in table[-1]


def test_trim_drops_calls_before_the_cutoff(
    runner: CliRunner, env: dict[str, str], connection: redis.Redis
) -> None:
    store = Store(connection)
    record_call(store, "CAold", T0)
    record_call(store, "CAnew", T0 + 7200)
    result = runner.invoke(calls, ["trim", "--before", "2026-05-28T21:00:00Z"], env=env)
    assert result.exit_code == 0 and result.output.startswith("1 calls"), result.output
    listed = json.loads(runner.invoke(calls, ["--json"], env=env).output)
    assert [c["sid"] for c in listed] == ["CAnew"]


def test_a_retention_longer_than_calendars_reach_is_refused_plainly(
    runner: CliRunner, env: dict[str, str]
) -> None:
    too_long = {**env, "IVR_RETENTION_DAYS": "1000000"}
    result = runner.invoke(cli, ["calls", "trim"], env=too_long)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1 and "IVR_RETENTION_DAYS must be at most 36500" in result.output
    century = runner.invoke(cli, ["calls", "trim"], env={**env, "IVR_RETENTION_DAYS": "36500"})
    assert century.exit_code == 0 and "dropped from the indexes" in century.output
