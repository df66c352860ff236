"""Call flow files read into frozen flows: parsed, sub-flows inlined, then validated.

The loader never raises on a bad flow: it returns every flow it could build together with every
problem found (errors and warnings), and the caller decides what an error means for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ivr import yamlsource
from ivr.errors import Problem
from ivr.flows import model as m
from ivr.flows.across import check_across
from ivr.flows.parse import Draft, parse_flow
from ivr.flows.validate import check_flow, check_references
from ivr.yamlsource import suggest

FlowDocs = dict[str, m.Flow]  # flows by name

FLOW_SUFFIXES = (".yaml", ".yml")
POOLS_STEM = "pools"  # pools.yaml shares the directory; ivr.pools reads it
TICKETS_STEM = "tickets"  # so does tickets.yaml, read by ivr.tickets.config
# Actions after which a step with no next ends the call; when included, it returns instead.
ENDING_ACTIONS = (m.Say, m.Play, m.Pause, m.SetVars, m.SwitchLanguage)


def is_flow_file(name: str) -> bool:
    """Whether a file name in the flows directory is a call flow (not pools, not hidden)."""
    path = Path(name)
    return (
        path.suffix in FLOW_SUFFIXES
        and path.stem not in (POOLS_STEM, TICKETS_STEM)
        and not name.startswith(".")
    )


def read_flow_files(directory: Path) -> tuple[dict[str, str], list[Problem]]:
    """The text of every call flow file in `directory`, by file name, sorted by name; a file
    that cannot be read, or is not UTF-8, is a problem of its own, not the end."""
    texts: dict[str, str] = {}
    problems: list[Problem] = []
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        if not (is_flow_file(path.name) and path.is_file()):
            continue
        text, unreadable = yamlsource.read_text(path)
        if text is None:
            problems += unreadable
        else:
            texts[path.name] = text
    return texts, problems


def load_flow_dir(directory: Path) -> tuple[FlowDocs, list[Problem]]:
    """Read and load every call flow file in `directory`; a file that cannot be read is one
    more problem."""
    texts, unreadable = read_flow_files(directory)
    flows, problems = load_flow_texts(texts, base=directory)
    return flows, sorted(unreadable + problems, key=lambda p: (p.path, p.line, p.col))


def load_flow_texts(
    texts: Mapping[str, str], base: Path | None = None
) -> tuple[FlowDocs, list[Problem]]:
    """Flows by name from file texts by file name, and every problem found, sorted by place.

    Problems name `base / file name` when `base` is given. Flows that have errors are returned
    too, as far as they could be built: use them only when no problem is an error.
    """
    problems: list[Problem] = []
    drafts: dict[str, Draft] = {}
    unreadable: dict[str, str] = {}  # file stem -> shown path, for flows that could not be read
    left_out = False  # a flow named as another one is: the flows are not all known
    for file_name in sorted(texts):
        if not is_flow_file(file_name):
            continue
        shown = str(base / file_name) if base is not None else file_name
        source, found = yamlsource.parse(texts[file_name], shown)
        problems += found
        draft = None
        if source is not None:
            draft, found = parse_flow(source, Path(file_name).stem)
            problems += found
        if draft is None:
            unreadable[Path(file_name).stem] = shown
            continue
        same_name = drafts.get(draft.flow.name)
        if same_name is not None:
            message = f"flow {draft.flow.name!r} is already defined in {same_name.flow.path}"
            problems.append(draft.source.problem(("flow",), message))
            left_out = True
            continue
        drafts[draft.flow.name] = draft
    for draft in drafts.values():
        problems += check_references(draft)
    inliner = _Inliner(drafts, unreadable)
    built = {name: inliner.build(name) for name in drafts}
    problems += inliner.problems
    languages_of = {name: draft.flow.languages for name, draft in drafts.items()}
    for flow in built.values():
        problems += check_flow(flow, languages_of)
    included = {name for draft in drafts.values() for name in draft.includes.values()}
    problems += check_across(
        list(drafts.values()), included, every_flow_read=not (unreadable or left_out)
    )
    # The same sub-flow included twice would report its problems twice.
    unique = list(dict.fromkeys(problems))
    unique.sort(key=lambda p: (p.path, p.line, p.col))
    return {name: flow.flow for name, flow in built.items()}, unique


class _Inliner:
    """Copies included flows into the flows that include them, once per flow."""

    def __init__(self, drafts: Mapping[str, Draft], unreadable: Mapping[str, str]) -> None:
        self.drafts = drafts
        self.unreadable = unreadable
        self.built: dict[str, Draft] = {}
        self.problems: list[Problem] = []

    def build(self, name: str, including: tuple[str, ...] = ()) -> Draft:
        """Flow `name` with its includes inlined (`including`: the flows on the way to it)."""
        if name in self.built:
            return self.built[name]
        draft = self.drafts[name]
        steps = dict(draft.flow.steps)
        origins = dict(draft.origins)
        broken = set(draft.broken)
        copies: dict[str, m.Step] = {}
        for step_name, included in draft.includes.items():
            sub = self._included(draft, step_name, included, (*including, name))
            if sub is None:
                continue
            include = steps[step_name]
            prefix = f"{step_name}/"
            for sub_name, sub_step in sub.flow.steps.items():
                copy = _renamed(sub_step, prefix)
                if include.next and _ends_call(copy):
                    copy = replace(copy, next=include.next)
                copies[copy.name] = copy
                origins[copy.name] = sub.origins[sub_name]
            broken |= {prefix + sub_name for sub_name in sub.broken}
            steps[step_name] = replace(include, next=prefix + sub.flow.start)
        # Own steps first, so that the default fallback is the flow's own voicemail if it has one.
        steps.update(copies)
        fallback = draft.flow.fallback or next(
            (s.name for s in steps.values() if isinstance(s.action, m.Voicemail)), None
        )
        flow = replace(draft.flow, steps=steps, fallback=fallback)
        self.built[name] = Draft(flow, draft.source, origins, {}, broken)
        return self.built[name]

    def _included(
        self, draft: Draft, step_name: str, included: str, including: tuple[str, ...]
    ) -> Draft | None:
        where = ("steps", step_name, "include")
        prefix = f"step {step_name!r}: "
        if included in including:
            chain = " -> ".join(repr(name) for name in (*including, included))
            message = f"{prefix}flows include each other in a loop: {chain}"
            self.problems.append(draft.source.problem(where, message))
            return None
        if included not in self.drafts:
            if included in self.unreadable:
                found = f"which could not be read (see {self.unreadable[included]})"
            else:
                found = "which is not a flow" + suggest(included, self.drafts)
            self.problems.append(
                draft.source.problem(where, f"{prefix}includes {included!r}, {found}")
            )
            return None
        return self.build(included, including)


def _ends_call(step: m.Step) -> bool:
    """Whether the call ends after this step because nothing follows it."""
    if step.next or step.hangup:
        return False
    return step.action is None or isinstance(step.action, ENDING_ACTIONS)


def _renamed(step: m.Step, prefix: str) -> m.Step:
    """A copy of `step` with its name and every step name it refers to prefixed."""

    def rename(name: str | None) -> str | None:
        return None if name is None else prefix + name

    action = step.action
    if isinstance(action, m.Menu):
        options = tuple(replace(o, next=rename(o.next)) for o in action.options)
        action = replace(action, options=options, otherwise=rename(action.otherwise))
    elif isinstance(action, m.Branch):
        cases = tuple(replace(c, next=prefix + c.next) for c in action.cases)
        action = replace(action, cases=cases, default=prefix + action.default)
    elif isinstance(action, m.Dial | m.Route | m.Dequeue):
        action = replace(action, otherwise=rename(action.otherwise))
    return replace(step, name=prefix + step.name, action=action, next=rename(step.next))
