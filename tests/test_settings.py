"""Settings read from the environment: a bad value is a clear error, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli import cli
from ivr.errors import IvrError
from ivr.settings import Settings

# An address nobody can listen on: should a bad setting get through, the server stops at once.
SERVE_NOWHERE = ["serve", "--host", "256.0.0.1", "--port", "8000", "--workers", "1"]


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


def test_a_malformed_redis_url_is_refused_when_read() -> None:
    with pytest.raises(IvrError, match="REDIS_URL 'redis://h:6379/abc': db 'abc'"):
        Settings.from_env({"REDIS_URL": "redis://h:6379/abc"})


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"REDIS_URL": "redis://:pw@127.0.0.1:notaport/0"}, "REDIS_URL 'redis://:***@127.0.0.1"),
        ({"REDIS_URL": "redis+sentinel://a:1,,b:2/svc"}, "'' is not host:port"),
        ({"IVR_PUBLIC_URL": "ivr.example.com"}, "IVR_PUBLIC_URL must be the base URL"),
        ({"IVR_RELOAD_INTERVAL": "soon"}, "IVR_RELOAD_INTERVAL must be"),
        ({"IVR_RETENTION_DAYS": "0"}, "IVR_RETENTION_DAYS must be"),
    ],
)
def test_serve_refuses_bad_settings_before_starting_anything(
    tmp_path: Path, env: dict[str, str], said: str
) -> None:
    environment = {"TWILIO_AUTH_TOKEN": "t", "IVR_DATA_DIR": str(tmp_path / "var"), **env}
    result = CliRunner().invoke(cli, SERVE_NOWHERE, env=environment)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and said in result.output
    assert not (tmp_path / "var" / "redis.url").exists()  # no embedded Redis was started


@pytest.mark.parametrize("kind", ["file", "under a file"])
def test_serve_refuses_a_data_dir_it_cannot_create(tmp_path: Path, kind: str) -> None:
    (tmp_path / "taken").write_text("")
    data_dir = tmp_path / "taken" if kind == "file" else tmp_path / "taken" / "var"
    env = {"TWILIO_AUTH_TOKEN": "t", "IVR_DATA_DIR": str(data_dir), "REDIS_URL": ""}
    result = CliRunner().invoke(cli, SERVE_NOWHERE, env=env)
    assert result.exit_code == 1, result.output
    assert f"Error: IVR_DATA_DIR {data_dir}: " in result.output


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_serve_refuses_a_port_nobody_can_listen_on(tmp_path: Path, port: str) -> None:
    env = {"TWILIO_AUTH_TOKEN": "t", "IVR_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(cli, ["serve", "--host", "256.0.0.1", "--port", port], env=env)
    assert result.exit_code == 2, result.output  # a usage error, not gunicorn's traceback
    assert "Invalid value for '--port'" in result.output


def test_tokens_read_from_a_secret_file_lose_its_line_end() -> None:
    env = {"TWILIO_AUTH_TOKEN": "0123abcd\n", "IVR_API_TOKEN": " api-token\r\n"}
    settings = Settings.from_env(env)
    assert (settings.auth_token, settings.api_token) == ("0123abcd", "api-token")
    with pytest.raises(IvrError, match="TWILIO_AUTH_TOKEN is not set"):
        Settings.from_env({"TWILIO_AUTH_TOKEN": "  \n"}).require_auth_token()


@pytest.mark.parametrize("name", ["IVR_RETENTION_DAYS", "IVR_TICKET_MAX_ATTEMPTS"])
def test_digits_int_cannot_read_are_refused_not_a_traceback(name: str) -> None:
    # "²" is a digit to str.isdigit, and int() then raised ValueError out of the settings.
    with pytest.raises(IvrError, match=f"{name} must be a whole number"):
        Settings.from_env({name: "9²"})
