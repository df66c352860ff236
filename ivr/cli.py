"""The `ivr` command: one click group, each command in its own module under ivr.commands."""

from __future__ import annotations

import click

from ivr import __version__


@click.group()
@click.version_option(__version__, prog_name="ivr")
def cli() -> None:
    """Serve, check and explore the phone-support router."""


def _register() -> None:
    # Imported here so that a command's heavy imports load only when the command runs.
    from ivr.commands import (
        agents,
        calls,
        check,
        graph,
        recordings,
        routing,
        serve,
        simulate,
        tickets,
        users,
        worker,
    )

    modules = (serve, check, simulate, graph, agents, routing, calls, tickets, worker, recordings)
    for module in (*modules, users):
        for command in module.COMMANDS:
            cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    _register()
    cli(prog_name="ivr")
