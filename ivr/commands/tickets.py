"""`ivr tickets`: list voicemail tickets, show one, put failed or dead ones back in the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
import redis

from ivr.embedded import ensure_redis
from ivr.errors import IvrError
from ivr.settings import Settings
from ivr.store import connect
from ivr.tickets.model import STATUSES, Ticket, TicketError
from ivr.tickets.store import TicketStore


@contextmanager
def ticket_store() -> Iterator[TicketStore]:
    """The ticket store over REDIS_URL or the data dir's embedded Redis; failures said plainly."""
    try:
        settings = Settings.from_env()
        with ensure_redis(settings) as ready:
            yield TicketStore(connect(ready.with_(redis_timeout=5.0)))
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis does not answer: {exc}") from None
    except IvrError as exc:
        raise click.ClickException(str(exc)) from None


def _echo_json(value: object) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _line(ticket: Ticket) -> str:
    attempts = sum(ticket.attempts.values())
    return (
        f"{ticket.id}  {ticket.status:<9} {ticket.created_at:%Y-%m-%d %H:%M}Z  "
        f"{ticket.from_:<16} {ticket.language or '-':<6} {ticket.queue or '-':<10} "
        f"{ticket.recording.seconds or 0:>4} s  attempts {attempts}"
    )


@click.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(STATUSES), help="Only tickets of this status.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@click.pass_context
def tickets(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> None:
    """List voicemail tickets, newest first (subcommands show and retry them)."""
    if ctx.invoked_subcommand is not None:
        return
    with ticket_store() as store:
        found = store.find(status, limit)
    if as_json:
        _echo_json({"tickets": [t.as_dict() for t in found]})
        return
    for ticket in found:
        click.echo(_line(ticket))
    if not found:
        click.echo("no tickets" + (f" with status {status}" if status else ""), err=True)


@tickets.command()
@click.argument("ticket_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def show(ticket_id: str, as_json: bool) -> None:
    """One ticket: the call, the recording, the transcript and each sink's delivery."""
    with ticket_store() as store:
        ticket = store.get(ticket_id)
    if ticket is None:
        raise click.ClickException(f"no ticket {ticket_id}")
    if as_json:
        _echo_json(ticket.as_dict())
        return
    click.echo(_line(ticket))
    click.echo(f"  call {ticket.call_sid}  to {ticket.to}  flow {ticket.flow or '-'}")
    if ticket.caller_local:
        click.echo(f"  caller's local time {ticket.caller_local.get('local_time') or 'unknown'}")
    for tried in ticket.pools_tried:
        when = tried.get("local_time") or "?"
        click.echo(f"  pool {tried['pool']}: {tried['reason']} (local {when})")
    recording = ticket.recording
    click.echo(f"  recording {recording.path or recording.url}" + _flag(recording.error))
    click.echo(f"  transcript: {ticket.transcript}")
    for sink, state in sorted(ticket.sinks.items()):
        click.echo(f"  sink {sink}: {state}, {ticket.attempts.get(sink, 0)} attempts")
    if ticket.last_error:
        click.echo(f"  last error: {ticket.last_error}")


def _flag(error: str | None) -> str:
    return f"  ({error})" if error else ""


@tickets.command()
@click.argument("ticket_id", required=False)
@click.option("--dead", is_flag=True, help="Retry every dead ticket.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def retry(ticket_id: str | None, dead: bool, as_json: bool) -> None:
    """Put a ticket (or, with --dead, every dead one) back in the outbox."""
    if bool(ticket_id) == dead:
        raise click.UsageError("give a ticket id or --dead, not both")
    with ticket_store() as store:
        try:
            retried = store.retry_dead() if dead else [store.retry(str(ticket_id))]
        except TicketError as exc:
            raise click.ClickException(str(exc)) from None
    if not dead and retried[0].status == "delivered":
        # Every sink has it: the store queued nothing, and saying otherwise would mislead.
        raise click.ClickException(f"{ticket_id} is delivered to every sink: nothing to retry")
    if as_json:
        _echo_json({"tickets": [t.as_dict() for t in retried]})
        return
    for ticket in retried:
        click.echo(f"{ticket.id} queued again")
    if not retried:
        click.echo("no dead tickets", err=True)


COMMANDS = [tickets]
