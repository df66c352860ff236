"""The dashboard over the test client: the gate, CSRF, roles, rate limits, cookies, headers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from flask import Flask

from ivr.app import create_app
from ivr.commands.routing import coverage
from ivr.dashboard import wallboard
from ivr.dashboard.users import LoginLimiter, Users
from ivr.dashboard.web import Dashboard
from ivr.settings import Settings
from ivr.store import Store
from tests.dashboard.conftest import PASSWORD, add_users, csrf_of, log_in

PAGES = ["/dashboard", "/dashboard/agents", "/dashboard/coverage", "/dashboard/logout"]
PAGES += ["/dashboard/calls", "/dashboard/kpis", "/dashboard/tickets", "/dashboard/users"]
PAGES += ["/dashboard/no-such", "/dashboard/", "/dashboard/calls.csv"]


def test_every_dashboard_url_redirects_to_login_without_a_session(dash_app: Flask) -> None:
    client = dash_app.test_client()
    rules = [r.rule for r in dash_app.url_map.iter_rules() if r.rule.startswith("/dashboard")]
    plain = [r for r in rules if "<" not in r and r != "/dashboard/login"]
    assert "/dashboard/agents" in plain and "/dashboard/coverage" in plain
    for path in sorted(set(plain + PAGES)):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/dashboard/login"), path
    export = client.get("/dashboard/calls.csv?outcome=voicemail")
    assert export.headers["Location"] == (
        "/dashboard/login?next=/dashboard/calls.csv?outcome%3Dvoicemail"
    )
    assert client.post("/dashboard/agents/lan/status", data={"status": "away"}).status_code in (
        302, 400)  # fmt: skip
    assert client.get("/dashboard/static/dashboard.css").status_code == 200


def test_the_dashboard_with_a_trailing_slash_is_the_wallboard(dash_app: Flask) -> None:
    client = dash_app.test_client()
    assert client.get("/dashboard/").headers["Location"].startswith("/dashboard/login")
    log_in(client, "sup")
    answer = client.get("/dashboard/")
    assert answer.status_code == 302 and answer.headers["Location"] == "/dashboard"
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_login_then_pages_then_logout(dash_app: Flask) -> None:
    client = dash_app.test_client()
    assert log_in(client, "sup", "wrong password").status_code == 401
    response = log_in(client, "sup")
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Wallboard" in page and "Waiting now" in page and "—" in page
    assert client.get("/dashboard/agents").status_code == 200
    logout = client.get("/dashboard/logout").get_data(as_text=True)
    assert client.post("/dashboard/logout", data={"csrf_token": csrf_of(logout)}).status_code == 302
    assert client.get("/dashboard").status_code == 302


def test_a_signed_out_sessions_cookie_copied_before_opens_nothing(dash_app: Flask) -> None:
    client, other = dash_app.test_client(), dash_app.test_client()
    log_in(client, "sup")
    log_in(other, "sup")  # the same user on another screen
    copied = client.get_cookie("ivr_dashboard", path="/dashboard")
    assert copied is not None
    logout = client.get("/dashboard/logout").get_data(as_text=True)
    assert client.post("/dashboard/logout", data={"csrf_token": csrf_of(logout)}).status_code == 302
    thief = dash_app.test_client()
    thief.set_cookie("ivr_dashboard", copied.value, path="/dashboard")
    assert thief.get("/dashboard").headers["Location"].startswith("/dashboard/login")
    assert other.get("/dashboard").status_code == 200  # only the session signed out ends


def test_login_returns_to_the_page_asked_for_never_elsewhere(dash_app: Flask) -> None:
    client = dash_app.test_client()
    for target, expected in (("/dashboard/agents", "/dashboard/agents"),
                             ("https://evil.example/", "/dashboard"),
                             ("/dashboard//evil.example", "/dashboard"),
                             ("/dashboard\r\nSet-Cookie: a=b", "/dashboard")):  # fmt: skip
        token = csrf_of(client.get("/dashboard/login").get_data(as_text=True))
        form = {"csrf_token": token, "name": "sup", "password": PASSWORD, "next": target}
        assert client.post("/dashboard/login", data=form).headers["Location"] == expected


def test_a_form_posted_without_its_csrf_token_is_refused(
    dash_app: Flask, connection: redis.Redis
) -> None:
    client = dash_app.test_client()
    assert (
        client.post("/dashboard/login", data={"name": "sup", "password": PASSWORD}).status_code
        == 400
    )
    log_in(client, "sup")
    refused = client.post("/dashboard/agents/lan/status", data={"status": "away"})
    assert refused.status_code == 400 and "refused" in refused.get_data(as_text=True)
    forged = client.post("/dashboard/agents/lan/status", data={"status": "away", "csrf_token": "x"})
    assert forged.status_code == 400
    assert Store(connection).away() == set()
    token = csrf_of(client.get("/dashboard/agents").get_data(as_text=True))
    done = client.post("/dashboard/agents/lan/status", data={"status": "away", "csrf_token": token})
    assert done.status_code == 302 and Store(connection).away() == {"lan"}


def test_a_viewer_sees_masked_numbers_and_cannot_toggle(
    dash_app: Flask, connection: redis.Redis
) -> None:
    client = dash_app.test_client()
    assert log_in(client, "Nguyễn").status_code == 302
    page = client.get("/dashboard/agents").get_data(as_text=True)
    assert "+84•••••4567" in page and "+84901234567" not in page
    assert "Mark away" not in page and 'dir="auto">Nguyễn<' in page
    token = csrf_of(page)
    answer = client.post(
        "/dashboard/agents/lan/status", data={"status": "away", "csrf_token": token}
    )
    assert answer.status_code == 403 and Store(connection).away() == set()
    supervisor = dash_app.test_client()
    log_in(supervisor, "sup")
    assert "+84901234567" in supervisor.get("/dashboard/agents").get_data(as_text=True)


def test_bad_input_is_a_clear_error(dash_app: Flask, connection: redis.Redis) -> None:
    client = dash_app.test_client()
    log_in(client, "sup")
    for path in ("/dashboard/no-such", "/dashboard/agents/lan/status", "/dashboard/calls/CA1"):
        unknown = client.get(path).get_data(as_text=True)
        assert 'class="problem"' in unknown and 'href="/dashboard/kpis"' in unknown, path
    bad_zone = client.get("/dashboard?tz=Mars/Olympus")
    assert bad_zone.status_code == 400 and "Mars/Olympus" in bad_zone.get_data(as_text=True)
    assert client.get("/dashboard/coverage?from=2026-13-01").status_code == 400
    for far in ("0001-01-01", "9999-12-31"):  # the calendar's ends: a clear page, not a 500
        assert client.get(f"/dashboard/coverage?from={far}").status_code == 400, far
    assert client.get("/dashboard/coverage?queue=nope").status_code == 400
    token = csrf_of(client.get("/dashboard/agents").get_data(as_text=True))
    asleep = {"status": "asleep", "csrf_token": token}
    assert client.post("/dashboard/agents/lan/status", data=asleep).status_code == 400
    assert client.post("/dashboard/agents/nobody/status",
                       data={"status": "away", "csrf_token": token}).status_code == 404  # fmt: skip
    assert not connection.exists("ivr:presence")


def test_login_attempts_are_limited_per_user_and_per_address(dash_app: Flask) -> None:
    client = dash_app.test_client()
    for _ in range(5):
        assert log_in(client, "sup", "wrong password").status_code == 401
    limited = log_in(client, "sup")  # even the right password waits now
    assert limited.status_code == 429 and "Try again in 15 minute" in limited.get_data(as_text=True)
    assert log_in(client, "Nguyễn").status_code == 302  # another name from here still may
    other = dash_app.test_client()
    for i in range(15):
        assert log_in(other, f"guess{i}", "wrong password").status_code == 401
    assert log_in(other, "Nguyễn").status_code == 429  # 5 + 15 failures from one address


def test_cookie_flags_and_security_headers(settings: Settings, connection: redis.Redis) -> None:
    app = create_app(settings.with_(public_url="https://ivr.example.com"), connection)
    add_users(connection)
    client = app.test_client()
    page = client.get("/dashboard/login", base_url="https://ivr.example.com")
    for name, value in {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                        "Referrer-Policy": "same-origin"}.items():  # fmt: skip
        assert page.headers[name] == value
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    token = csrf_of(page.get_data(as_text=True))
    form = {"csrf_token": token, "name": "sup", "password": PASSWORD}
    referer = {"Referer": "https://ivr.example.com/dashboard/login"}
    signed = client.post(
        "/dashboard/login", base_url="https://ivr.example.com", data=form, headers=referer
    )
    assert signed.status_code == 302
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert "Path=/dashboard" in cookie
    plain = create_app(settings, connection).test_client().get("/dashboard/login")
    assert "Secure" not in plain.headers["Set-Cookie"]
    shouted = create_app(settings.with_(public_url="HTTPS://ivr.example.com"), connection)
    assert "Secure" in shouted.test_client().get("/dashboard/login").headers["Set-Cookie"]


def test_removing_a_user_ends_its_sessions(dash_app: Flask) -> None:
    client = dash_app.test_client()
    log_in(client, "sup")
    assert client.get("/dashboard").status_code == 200
    dash_app.extensions["dashboard"].users.remove("sup")
    assert client.get("/dashboard").status_code == 302


def test_secret_key_is_shared_through_the_data_dir(
    settings: Settings, connection: redis.Redis
) -> None:
    first, second = create_app(settings, connection), create_app(settings, connection)
    assert first.secret_key and first.secret_key == second.secret_key
    assert (settings.data_dir / "secret-key").exists()
    chosen = create_app(settings.with_(secret_key="from-the-environment"), connection)
    assert chosen.secret_key == "from-the-environment"


def test_development_mode_has_a_dev_supervisor(settings: Settings, connection: redis.Redis) -> None:
    from ivr.dashboard import dev_login

    app = create_app(settings.with_(dev=True), connection)
    name, password = dev_login(settings)
    assert (settings.data_dir / "dev-dashboard-password").read_text().strip() == password
    client = app.test_client()
    assert log_in(client, name, password).status_code == 302
    assert "supervisor" in client.get("/dashboard").get_data(as_text=True)
    create_app(settings.with_(dev=True), connection)  # a second worker keeps the same user
    assert log_in(app.test_client(), name, password).status_code == 302


def test_coverage_shows_the_grid_of_ivr_coverage_and_its_gaps(
    dash_app: Flask, flows_dir: Path
) -> None:
    drawn = flows_dir.parent / "week.svg"
    args = ["--queue", "billing", "--from", "2026-11-30", "--days", "7", "--svg", str(drawn)]
    result = CliRunner().invoke(coverage, [*args, "--flows", str(flows_dir)])
    assert result.exit_code == 0, result.output
    client = dash_app.test_client()
    log_in(client, "sup")
    page = client.get("/dashboard/coverage?from=2026-11-30&tz=UTC&queue=billing")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and drawn.read_text(encoding="utf-8").strip() in html
    assert "Sat 05 Dec 01:00 UTC" in html and "30 h 0 min" in html
    local = client.get("/dashboard/coverage?from=2026-11-30&tz=Asia/Ho_Chi_Minh&queue=billing")
    assert "Sat 05 Dec 08:00 +07" in local.get_data(as_text=True)
    # Each gap says why every pool is closed as it begins, in the words of `ivr route`.
    assert "london: off shift, Sat 01:00 Europe/London" in html
    christmas = client.get("/dashboard/coverage?from=2026-12-21&tz=UTC&queue=billing")
    assert "london: holiday, Christmas Day" in christmas.get_data(as_text=True)


def test_the_wallboard_names_the_day_off_behind_the_next_gap(dash_app: Flask) -> None:
    christmas_eve = datetime(2026, 12, 24, 10, 0, tzinfo=UTC).timestamp()
    dash_app.extensions["dashboard"].clock = lambda: christmas_eve
    client = dash_app.test_client()
    log_in(client, "sup")
    html = client.get("/dashboard?tz=UTC").get_data(as_text=True)
    assert "(london: closed 2026-12-24 13:00 to 2026-12-25 00:00)" in html


def test_call_records_unavailable_is_a_503_page_not_a_500(
    settings: Settings, connection: redis.Redis
) -> None:
    # Users answer but the rest does not (in a Redis Cluster they live in different slots).
    dead = redis.Redis(unix_socket_path="/nonexistent/redis.sock", socket_timeout=0.2)
    app = create_app(settings, dead)
    app.extensions["dashboard"] = Dashboard(Users(connection), LoginLimiter(connection))
    add_users(connection)
    client = app.test_client()
    log_in(client, "sup")
    for path in ("/dashboard", "/dashboard/calls", "/dashboard/calls.csv", "/dashboard/calls/CA1",
                 "/dashboard/kpis", "/dashboard/agents", "/dashboard/tickets"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 503, path
        assert "Redis does not answer" in answer.get_data(as_text=True), path


def test_live_wallboard_slots_come_back_from_streams_never_read(
    dash_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = dash_app.test_client()
    log_in(client, "sup")
    monkeypatch.setattr(wallboard, "LIVE_SECONDS", 0.2)
    monkeypatch.setattr(wallboard, "LIVE_BLOCK_MS", 50)
    read = client.get("/dashboard/live")  # a stream read to its end gives its slot back once
    assert read.status_code == 200 and read.get_data(as_text=True).startswith("retry:")
    read.close()  # as every WSGI server does once the body is sent
    for method in ("HEAD", "HEAD", "HEAD", "GET", "GET", "GET"):  # more than a worker's slots
        # Closed without reading a byte, as a server does after a HEAD or a client gone early.
        answer = client.open("/dashboard/live", method=method, buffered=False)
        assert answer.status_code == 200, method
        answer.close()
