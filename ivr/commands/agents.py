"""`ivr agents`: list agents with their presence, mark one away or available."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click

from ivr.agents.services import AmbiguousAgent, list_agents, resolve, set_status
from ivr.embedded import ensure_redis
from ivr.flows.registry import FlowRegistry
from ivr.settings import Settings
from ivr.store import Store, connect
from routing.model import Pools


@contextmanager
def _context() -> Iterator[tuple[Pools | None, Store]]:
    settings = Settings.from_env()
    registry = FlowRegistry(settings.flows_dir)
    flowset = registry.current()
    if flowset is None:
        raise click.ClickException(
            "the flows do not load:\n" + "\n".join(str(p) for p in registry.errors)
        )
    with ensure_redis(settings) as ready:
        yield flowset.pools, Store(connect(ready))


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@click.pass_context
def agents(ctx: click.Context, as_json: bool) -> None:
    """List agents and their presence (subcommands change it)."""
    if ctx.invoked_subcommand is not None:
        return
    with _context() as (pools, store):
        views = list_agents(pools, store)
    if as_json:
        click.echo(json.dumps({"agents": [v.as_dict() for v in views]}, ensure_ascii=False))
        return
    for view in views:
        since = (
            datetime.fromtimestamp(view.since, UTC).strftime(" since %Y-%m-%d %H:%M UTC")
            if view.since
            else ""
        )
        click.echo(
            f"{view.id:<16} {view.status:<10} {','.join(view.pools):<20} {view.address}{since}"
        )


def _setter(status: str) -> click.Command:
    @click.command(name=status, help=f"Mark agents {status} (by id or name, any letter case).")
    @click.argument("agents", nargs=-1, required=True, metavar="ID_OR_NAME...")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
    @click.pass_context
    def command(ctx: click.Context, agents: tuple[str, ...], as_json: bool) -> None:
        # `ivr agents --json away lan` asks for JSON as much as `ivr agents away lan --json`.
        as_json = as_json or bool(ctx.parent and ctx.parent.params.get("as_json"))
        with _context() as (pools, store):
            unknown = [a for a in agents if pools is None or pools.agent(a) is None]
            if unknown:  # checked first, so that a typo changes nobody
                raise click.ClickException(f"no pool has an agent {', '.join(unknown)}")
            try:  # ... and so is a name several agents go by
                # One change per agent, however many of its names and spellings were given.
                ids = dict.fromkeys(resolve(pools, a) for a in agents)
            except AmbiguousAgent as exc:
                raise click.ClickException(str(exc)) from None
            views = [set_status(pools, store, a, status, by="cli") for a in ids]
        if as_json:
            click.echo(json.dumps({"agents": [v.as_dict() for v in views]}, ensure_ascii=False))
        else:
            for view in views:
                click.echo(f"{view.id} is now {view.status}")

    return command


agents.add_command(_setter("away"))
agents.add_command(_setter("available"))

COMMANDS = [agents]
