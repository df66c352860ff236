"""`ivr check`: problems printed as path:line:col, a summary on stderr, exit 1 on any error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import ivr.cli
from ivr.cli import cli

SAMPLES = Path(__file__).resolve().parents[2] / "call_flows"

FLOW = """\
flow: support
numbers: ["+15005550006"]
steps:
  main:
    menu:
      prompt: "Billing, press 1."
      options: {"1": billing}
  billing: {route: {queue: billing, otherwise: voicemail}}
  voicemail: {voicemail: {}}
"""

POOLS = """\
pools:
  hanoi:
    timezone: Asia/Ho_Chi_Minh
    queues: [billing]
    shifts: [{days: mon-fri, from: "08:00", to: "17:00"}]
    agents: [{name: Lan, phone: "+84901234567"}]
"""


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    ivr.cli._register()


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    target = tmp_path / "call_flows"
    target.mkdir()
    (target / "support.yaml").write_text(FLOW, encoding="utf-8")
    (target / "pools.yaml").write_text(POOLS, encoding="utf-8")
    return target


def test_the_samples_pass(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", str(SAMPLES)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == f"{SAMPLES}: 3 flows, no problems\n"


def test_the_samples_as_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", str(SAMPLES), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "ok": True,
        "problems": [],
        "flows": ["agents", "hours", "support"],
    }
    assert result.stderr == ""


def test_the_directory_defaults_to_ivr_flows_dir(
    runner: CliRunner, flows: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVR_FLOWS_DIR", str(flows))
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"{flows}: 1 flow,")


def test_an_error_exits_1_and_is_printed_with_its_place(runner: CliRunner, flows: Path) -> None:
    (flows / "support.yaml").write_text(FLOW.replace('{"1": billing}', '{"1": sales}'))
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{flows}/support.yaml:7:17: step 'main': option '1' leads to unknown step 'sales'",
        f"{flows}/support.yaml:8:3: warning: step 'billing': never reached from start step 'main'",
    ]
    assert result.stderr == f"{flows}: 1 flow, 1 error, 1 warning\n"


def test_an_error_as_json(runner: CliRunner, flows: Path) -> None:
    (flows / "support.yaml").write_text(FLOW.replace('{"1": billing}', '{"1": sales}'))
    result = runner.invoke(cli, ["check", str(flows), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["flows"] == ["support"]
    assert report["problems"][0] == {
        "path": f"{flows}/support.yaml",
        "line": 7,
        "col": 17,
        "severity": "error",
        "message": "step 'main': option '1' leads to unknown step 'sales'",
    }


def test_warnings_alone_exit_0(runner: CliRunner, flows: Path) -> None:
    (flows / "support.yaml").write_text(FLOW + "  lost: {say: Hi.}\n")
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 0
    assert result.stdout == (
        f"{flows}/support.yaml:10:3: warning: step 'lost': never reached from start step 'main'\n"
    )


def test_a_routed_queue_no_pool_serves(runner: CliRunner, flows: Path) -> None:
    (flows / "pools.yaml").write_text(POOLS.replace("[billing]", "[tech]"))
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 1
    assert result.stdout == (
        f"{flows}/support.yaml:8:3: step 'billing': queue 'billing' is served by no pool in "
        "pools.yaml (queues served: tech)\n"
    )


def test_an_agent_on_a_number_the_router_answers(runner: CliRunner, flows: Path) -> None:
    (flows / "pools.yaml").write_text(POOLS.replace("+84901234567", "+15005550006"))
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 1
    assert result.stdout == (
        f"{flows}/pools.yaml:6:26: agent 'Lan' of pool 'hanoi': +15005550006 is answered by "
        "flow 'support', so ringing the agent would call back into this router\n"
    )


@pytest.mark.parametrize("name", ["pools", "tickets"])
def test_pools_or_tickets_spelt_yml_are_refused_not_ignored(
    runner: CliRunner, flows: Path, name: str
) -> None:
    (flows / f"{name}.yml").write_text(POOLS if name == "pools" else "sinks: []\n")
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 1
    assert result.stdout == f"{flows}/{name}.yml:1:1: {name}.yml is not read: name it {name}.yaml\n"


def test_pool_and_agent_languages_no_flow_speaks(runner: CliRunner, flows: Path) -> None:
    languages = POOLS.replace(
        "    queues: [billing]\n", "    queues: [billing]\n    languages: [vi]\n"
    )
    languages = languages.replace(
        'phone: "+84901234567"', 'phone: "+84901234567", languages: [en-GB]'
    )
    (flows / "pools.yaml").write_text(languages)
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 0
    assert result.stdout == (
        f"{flows}/pools.yaml:5:17: warning: pool 'hanoi' lists vi, which no flow speaks (flows "
        "speak: en-US): no caller is vi\n"
        f"{flows}/pools.yaml:7:49: warning: agent 'Lan' of pool 'hanoi' takes only en-GB, which "
        "no flow speaks (flows speak: en-US): the agent is never rung\n"
    )


def test_pool_problems_are_reported(runner: CliRunner, flows: Path) -> None:
    (flows / "pools.yaml").write_text(POOLS.replace("Asia/Ho_Chi_Minh", "Asia/Hanoi"))
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{flows}/pools.yaml:3:5: unknown time zone 'Asia/Hanoi'")


def test_without_pools_routes_are_a_warning(runner: CliRunner, flows: Path) -> None:
    (flows / "pools.yaml").unlink()
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 0
    assert result.stdout == (
        f"{flows}/support.yaml:8:3: warning: step 'billing': there is no pools.yaml in {flows}, "
        "so every route goes straight to its otherwise step\n"
    )


def test_a_broken_sample_copy(runner: CliRunner, tmp_path: Path) -> None:
    copy = tmp_path / "flows"
    shutil.copytree(SAMPLES, copy, ignore=shutil.ignore_patterns("scenarios"))
    hours = copy / "hours.yaml"
    hours.write_text(hours.read_text(encoding="utf-8").replace('ar-XA: "العودة', 'fr-FR: "Re'))
    result = runner.invoke(cli, ["check", str(copy)])
    assert result.exit_code == 1
    assert "step 'back': say has no text for ar-XA" in result.stdout


@pytest.mark.parametrize("setup", ["missing", "empty"])
def test_no_flows_to_check_is_an_error(runner: CliRunner, tmp_path: Path, setup: str) -> None:
    target = tmp_path / "call_flows"
    if setup == "empty":
        target.mkdir()
    result = runner.invoke(cli, ["check", str(target)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{target}:1:1: ")


def test_an_undecodable_file_is_named_and_hides_no_other_file(
    runner: CliRunner, flows: Path
) -> None:
    (flows / "binary.yaml").write_bytes(b"flow: binary\nsteps: {}\n\xff\xfe\x00junk")
    (flows / "support.yaml").write_text(FLOW.replace('{"1": billing}', '{"1": sales}'))
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{flows / 'binary.yaml'}:3:1: not UTF-8 text (byte 0xff at offset 23)"
    assert any(line.startswith(f"{flows / 'support.yaml'}:") for line in lines[1:]), lines


def test_undecodable_pools_and_tickets_files_are_located_beside_the_flows(
    runner: CliRunner, flows: Path
) -> None:
    (flows / "pools.yaml").write_bytes(POOLS.encode().replace(b"Lan", b"L\xe2n"))
    (flows / "tickets.yaml").write_bytes(b"sinks:\n  - {type: \xffwebhook}\n")
    (flows / "support.yaml").write_bytes(FLOW.encode().replace(b"Billing,", b"Bill\xc3ing,"))
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{flows / 'pools.yaml'}:6:22: not UTF-8 text (byte 0xe2 at offset 148)",
        f"{flows / 'support.yaml'}:6:20: not UTF-8 text (byte 0xc3 at offset 84)",
        f"{flows / 'tickets.yaml'}:2:12: not UTF-8 text (byte 0xff at offset 18)",
    ]


def test_a_nul_byte_is_reported_where_it_is(runner: CliRunner, flows: Path) -> None:
    (flows / "support.yaml").write_text(FLOW.replace("Billing, press 1.", "Billing,\0 press 1."))
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{flows / 'support.yaml'}:6:24: YAML syntax: character U+0000 is not allowed in "
        'YAML text (in step "main")'
    ]


def test_an_alias_bomb_is_refused_at_once(runner: CliRunner, flows: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        levels.append(f"a{level}: &a{level} [{refs}]")
    (flows / "bomb.yaml").write_text("flow: bomb\nvars:\n" + "".join(f"  {x}\n" for x in levels))
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 1
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{flows / 'bomb.yaml'}:")
    assert "aliases expand to more than 10000 values" in line


def test_a_syntax_error_names_its_step(runner: CliRunner, flows: Path) -> None:
    broken = FLOW.replace('prompt: "Billing, press 1."', 'prompt: "Billing, press 1.')
    (flows / "support.yaml").write_text(broken)
    result = runner.invoke(cli, ["check", str(flows)])
    assert result.exit_code == 1
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{flows / 'support.yaml'}:")
    assert line.endswith('(in step "main")'), line
