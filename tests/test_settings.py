"""Settings read from the environment: a bad value is a clear error, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli import cli
from ivr.errors import IvrError
from ivr.settings import Settings


@pytest.mark.parametrize("text", ["abc", "1s", "-1", "nan", "inf"])
def test_a_reload_interval_that_is_not_seconds_is_refused_by_name(text: str) -> None:
    with pytest.raises(IvrError, match=f"IVR_RELOAD_INTERVAL must be a number of seconds.*{text}"):
        Settings.from_env({"IVR_RELOAD_INTERVAL": text})


@pytest.mark.parametrize(("text", "seconds"), [("", 1.0), ("0", 0.0), ("2.5", 2.5), (" 3 ", 3.0)])
def test_a_reload_interval_in_seconds_is_read(text: str, seconds: float) -> None:
    assert Settings.from_env({"IVR_RELOAD_INTERVAL": text}).reload_interval == seconds


def test_a_command_names_a_bad_reload_interval(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli, ["calls"], env={"IVR_DATA_DIR": str(tmp_path), "IVR_RELOAD_INTERVAL": "1s"}
    )
    assert result.exit_code == 1
    assert "Error: IVR_RELOAD_INTERVAL must be a number of seconds, 0 or more, not '1s'" in (
        result.output
    )


@pytest.mark.parametrize(
    "text",
    [
        "ivr.example.com",
        "ftp://ivr.example.com",
        "https://",
        "https://ivr.example.com/voice/incoming",
        "https://ivr.example.com/?x=1",
    ],
)
def test_a_public_url_that_is_not_a_base_url_is_refused(text: str) -> None:
    with pytest.raises(IvrError, match="IVR_PUBLIC_URL must be the base URL Twilio calls"):
        Settings.from_env({"IVR_PUBLIC_URL": text})


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("", None),
        ("https://ivr.example.com/", "https://ivr.example.com"),
        (" https://ivr.example.com:8443/ivr ", "https://ivr.example.com:8443/ivr"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ],
)
def test_a_public_url_is_read_without_its_trailing_slash(text: str, url: str | None) -> None:
    assert Settings.from_env({"IVR_PUBLIC_URL": text}).public_url == url


@pytest.mark.parametrize("name", ["IVR_TWILIO_API_URL", "IVR_TRANSCRIBE_URL"])
@pytest.mark.parametrize("text", ["api.twilio.com", "localhost:9000", "file:///tmp/x"])
def test_a_service_url_without_http_and_a_host_is_refused(name: str, text: str) -> None:
    with pytest.raises(IvrError, match=f"{name} must be an http\\(s\\) URL"):
        Settings.from_env({name: text})


def test_service_urls_are_read_without_their_trailing_slash() -> None:
    env = {"IVR_TWILIO_API_URL": "https://api.dublin.ie1.twilio.com/", "IVR_TRANSCRIBE_URL": ""}
    settings = Settings.from_env(env)
    assert settings.twilio_api_url == "https://api.dublin.ie1.twilio.com"
    assert settings.transcribe_url is None
    assert Settings.from_env({}).twilio_api_url == "https://api.twilio.com"
    given = Settings.from_env({"IVR_TRANSCRIBE_URL": "http://127.0.0.1:9000/v1/"})
    assert given.transcribe_url == "http://127.0.0.1:9000/v1"
