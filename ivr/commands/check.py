"""`ivr check`: validate the call flows and pools that ops edit, before they go live."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ivr.errors import Problem
from ivr.flows.loader import FlowDocs, load_flow_texts, read_flow_files
from ivr.flows.model import Route

POOLS_FILE = "pools.yaml"


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
        texts, unreadable = read_flow_files(directory)
    except OSError as exc:
        return {}, [Problem(str(directory), 1, 1, f"cannot read the flows: {exc}")]
    if not texts and not unreadable:
        return {}, [Problem(str(directory), 1, 1, "no call flow files (*.yaml) here")]
    flows, problems = load_flow_texts(texts, base=directory)
    problems += unreadable
    problems += _check_pools(directory, flows)
    problems.sort(key=lambda p: (p.path, p.line, p.col))
    return flows, problems


def _check_pools(directory: Path, flows: FlowDocs) -> list[Problem]:
    try:
        from ivr.pools import load_pools
    except ImportError:  # the pools module is optional for checking flows
        return []
    routes = [
        (step, step.action)
        for flow in flows.values()
        for step in flow.steps.values()
        # Inlined copies ("include_step/step") are checked once, in the flow that holds them.
        if isinstance(step.action, Route) and "/" not in step.name and step.at is not None
    ]
    path = directory / POOLS_FILE
    if not path.exists():
        if not routes:
            return []
        step, _ = routes[0]
        assert step.at is not None
        message = (
            f"step {step.name!r}: there is no {POOLS_FILE} in {directory}, so every route "
            "goes straight to its otherwise step"
        )
        return [Problem(step.at.path, step.at.line, step.at.col, message, "warning")]
    pools, problems = load_pools(path)
    if pools is None:
        return problems
    served = pools.queues()
    for step, route in routes:
        if route.queue not in served and step.at is not None:
            known = ", ".join(sorted(served)) or "none"
            message = (
                f"step {step.name!r}: queue {route.queue!r} is served by no pool in "
                f"{POOLS_FILE} (queues served: {known})"
            )
            problems.append(Problem(step.at.path, step.at.line, step.at.col, message))
    return problems


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
