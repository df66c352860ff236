"""`ivr calls`, `ivr calls show` and `ivr kpis`: the call records from the terminal."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import click

from ivr.calls.events import CallEvent, RouteDecided, to_dict
from ivr.calls.kpis import FIELDS as KPI_FIELDS
from ivr.calls.kpis import GROUPINGS
from ivr.calls.queries import (
    csv_safe,
    kpi_query,
    kpi_report,
    parse_instant,
    parse_zone,
    public_event,
)
from ivr.calls.records import CallRecords
from ivr.calls.summary import FIELDS, OUTCOMES, CallSummary, iso
from ivr.embedded import ensure_redis
from ivr.errors import BadQuery, IvrError
from ivr.settings import Settings
from ivr.store import connect, now

T = TypeVar("T")
FC = TypeVar("FC", bound=Callable[..., Any])


@contextmanager
def _records() -> Iterator[CallRecords]:
    settings = Settings.from_env()
    with ensure_redis(settings) as ready:
        yield CallRecords(connect(ready))


def _instant(param: str) -> Callable[[FC], FC]:
    def convert(ctx: click.Context, p: click.Parameter, value: str | None) -> float | None:
        if value is None:
            return None
        try:
            return parse_instant(value)
        except BadQuery as exc:
            raise click.BadParameter(str(exc), ctx, p) from exc

    return click.option(param, callback=convert, metavar="ISO-8601")


@click.group(invoke_without_command=True)
@_instant("--since")
@_instant("--until")
@click.option("--flow")
@click.option("--queue")
@click.option("--pool")
@click.option("--outcome", type=click.Choice(OUTCOMES))
@click.option("--language")
@click.option("--caller", metavar="NUMBER")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: a header row, then the calls.")
@click.pass_context
def calls(
    ctx: click.Context,
    since: float | None,
    until: float | None,
    limit: int,
    as_json: bool,
    as_csv: bool,
    flow: str | None,
    queue: str | None,
    pool: str | None,
    outcome: str | None,
    language: str | None,
    caller: str | None,
) -> None:
    """Call records, newest first (`ivr calls show SID` for one call)."""
    if ctx.invoked_subcommand is not None:
        return
    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other")
    if since is not None and until is not None and until < since:
        raise click.BadParameter(
            f"{iso(until)} is before --since {iso(since)}", param_hint="--until"
        )
    given = {"flow": flow, "queue": queue, "pool": pool, "outcome": outcome,
             "language": language, "caller": caller}  # fmt: skip
    wanted = {name: value for name, value in given.items() if value}
    with _records() as records:
        found, _ = _ask(lambda: records.find(since, until, wanted, limit))
    rows = [summary.public() for summary in found]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
    elif as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows([csv_safe(row[name]) for name in FIELDS] for row in rows)
        click.echo(out.getvalue(), nl=False)
    else:
        for row in rows:
            wait = "" if row["wait_seconds"] is None else f"wait {row['wait_seconds']:g}s"
            click.echo(
                f"{row['started_at'] or '-':<25} {row['sid']:<36} {row['from']:<16} "
                f"{row['flow']:<10} {row['queue'] or '-':<10} {row['outcome']:<13} "
                f"{row['agent'] or '-':<10} {wait}".rstrip()
            )


@calls.command()
@click.argument("sid", metavar="CALL_SID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def show(sid: str, as_json: bool) -> None:
    """One call and its timeline, oldest event first."""
    with _records() as records:
        found = _ask(lambda: records.show(sid))
    if found is None:
        raise click.ClickException(f"no call {sid} on record")
    summary, events = found
    if as_json:
        body = {**summary.public(), "events": [public_event(e) for e in events]}
        click.echo(json.dumps(body, ensure_ascii=False))
        return
    for line in timeline(summary, events):
        click.echo(line)


def timeline(summary: CallSummary, events: list[CallEvent]) -> list[str]:
    """A call as lines a supervisor reads: the summary, then each event at +seconds."""
    row = summary.public()
    lines = [
        f"{row['sid']}  {row['from']} -> {row['to']}  flow {row['flow']}  {row['outcome']}",
        f"started {row['started_at'] or '-'}  answered {row['answered_at'] or '-'}  "
        f"ended {row['ended_at'] or '-'}  agent {row['agent'] or '-'}",
    ]
    origin = summary.started_at if summary.started_at is not None else (
        events[0].at if events else 0.0
    )  # fmt: skip
    for event in events:
        data = to_dict(event)
        details = " ".join(
            f"{k}={','.join(map(str, v)) if isinstance(v, list | tuple) else v}"
            for k, v in data.items()
            if k not in ("v", "kind", "at", "passed_over") and v not in (None, "", [], ())
        )  # fmt: skip
        lines.append(f"  +{event.at - origin:8.1f}s  {data['kind']:<15} {details}".rstrip())
        if isinstance(event, RouteDecided):
            lines += [f"{'':14}passed over {p.pool}: {p.reason}" for p in event.passed_over]
    return lines


@calls.command()
@_instant("--before")
def trim(before: float | None) -> None:
    """Drop calls older than IVR_RETENTION_DAYS (or --before) from the listings' indexes."""
    settings = Settings.from_env()
    cutoff = before if before is not None else now() - settings.retention_days * 86400
    with _records() as records:
        removed = _ask(lambda: records.trim(cutoff))
    click.echo(f"{removed} calls started before {iso(cutoff)} dropped from the indexes")


@click.command(name="kpis")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--by", type=click.Choice(GROUPINGS), default="day", show_default=True)
@click.option("--threshold", type=click.FloatRange(min=0), default=20, show_default=True)
@click.option("--tz", "zone_name", default="UTC", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def kpis_command(
    start: datetime, end: datetime, by: str, threshold: float, zone_name: str, as_json: bool
) -> None:
    """Service level, ASA, abandons and more per day, hour, queue, pool or language."""
    try:
        parse_zone(zone_name)
    except BadQuery as exc:
        raise click.BadParameter(str(exc), param_hint="--tz") from exc
    if end < start:
        raise click.BadParameter(f"{end.date()} is before --from {start.date()}", param_hint="--to")
    try:
        kpi_query(start.date(), end.date(), by, threshold, zone_name)
    except BadQuery as exc:
        raise click.UsageError(str(exc)) from exc
    with _records() as records:
        report = _ask(
            lambda: kpi_report(records, start.date(), end.date(), by, threshold, zone_name)
        )
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    for line in kpi_table(report):
        click.echo(line)


def kpi_table(report: dict[str, Any]) -> list[str]:
    """The KPI report as an aligned text table, the total last."""
    rows = [*report["rows"], {**report["total"], "key": "total"}]
    cells = [[_cell(name, row[name]) for name in KPI_FIELDS] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(KPI_FIELDS)]
    header = "  ".join(h.ljust(w) for h, w in zip(KPI_FIELDS, widths, strict=True))
    return [header] + ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in ("service_level", "abandon_rate"):
        return f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _ask(question: Callable[[], T]) -> T:
    try:
        return question()
    except IvrError as exc:
        raise click.ClickException(str(exc)) from exc


COMMANDS = [calls, kpis_command]
