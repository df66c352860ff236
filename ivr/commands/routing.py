"""`ivr route` and `ivr coverage`: who would take a call and why, and when no one would.

Both read `pools.yaml` from the flows directory (`--flows`, else $IVR_FLOWS_DIR, else
./call_flows). Instants in JSON are UTC, written like 2026-03-08T07:00:00Z. `ivr route` takes the
agents marked away in Redis (REDIS_URL, else the embedded server of the data dir) as away, as the
server would, plus any `--away`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import redis

from ivr.config import LANGUAGE_TAG, canonical_language
from ivr.embedded import ensure_redis
from ivr.errors import IvrError
from ivr.pools import load_pools
from ivr.settings import Settings
from ivr.store import Store, connect
from routing.coverage import gaps, serving, why_closed
from routing.decide import Away, Decision, decide
from routing.model import DAY_NAMES, Pool, Pools
from routing.shifts import local
from routing.svg import render

MAX_DRAWN_DAYS = 7
# Shifts are worked out a week and more around an instant in each pool's zone: beyond these
# bounds that would step outside the years datetime can hold.
FIRST_INSTANT = datetime(2, 1, 1, tzinfo=UTC)
LAST_INSTANT = datetime(9999, 1, 1, tzinfo=UTC)
OUT_OF_RANGE = "outside the years routing can plan for (0002 to 9998)"

flows_option = click.option(
    "--flows",
    "flows_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding pools.yaml (default: $IVR_FLOWS_DIR, else ./call_flows).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON only.")


def _language_tag(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # A tag spelt as flows never spell one (vi_VN) would match no pool and pass unnoticed.
    if value is not None and not LANGUAGE_TAG.match(value.strip()):
        raise click.BadParameter(f"{value!r} is not a language tag such as en-US, vi-VN or ar-XA")
    return canonical_language(value.strip()) if value is not None else None


@click.command()
@click.option("--queue", required=True, help="The queue a route step asks for.")
@click.option("--language", callback=_language_tag, help="The caller's language, e.g. vi-VN.")
@click.option(
    "--at", "at_text", metavar="ISO-8601", help="The instant (default: now; UTC if naive)."
)
@click.option(
    "--away",
    multiple=True,
    metavar="AGENT",
    help="An agent id or name (any case) to take as away, besides those away in Redis.",
)
@json_option
@flows_option
def route(
    queue: str,
    language: str | None,
    at_text: str | None,
    away: tuple[str, ...],
    as_json: bool,
    flows_dir: Path | None,
) -> None:
    """Who would take a call for a queue at an instant, and why the other pools would not."""
    at = parse_instant(at_text) if at_text else datetime.now(UTC)
    settings = Settings.from_env()
    pools = _load(flows_dir or settings.flows_dir)
    _warn_unknown(pools, queue, language)
    gone = Away(_named_away(pools, away) | stored_away(settings))
    decision = decide(pools, queue, language, at, gone)
    if as_json:
        payload = {**decision_json(decision), "away": sorted(gone)}
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        click.echo(describe(decision))


@click.command()
@click.option("--queue", required=True, help="The queue to plan for.")
@click.option("--language", callback=_language_tag, help="Count only pools speaking this language.")
@click.option(
    "--from", "first_day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD."
)
@click.option("--days", required=True, type=click.IntRange(1, 3660), help="How many days.")
@json_option
@click.option(
    "--svg",
    "svg_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Also draw the first {MAX_DRAWN_DAYS} days as an SVG grid into this file.",
)
@flows_option
def coverage(
    queue: str,
    language: str | None,
    first_day: datetime,
    days: int,
    as_json: bool,
    svg_path: Path | None,
    flows_dir: Path | None,
) -> None:
    """The gaps, over some days from 00:00 UTC, when no pool serving a queue is on shift."""
    pools = _load(flows_dir or Settings.from_env().flows_dir)
    _warn_unknown(pools, queue, language)
    start = datetime.combine(first_day.date(), datetime.min.time(), UTC)
    if not FIRST_INSTANT <= start <= LAST_INSTANT - timedelta(days=days):
        raise click.BadParameter(
            f"{first_day:%Y-%m-%d} + {days} days is {OUT_OF_RANGE}", param_hint="--from"
        )
    end = start + timedelta(days=days)
    found = gaps(pools, queue, language, start, end)
    involved = serving(pools, queue, language)
    if svg_path is not None:
        drawn_end = start + timedelta(days=min(days, MAX_DRAWN_DAYS))
        title = f"Queue {queue}{f' in {language}' if language else ''}: who is on shift (UTC)"
        try:
            svg_path.write_text(render(involved, start, drawn_end, title), encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {svg_path}: {exc.strerror or exc}") from exc
        click.echo(f"wrote {svg_path}", err=True)
    if as_json:
        payload = {"gaps": [{"start": iso_utc(s), "end": iso_utc(e)} for s, e in found]}
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(gap_table(queue, language, start, end, found, involved))


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant; one written without an offset is taken as UTC."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO-8601 instant: {text!r}", param_hint="--at") from exc
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if not FIRST_INSTANT <= at < LAST_INSTANT:
        raise click.BadParameter(f"{text!r} is {OUT_OF_RANGE}", param_hint="--at")
    return at


def iso_utc(at: datetime) -> str:
    """An instant as ISO-8601 UTC with a Z, to the second."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decision_json(decision: Decision) -> dict[str, Any]:
    """The contract's JSON of `ivr route`, with the pools passed over and the agents to ring."""
    return {
        "pool": decision.pool.name if decision.pool else None,
        "pools": [c.pool.name for c in decision.pools],
        "reason": decision.reason,
        "at": iso_utc(decision.at),
        "agents": {c.pool.name: [a.id for a in c.agents] for c in decision.pools},
        "skipped": {
            c.pool.name: [{"agent": s.agent.id, "reason": s.reason} for s in skipped]
            for c in decision.pools
            if (skipped := decision.skipped(c.pool))
        },
        "passed_over": [{"pool": p.pool.name, "reason": p.reason} for p in decision.passed_over],
    }


def describe(decision: Decision) -> str:
    """The decision for people: where the call goes, the order, and why others were passed over."""
    asked = f"a call for {decision.queue}" + (
        f" in {decision.language}" if decision.language else ""
    )
    when = f"{decision.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    target = decision.pool.name if decision.pool else "the route's `otherwise` step"
    lines = [f"At {when}, {asked} goes to {target}: {decision.reason}"]
    if decision.pools:
        lines.append("Pools in order:")
        for i, c in enumerate(decision.pools, 1):
            rung = ", ".join(a.name for a in c.agents)
            skipped = "; ".join(f"{s.agent.name} {s.reason}" for s in decision.skipped(c.pool))
            lines.append(
                f"  {i}. {c.pool.name} ({c.pool.strategy}): {rung}"
                + (f" (skipped: {skipped})" if skipped else "")
            )
    if decision.passed_over:
        lines.append("Passed over:")
        lines += [f"  {p.pool.name}: {p.reason}" for p in decision.passed_over]
    return "\n".join(lines)


def gap_table(
    queue: str,
    language: str | None,
    start: datetime,
    end: datetime,
    found: list[tuple[datetime, datetime]],
    involved: tuple[Pool, ...],
) -> str:
    """The gaps for people: UTC start, end and length, and each involved pool's local times and
    why it is closed as the gap begins (off shift, a holiday by name, a closure). The JSON keeps
    to the gaps; `ivr route --at START` gives the same words for one instant."""
    asked = queue + (f" in {language}" if language else "")
    lines = [f"Coverage of {asked}, {_utc(start)} to {_utc(end)} UTC"]
    if not involved:
        lines.append(f"No pool serves {asked}: nobody takes these calls.")
    else:
        lines.append("Pools: " + ", ".join(f"{p.name} ({p.timezone})" for p in involved))
    if not found:
        lines.append("No gaps: some pool is on shift at every instant.")
        return "\n".join(lines)
    total = sum(((e - s) for s, e in found), timedelta())
    lines += [f"{len(found)} gap(s), {_length(total)} in all:", ""]
    width = max((len(p.name) for p in involved), default=0)
    lines.append(
        f"{'start (UTC)':<20}{'end (UTC)':<20}{'length':<12}local time in each pool, and why"
    )
    for s, e in found:
        row = f"{_utc(s):<20}{_utc(e):<20}{_length(e - s):<12}"
        if not involved:
            lines.append(row.rstrip())
        clocks = [f"{_wall(s, pool)} to {_wall(e, pool)}" for pool in involved]
        wide = max(map(len, clocks), default=0)
        closed = why_closed(involved, queue, s)
        for i, ((pool, why), clock) in enumerate(zip(closed, clocks, strict=True)):
            text = f"{pool.name:<{width}}  {clock:<{wide}}  {why}"
            lines.append((row if i == 0 else " " * len(row)) + text)
    return "\n".join(lines)


def stored_away(settings: Settings) -> set[str]:
    """The ids marked away in Redis, or none (with a warning) when no Redis can be read."""
    if not settings.redis_url and not settings.data_dir.is_dir():
        return set()  # no server was ever run here, so nobody was marked away
    try:
        with ensure_redis(settings) as ready:
            connection = connect(ready)
            try:
                return Store(connection).away()
            finally:
                connection.close()
    except (redis.RedisError, OSError, IvrError) as exc:
        click.echo(f"warning: agent presence not read ({exc}); nobody is taken as away", err=True)
        return set()


def _load(directory: Path) -> Pools:
    pools, problems = load_pools(directory / "pools.yaml")
    for problem in problems:
        click.echo(str(problem), err=True)
    if pools is None:
        raise click.exceptions.Exit(1)
    return pools


def _warn_unknown(pools: Pools, queue: str, language: str | None) -> None:
    """Say on stderr when no pool serves the queue or speaks the language: likely a typo."""
    queues = sorted(pools.queues())
    if queue not in queues:
        known = ", ".join(queues) or "none"
        click.echo(f"warning: no pool serves queue {queue!r} (queues served: {known})", err=True)
    spoken = sorted({tag for pool in pools for tag in pool.languages})
    if language is not None and language not in spoken:
        known = ", ".join(spoken) or "none"
        click.echo(f"warning: no pool speaks {language} (languages spoken: {known})", err=True)


def _named_away(pools: Pools, away: tuple[str, ...]) -> set[str]:
    from ivr.agents.services import AmbiguousAgent, UnknownAgent, resolve

    found = set()
    for name in away:
        try:
            found.add(resolve(pools, name))
        except AmbiguousAgent as exc:  # as `ivr agents away` refuses it: only an id says who
            raise click.BadParameter(str(exc), param_hint="--away") from exc
        except UnknownAgent:
            click.echo(f"warning: --away {name}: no agent has this id or name", err=True)
    return found


def _utc(at: datetime) -> str:
    shown = at.astimezone(UTC)
    return f"{shown:%Y-%m-%d %H:%M}" + (f":{shown:%S}" if shown.second else "")


def _wall(at: datetime, pool: Pool) -> str:
    shown = local(at.timestamp(), pool.zone)
    seconds = f":{shown:%S}" if shown.second else ""
    return f"{DAY_NAMES[shown.weekday()]} {shown:%m-%d %H:%M}{seconds}"


def _length(length: timedelta) -> str:
    minutes, seconds = divmod(int(length.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    text = (f"{days}d " if days else "") + f"{hours}h {minutes:02d}m"
    return text + (f" {seconds:02d}s" if seconds else "")


COMMANDS = [route, coverage]
