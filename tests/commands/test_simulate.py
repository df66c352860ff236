"""`ivr simulate` through click's runner: scripted calls, JSON, and scenario files."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from werkzeug.serving import make_server

from ivr.app import create_app
from ivr.commands.simulate import simulate
from ivr.phrases import phrase
from ivr.settings import Settings
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


def test_unquoted_keys_in_a_scenario_are_pressed(
    runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    scenario = tmp_path / "keys.yaml"
    scenario.write_text(
        "calls:\n  - inputs: [2, 1, {record: 9}]\n"
        "    expect: {steps: [main, billing, voicemail], outcome: voicemail}\n"
    )
    result = runner.invoke(simulate, ["--scenario", str(scenario), "--json"], env=env)
    assert result.exit_code == 0, result.output
    call = json.loads(result.output)
    assert call["ok"] and "choose_language" in call["steps"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('calls: ["1"]\n', "1:9: a call must be a map of name, from, to, country, inputs, expect"),
        ("calls:\n  - {inputs: [1], expect: [bye]}\n", "2:19: `expect` must be a map of steps"),
        ("calls:\n  - {inputs: [1], expct: {outcome: voicemail}}\n", "2:19: unknown key 'expct'"),
        (
            "calls:\n  - {inputs: [1], expect: {outcome: self-service}}\n",
            "2:28: 'self-service' is not an outcome (one of: answered, voicemail",
        ),
        ("calls:\n  - {inputs: [1, {record: long}]}\n", "2:19: `record` must be whole seconds"),
        ("calls:\n  - {inputs: [1, {dial: maybe}]}\n", "2:19: 'maybe' is not a Dial's status"),
        ("call: []\n", "1:1: unknown key 'call' (did you mean 'calls'?)"),
    ],
)
def test_a_mistake_in_a_scenario_is_located_and_nothing_runs(
    runner: CliRunner, env: dict[str, str], tmp_path: Path, text: str, expected: str
) -> None:
    scenario = tmp_path / "wrong.yaml"
    scenario.write_text(text)
    result = runner.invoke(simulate, ["--scenario", str(scenario)], env=env)
    assert result.exit_code == 1
    assert f"{scenario}:{expected}" in result.output
    assert "ok " not in result.output and "FAIL" not in result.output


def test_a_server_that_is_not_there_is_named_not_a_traceback(
    runner: CliRunner, env: dict[str, str]
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = runner.invoke(simulate, ["--url", url, "--press", "1"], env=env)
    assert result.exit_code == 1
    assert f"cannot reach the server at {url}: " in result.output
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://127.0.0.1:21", "http://127.0.0.1:99999"])
def test_a_url_that_is_no_server_is_a_usage_error(
    runner: CliRunner, env: dict[str, str], url: str
) -> None:
    result = runner.invoke(simulate, ["--url", url, "--press", "1"], env=env)
    assert result.exit_code == 2
    assert "is not a server's URL such as http://127.0.0.1:8000" in result.output


def test_flows_that_do_not_load_exit_1_with_the_check_errors(
    runner: CliRunner, env: dict[str, str], flows_dir: Path
) -> None:
    support = flows_dir / "support.yaml"
    support.write_text(support.read_text().replace("next: choose_language", "next: nowhere", 1))
    result = runner.invoke(simulate, ["--press", "0"], env=env)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert re.search(rf"^{re.escape(str(support))}:\d+:\d+: .*nowhere", result.output, re.M)


def test_a_call_that_ends_in_the_fallback_exits_1(
    runner: CliRunner, env: dict[str, str], flows_dir: Path
) -> None:
    support = flows_dir / "support.yaml"
    support.write_text(support.read_text().replace("default: true", "default: false", 1))
    result = runner.invoke(simulate, ["--to", "+15009999999"], env=env)  # no flow answers it
    assert phrase("apology", "en-US")[0] in result.output
    assert result.exit_code == 1, result.output
    assert "fallback" in result.output


@pytest.mark.parametrize("public_url", ["https://ivr.example.com", "https://x.example.com/ivr/"])
def test_in_process_with_a_public_url_signs_for_it(
    runner: CliRunner, env: dict[str, str], public_url: str
) -> None:
    result = runner.invoke(
        simulate, ["--press", "1", "--press", "0"], env={**env, "IVR_PUBLIC_URL": public_url}
    )
    assert result.exit_code == 0, result.output
    assert "HTTP 403" not in result.output
    assert "steps: welcome > choose_language > main > bye; outcome: self_service" in result.output


SERVER_API_TOKEN = "the-server-api-token"


@contextmanager
def _served(env: dict[str, str]) -> Iterator[str]:
    """The real app built from `env`, over loopback HTTP; its base URL."""
    server = make_server("127.0.0.1", 0, create_app(Settings.from_env(env)), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture
def other_server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The real app over loopback HTTP, with an auth token of its own."""
    other = {"IVR_DATA_DIR": str(tmp_path / "other"), "TWILIO_AUTH_TOKEN": "another-token"}
    with _served(env | other) as url:
        yield url


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The real app over loopback HTTP, with the callers' auth token and an API token."""
    with _served(env | {"IVR_API_TOKEN": SERVER_API_TOKEN}) as url:
        yield url


def test_over_http_the_steps_come_from_the_servers_record(
    runner: CliRunner, env: dict[str, str], server: str
) -> None:
    moves = ["--press", "1", "--press", "0"]
    result = runner.invoke(
        simulate, ["--url", server, *moves], env=env | {"IVR_API_TOKEN": SERVER_API_TOKEN}
    )
    assert result.exit_code == 0, result.output
    assert "steps: welcome > choose_language > main > bye; outcome: self_service" in result.stdout
    as_json = ["--url", server, "--press", "2", "--press", "0", "--json"]
    result = runner.invoke(simulate, as_json, env=env | {"IVR_API_TOKEN": SERVER_API_TOKEN})
    call = json.loads(result.stdout)
    assert call["steps"][-1] == "bye" and call["outcome"] == "self_service", call


def test_over_http_a_refused_api_token_says_which_to_set(
    runner: CliRunner, env: dict[str, str], server: str
) -> None:
    # Without IVR_API_TOKEN the simulator offers its data dir's development token, not the
    # server's: the call goes through all the same, and the steps are not invented.
    result = runner.invoke(simulate, ["--url", server, "--press", "1", "--press", "0"], env=env)
    assert result.exit_code == 0, result.output
    assert "[en-US] Thank you for calling. Goodbye." in result.stdout
    assert "steps:" not in result.stdout
    assert "steps: not shown: the server refused the API token" in result.stderr
    assert "IVR_API_TOKEN" in result.stderr and "var/dev-api-token" in result.stderr


def test_scenarios_run_against_a_server(
    runner: CliRunner, env: dict[str, str], server: str
) -> None:
    scenario = ROOT / "call_flows" / "scenarios" / "support.yaml"
    args = ["--url", server, "--scenario", str(scenario)]
    result = runner.invoke(simulate, args, env=env | {"IVR_API_TOKEN": SERVER_API_TOKEN})
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == 4
    # Refused its record, a scenario that expects steps fails and says why.
    result = runner.invoke(simulate, args, env=env | {"IVR_API_TOKEN": "not-the-servers"})
    assert result.exit_code == 1, result.output
    assert "steps and outcome not checked: the server refused the API token" in result.output


def test_a_refused_signature_exits_1_with_a_hint(
    runner: CliRunner, env: dict[str, str], other_server: str
) -> None:
    result = runner.invoke(simulate, ["--url", other_server, "--press", "0"], env=env)
    assert "HTTP 403" in result.output
    assert result.exit_code == 1, result.output
    assert "TWILIO_AUTH_TOKEN" in result.output and "var/dev-auth-token" in result.output
    assert "IVR_PUBLIC_URL" in result.output  # the other reason a server refuses a signature
    assert "steps: not shown" not in result.output  # a refused call has no record to ask for


def _failing(environ: dict[str, object], start_response: Any) -> list[bytes]:
    """A web app that answers every request as a crashed one would: 500, no TwiML."""
    start_response("500 Internal Server Error", [("Content-Type", "text/html")])
    return [b"<html><body>Internal Server Error</body></html>"]


def test_a_webhook_twilio_cannot_play_fails_the_call_and_the_scenario(
    runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    server = make_server("127.0.0.1", 0, _failing, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scenario = tmp_path / "calls.yaml"
    scenario.write_text("calls:\n  - inputs: []\n")
    try:
        url = f"http://127.0.0.1:{server.port}"
        single = runner.invoke(simulate, ["--url", url, "--press", "1"], env=env)
        scripted = runner.invoke(simulate, ["--url", url, "--scenario", str(scenario)], env=env)
    finally:
        server.shutdown()
        thread.join(10)
    assert single.exit_code == 1
    assert "Error: a webhook answered HTTP 500 (Twilio would say 'application error')" in (
        single.output
    )
    assert scripted.exit_code == 1
    assert "FAIL" in scripted.output and "a webhook answered HTTP 500" in scripted.output
