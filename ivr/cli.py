"""The `ivr` command: one click group, each command in its own module under ivr.commands."""

from __future__ import annotations

import importlib

import click

from ivr import __version__
from ivr.errors import IvrError

# Which module defines each command: a command's imports (Flask, the dashboard, twilio...) load
# only when it runs, so a quick query such as `ivr kpis` does not pay for every other command.
MODULES = {
    "serve": "serve",
    "check": "check",
    "simulate": "simulate",
    "graph": "graph",
    "agents": "agents",
    "route": "routing",
    "coverage": "routing",
    "calls": "calls",
    "kpis": "calls",
    "tickets": "tickets",
    "worker": "worker",
    "recordings": "recordings",
    "users": "users",
}


class _CommandsByModule(click.Group):
    """A group whose commands are imported from their module when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in MODULES:
            _load(MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except IvrError as exc:
            # A product error the command did not word itself (a REDIS_URL that is not one,
            # say): an Error: line and exit 1, as for the rest, not a traceback.
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_CommandsByModule)
@click.version_option(__version__, prog_name="ivr")
def cli() -> None:
    """Serve, check and explore the phone-support router."""


def _load(module_name: str) -> None:
    module = importlib.import_module(f"ivr.commands.{module_name}")
    for command in module.COMMANDS:
        cli.add_command(command)


def _register() -> None:
    """Every command, loaded now."""
    for module_name in dict.fromkeys(MODULES.values()):
        _load(module_name)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ivr")
