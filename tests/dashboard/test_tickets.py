"""The tickets page: listing by status, dead letters, retry with CSRF by supervisors only."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import redis
from flask import Flask

from ivr.tickets.model import Ticket, Voicemail
from ivr.tickets.store import TicketStore
from tests.dashboard.conftest import PINNED, csrf_of
from tests.dashboard.test_calls import signed_in


def ticket(store: TicketStore, n: int, status: str = "new") -> Ticket:
    facts = Voicemail(
        call_sid=f"CA{n:032x}",
        recording_sid=f"RE{n:032x}",
        recording_url=f"https://api.twilio.com/rec/RE{n:032x}",
        seconds=14,
        from_="+84901111222",
        to="+15005550006",
        at=datetime.fromtimestamp(PINNED - 600 + n, UTC),
        queue="billing",
        language="vi-VN",
    )
    made = store.create(facts)
    assert made is not None
    if status != "new":
        store.finish_round(made[0].id, status, None, None)
    found = store.get(made[0].id)
    assert found is not None
    return found


def ids(html: str, table: str) -> list[str]:
    return re.findall(rf'id="{table}-(T-[0-9-]+)"', html)


def test_tickets_listed_filtered_and_dead_letters(dash_app: Flask, connection: redis.Redis) -> None:
    store = TicketStore(connection)
    fresh, failed, dead = ticket(store, 1), ticket(store, 2, "failed"), ticket(store, 3, "dead")
    client = signed_in(dash_app)
    html = client.get("/dashboard/tickets").get_data(as_text=True)
    assert ids(html, "ticket") == [dead.id, failed.id, fresh.id]
    assert ids(html, "dead") == [dead.id] and "Retry all dead" in html
    assert html.count(">Retry</button>") == 3  # failed, dead, and dead again among the letters
    assert ids(client.get("/dashboard/tickets?status=failed").get_data(as_text=True), "ticket") \
        == [failed.id]  # fmt: skip
    one = client.get(f"/dashboard/tickets?id={fresh.id}").get_data(as_text=True)
    assert ids(one, "ticket") == [fresh.id] and f"/dashboard/calls/{fresh.call_sid}" in one
    assert client.get("/dashboard/tickets?status=lost").status_code == 400


def test_retry_needs_csrf_and_a_supervisor(dash_app: Flask, connection: redis.Redis) -> None:
    store = TicketStore(connection)
    dead = ticket(store, 1, "dead")
    client = signed_in(dash_app)
    assert client.post(f"/dashboard/tickets/{dead.id}/retry").status_code == 400
    assert store.get(dead.id).status == "dead"  # type: ignore[union-attr]
    viewer = signed_in(dash_app, "Nguyễn")
    page = viewer.get("/dashboard/tickets").get_data(as_text=True)
    assert "Retry" not in page.split("<h1>", 1)[1].replace("Retry all dead", "")
    token = csrf_of(viewer.get("/dashboard/calls").get_data(as_text=True))
    refused = viewer.post(f"/dashboard/tickets/{dead.id}/retry", data={"csrf_token": token})
    assert refused.status_code == 403 and store.get(dead.id).status == "dead"  # type: ignore[union-attr]
    token = csrf_of(client.get("/dashboard/tickets").get_data(as_text=True))
    done = client.post(f"/dashboard/tickets/{dead.id}/retry", data={"csrf_token": token})
    assert done.status_code == 302 and store.get(dead.id).status == "new"  # type: ignore[union-attr]
    assert "queued again" in client.get("/dashboard/tickets").get_data(as_text=True)
    missing = client.post("/dashboard/tickets/T-20260101-9999/retry", data={"csrf_token": token})
    assert missing.status_code == 404
    delivered = ticket(store, 2, "delivered")  # since the page showed it failed
    late = client.post(f"/dashboard/tickets/{delivered.id}/retry", data={"csrf_token": token})
    assert late.status_code == 302 and store.get(delivered.id).status == "delivered"  # type: ignore[union-attr]
    said = client.get("/dashboard/tickets").get_data(as_text=True)
    assert "nothing to retry" in said and f"{delivered.id} is queued again" not in said


def test_retry_all_dead(dash_app: Flask, connection: redis.Redis) -> None:
    store = TicketStore(connection)
    dead = [ticket(store, n, "dead") for n in (1, 2)]
    delivered = ticket(store, 3, "delivered")
    client = signed_in(dash_app)
    token = csrf_of(client.get("/dashboard/tickets").get_data(as_text=True))
    assert client.post("/dashboard/tickets/retry-dead").status_code == 400
    assert store.counts()["dead"] == 2
    done = client.post("/dashboard/tickets/retry-dead", data={"csrf_token": token})
    assert done.status_code == 302 and store.counts()["dead"] == 0
    assert [store.get(t.id).status for t in dead] == ["new", "new"]  # type: ignore[union-attr]
    assert store.get(delivered.id).status == "delivered"  # type: ignore[union-attr]


def test_the_wallboard_counts_every_voicemail_waiting(
    dash_app: Flask, connection: redis.Redis
) -> None:
    store = TicketStore(connection)
    for n in range(1, 1002):  # more than a page of tickets: counted, not listed
        ticket(store, n)
    ticket(store, 1002, "failed")
    ticket(store, 1003, "dead")  # given up on: the dead letters, not waiting
    html = signed_in(dash_app).get("/dashboard").get_data(as_text=True)
    found = re.search(r'data-figure="Voicemails waiting"><span class="value">(\d+)<', html)
    assert found and found.group(1) == "1002"
