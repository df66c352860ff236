"""Checks between the flows of a directory: the numbers each answers, the default flow, flows
answering nothing, dials back into the router and dequeues from no hold line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ivr.errors import Problem
from ivr.flows import model as m
from ivr.flows.parse import Draft
from ivr.yamlsource import Path as YamlPath


def check_across(
    drafts: Sequence[Draft], included: Iterable[str], every_flow_read: bool = True
) -> list[Problem]:
    """Checks between flows: numbers answered twice, two default flows, flows answering nothing
    (only when `every_flow_read`: a flow that could not be read may be the one including it)."""
    problems: list[Problem] = []
    owners: dict[str, Draft] = {}
    default: Draft | None = None
    included = set(included)
    owners_of = {number: d.flow.name for d in drafts for number in d.flow.numbers}
    if every_flow_read:
        problems += _dequeues_from_no_line(drafts)
    for draft in drafts:
        flow, source = draft.flow, draft.source
        for number in flow.numbers:
            owner = owners.setdefault(number, draft)
            if owner is not draft:
                message = (
                    f"number {number} is already answered by flow {owner.flow.name!r} "
                    f"({owner.flow.path})"
                )
                problems.append(source.problem(_number_at(draft, number), message))
        if flow.default and default is not None:
            message = (
                f"flow {flow.name!r} is default: true, and so is flow {default.flow.name!r} "
                f"({default.flow.path}): only one flow may answer the numbers no flow lists"
            )
            problems.append(source.problem(("default",), message))
        elif flow.default:
            default = draft
        problems += _dials_into_the_router(draft, owners_of)
        # Numbers written but all refused (reported each) are numbers all the same.
        written = isinstance(source.data, dict) and bool(source.data.get("numbers"))
        if every_flow_read and not (written or flow.default or flow.name in included):
            message = (
                f"flow {flow.name!r} answers no number: give it numbers or default: true, "
                "or include it from another flow"
            )
            problems.append(source.problem(("flow",), message, "warning"))
    return problems


def _dequeues_from_no_line(drafts: Sequence[Draft]) -> list[Problem]:
    """A dequeue step takes callers from a queue's hold line: one no route puts callers in
    (a misspelt queue) leaves agents calling in with nobody, and the line's callers waiting."""
    lines = sorted(
        {
            step.action.queue
            for d in drafts
            for step in d.flow.steps.values()
            if isinstance(step.action, m.Route) and step.action.hold is not None
        }
    )
    found: list[Problem] = []
    for draft in drafts:
        for step in draft.flow.steps.values():
            if isinstance(step.action, m.Dequeue) and step.action.queue not in lines:
                known = ", ".join(lines) or "none"
                message = (
                    f"step {step.name!r}: dequeue takes callers from queue "
                    f"{step.action.queue!r}, but no route with hold puts callers in line there "
                    f"(hold lines: {known})"
                )
                where = ("steps", step.name, "dequeue")
                found.append(draft.source.problem(where, message, "warning"))
    return found


def _dials_into_the_router(draft: Draft, owners_of: Mapping[str, str]) -> list[Problem]:
    """A dial step calling a number a flow answers starts a second call into this router: into
    its own flow, a loop of calls; into another, the caller starts over on a second line."""
    found: list[Problem] = []
    for step in draft.flow.steps.values():
        action = step.action
        if not isinstance(action, m.Dial) or action.number not in owners_of:
            continue
        owner = owners_of[action.number]
        where = ("steps", step.name, "dial", "number")
        if owner == draft.flow.name:
            message = (
                f"step {step.name!r}: dial calls {action.number}, which this flow answers: "
                "every call would dial itself again"
            )
            found.append(draft.source.problem(where, message))
        else:
            message = (
                f"step {step.name!r}: dial calls {action.number}, which flow {owner!r} answers: "
                f"the caller would start over there on a second call (include: {owner} does "
                "it in this one)"
            )
            found.append(draft.source.problem(where, message, "warning"))
    return found


def _number_at(draft: Draft, number: str) -> YamlPath:
    listed = draft.source.data.get("numbers")
    return ("numbers", listed.index(number)) if isinstance(listed, list) else ("numbers",)
