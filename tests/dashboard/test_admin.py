"""The admins' users page over the test client: listing, adding and removing, and who may."""

from __future__ import annotations

import redis
from flask import Flask
from flask.testing import FlaskClient

from ivr.dashboard.users import USERS_KEY, Users
from tests.dashboard.conftest import PASSWORD, csrf_of, log_in


def signed_in(app: Flask, name: str) -> tuple[FlaskClient, str]:
    """A client signed in as `name`, and a CSRF token of its session."""
    client = app.test_client()
    assert log_in(client, name).status_code == 302
    return client, csrf_of(client.get("/dashboard/agents").get_data(as_text=True))


def test_an_admin_lists_users_and_the_nav_links_the_page(dash_app: Flask) -> None:
    admin, _ = signed_in(dash_app, "ada")
    page = admin.get("/dashboard/users")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for name, role in (("ada", "admin"), ("sup", "supervisor"), ("Nguyễn", "viewer")):
        assert f'<tr data-user="{name}">' in html and f'dir="auto">{name}</th>' in html
        row = html.split(f'<tr data-user="{name}">', 1)[1].split("</tr>", 1)[0]
        assert f'<td class="role-name">{role}</td>' in row
        assert ("Remove" in row) is (name != "ada")  # no button to remove oneself
    assert 'href="/dashboard/users"' in html
    supervisor, _ = signed_in(dash_app, "sup")
    assert 'href="/dashboard/users"' not in supervisor.get("/dashboard").get_data(as_text=True)


def test_only_admins_may_see_or_change_users(dash_app: Flask, connection: redis.Redis) -> None:
    before = connection.hgetall(USERS_KEY)
    for name in ("sup", "Nguyễn"):
        client, token = signed_in(dash_app, name)
        assert client.get("/dashboard/users").status_code == 403
        added = {"csrf_token": token, "name": "mona", "role": "admin", "password": PASSWORD}
        assert client.post("/dashboard/users", data=added).status_code == 403
        removed = client.post("/dashboard/users/ada/remove", data={"csrf_token": token})
        assert removed.status_code == 403
    assert connection.hgetall(USERS_KEY) == before


def test_an_admin_adds_a_user_who_can_then_log_in(dash_app: Flask) -> None:
    admin, token = signed_in(dash_app, "ada")
    form = {"csrf_token": token, "name": " Trần.Minh ", "role": "supervisor", "password": PASSWORD}
    answer = admin.post("/dashboard/users", data=form)
    assert answer.status_code == 302 and answer.headers["Location"] == "/dashboard/users"
    page = admin.get("/dashboard/users").get_data(as_text=True)
    assert "Added Trần.Minh (supervisor)." in page and '<tr data-user="Trần.Minh">' in page
    added = dash_app.extensions["dashboard"].users.get("Trần.Minh")
    assert added is not None and added.role == "supervisor"
    assert log_in(dash_app.test_client(), "Trần.Minh").status_code == 302


def test_users_refused_as_ivr_users_add_refuses_them(
    dash_app: Flask, connection: redis.Redis
) -> None:
    admin, token = signed_in(dash_app, "ada")
    before = connection.hgetall(USERS_KEY)
    refused = [
        ({"name": "bad name", "role": "viewer", "password": PASSWORD}, "a user name is 1 to 64"),
        ({"name": "mona", "role": "boss", "password": PASSWORD}, "role must be one of"),
        ({"name": "mona", "role": "viewer", "password": "short"}, "at least 8 characters"),
        ({"name": "sup", "role": "viewer", "password": PASSWORD}, "already exists"),
    ]
    for form, reason in refused:
        answer = admin.post("/dashboard/users", data={"csrf_token": token, **form})
        html = answer.get_data(as_text=True)
        assert answer.status_code == 400 and reason in html, form
        assert f'value="{form["name"]}"' in html and form["password"] not in html
    no_token = {"name": "mona", "role": "viewer", "password": PASSWORD}
    assert admin.post("/dashboard/users", data=no_token).status_code == 400
    assert connection.hgetall(USERS_KEY) == before


def test_an_admin_removes_a_user_and_its_sessions_end(dash_app: Flask) -> None:
    viewer, _ = signed_in(dash_app, "Nguyễn")
    admin, token = signed_in(dash_app, "ada")
    assert admin.post("/dashboard/users/Nguyễn/remove").status_code == 400  # no CSRF token
    assert viewer.get("/dashboard").status_code == 200
    answer = admin.post("/dashboard/users/Nguyễn/remove", data={"csrf_token": token})
    assert answer.status_code == 302
    assert "Removed Nguyễn." in admin.get("/dashboard/users").get_data(as_text=True)
    users: Users = dash_app.extensions["dashboard"].users
    assert users.get("Nguyễn") is None
    assert viewer.get("/dashboard").status_code == 302  # signed out
    missing = admin.post("/dashboard/users/Nguyễn/remove", data={"csrf_token": token})
    assert missing.status_code == 404 and "no user" in missing.get_data(as_text=True)


def test_an_admin_cannot_remove_themself(dash_app: Flask) -> None:
    admin, token = signed_in(dash_app, "ada")
    answer = admin.post("/dashboard/users/ada/remove", data={"csrf_token": token})
    assert answer.status_code == 400 and "cannot remove yourself" in answer.get_data(as_text=True)
    assert dash_app.extensions["dashboard"].users.get("ada") is not None
    assert admin.get("/dashboard/users").status_code == 200
