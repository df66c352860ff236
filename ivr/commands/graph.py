"""`ivr graph FLOW`: a flow as a Mermaid flowchart, for reviewing a change to it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click

from ivr.flows import model as m
from ivr.flows.loader import load_flow_dir

EXCERPT_LENGTH = 40
START, END = "call_start", "call_end"  # "end" alone is a Mermaid keyword
# Labels are quoted; these would still end the label or start an entity code.
_ESCAPES = {'"': "#quot;", "#": "#35;", "<": "#lt;", ">": "#gt;"}
# Node shapes by step kind ("{}" is the label): the caller chooses at hexagons, the flow at
# rhombuses; stadiums put the caller through to people, the cylinder records.
_SHAPES = {
    "menu": '{{"{}"}}',
    "branch": '{"{}"}',
    "route": '(["{}"])',
    "dial": '(["{}"])',
    "voicemail": '[("{}")]',
}


@click.command("graph")
@click.argument("flow_name", metavar="FLOW")
@click.option(
    "--flows",
    "flows_dir",
    envvar="IVR_FLOWS_DIR",
    default="call_flows",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The call flows directory (default: $IVR_FLOWS_DIR).",
)
def graph(flow_name: str, flows_dir: Path) -> None:
    """Print FLOW as a Mermaid flowchart (paste it into a Markdown file or mermaid.live)."""
    if not flows_dir.is_dir():
        raise click.ClickException(f"{flows_dir}: no such directory")
    flows, problems = load_flow_dir(flows_dir)
    flow = flows.get(flow_name) or next(
        (f for f in flows.values() if Path(f.path).name == flow_name), None
    )
    if flow is None:
        known = ", ".join(flows) or "none"
        # A flow whose file does not parse is missing here: say why rather than deny it exists.
        errors = [str(p) for p in problems if p.severity == "error"]
        why = "; it may be in a file with errors:\n" + "\n".join(errors) if errors else ""
        raise click.ClickException(f"no flow {flow_name!r} in {flows_dir} (flows: {known}){why}")
    for problem in problems:
        if problem.severity == "error" and problem.path in _files_of(flow):
            click.echo(f"warning: the flow has errors: {problem}", err=True)
    click.echo(mermaid(flow))


def mermaid(flow: m.Flow) -> str:
    """The Mermaid `flowchart TD` text of `flow`: steps as nodes, choices as labelled edges."""
    ids = {name: f"s{i}" for i, name in enumerate(flow.steps)}
    lines = ["flowchart TD"]
    if flow.description:
        lines.append(f"    %% {flow.name}: {' '.join(flow.description.split())}")
    lines.append(f'    {START}(("{_escape(_answers(flow))}"))')
    lines += _nodes(flow, ids)
    lines.append(f"    {END}((end))")
    lines.append(f"    {START} --> {ids.get(flow.start, END)}")
    for step in flow.steps.values():
        edges = list(_edges(step))
        if not edges:
            edges = [(END, "", False)]
        for target, label, dotted in edges:
            arrow = "-.->" if dotted else "-->"
            shown = f'|"{_escape(label)}"|' if label else ""
            lines.append(f"    {ids[step.name]} {arrow}{shown} {ids.get(target, END)}")
    return "\n".join(lines)


def _answers(flow: m.Flow) -> str:
    if flow.numbers:
        return "call to " + ", ".join(flow.numbers)
    return "any other number" if flow.default else "when included"


def _nodes(flow: m.Flow, ids: dict[str, str]) -> list[str]:
    """Node lines; steps inlined from another flow are grouped under the step including them."""
    groups: dict[str, list[str]] = {}
    for name in flow.steps:
        groups.setdefault(name.rpartition("/")[0], []).append(name)
    lines: list[str] = []

    def emit(prefix: str, depth: int) -> None:
        indent = "    " * depth
        for name in groups.get(prefix, []):
            lines.append(indent + _node(flow, flow.steps[name], ids[name]))
        for inner in groups:
            if inner and inner.rpartition("/")[0] == prefix:
                title = f"included at {inner}"
                lines.append(f'{indent}subgraph {ids.get(inner, "g")}_inc ["{_escape(title)}"]')
                emit(inner, depth + 1)
                lines.append(f"{indent}end")

    emit("", 1)
    return lines


def _node(flow: m.Flow, step: m.Step, node_id: str) -> str:
    kind, detail = _describe(flow, step)
    # Inside the group of an include, the step's own name is enough.
    text = f"<b>{_escape(step.name.rpartition('/')[2])}</b><br/>{_escape(kind)}"
    if detail:
        text += f": {_escape(detail)}"
    if step.hangup and kind != "hang up":
        text += "<br/>then hang up"
    return node_id + _SHAPES.get(kind, '["{}"]').replace("{}", text)


def _describe(flow: m.Flow, step: m.Step) -> tuple[str, str]:
    """The kind of a step and a short excerpt of what it does, in the flow's first language."""
    action = step.action
    language = flow.language
    if isinstance(action, m.Say):
        return "say", _excerpt(action.prompt.text(language))
    if isinstance(action, m.Menu):
        return "menu", _excerpt(action.prompt.text(language))
    if isinstance(action, m.Voicemail):
        return "voicemail", _excerpt(action.prompt.text(language) if action.prompt else "")
    if isinstance(action, m.Play):
        return "play", action.url.rsplit("/", 1)[-1]
    if isinstance(action, m.Pause):
        return "pause", f"{action.seconds}s"
    if isinstance(action, m.SetVars):
        return "set", _excerpt(", ".join(f"{k}={v}" for k, v in action.values.items()))
    if isinstance(action, m.SwitchLanguage):
        return "language", action.language
    if isinstance(action, m.Branch):
        return "branch", ""
    if isinstance(action, m.Dial):
        return "dial", action.number
    if isinstance(action, m.Route):
        return "route", f"queue {action.queue}" + (", hold" if action.hold else "")
    if isinstance(action, m.Dequeue):
        return "dequeue", f"queue {action.queue}"
    if step.next and step.next.startswith(step.name + "/"):
        target = flow.steps.get(step.next)
        return "include", Path(target.at.path).stem if target and target.at else ""
    return ("hang up", "") if step.hangup else ("go on", "") if step.next else ("end", "")


def _edges(step: m.Step) -> Iterator[tuple[str, str, bool]]:
    """(target, label, dotted) for every way out of `step`; dotted for the unhappy paths."""
    action = step.action
    if isinstance(action, m.Menu):
        for option in action.options:
            label = option.key + (f" · {option.language}" if option.language else "")
            if option.next or step.next:
                yield option.next or step.next or "", label, False
        if action.otherwise:
            tries = "1 try" if action.attempts == 1 else f"{action.attempts} tries"
            yield action.otherwise, f"otherwise, after {tries}", True
        return
    if isinstance(action, m.Branch):
        for case in action.cases:
            yield case.next, _condition(case.when), False
        yield action.default, "default", True
        return
    if isinstance(action, m.Dial | m.Route | m.Dequeue) and action.otherwise:
        yield action.otherwise, "no answer", True
    if step.next:
        yield step.next, "", False


def _condition(when: m.Condition) -> str:
    parts = []
    if when.caller_prefix:
        parts.append("caller " + " or ".join(when.caller_prefix))
    if when.from_country:
        parts.append("country " + " or ".join(when.from_country))
    if when.language:
        parts.append("language " + " or ".join(when.language))
    for name, allowed in when.variables.items():
        parts.append(f"{name} = " + " or ".join(allowed))
    return " and ".join(parts)


def _excerpt(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= EXCERPT_LENGTH else words[: EXCERPT_LENGTH - 1].rstrip() + "…"


def _escape(text: str) -> str:
    return re.sub(r'["#<>]', lambda found: _ESCAPES[found.group()], text)


def _files_of(flow: m.Flow) -> set[str]:
    return {flow.path} | {s.at.path for s in flow.steps.values() if s.at is not None}


COMMANDS = [graph]
