"""GET /api/tickets through the test client, on a real Redis."""

from __future__ import annotations

import redis

from ivr.app import create_app
from ivr.settings import Settings
from ivr.tickets.store import TicketStore
from tests.tickets.conftest import VoicemailFactory

API_TOKEN = "api-token-for-tests"
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


def test_tickets_are_listed_newest_first_with_the_contract_fields(
    settings: Settings, connection: redis.Redis, voicemail: VoicemailFactory
) -> None:
    store = TicketStore(connection)
    first = store.create(voicemail())
    second = store.create(voicemail(seconds=30))
    assert first is not None and second is not None
    store.finish_round(first[0].id, "dead", None, None)
    client = create_app(settings.with_(api_token=API_TOKEN), connection).test_client()
    assert client.get("/api/tickets").status_code == 401
    answer = client.get("/api/tickets", headers=BEARER)
    assert answer.status_code == 200
    listed = answer.get_json()["tickets"]
    assert [t["id"] for t in listed] == [second[0].id, first[0].id]
    fields = {"id", "call_sid", "from", "to", "language", "recording", "transcript", "status"}
    assert fields | {"attempts"} <= set(listed[0])
    assert set(listed[0]["recording"]) >= {"path", "url", "seconds"}
    assert listed[0]["recording"]["seconds"] == 30
    dead = client.get("/api/tickets?status=dead&limit=5", headers=BEARER).get_json()
    assert [t["id"] for t in dead["tickets"]] == [first[0].id]


def test_a_bad_status_or_limit_is_a_400(settings: Settings, connection: redis.Redis) -> None:
    client = create_app(settings.with_(api_token=API_TOKEN), connection).test_client()
    bad = client.get("/api/tickets?status=open", headers=BEARER)
    assert bad.status_code == 400 and "open" in bad.get_json()["error"]
    assert client.get("/api/tickets?limit=0", headers=BEARER).status_code == 400
    assert client.get("/api/tickets?limit=x", headers=BEARER).status_code == 400


def test_tickets_without_redis_are_a_503(settings: Settings) -> None:
    dead = redis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_timeout=0.2)
    client = create_app(settings.with_(api_token=API_TOKEN), dead).test_client()
    answer = client.get("/api/tickets", headers=BEARER)
    assert answer.status_code == 503 and "tickets are unavailable" in answer.get_json()["error"]
