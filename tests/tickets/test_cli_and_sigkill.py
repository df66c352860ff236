"""The commands, and a real `ivr worker` killed mid-delivery: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from ivr.cli import _register, cli
from ivr.settings import Settings
from ivr.tickets.store import TicketStore
from tests.server.conftest import free_port
from tests.tickets.conftest import WEBHOOK_SECRET, VoicemailFactory, webhook_yaml, write_sinks
from tests.tickets.fakes import ACCOUNT_SID, AUTH_TOKEN, FakeServices, Reply

WAIT = 20.0


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "REDIS_URL": str(settings.redis_url),
        "IVR_FLOWS_DIR": str(settings.flows_dir),
        "IVR_RECORDINGS_DIR": str(settings.recordings_dir),
        "IVR_DATA_DIR": str(settings.data_dir),
        "IVR_RECORDING_HOSTS": ",".join(settings.recording_hosts),
        "IVR_TRANSCRIBE_URL": str(settings.transcribe_url),
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVR_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }


def test_tickets_commands(
    ticket_settings: Settings, connection: redis.Redis, voicemail: VoicemailFactory
) -> None:
    _register()
    store = TicketStore(connection)
    made = store.create(voicemail())
    assert made is not None
    ticket = made[0]
    runner = CliRunner()
    env = cli_env(ticket_settings)
    listed = runner.invoke(cli, ["tickets", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.output)["tickets"]
    for name in ("id", "call_sid", "from", "to", "language", "recording", "transcript", "status"):
        assert name in entry
    assert entry["attempts"] == {}
    shown = runner.invoke(cli, ["tickets", "show", ticket.id, "--json"], env=env)
    assert json.loads(shown.output)["recording_sid"] == ticket.recording_sid
    text = runner.invoke(cli, ["tickets", "show", ticket.id], env=env)
    assert "pool cairo: off shift" in text.output
    assert runner.invoke(cli, ["tickets", "--status", "dead", "--json"], env=env).output.strip()
    assert json.loads(
        runner.invoke(cli, ["tickets", "--status", "dead", "--json"], env=env).output
    ) == {"tickets": []}
    missing = runner.invoke(cli, ["tickets", "show", "T-20261203-0042"], env=env)
    assert missing.exit_code == 1 and "no ticket" in missing.output
    retried = runner.invoke(cli, ["tickets", "retry", ticket.id], env=env)
    assert retried.exit_code == 0 and f"{ticket.id} queued again" in retried.output
    both = runner.invoke(cli, ["tickets", "retry", ticket.id, "--dead"], env=env)
    assert both.exit_code == 2
    bad = runner.invoke(cli, ["tickets", "--status", "lost"], env=env)
    assert bad.exit_code == 2


def test_recordings_purge_command(tmp_path: Path) -> None:
    _register()
    folder = tmp_path / "recordings"
    folder.mkdir()
    old = folder / ("RE" + "c" * 32 + ".wav")
    old.write_bytes(b"RIFF")
    cut_off = folder / (".RE" + "d" * 32 + ".part")  # a worker killed mid-download
    cut_off.write_bytes(b"RIFF")
    fresh = folder / (".RE" + "e" * 32 + ".part")  # a download under way
    fresh.write_bytes(b"RIFF")
    an_hour_ago = time.time() - 13 * 3600
    for path in (old, cut_off):
        os.utime(path, (an_hour_ago, an_hour_ago))
    env = {"IVR_RECORDINGS_DIR": str(folder)}
    runner = CliRunner()
    dry = runner.invoke(
        cli, ["recordings", "purge", "--older-than", "12h", "--dry-run", "--json"], env=env
    )
    assert json.loads(dry.output) == {"dry_run": True, "files": [str(cut_off), str(old)]}
    assert old.exists() and cut_off.exists()
    done = runner.invoke(cli, ["recordings", "purge", "--older-than", "12h"], env=env)
    assert done.exit_code == 0 and not old.exists() and not cut_off.exists() and fresh.exists()
    bad = runner.invoke(cli, ["recordings", "purge", "--older-than", "soon"], env=env)
    assert bad.exit_code == 2


def test_retrying_a_delivered_ticket_says_there_is_nothing_to_retry(
    ticket_settings: Settings, connection: redis.Redis, voicemail: VoicemailFactory
) -> None:
    _register()
    store = TicketStore(connection)
    made = store.create(voicemail())
    assert made is not None
    ticket = made[0]
    store.ensure_group()
    store.read("w", 10, 0)
    store.finish_round(ticket.id, "delivered", None, None)
    before = store.outbox_length()
    result = CliRunner().invoke(cli, ["tickets", "retry", ticket.id], env=cli_env(ticket_settings))
    assert result.exit_code == 1, result.output
    assert f"{ticket.id} is delivered to every sink: nothing to retry" in result.output
    assert "queued again" not in result.output and store.outbox_length() == before


@pytest.mark.parametrize(
    "args",
    [
        ["tickets"],
        ["tickets", "--json"],
        ["tickets", "show", "T-20261203-0001"],
        ["tickets", "retry", "--dead"],
    ],
)
def test_ticket_commands_say_why_they_cannot_answer(tmp_path: Path, args: list[str]) -> None:
    _register()
    runner = CliRunner()
    down = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}", "IVR_DATA_DIR": str(tmp_path)}
    result = runner.invoke(cli, args, env=down)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Error: Redis does not answer" in result.output
    bad = runner.invoke(cli, args, env={**down, "IVR_RECORDING_FORMAT": "flac"})
    assert bad.exit_code == 1 and isinstance(bad.exception, SystemExit), bad.output
    assert "Error: IVR_RECORDING_FORMAT must be wav or mp3" in bad.output


def test_recordings_purge_says_why_it_cannot_run(tmp_path: Path) -> None:
    _register()
    env = {"IVR_RECORDINGS_DIR": str(tmp_path), "IVR_RECORDING_HOSTS": "api.twilio.com:https"}
    result = CliRunner().invoke(cli, ["recordings", "purge", "--older-than", "30d"], env=env)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Error: IVR_RECORDING_HOSTS" in result.output
    none = CliRunner().invoke(
        cli, ["recordings", "purge", "--older-than", "30d", "--dry-run"],
        env={"IVR_RECORDINGS_DIR": str(tmp_path)},
    )  # fmt: skip
    assert none.exit_code == 0 and "0 recordings would be deleted" in none.output


def start_worker(settings: Settings, root: Path, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **cli_env(settings)}
    log = open(root / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "ivr", "worker", "--claim-idle", "0.5"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.server
def test_sigkill_mid_delivery_loses_nothing_and_delivers_once(
    tmp_path: Path,
    services: FakeServices,
    ticket_settings: Settings,
    connection: redis.Redis,
    voicemail: VoicemailFactory,
) -> None:
    write_sinks(ticket_settings.flows_dir, webhook_yaml(services))
    release = threading.Event()
    services.script("POST", "/hooks/ivr", Reply(200, b"{}", hold=release))
    store = TicketStore(connection)
    made = store.create(voicemail())
    assert made is not None
    ticket = made[0]
    first = start_worker(ticket_settings, tmp_path, "first")
    try:
        wait_for(lambda: services.seen("POST", "/hooks/ivr"), "the first delivery attempt")
        first.send_signal(signal.SIGKILL)  # mid-delivery: the webhook has not answered
        first.wait(WAIT)
    finally:
        release.set()
        if first.poll() is None:
            first.kill()
    second = start_worker(ticket_settings, tmp_path, "second")
    try:
        wait_for(
            lambda: (t := store.get(ticket.id)) is not None and t.status == "delivered",
            "the second worker to deliver: " + (tmp_path / "second.log").read_text(),
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(WAIT) == 0  # graceful stop
    finally:
        if second.poll() is None:
            second.kill()
    posts = services.seen("POST", "/hooks/ivr")
    assert len(posts) == 2
    assert {p.headers["Idempotency-Key"] for p in posts} == {ticket.id}
    assert list(services.webhook_tickets) == [ticket.id]  # the idempotent sink kept one
    done = store.get(ticket.id)
    assert done is not None and done.attempts["webhook"] == 2
    assert store.outbox_length() == 0
