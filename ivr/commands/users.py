"""`ivr users`: add, list and remove the people who may log in to the dashboard."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
import redis

from ivr.dashboard.users import ROLES, UserError, Users, check_password, new_name
from ivr.embedded import ensure_redis
from ivr.errors import IvrError
from ivr.settings import Settings
from ivr.store import connect, now


@contextmanager
def _users() -> Iterator[Users]:
    try:
        with ensure_redis(Settings.from_env()) as ready:
            yield Users(connect(ready))
    except IvrError as exc:  # a refused user, or a REDIS_URL that is not one
        raise click.ClickException(str(exc)) from exc
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis does not answer: {exc}") from exc


@click.group()
def users() -> None:
    """Dashboard users: viewers, supervisors and admins."""


@users.command()
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the user may do.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def add(name: str, role: str, password_stdin: bool) -> None:
    """Add a user, asking for the password (twice) unless it comes on stdin."""
    try:  # checked before asking anything, so a typo costs no password typing
        name = new_name(name)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    with _users() as found:
        # A name taken, or Redis not answering, is said before the password is typed too.
        if found.get(name) is not None:
            raise UserError(f"a user {name!r} already exists (remove it first to replace it)")
        password = _password(password_stdin)
        check_password(password)
        user = found.add(name, role, password, now())
    click.echo(f"added {user.name} ({user.role})")


@users.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def list_(as_json: bool) -> None:
    """Every user with its role."""
    with _users() as found:
        everyone = found.all()
    if as_json:
        click.echo(json.dumps({"users": [u.as_dict() for u in everyone]}, ensure_ascii=False))
        return
    if not everyone:
        click.echo("no users: add one with `ivr users add NAME --role admin`", err=True)
    for user in everyone:
        added = datetime.fromtimestamp(user.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"{user.name:<24} {user.role:<11} added {added}")


@users.command()
@click.argument("name")
def remove(name: str) -> None:
    """Remove a user; their sessions end at once."""
    with _users() as found:
        found.remove(name)
    click.echo(f"removed {name.strip()}")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


COMMANDS = [users]
