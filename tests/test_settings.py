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
