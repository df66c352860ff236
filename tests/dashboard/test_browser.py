"""The dashboard in headless Chromium over real HTTP: log in, wallboard, agents, coverage, out."""

from __future__ import annotations

from typing import Any

import redis
import requests

from ivr.simulate import new_call_sid
from ivr.store import Store
from ivr.voice.security import SignatureChecker
from tests.conftest import AUTH_TOKEN, SUPPORT_NUMBER
from tests.dashboard.conftest import PASSWORD, SCREENSHOTS


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
