"""When things break: Redis gone, flows broken, odd requests. The caller always hears words."""

from __future__ import annotations

import json
from pathlib import Path

import redis
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.redis_url import time_left
from ivr.settings import Settings
from tests.conftest import Caller, parse_twiml, spoken


def dead_redis() -> redis.Redis:
    """A client whose server never answers (nothing listens on that socket)."""
    return redis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_timeout=0.2)


def test_redis_down_gives_apology_then_fallback_voicemail(settings: Settings) -> None:
    app = create_app(settings, dead_redis())
    caller = Caller(app.test_client())
    root = caller.twiml("/voice/input?turn=3&lang=vi-VN", Digits="1")
    assert "sự cố kỹ thuật" in spoken(root)[0]
    record = root.find("Record")
    assert record is not None and record.attrib["action"].startswith("/voice/fallback?lang=vi-VN")
    done = caller.twiml(
        record.attrib["action"], RecordingUrl="https://api.twilio.com/x/RE1", RecordingDuration="9"
    )
    assert "đã được ghi lại" in spoken(done)[0] and done[-1].tag == "Hangup"


def test_recording_callback_is_spooled_when_redis_is_down(settings: Settings) -> None:
    app = create_app(settings, dead_redis())
    caller = Caller(app.test_client())
    response = caller.post(
        "/voice/recording", RecordingUrl="https://api.twilio.com/x/RE2", RecordingSid="RE2"
    )
    assert response.status_code == 200
    lines = (settings.data_dir / "spool" / "events.jsonl").read_text().splitlines()
    spooled = json.loads(lines[-1])
    assert spooled["sid"] == caller.sid and len(spooled["id"]) == 32
    (event,) = spooled["events"]
    assert event["kind"] == "voicemail" and event["url"] == "https://api.twilio.com/x/RE2"


def test_readyz_reports_redis_down(settings: Settings) -> None:
    client = create_app(settings, dead_redis()).test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["redis"] is False


def test_broken_flow_edit_keeps_last_good_version(
    client: FlaskClient, flows_dir: Path, caller: Caller
) -> None:
    before = client.get("/readyz").get_json()
    support = flows_dir / "support.yaml"
    support.write_text(support.read_text().replace("start: welcome", "start: nowhere"))
    after = client.get("/readyz")
    assert after.status_code == 200
    body = after.get_json()
    assert body["flows_version"] == before["flows_version"]
    assert any("nowhere" in error for error in body["errors"])
    assert spoken(caller.twiml("/voice/incoming"))[0] == "Thank you for calling customer support."


def test_edit_applies_to_new_calls_while_a_call_keeps_its_version(
    client: FlaskClient, flows_dir: Path
) -> None:
    early = Caller(client)
    first = early.twiml("/voice/incoming")
    support = flows_dir / "support.yaml"
    support.write_text(support.read_text().replace("For billing and payments", "For invoices"))
    late = Caller(client)
    late_menu = late.follow(late.twiml("/voice/incoming"), Digits="1")
    assert spoken(late_menu)[0].startswith("For invoices")
    early_menu = early.follow(first, Digits="1")
    assert spoken(early_menu)[0].startswith("For billing and payments")


def test_number_with_no_flow_hears_an_apology(client: FlaskClient, flows_dir: Path) -> None:
    support = flows_dir / "support.yaml"
    support.write_text(support.read_text().replace("default: true", "default: false"))
    caller = Caller(client, to="+15550001111")
    root = caller.twiml("/voice/incoming")
    assert "technical problem" in spoken(root)[0]


def test_oversized_request_is_refused_with_words(client: FlaskClient) -> None:
    response = client.post("/voice/incoming", data={"CallSid": "x" * 100_000})
    assert response.status_code == 413
    assert "technical problem" in spoken(parse_twiml(response.get_data(as_text=True)))[0]


def test_status_callback_is_recorded(caller: Caller, connection: redis.Redis) -> None:
    caller.twiml("/voice/incoming")
    response = caller.post("/voice/status", CallStatus="completed", CallDuration="31")
    assert response.status_code == 200
    timeline = [json.loads(x) for x in connection.lrange(f"ivr:call:{{{caller.sid}}}:log", 0, -1)]
    assert timeline[-2] == {**timeline[-2], "kind": "status", "status": "completed", "duration": 31}
    assert timeline[-1] == {**timeline[-1], "kind": "call_ended", "duration": 31}


def test_metrics_count_webhooks_calls_and_refusals(client: FlaskClient, caller: Caller) -> None:
    def value(line_start: str) -> float:
        text = client.get("/metrics").get_data(as_text=True)
        found = [ln for ln in text.splitlines() if ln.startswith(line_start)]
        return float(found[0].rsplit(" ", 1)[1]) if found else 0.0

    started = value('ivr_calls_started_total{flow="support"}')
    refused = value('ivr_webhooks_total{kind="incoming",result="refused"}')
    caller.twiml("/voice/incoming")
    caller.post("/voice/incoming", token="forged")
    assert value('ivr_calls_started_total{flow="support"}') == started + 1
    assert value('ivr_webhooks_total{kind="incoming",result="refused"}') == refused + 1
    assert client.get("/metrics").headers["Content-Type"].startswith("text/plain")


def test_the_redis_time_limit_ends_with_its_webhook(client: FlaskClient, caller: Caller) -> None:
    # The request runs in this thread: a limit left behind would cut the next request's Redis.
    assert caller.post("/voice/incoming").status_code == 200
    assert time_left() is None
    assert client.post("/voice/incoming", data={"CallSid": "CA1"}).status_code == 403
    assert time_left() is None
    assert client.get("/readyz").status_code == 200
