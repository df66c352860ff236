"""Agent presence through the HTTP API and `ivr agents`; away agents are not rung."""

from __future__ import annotations

import json
from pathlib import Path

import redis
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.commands.agents import agents
from ivr.settings import Settings
from ivr.store import Store
from tests.conftest import AUTH_TOKEN, ROUTE_LINE

API_TOKEN = "api-token-for-tests"


def api(settings: Settings, connection: redis.Redis) -> FlaskClient:
    app: Flask = create_app(settings.with_(api_token=API_TOKEN), connection)
    return app.test_client()


def bearer(token: str = API_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_requires_the_token(settings: Settings, connection: redis.Redis) -> None:
    client = api(settings, connection)
    assert client.get("/api/agents").status_code == 401
    assert client.get("/api/agents", headers=bearer("wrong")).status_code == 401
    assert client.put("/api/agents/lan", json={"status": "away"}).status_code == 401
    assert not connection.exists("ivr:presence")


def test_api_lists_and_sets_presence(settings: Settings, connection: redis.Redis) -> None:
    client = api(settings, connection)
    listed = client.get("/api/agents", headers=bearer()).get_json()["agents"]
    lan = next(a for a in listed if a["id"] == "lan")
    assert lan["status"] == "available" and lan["pools"] == ["hanoi"]
    changed = client.put("/api/agents/lan", json={"status": "away"}, headers=bearer())
    assert changed.status_code == 200 and changed.get_json()["status"] == "away"
    assert Store(connection).away() == {"lan"}


def test_api_rejects_unknown_agents_and_statuses(
    settings: Settings, connection: redis.Redis
) -> None:
    client = api(settings, connection)
    assert (
        client.put("/api/agents/nobody", json={"status": "away"}, headers=bearer()).status_code
        == 404
    )
    assert (
        client.put("/api/agents/lan", json={"status": "asleep"}, headers=bearer()).status_code
        == 400
    )
    assert client.put("/api/agents/lan", data="not json", headers=bearer()).status_code == 400
    assert not connection.exists("ivr:presence")


def test_cli_marks_agents_away_and_lists_them(
    runner: CliRunner, flows_dir: Path, redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    env = {"IVR_FLOWS_DIR": str(flows_dir), "REDIS_URL": redis_url,
           "IVR_DATA_DIR": str(tmp_path), "TWILIO_AUTH_TOKEN": AUTH_TOKEN}  # fmt: skip
    result = runner.invoke(agents, ["away", "omar", "mona"], env=env)
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(agents, ["--json"], env=env).output)["agents"]
    assert {a["id"]: a["status"] for a in listed}["omar"] == "away"
    typo = runner.invoke(agents, ["available", "omar", "nobody"], env=env)
    assert typo.exit_code != 0 and "nobody" in typo.output
    assert Store(connection).away() == {"omar", "mona"}


def test_api_answers_503_when_redis_is_down(settings: Settings) -> None:
    dead = redis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_timeout=0.2)
    client = create_app(settings.with_(api_token=API_TOKEN), dead).test_client()
    assert client.get("/api/agents", headers=bearer()).status_code == 503
    assert (
        client.put("/api/agents/lan", json={"status": "away"}, headers=bearer()).status_code == 503
    )


def test_agents_are_found_by_id_or_name_in_any_letter_case(
    runner: CliRunner, settings: Settings, connection: redis.Redis, flows_dir: Path, redis_url: str
) -> None:
    client = api(settings, connection)
    changed = client.put("/api/agents/LAN", json={"status": "away"}, headers=bearer())
    assert changed.status_code == 200 and changed.get_json()["id"] == "lan"
    env = {"IVR_FLOWS_DIR": str(flows_dir), "REDIS_URL": redis_url,
           "IVR_DATA_DIR": str(settings.data_dir), "TWILIO_AUTH_TOKEN": AUTH_TOKEN}  # fmt: skip
    result = runner.invoke(agents, ["away", "Front Desk", "OMAR"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["desk is now away", "omar is now away"]
    assert Store(connection).away() == {"lan", "desk", "omar"}


def test_api_reads_a_json_body_sent_without_its_content_type(
    settings: Settings, connection: redis.Redis
) -> None:
    # What `curl -X PUT -d '{"status": "away"}'` sends: a form content type over a JSON body.
    client = api(settings, connection)
    changed = client.put(
        "/api/agents/lan",
        data='{"status": "away"}',
        content_type="application/x-www-form-urlencoded",
        headers=bearer(),
    )
    assert changed.status_code == 200, changed.get_json()
    assert Store(connection).away() == {"lan"}


def test_api_says_what_body_it_wants(settings: Settings, connection: redis.Redis) -> None:
    client = api(settings, connection)
    for body in ({}, ["away"], {"status": None}, {"state": "away"}):
        refused = client.put("/api/agents/lan", json=body, headers=bearer())
        assert refused.status_code == 400
        assert '{"status": "away"}' in refused.get_json()["error"]
    assert not connection.exists("ivr:presence")


def test_cli_prints_json_when_asked_before_the_subcommand_and_changes_each_agent_once(
    runner: CliRunner, flows_dir: Path, redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    env = {"IVR_FLOWS_DIR": str(flows_dir), "REDIS_URL": redis_url,
           "IVR_DATA_DIR": str(tmp_path), "TWILIO_AUTH_TOKEN": AUTH_TOKEN}  # fmt: skip
    result = runner.invoke(agents, ["--json", "away", "lan", "LAN", "Omar"], env=env)
    assert result.exit_code == 0, result.output
    changed = json.loads(result.output)["agents"]
    assert [(a["id"], a["status"]) for a in changed] == [("lan", "away"), ("omar", "away")]
    assert Store(connection).away() == {"lan", "omar"}


def test_setting_the_status_an_agent_already_has_changes_nothing(
    settings: Settings, connection: redis.Redis
) -> None:
    client = api(settings, connection)
    fresh = client.put("/api/agents/lan", json={"status": "available"}, headers=bearer())
    assert fresh.status_code == 200 and fresh.get_json()["since"] is None
    assert not connection.exists("ivr:presence", "ivr:presence:token")
    since = client.put("/api/agents/lan", json={"status": "away"}, headers=bearer())
    token = connection.get("ivr:presence:token")
    again = client.put("/api/agents/Lan", json={"status": "away"}, headers=bearer())
    # Away since it was first marked so; routes planned on that presence still hold.
    assert again.get_json()["since"] == since.get_json()["since"]
    assert connection.get("ivr:presence:token") == token


TWO_LANS = """
pools:
  hanoi:
    timezone: Asia/Ho_Chi_Minh
    queues: [billing]
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    agents: [{name: Lan, id: lan-hn, phone: "+84901234567"}]
  london:
    timezone: Europe/London
    queues: [billing]
    shifts: [{days: daily, from: "00:00", to: "24:00"}]
    agents: [{name: Lan, id: lan-ldn, phone: "+447700900123"}]
"""


def test_a_name_two_agents_go_by_changes_nobody(
    runner: CliRunner, settings: Settings, redis_url: str, connection: redis.Redis, tmp_path: Path
) -> None:
    folder = tmp_path / "two_lans"
    folder.mkdir()
    (folder / "line.yaml").write_text(ROUTE_LINE)
    (folder / "pools.yaml").write_text(TWO_LANS)
    client = api(settings.with_(flows_dir=folder), connection)
    refused = client.put("/api/agents/lan", json={"status": "away"}, headers=bearer())
    assert refused.status_code == 409
    assert "lan-hn" in refused.get_json()["error"] and "lan-ldn" in refused.get_json()["error"]
    env = {"IVR_FLOWS_DIR": str(folder), "REDIS_URL": redis_url,
           "IVR_DATA_DIR": str(tmp_path), "TWILIO_AUTH_TOKEN": AUTH_TOKEN}  # fmt: skip
    result = runner.invoke(agents, ["away", "LAN"], env=env)
    assert result.exit_code == 1 and "give the id" in result.output
    assert not connection.exists("ivr:presence")
    by_id = client.put("/api/agents/lan-ldn", json={"status": "away"}, headers=bearer())
    assert by_id.status_code == 200
    assert Store(connection).away() == {"lan-ldn"}
