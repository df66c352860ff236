"""The dashboard in headless Chromium over real HTTP: log in, wallboard, agents, coverage,
calls, KPIs, tickets, users, out; what viewers and supervisors may not do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
import requests

from ivr.calls.events import VoicemailRecorded
from ivr.dashboard.users import Users
from ivr.settings import Settings
from ivr.simulate import new_call_sid
from ivr.store import Store
from ivr.tickets.store import TicketStore
from ivr.voice.security import SignatureChecker
from tests.calls.builders import record_call
from tests.conftest import AUTH_TOKEN, SUPPORT_NUMBER
from tests.dashboard.conftest import PASSWORD, PINNED, SCREENSHOTS
from tests.dashboard.test_calls import RE, WAV
from tests.dashboard.test_tickets import ticket


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_a_supervisor_walks_through_the_dashboard(
    browser: Any, live: str, connection: redis.Redis
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live + "/dashboard/agents")
    assert page.url.startswith(live + "/dashboard/login")
    shot(page, "login")
    page.fill("#name", "sup")
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    assert page.url == live + "/dashboard/agents"

    page.goto(live + "/dashboard?tz=Asia/Ho_Chi_Minh")
    assert page.locator("h1").inner_text().startswith("Wallboard")
    assert "Wed 02 Dec 2026 17:00 +07" in page.locator("h1").inner_text()
    london = page.locator("tr", has_text="london")
    assert "on shift" in london.inner_text() and "off at" in london.inner_text()
    assert "off shift" in page.locator("tr", has_text="hanoi").inner_text()
    figures = page.locator(".figure .value").all_inner_texts()
    assert figures == ["0", "—", "0", "—", "—", "—", "0"]
    # A call comes in through Twilio's webhooks: the wallboard counts it.
    params = {"CallSid": new_call_sid(), "From": "+84901111222", "To": SUPPORT_NUMBER}
    url = live + "/voice/incoming"
    signature = SignatureChecker(AUTH_TOKEN).sign(url, params)
    answer = requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)
    assert answer.status_code == 200 and "<Gather" in answer.text
    page.goto(live + "/dashboard")
    assert page.locator(".figure", has_text="In progress").locator(".value").inner_text() == "1"
    shot(page, "wallboard")

    page.goto(live + "/dashboard/agents")
    lan = page.locator("tr", has_text="Lan").first
    lan.locator("button:has-text('Mark away')").click()
    assert Store(connection).away() == {"lan"}
    assert "Lan is now away" in page.locator(".flash").inner_text()
    assert page.locator("tr", has_text="Lan").first.locator(".status").inner_text() == "away"
    shot(page, "agents")
    page.locator("tr", has_text="Lan").first.locator("button:has-text('Mark available')").click()
    assert Store(connection).away() == set()

    page.goto(live + "/dashboard/coverage?from=2026-11-30&tz=UTC")
    drawing = page.locator("#queue-billing svg")
    assert drawing.count() == 1 and "no one on shift" in (drawing.text_content() or "")
    assert drawing.locator("rect").count() > 5 and drawing.bounding_box()["width"] > 300
    assert page.locator("#queue-billing table.gaps tr").count() >= 2
    shot(page, "coverage")

    page.click("button:has-text('Log out')")
    assert page.url.startswith(live + "/dashboard/login")
    page.goto(live + "/dashboard")
    assert page.url.startswith(live + "/dashboard/login")
    context.close()


def test_a_viewer_has_no_buttons_and_the_page_loads_no_inline_code(browser: Any, live: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    page.goto(live + "/dashboard/login")
    page.fill("#name", "Nguyễn")
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.goto(live + "/dashboard/agents")
    assert page.locator("button:has-text('Mark away')").count() == 0
    assert "+84•••••4567" in page.content()
    assert page.locator(".who").inner_text() == "Nguyễn"
    shot(page, "agents-viewer")
    colour = page.evaluate("getComputedStyle(document.querySelector('header.top')).display")
    assert colour == "flex"  # the stylesheet loaded under the CSP
    assert not [v for v in violations if "Content Security Policy" in v]
    context.close()


def test_a_supervisor_reads_calls_kpis_and_retries_a_dead_ticket(
    browser: Any, live: str, connection: redis.Redis, settings: Settings
) -> None:
    store = Store(connection)
    record_call(store, "CA-old", PINNED - 7200, wait=4, caller="+84901111222")
    record_call(store, "CA-vm", PINNED - 3600, outcome="voicemail", queue="tech")
    store.record("CA-vm", [VoicemailRecorded(PINNED - 3500, recording_sid=RE, seconds=12)])
    settings.recordings_dir.mkdir(parents=True, exist_ok=True)
    (settings.recordings_dir / f"{RE}.wav").write_bytes(WAV)
    dead = ticket(TicketStore(connection), 1, "dead")
    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    page = context.new_page()
    page.goto(live + "/dashboard/login")
    page.fill("#name", "sup")
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")

    page.click("nav >> text=Calls")
    assert page.locator("table.calls tbody tr").count() == 2
    page.select_option("select[name=outcome]", "voicemail")
    page.click("button:has-text('Filter')")
    assert page.locator("table.calls tbody tr").count() == 1 and "outcome=voicemail" in page.url
    shot(page, "calls")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("sid,from,to,") and len(lines) == 2 and lines[1].startswith("CA-vm")

    page.locator("table.calls a").first.click()
    assert page.url == live + "/dashboard/calls/CA-vm"
    assert "passed over cairo: off shift" in page.locator("table.timeline").inner_text()
    source = page.locator("audio").get_attribute("src")
    assert source == "/dashboard/calls/CA-vm/recording"
    assert page.request.get(live + source).body() == WAV
    shot(page, "call")

    page.goto(live + "/dashboard/kpis?from=2026-12-01&to=2026-12-02&tz=UTC")
    stacked = page.locator("svg.chart").first
    assert stacked.locator("rect.answered").count() == 1
    assert stacked.locator("rect.voicemail").count() == 1
    assert page.locator("svg.chart line.target").count() == 1
    assert stacked.bounding_box()["width"] > 50
    shot(page, "kpis")

    page.click("nav >> text=Tickets")
    assert page.locator(f"#dead-{dead.id}").count() == 1
    page.locator(f"#dead-{dead.id} button:has-text('Retry')").click()
    assert f"Ticket {dead.id} is queued again" in page.locator(".flash").inner_text()
    assert TicketStore(connection).get(dead.id).status == "new"  # type: ignore[union-attr]
    shot(page, "tickets")
    context.close()


def test_the_wallboard_updates_live_when_a_call_arrives(browser: Any, live: str) -> None:
    context = browser.new_context()  # JavaScript on: the live part
    page = context.new_page()
    page.goto(live + "/dashboard/login")
    page.fill("#name", "sup")
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.goto(live + "/dashboard")
    in_progress = page.locator(".figure[data-figure='In progress'] .value")
    assert in_progress.inner_text() == "0"
    page.wait_for_timeout(300)  # the event stream is open
    params = {"CallSid": new_call_sid(), "From": "+84901111222", "To": SUPPORT_NUMBER}
    url = live + "/voice/incoming"
    signature = SignatureChecker(AUTH_TOKEN).sign(url, params)
    requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)
    page.wait_for_function(
        "document.querySelector(\".figure[data-figure='In progress'] .value\").textContent === '1'",
        timeout=8000,
    )
    assert page.locator("[data-live]").get_attribute("data-updated") is not None
    shot(page, "wallboard-live")
    context.close()


def sign_in(page: Any, live: str, name: str) -> None:
    page.goto(live + "/dashboard/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    assert page.url == live + "/dashboard"


def test_an_admin_adds_a_user_and_removes_it(
    browser: Any, live: str, connection: redis.Redis
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live, "ada")
    page.click("nav >> text=Users")
    assert page.url == live + "/dashboard/users"
    assert page.locator("tr[data-user='ada'] button").count() == 0  # not oneself
    page.fill("#new-name", "mona")
    page.select_option("#new-role", "viewer")
    page.fill("#new-password", PASSWORD)
    page.click("button:has-text('Add user')")
    assert "Added mona (viewer)." in page.locator(".flash").inner_text()
    assert page.locator("tr[data-user='mona'] .role-name").inner_text() == "viewer"
    added = Users(connection).get("mona")
    assert added is not None and added.role == "viewer"
    shot(page, "users")
    page.locator("tr[data-user='mona'] button:has-text('Remove')").click()
    assert "Removed mona." in page.locator(".flash").inner_text()
    assert page.locator("tr[data-user='mona']").count() == 0
    assert Users(connection).get("mona") is None
    context.close()


def test_a_supervisor_is_refused_the_users_page(browser: Any, live: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live, "sup")
    assert page.locator("nav >> text=Users").count() == 0
    answer = page.goto(live + "/dashboard/users")
    assert answer is not None and answer.status == 403
    assert "needs the admin role" in page.locator("main").inner_text()
    context.close()


def test_a_viewer_sees_no_audio_player(
    browser: Any, live: str, connection: redis.Redis, settings: Settings
) -> None:
    store = Store(connection)
    record_call(store, "CA-vm", PINNED - 3600, outcome="voicemail", queue="tech")
    store.record("CA-vm", [VoicemailRecorded(PINNED - 3500, recording_sid=RE, seconds=12)])
    settings.recordings_dir.mkdir(parents=True, exist_ok=True)
    (settings.recordings_dir / f"{RE}.wav").write_bytes(WAV)
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, live, "Nguyễn")
    page.goto(live + "/dashboard/calls/CA-vm")
    assert page.locator("audio").count() == 0
    voicemail = page.locator("section.voicemail").inner_text()
    assert "Recording available to supervisors." in voicemail
    assert page.request.get(live + "/dashboard/calls/CA-vm/recording").status == 403
    shot(page, "call-viewer")
    context.close()
