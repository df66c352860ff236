"""`ivr simulate` through click's runner: scripted calls, JSON, and scenario files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from ivr.commands.simulate import simulate
from tests.conftest import AUTH_TOKEN, ROOT


@pytest.fixture
def env(tmp_path: Path, flows_dir: Path, redis_url: str, connection: redis.Redis) -> dict[str, str]:
    return {"IVR_FLOWS_DIR": str(flows_dir), "IVR_DATA_DIR": str(tmp_path / "var"),
            "REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}  # fmt: skip


def test_scripted_call_prints_what_the_caller_hears(runner: CliRunner, env: dict[str, str]) -> None:
    result = runner.invoke(simulate, ["--press", "3", "--press", "0"], env=env)
    assert result.exit_code == 0, result.output
    assert "[ar-XA] للفواتير" in result.output
    assert "steps: welcome > choose_language > main > bye; outcome: self_service" in result.output


def test_json_output_has_the_steps_and_heard(runner: CliRunner, env: dict[str, str]) -> None:
    result = runner.invoke(simulate, ["--press", "2", "--say", "tạm biệt", "--json"], env=env)
    assert result.exit_code == 0, result.output
    call = json.loads(result.output)
    assert call["steps"][-1] == "bye" and call["outcome"] == "self_service"
    assert any(h["language"] == "vi-VN" for h in call["heard"])


def test_sample_scenarios_pass(runner: CliRunner, env: dict[str, str]) -> None:
    scenario = ROOT / "call_flows" / "scenarios" / "support.yaml"
    result = runner.invoke(simulate, ["--scenario", str(scenario)], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == 4


def test_a_scenario_that_does_not_hold_fails(
    runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    scenario = tmp_path / "wrong.yaml"
    scenario.write_text(
        'calls:\n  - name: expects billing\n    inputs: ["1", "0"]\n'
        "    expect: {steps: [billing], outcome: voicemail}\n"
    )
    result = runner.invoke(simulate, ["--scenario", str(scenario)], env=env)
    assert result.exit_code == 1
    assert (
        "FAIL" in result.output and "outcome 'self_service', expected 'voicemail'" in result.output
    )
