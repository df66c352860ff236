"""The `ivr` group imports a command's module only when that command is asked for."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

from click.testing import CliRunner

import ivr.commands
from ivr.cli import MODULES, cli


def test_every_command_is_found_under_its_module() -> None:
    defined = {}
    for info in pkgutil.iter_modules(ivr.commands.__path__):
        module = importlib.import_module(f"ivr.commands.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            defined[command.name] = info.name
    assert defined == MODULES


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line}
    assert listed == set(MODULES)


def test_a_query_command_does_not_load_the_web_stack() -> None:
    script = (
        "import sys\n"
        "from ivr.cli import cli\n"
        "try:\n"
        "    cli(['kpis', '--help'], prog_name='ivr')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'twilio', 'gunicorn'}))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines()[-1] == "[]"


def test_serve_has_what_gunicorn_s_signal_handlers_use_before_any_worker_exits() -> None:
    # Imported first inside the SIGCHLD handler, a module can be re-entered by the next SIGCHLD
    # and fail half-way; `ivr serve` alone (no other command loaded) must bring it in up front.
    script = (
        "import sys\n"
        "import ivr.commands.serve\n"
        "print('prometheus_client.multiprocess' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "True"


def test_a_redis_url_that_is_not_one_is_an_error_line_for_every_command() -> None:
    runner = CliRunner()
    for args in (["calls"], ["calls", "show", "CA1"], ["kpis", "--from", "2026-01-01",
                 "--to", "2026-01-01"], ["agents"], ["tickets"], ["users", "list"]):  # fmt: skip
        result = runner.invoke(cli, args, env={"REDIS_URL": "bogus://x"})
        assert result.exit_code == 1, (args, result.output, result.exception)
        assert "Error: REDIS_URL 'bogus://x': scheme must be" in result.output, args
