"""`ivr recordings purge`: delete voicemail audio kept longer than a retention period."""

from __future__ import annotations

import json
import time

import click

from ivr.errors import IvrError
from ivr.settings import Settings
from ivr.tickets.recordings import parse_duration, purge


@click.group()
def recordings() -> None:
    """Voicemail audio kept in IVR_RECORDINGS_DIR."""


@recordings.command("purge")
@click.option("--older-than", "older_than", required=True, metavar="DURATION", help="30d, 12h")
@click.option("--dry-run", is_flag=True, help="List what would be deleted, delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def purge_command(older_than: str, dry_run: bool, as_json: bool) -> None:
    """Delete recordings older than DURATION (by the time they were kept)."""
    try:
        seconds = parse_duration(older_than)
    except IvrError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    try:
        directory = Settings.from_env().recordings_dir
    except IvrError as exc:
        raise click.ClickException(str(exc)) from None
    doomed = purge(directory, seconds, time.time(), dry_run)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "files": [str(p) for p in doomed]}))
        return
    for path in doomed:
        click.echo(f"{'would delete' if dry_run else 'deleted'} {path}")
    done = "would be deleted" if dry_run else "deleted"
    click.echo(f"{len(doomed)} recording{'s' if len(doomed) != 1 else ''} {done}", err=True)


COMMANDS = [recordings]
