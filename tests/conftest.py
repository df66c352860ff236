"""Shared fixtures: a real Redis (embedded or REDIS_URL), the app, its client and CLI runner."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from ivr.app import create_app
from ivr.embedded import EmbeddedRedis
from ivr.settings import Settings
from ivr.simulate import new_call_sid
from ivr.voice.security import SignatureChecker

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_FLOWS = ROOT / "call_flows"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
SUPPORT_NUMBER = "+15005550006"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "connection" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set, else one embedded server for the whole session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    """A connection to a Redis flushed before and after the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A private copy of the sample call flows, free to edit."""
    target = tmp_path / "call_flows"
    shutil.copytree(SAMPLE_FLOWS, target, ignore=shutil.ignore_patterns("scenarios"))
    return target


@pytest.fixture
def settings(tmp_path: Path, flows_dir: Path, redis_url: str) -> Settings:
    return Settings(
        auth_token=AUTH_TOKEN,
        redis_url=redis_url,
        data_dir=tmp_path / "var",
        flows_dir=flows_dir,
        recordings_dir=tmp_path / "recordings",
        reload_interval=0.0,
    )


def command_calls(connection: redis.Redis, command: str) -> int:
    """How many times Redis has run `command` (lower case) since its statistics were reset."""
    stats = connection.info("commandstats").get(f"cmdstat_{command}", {"calls": 0})
    return int(stats["calls"])


# A line whose only step routes the caller to the billing queue, then voicemail.
ROUTE_LINE = """
flow: line
numbers: ["+15005550006"]
languages: [en-US]
start: route
steps:
  route:
    route: {queue: billing, otherwise: vm}
  vm:
    voicemail: {}
"""


def line_app(
    settings: Settings, connection: redis.Redis, folder: Path, flow: str, pools: str
) -> Flask:
    """An app serving one flow (`line.yaml`) and its pools from a folder of their own."""
    folder.mkdir()
    (folder / "line.yaml").write_text(flow)
    (folder / "pools.yaml").write_text(pools)
    return create_app(settings.with_(flows_dir=folder), connection)


@pytest.fixture
def app(settings: Settings, connection: redis.Redis) -> Flask:
    return create_app(settings, connection)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


class Caller:
    """Plays Twilio for one call through the test client, with correct signatures."""

    def __init__(self, client: FlaskClient, to: str = SUPPORT_NUMBER, caller: str = "+84901111222"):
        self.client = client
        self.sid = new_call_sid()
        self.params = {"CallSid": self.sid, "From": caller, "To": to, "FromCountry": "VN"}
        self.checker = SignatureChecker(AUTH_TOKEN)

    def post(self, path: str, token: str = AUTH_TOKEN, **extra: str) -> Any:
        params = {**self.params, **extra}
        signature = SignatureChecker(token).sign("http://localhost" + path, params)
        return self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})

    def twiml(self, path: str, **extra: str) -> ET.Element:
        response = self.post(path, **extra)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/xml"
        return parse_twiml(response.get_data(as_text=True))

    def follow(self, root: ET.Element, **extra: str) -> ET.Element:
        """Post to the action of the waiting verb (Gather, Dial or Record) of `root`."""
        waiting = [v for v in root if v.tag in ("Gather", "Dial", "Record")]
        assert waiting, ET.tostring(root, encoding="unicode")
        return self.twiml(waiting[0].attrib["action"], **extra)


def parse_twiml(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "Response"
    return root


def spoken(root: ET.Element) -> list[str]:
    """Every text a TwiML document says, nested ones included."""
    return [el.text or "" for el in root.iter("Say")]


@pytest.fixture
def caller(client: FlaskClient) -> Caller:
    return Caller(client)
