"""The flows directory as one configuration: its files read, flows and pools loaded together,
and the patterns of numbers and language tags every reader of those files uses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr import yamlsource
from ivr.errors import Problem

if TYPE_CHECKING:
    from ivr.flows.model import Flow
    from routing.model import Pools

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# BCP 47: a language, then region or variant subtags (vi-VN, ar-XA), in any letter case as the
# standard allows; canonical_language gives the usual one.
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def canonical_language(tag: str) -> str:
    """A language tag in its usual letter case (vi-vn -> vi-VN, zh-hant-tw -> zh-Hant-TW).

    Tags are case-insensitive, but voices, prompts and pools are looked up by exact text: one
    spelling keeps "vi-vn" in a flow from missing its voice or the pools speaking vi-VN."""
    first, *rest = tag.split("-")
    parts = [first.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            parts.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            parts.append(part.title())
        else:
            parts.append(part)
    return "-".join(parts)


def known_zone(name: str) -> ZoneInfo | None:
    """The IANA time zone called `name`; None when there is none of that name."""
    try:
        return ZoneInfo(name)
    # An area such as "Europe" is a directory of tzdata and an overlong name no file name at
    # all: the OS errors they raise mean "no such zone" too.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


POOLS_FILE = "pools.yaml"
MISNAMED = {"pools.yml": POOLS_FILE, "tickets.yml": "tickets.yaml"}


@dataclass(frozen=True)
class Config:
    """The flows and pools of a flows directory and every problem found with them."""

    flows: dict[str, Flow]
    pools: Pools | None
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        """Whether no problem is an error."""
        return not any(p.severity == "error" for p in self.problems)


def read_config_files(directory: Path) -> tuple[dict[str, str], list[Problem]]:
    """The texts of the flow files and `pools.yaml` in `directory`, by file name, and a problem
    for each file that cannot be read or is not UTF-8 (at its first bad byte)."""
    from ivr.flows.loader import read_flow_files

    texts, problems = read_flow_files(directory)
    for wrong, right in MISNAMED.items():
        # Not a flow (its stem is reserved) and not read under this name: refused, not ignored,
        # or every route would go straight to voicemail (or every sink be left out) unnoticed.
        if (directory / wrong).is_file():
            message = f"{wrong} is not read: name it {right}"
            problems.append(Problem(str(directory / wrong), 1, 1, message))
    pools = directory / POOLS_FILE
    if pools.is_file():
        text, unreadable = yamlsource.read_text(pools, "the pools")
        if text is None:
            problems += unreadable
        else:
            texts[POOLS_FILE] = text
    return texts, problems


def load_config(texts: Mapping[str, str], base: Path | None = None) -> Config:
    """Flows and pools from file texts by name (`pools.yaml` among them), with every problem."""
    # Imported here: the flow readers import this module's patterns.
    from ivr.flows.loader import load_flow_texts
    from ivr.pools import parse_pools

    flows, problems = load_flow_texts(
        {name: text for name, text in texts.items() if name != POOLS_FILE}, base=base
    )
    pools = None
    if POOLS_FILE in texts:
        where = str(base / POOLS_FILE) if base else POOLS_FILE
        source, syntax = yamlsource.parse(texts[POOLS_FILE], where)
        problems += syntax
        if source is not None:
            pools, found = parse_pools(source)
            problems += found
        if pools is not None and source is not None:
            problems += unserved_routes(flows, pools)
            problems += agents_on_our_numbers(flows, pools, source)
            problems += languages_no_flow_speaks(flows, pools, source)
    problems.sort(key=lambda p: (p.path, p.line, p.col))
    return Config(flows, pools, problems)


def unserved_routes(flows: Mapping[str, Flow], pools: Pools) -> list[Problem]:
    """A problem for each route step whose queue no pool serves."""
    from ivr.flows.model import Route

    served = pools.queues()
    known = ", ".join(sorted(served)) or "none"
    found: list[Problem] = []
    for flow in flows.values():
        for step in flow.steps.values():
            # Inlined copies ("include_step/step") are checked once, in the flow that holds them.
            if "/" in step.name or not isinstance(step.action, Route):
                continue
            if step.action.queue in served:
                continue
            at = step.at
            message = (
                f"step {step.name!r}: queue {step.action.queue!r} is served by no pool in "
                f"{POOLS_FILE} (queues served: {known})"
            )
            found.append(
                Problem(
                    at.path if at else flow.path, at.line if at else 1, at.col if at else 1, message
                )
            )
    return found


def agents_on_our_numbers(
    flows: Mapping[str, Flow], pools: Pools, source: yamlsource.Source
) -> list[Problem]:
    """A problem for each agent whose phone is a number a flow answers: ringing that agent
    would call back into the router, which answers at once, so the caller would be put
    through to another menu and the call counted as answered."""
    ours = {number: flow.name for flow in flows.values() for number in flow.numbers}
    found: list[Problem] = []
    for pool in pools:
        # The pools loaded without errors, so each agent is at its index in the file.
        for index, agent in enumerate(pool.agents):
            if agent.phone in ours:
                found.append(
                    source.problem(
                        ("pools", pool.name, "agents", index, "phone"),
                        f"agent {agent.name!r} of pool {pool.name!r}: {agent.phone} is answered "
                        f"by flow {ours[agent.phone]!r}, so ringing the agent would call back "
                        "into this router",
                    )
                )
    return found


def languages_no_flow_speaks(
    flows: Mapping[str, Flow], pools: Pools, source: yamlsource.Source
) -> list[Problem]:
    """A warning for each pool or agent language no flow speaks: callers come with a flow's
    language, so a pool listing only others is never preferred (vi for vi-VN, en-GB for en-US)
    and an agent listing only others is never rung."""
    spoken = {code for flow in flows.values() for code in flow.languages}
    if not spoken:
        return []
    known = ", ".join(sorted(spoken))
    found: list[Problem] = []
    for pool in pools:
        for index, code in enumerate(pool.languages):
            if code not in spoken:
                found.append(
                    source.problem(
                        ("pools", pool.name, "languages", index),
                        f"pool {pool.name!r} lists {code}, which no flow speaks (flows speak: "
                        f"{known}): no caller is {code}",
                        "warning",
                    )
                )
        for number, agent in enumerate(pool.agents):
            if agent.languages and not spoken.intersection(agent.languages):
                found.append(
                    source.problem(
                        ("pools", pool.name, "agents", number, "languages"),
                        f"agent {agent.name!r} of pool {pool.name!r} takes only "
                        f"{', '.join(agent.languages)}, which no flow speaks (flows speak: "
                        f"{known}): the agent is never rung",
                        "warning",
                    )
                )
    return found
