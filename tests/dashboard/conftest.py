"""Dashboard fixtures: users, a signed-in test client, and the app served for real to Chromium."""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from ivr.app import create_app
from ivr.dashboard.users import LoginLimiter, Users
from ivr.settings import Settings
from tests.conftest import ROOT

PASSWORD = "correct horse battery"
PINNED = 1796205600.0  # Wed 2026-12-02 10:00 UTC: Cairo and London on shift, Hanoi off
SCREENSHOTS = ROOT / "var" / "screenshots"
INSTALL_LOCK = Path("/tmp/ivr-chromium-install.lock")
_skipped_browser: list[str] = []


def without_weekend_cover(pools_yaml: str) -> str:
    """The sample roster less its on-call weekend pool, so that the week has a gap to show."""
    start = pools_yaml.index("  oncall:")
    following = re.search(r"\n  [a-z]", pools_yaml[start + 1 :])
    end = start + 1 + following.start() + 1 if following else len(pools_yaml)
    return pools_yaml[:start] + pools_yaml[end:]


@pytest.fixture(autouse=True)
def weekday_roster(flows_dir: Path) -> None:
    """Dashboard tests show gaps: they run on the weekday pools of the sample."""
    path = flows_dir / "pools.yaml"
    path.write_text(without_weekend_cover(path.read_text(encoding="utf-8")), encoding="utf-8")


def add_users(connection: redis.Redis) -> None:
    users = Users(connection)
    users.add("sup", "supervisor", PASSWORD, PINNED)
    users.add("Nguyễn", "viewer", PASSWORD, PINNED)
    users.add("ada", "admin", PASSWORD, PINNED)


@pytest.fixture
def dash_app(settings: Settings, connection: redis.Redis) -> Flask:
    """The app with a supervisor, a viewer and an admin, and a pinned clock."""
    app = create_app(settings, connection)
    app.extensions["dashboard"].clock = lambda: PINNED
    add_users(connection)
    return app


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def log_in(client: FlaskClient, name: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/dashboard/login").get_data(as_text=True))
    return client.post(
        "/dashboard/login", data={"csrf_token": token, "name": name, "password": password}
    )


def chromium_or_none() -> str | None:
    """Debian's chromium, installed with apt-get (once, under a lock) when it is missing."""
    found = shutil.which("chromium")
    if found:
        return found
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel runs wait for the one installing
        found = shutil.which("chromium")
        if found or shutil.which("apt-get") is None:
            return found
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            try:
                subprocess.run(command, check=False, capture_output=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired):
                break
    return shutil.which("chromium")


def skip_browser(reason: str) -> None:
    """Skip the browser tests loudly: a warning and a line in the terminal summary."""
    _skipped_browser.append(reason)
    warnings.warn(f"BROWSER TESTS SKIPPED: {reason}", stacklevel=2)
    pytest.skip(f"browser tests skipped: {reason}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for reason in dict.fromkeys(_skipped_browser):
        terminalreporter.write_line(f"BROWSER TESTS SKIPPED: {reason}", red=True, bold=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session, driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        skip_browser(f"playwright is not installed ({exc})")
    executable = chromium_or_none()
    if executable is None:
        skip_browser("no chromium, and `apt-get install -y chromium` did not provide one")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def live(dash_app: Flask) -> Iterator[str]:
    """The app served over real HTTP by a werkzeug server on loopback, in a thread."""
    server = make_server("127.0.0.1", 0, dash_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


@pytest.fixture
def limiter(connection: redis.Redis) -> LoginLimiter:
    return LoginLimiter(connection)
