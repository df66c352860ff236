"""GET /api/calls, /api/calls/<sid> and /api/kpis through the test client, on a real Redis."""

from __future__ import annotations

from pathlib import Path

import redis
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.settings import Settings
from ivr.store import Store
from tests.calls.builders import T0, record_call
from tests.conftest import Caller, line_app
from tests.voice.test_hold import FLOW, POOLS

API_TOKEN = "api-token-for-tests"
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


def api(settings: Settings, connection: redis.Redis) -> FlaskClient:
    return create_app(settings.with_(api_token=API_TOKEN), connection).test_client()


def test_every_call_url_requires_the_token(settings: Settings, connection: redis.Redis) -> None:
    client = api(settings, connection)
    for url in ("/api/calls", "/api/calls/CA1", "/api/kpis?from=2026-05-28&to=2026-05-28"):
        assert client.get(url).status_code == 401
        wrong = client.get(url, headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401 and "token" in wrong.get_json()["error"]
        assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
        lower = client.get(url, headers={"Authorization": f"bearer {API_TOKEN}"})
        assert lower.status_code != 401, url  # the scheme's name is case-insensitive


def test_calls_are_paged_with_a_cursor(settings: Settings, connection: redis.Redis) -> None:
    store = Store(connection)
    for i in range(5):
        record_call(store, f"CA{i}", T0 + i, outcome="answered" if i % 2 else "abandoned")
    client = api(settings, connection)
    first = client.get("/api/calls?limit=2&outcome=abandoned", headers=BEARER).get_json()
    assert [c["sid"] for c in first["calls"]] == ["CA4", "CA2"] and first["next"]
    rest = client.get(
        "/api/calls", query_string={"limit": 2, "outcome": "abandoned", "cursor": first["next"]},
        headers=BEARER,
    ).get_json()  # fmt: skip
    assert [c["sid"] for c in rest["calls"]] == ["CA0"] and rest["next"] is None
    since = client.get("/api/calls?since=2026-05-28T20:26:43Z", headers=BEARER).get_json()
    assert [c["sid"] for c in since["calls"]] == ["CA4", "CA3"]


def test_one_call_with_its_events_or_404(settings: Settings, connection: redis.Redis) -> None:
    record_call(Store(connection), "CA1", T0, outcome="voicemail")
    client = api(settings, connection)
    body = client.get("/api/calls/CA1", headers=BEARER).get_json()
    assert body["outcome"] == "voicemail" and body["events"][0]["kind"] == "call_started"
    assert body["events"][0]["at"] == "2026-05-28T20:26:40.000Z"
    missing = client.get("/api/calls/CAnone", headers=BEARER)
    assert missing.status_code == 404 and "CAnone" in missing.get_json()["error"]


def test_kpis(settings: Settings, connection: redis.Redis) -> None:
    store = Store(connection)
    record_call(store, "CA1", T0, outcome="answered", wait=25, pool="hanoi")
    record_call(store, "CA2", T0 + 5, outcome="answered", wait=5, pool="cairo")
    client = api(settings, connection)
    query = {"from": "2026-05-28", "to": "2026-05-28", "by": "pool", "threshold": "30.5"}
    report = client.get("/api/kpis", query_string=query, headers=BEARER).get_json()
    assert [r["key"] for r in report["rows"]] == ["cairo", "hanoi"]
    assert report["total"]["service_level"] == 1.0 and report["total"]["answer_p50"] == 5


def test_bad_parameters_are_400(settings: Settings, connection: redis.Redis) -> None:
    client = api(settings, connection)
    for url in (
        "/api/calls?since=tomorrow",
        "/api/calls?outcome=lost",
        "/api/calls?limit=many",
        "/api/calls?limit=0",
        "/api/calls?cursor=abc",
        "/api/calls?since=2026-05-28&until=0001-01-01T00:00:00%2B01:00",  # in the year 0 UTC
        "/api/kpis?from=2026-05-28",
        "/api/kpis?from=2026-05-28&to=2026-05-27",
        "/api/kpis?from=2026-05-28&to=2026-05-28&tz=Mars/Olympus",
        "/api/kpis?from=2026-05-28&to=2026-05-28&by=week",
        "/api/kpis?from=2026-05-28&to=2026-05-28&threshold=-1",
        "/api/kpis?from=2026-05-28&to=2026-05-28&threshold=nan",
        "/api/kpis?from=2026-05-28&to=2026-05-28&threshold=soon",
        "/api/kpis?from=2026-05-28&to=9999-12-31&by=queue",  # no day after the last one
        "/api/kpis?from=0001-01-01&to=9999-12-30",  # millions of rows by day
    ):
        response = client.get(url, headers=BEARER)
        assert response.status_code == 400, url
        assert response.get_json()["error"], url


def test_redis_down_is_503(settings: Settings) -> None:
    dead = redis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_timeout=0.2)
    client = create_app(settings.with_(api_token=API_TOKEN), dead).test_client()
    for url in ("/api/calls", "/api/calls/CA1", "/api/kpis?from=2026-05-28&to=2026-05-28"):
        response = client.get(url, headers=BEARER)
        assert response.status_code == 503 and "Redis" in response.get_json()["error"], url


def test_a_plus_sent_unencoded_is_still_a_plus(settings: Settings, connection: redis.Redis) -> None:
    store = Store(connection)
    record_call(store, "CA1", T0, caller="+84901111222")
    record_call(store, "CA2", T0 + 60, caller="+442071234567")
    client = api(settings, connection)
    # curl 'http://.../api/calls?caller=+84901111222': the query string decodes `+` as a space.
    by_caller = client.get("/api/calls?caller=+84901111222", headers=BEARER).get_json()
    assert [c["sid"] for c in by_caller["calls"]] == ["CA1"]
    since = client.get("/api/calls?since=2026-05-28T21:27:00+01:00", headers=BEARER)
    assert [c["sid"] for c in since.get_json()["calls"]] == ["CA2"]  # 20:27 UTC
    span = "since=2026-05-28 21:27:00&until=2026-05-28 21:30"  # UTC, without an offset
    local = client.get(f"/api/calls?{span}", headers=BEARER)
    assert local.status_code == 200 and local.get_json()["calls"] == []
    wrong = client.get("/api/calls?since=2026-05-28 soon", headers=BEARER)
    assert wrong.status_code == 400 and "'2026-05-28 soon'" in wrong.get_json()["error"]


def test_until_before_since_is_400(settings: Settings, connection: redis.Redis) -> None:
    record_call(Store(connection), "CA1", T0)
    client = api(settings, connection)
    query = "since=2026-05-28T21:00:00Z&until=2026-05-28T20:00:00Z"
    response = client.get(f"/api/calls?{query}", headers=BEARER)
    assert response.status_code == 400 and "before" in response.get_json()["error"]


def test_a_conversation_under_way_counts_for_the_service_level(
    settings: Settings, connection: redis.Redis, tmp_path: Path
) -> None:
    app = line_app(settings.with_(api_token=API_TOKEN), connection, tmp_path / "line", FLOW, POOLS)
    clock = [T0]
    app.extensions["ivr"].clock = lambda: clock[0]
    client = app.test_client()
    caller = Caller(client)
    dial = caller.twiml("/voice/incoming")
    number = dial.find("Dial/Number")
    assert number is not None
    clock[0] += 6  # Lan picks up after six seconds, and the two are still talking
    leg = {"CallSid": "CA" + "0" * 32, "ParentCallSid": caller.sid, "CallStatus": "in-progress"}
    assert caller.post(number.attrib["statusCallback"], **leg).status_code == 200
    query = {"from": "2026-05-28", "to": "2026-05-28"}
    total = client.get("/api/kpis", query_string=query, headers=BEARER).get_json()["total"]
    assert total["offered"] == 1 and total["service_level"] == 1.0
    assert total["asa_seconds"] == 6 and total["answer_p90"] == 6


def test_unknown_urls_and_methods_under_api_answer_json(
    settings: Settings, connection: redis.Redis
) -> None:
    client = api(settings, connection)
    for url in ("/api/calls/", "/api/call/CA1", "/api/nothing"):
        response = client.get(url, headers=BEARER)
        assert response.status_code == 404 and response.is_json, url
        assert url in response.get_json()["error"]
    wrong = client.post("/api/calls", headers=BEARER)
    assert wrong.status_code == 405 and "POST" in wrong.get_json()["error"]
    assert "GET" in wrong.headers["Allow"]
    page = client.get("/no-such-page")  # outside /api/ the usual page
    assert page.status_code == 404 and not page.is_json
