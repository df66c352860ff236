"""Checks that need the whole flow: step links, loops, reachability, languages, hold lines.

Each message is located at the YAML that causes it and names the step, so that ops can fix a flow
from the message alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from ivr.errors import Problem
from ivr.flows import model as m
from ivr.flows.parse import Draft
from ivr.yamlsource import Path as YamlPath
from ivr.yamlsource import suggest

Reference = tuple[
    YamlPath, str | None, str
]  # (where below the step, target step, what leads there)


def references(step: m.Step) -> list[Reference]:
    """Every step name `step` refers to, with where it is written below the step and what it is."""
    found: list[Reference] = [(("next",), step.next, "next")] if step.next else []
    action = step.action
    if isinstance(action, m.Menu):
        for option in action.options:
            # An option without next goes on to the step's next, which is listed already.
            if option.next or not step.next:
                where = ("menu", "options", option.key, "next")
                found.append((where, option.next, f"option {option.key!r}"))
        if action.otherwise:
            found.append((("menu", "otherwise"), action.otherwise, "otherwise"))
    elif isinstance(action, m.Branch):
        for i, case in enumerate(action.cases):
            found.append((("branch", "cases", i, "next"), case.next, f"case {i + 1}"))
        found.append((("branch", "default"), action.default, "default"))
    elif isinstance(action, m.Dial | m.Route | m.Dequeue) and action.otherwise:
        kind = type(action).__name__.lower()
        found.append(((kind, "otherwise"), action.otherwise, "otherwise"))
    return found


def check_references(draft: Draft) -> list[Problem]:
    """Every step name used in one flow file (start, next, options, ...) names one of its steps."""
    flow, source = draft.flow, draft.source
    problems: list[Problem] = []
    steps = flow.steps
    if flow.start and flow.start not in steps:
        message = f"start step {flow.start!r} is not one of the steps{suggest(flow.start, steps)}"
        problems.append(source.problem(("start",), message))
    if flow.fallback and flow.fallback not in steps:
        message = f"fallback step {flow.fallback!r} is not one of the steps"
        problems.append(source.problem(("fallback",), message + suggest(flow.fallback, steps)))
    elif flow.fallback and flow.fallback not in draft.broken:
        action = steps[flow.fallback].action
        if not isinstance(action, m.Voicemail | m.Dial):
            message = f"fallback step {flow.fallback!r} must be a voicemail or dial step"
            problems.append(source.problem(("fallback",), message))
    for step in steps.values():
        where = ("steps", step.name)
        for below, target, what in references(step):
            if target is None:
                message = (
                    f"step {step.name!r}: {what} leads nowhere: give it next, or give the step next"
                )
                problems.append(source.problem((*where, *below), message))
            elif target not in steps:
                message = f"step {step.name!r}: {what} leads to unknown step {target!r}"
                problems.append(source.problem((*where, *below), message + suggest(target, steps)))
    return problems


def check_flow(built: Draft, languages_of: Mapping[str, tuple[str, ...]]) -> list[Problem]:
    """Checks of a flow with its includes inlined: loops, reachability, languages, fallback."""
    problems = _loops(built) + _unreachable(built)
    for step in built.flow.steps.values():
        problems += _language_checks(built, step, languages_of)
        problems += _hold_without_voicemail(built, step)
    flow = built.flow
    if flow.fallback is None and (flow.numbers or flow.default):
        message = (
            f"flow {flow.name!r} has no voicemail step to fall back on when something fails, "
            "so callers would only hear an apology (add a voicemail step or set fallback)"
        )
        problems.append(built.source.problem(("steps",), message, "warning"))
    return problems


def _hold_without_voicemail(built: Draft, step: m.Step) -> list[Problem]:
    """A route nobody answers goes to its otherwise step; without one the caller is told to call
    back. A hold line tells callers to press a key to leave a message: the route's otherwise must
    then lead to a voicemail step, or the caller pressing it is told to call back instead."""
    route = step.action
    if not isinstance(route, m.Route):
        return []
    if route.hold is None:
        if route.otherwise is not None:
            return []
        message = (
            "the route has no otherwise step: when nobody answers, callers are told to call "
            "back later and hung up on (recorded as abandoned); add one, a voicemail step"
        )
        return [_problem(built, step, ("route",), message, "warning")]
    offer = f"the hold line tells callers to press {route.hold.leave_key} to leave a message"
    if route.otherwise is None:
        message = f"{offer}, but the route has no otherwise step to take them to one"
        return [_problem(built, step, ("route", "hold"), message)]
    if _leads_to_voicemail(built.flow, route.otherwise):
        return []
    message = f"{offer}, but its otherwise step {route.otherwise!r} leads to no voicemail step"
    return [_problem(built, step, ("route", "otherwise"), message, "warning")]


def _leads_to_voicemail(flow: m.Flow, name: str | None) -> bool:
    """Whether the call goes from step `name` to a voicemail step without waiting on the way."""
    seen: set[str] = set()
    while name is not None and name not in seen and name in flow.steps:
        seen.add(name)
        step = flow.steps[name]
        if isinstance(step.action, m.Voicemail):
            return True
        if isinstance(step.action, (*m.WAITING_ACTIONS, m.Branch)) or step.hangup:
            return False
        name = step.next
    return False


def _problem(
    built: Draft, step: m.Step, below: YamlPath, message: str, severity: str = "error"
) -> Problem:
    """A problem about `step`, located where it was written, naming it as ops wrote it."""
    origin = built.origins[step.name]
    if _is_own(built, step.name):
        named = f"step {step.name!r}"
    else:
        # Not naming the copy, so that a sub-flow included twice gives one message, not two.
        named = (
            f"step {origin.step!r} of flow {origin.flow!r} (included in flow {built.flow.name!r})"
        )
    return origin.source.problem((*origin.where, *below), f"{named}: {message}", severity)


def _is_own(built: Draft, name: str) -> bool:
    """Whether step `name` was written in the flow's own file, rather than inlined from another."""
    origin = built.origins[name]
    return origin.flow == built.flow.name and origin.step == name


def _loops(built: Draft) -> list[Problem]:
    """Loops through steps none of which waits for the caller: the call would never leave them."""
    steps = built.flow.steps
    spinning = {
        name
        for name, step in steps.items()
        if name not in built.broken and not isinstance(step.action, m.WAITING_ACTIONS)
    }
    links = {name: [t for _, t, _ in references(steps[name]) if t in spinning] for name in spinning}
    problems: list[Problem] = []
    order = {name: i for i, name in enumerate(steps)}
    for component in _strongly_connected(sorted(spinning, key=order.__getitem__), links):
        first = min(component, key=order.__getitem__)
        if len(component) == 1 and first not in links[first]:
            continue
        cycle = _cycle_through(first, component, links)
        shown = " -> ".join(repr(name) for name in [*cycle, first])
        message = (
            f"loop {shown} never waits for the caller (no menu, dial, route or voicemail in it), "
            "so the call would go round it forever"
        )
        problems.append(_problem(built, steps[first], (), message))
    return problems


def _strongly_connected(nodes: list[str], links: Mapping[str, list[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative so that long chains of steps cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = links[node]
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def _cycle_through(first: str, component: set[str], links: Mapping[str, list[str]]) -> list[str]:
    """The shortest path from `first` back to itself inside its component."""
    came_from: dict[str, str] = {}
    frontier = [first]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in links[node]:
                if target == first:
                    path = [node]
                    while path[-1] != first:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                if target in component and target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    return [first]  # pragma: no cover - a component with a loop always has a path back


def _unreachable(built: Draft) -> list[Problem]:
    flow = built.flow
    roots = [
        name for name in (flow.start, flow.fallback) if name is not None and name in flow.steps
    ]
    seen = set(roots)
    while roots:
        step = flow.steps[roots.pop()]
        for _, target, _ in references(step):
            if target is not None and target in flow.steps and target not in seen:
                seen.add(target)
                roots.append(target)
    return [
        _problem(built, step, (), f"never reached from start step {flow.start!r}", "warning")
        for name, step in flow.steps.items()
        if name not in seen and _is_own(built, name)
    ]


def _prompts(step: m.Step) -> list[tuple[YamlPath, m.Prompt, str]]:
    action = step.action
    if isinstance(action, m.Say):
        return [(("say",), action.prompt, "say")]
    if isinstance(action, m.Voicemail) and action.prompt:
        return [(("voicemail", "prompt"), action.prompt, "voicemail prompt")]
    if isinstance(action, m.Menu):
        found: list[tuple[YamlPath, m.Prompt, str]] = [
            (("menu", "prompt"), action.prompt, "menu prompt")
        ]
        for key, prompt in (("no_input", action.no_input), ("invalid", action.invalid)):
            if prompt:
                found.append((("menu", key), prompt, key.replace("_", " ")))
        return found
    return []


def _language_checks(
    built: Draft, step: m.Step, languages_of: Mapping[str, tuple[str, ...]]
) -> list[Problem]:
    """Prompts that miss a language, and switches to a language the flow doesn't declare."""
    flow = built.flow
    origin = built.origins[step.name]
    own = _is_own(built, step.name)
    # A language the step's own file declares was already checked there.
    written_for = () if own else languages_of.get(origin.flow, ())
    to_cover = [code for code in flow.languages if code not in written_for]
    problems: list[Problem] = []
    for below, prompt, what in _prompts(step):
        missing = [code for code in to_cover if not prompt.covers(code)]
        if missing:
            message = f"{what} has no text for {', '.join(missing)}"
            problems.append(_problem(built, step, below, message))
        extra = [code for code in prompt.texts if code and code not in flow.languages]
        if own and extra:
            message = (
                f"{what} has text for {', '.join(extra)}, which is not in the flow's languages"
            )
            problems.append(_problem(built, step, below, message, "warning"))
    action = step.action
    if isinstance(action, m.Menu) and action.speech:
        for option in action.options:
            spoken = [code for code in option.keywords if code]
            if not spoken or m.ANY_LANGUAGE in option.keywords:
                continue
            # Keywords in some languages only: the others can only press the key.
            unheard = [code for code in to_cover if code not in spoken]
            if unheard:
                message = (
                    f"option {option.key!r} has keywords for {', '.join(spoken)} but not for "
                    f"{', '.join(unheard)}: those callers can only press {option.key}"
                )
                where = ("menu", "options", option.key, "keywords")
                problems.append(_problem(built, step, where, message, "warning"))
    declared = ", ".join(flow.languages)
    for below, code, what, severity in _languages_used(step):
        if code not in flow.languages and (own or code in written_for):
            message = f"{what} {code}, which is not in the flow's languages ({declared})"
            problems.append(_problem(built, step, below, message, severity))
    return problems


def _languages_used(step: m.Step) -> list[tuple[YamlPath, str, str, str]]:
    action = step.action
    if isinstance(action, m.SwitchLanguage):
        return [(("language",), action.language, "switches to", "error")]
    found: list[tuple[YamlPath, str, str, str]] = []
    if isinstance(action, m.Menu):
        for option in action.options:
            where = ("menu", "options", option.key)
            if option.language:
                what = f"option {option.key!r} switches to"
                found.append(((*where, "language"), option.language, what, "error"))
            for code in option.keywords:
                if code:
                    what = f"option {option.key!r} has keywords for"
                    found.append(((*where, "keywords", code), code, what, "warning"))
    elif isinstance(action, m.Branch):
        for i, case in enumerate(action.cases):
            for code in case.when.language:
                what = f"case {i + 1} tests language"
                found.append((("branch", "cases", i, "language"), code, what, "warning"))
    return found
