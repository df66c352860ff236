"""`ivr check`: validate the call flows and pools that ops edit, before they go live."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ivr.config import POOLS_FILE, load_config, read_config_files
from ivr.errors import Problem
from ivr.flows.loader import FlowDocs, is_flow_file
from ivr.flows.model import Route
from ivr.tickets.config import check_tickets


@click.command("check")
@click.argument(
    "directory",
    envvar="IVR_FLOWS_DIR",
    default="call_flows",
    type=click.Path(path_type=Path, file_okay=False),
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON only.")
def check(directory: Path, as_json: bool) -> None:
    """Validate the call flows and pools.yaml in DIRECTORY (default: $IVR_FLOWS_DIR)."""
    flows, problems = check_directory(directory)
    errors = sum(1 for p in problems if p.severity == "error")
    if as_json:
        result = {
            "ok": errors == 0,
            "problems": [_as_dict(p) for p in problems],
            "flows": list(flows),
        }
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        for problem in problems:
            click.echo(str(problem))
        click.echo(_summary(directory, flows, problems, errors), err=True)
    raise SystemExit(1 if errors else 0)


def check_directory(directory: Path) -> tuple[FlowDocs, list[Problem]]:
    """The flows of `directory` and every problem with them, its pools and their links."""
    if not directory.is_dir():
        return {}, [Problem(str(directory), 1, 1, "no such directory")]
    try:
        texts, unreadable = read_config_files(directory)
    except OSError as exc:
        return {}, [Problem(str(directory), 1, 1, f"cannot read the flows: {exc}")]
    found = [*texts, *(p.path for p in unreadable)]
    if not any(is_flow_file(Path(name).name) for name in found):
        return {}, [Problem(str(directory), 1, 1, "no call flow files (*.yaml) here")]
    pools_path = directory / POOLS_FILE
    config = load_config(texts, base=directory)
    problems = config.problems + unreadable + check_tickets(directory)
    if not pools_path.exists():
        problems += _no_pools(directory, config.flows)
    problems.sort(key=lambda p: (p.path, p.line, p.col))
    return config.flows, problems


def _no_pools(directory: Path, flows: FlowDocs) -> list[Problem]:
    routes = [
        step
        for flow in flows.values()
        for step in flow.steps.values()
        # Inlined copies ("include_step/step") are reported once, in the flow that holds them.
        if isinstance(step.action, Route) and "/" not in step.name and step.at is not None
    ]
    if not routes or routes[0].at is None:
        return []
    at = routes[0].at
    message = (
        f"step {routes[0].name!r}: there is no {POOLS_FILE} in {directory}, so every route "
        "goes straight to its otherwise step"
    )
    return [Problem(at.path, at.line, at.col, message, "warning")]


def _as_dict(problem: Problem) -> dict[str, str | int]:
    return {
        "path": problem.path,
        "line": problem.line,
        "col": problem.col,
        "severity": problem.severity,
        "message": problem.message,
    }


def _summary(directory: Path, flows: FlowDocs, problems: list[Problem], errors: int) -> str:
    warnings = len(problems) - errors
    counted = f"{len(flows)} flow{'s' if len(flows) != 1 else ''}"
    if not problems:
        return f"{directory}: {counted}, no problems"
    return (
        f"{directory}: {counted}, {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )


COMMANDS = [check]
