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
