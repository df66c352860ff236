"""One call flow file's YAML turned into model values, checking keys, types and ranges.

Whatever can be checked inside one file without following step names is checked here; links
between steps and between flows are checked by `ivr.flows.validate` once includes are inlined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ivr.config import canonical_language
from ivr.errors import Problem
from ivr.flows import model as m
from ivr.flows.actions import ACTION_READERS
from ivr.flows.reader import NAME, Reader
from ivr.phrases import (
    DEFAULT_SPEECH_LANGUAGES,
    DEFAULT_VOICES,
    FALLBACK_LANGUAGE,
    PHRASES,
    has_words_for,
)
from ivr.yamlsource import Path as YamlPath
from ivr.yamlsource import Source

DEFAULT_LANGUAGES = ("en-US",)

GOOGLE_VOICE = re.compile(r"^Google\.([a-z]{2,3}-[A-Za-z0-9]{2,8})-")  # Google.vi-VN-Standard-A
FLOW_KEYS: tuple[str, ...] = ("flow", "description", "numbers", "default", "languages")
FLOW_KEYS += ("voices", "speech_languages", "start", "fallback", "steps")
ACTIONS: tuple[str, ...] = ("say", "play", "pause", "menu", "language", "set", "branch")
ACTIONS += ("include", "dial", "route", "dequeue", "voicemail")
STEP_KEYS = (*ACTIONS, "next", "hangup")
# A step with one of these (or none) may end the call with `hangup: true`.
HANGUP_AFTER = ("say", "play", "pause")


@dataclass(frozen=True)
class Origin:
    """Where a step of a (possibly inlined) flow was written."""

    flow: str  # the flow whose file holds the step
    step: str  # the step's name in that file
    source: Source

    @property
    def where(self) -> YamlPath:
        """The YAML path of the step in its file."""
        return ("steps", self.step)


@dataclass
class Draft:
    """A flow read from one file, before the flows it includes are inlined."""

    flow: m.Flow  # include steps are plain gotos to their own `next` here
    source: Source
    origins: dict[str, Origin]
    includes: dict[str, str] = field(default_factory=dict)  # include step -> included flow
    broken: set[str] = field(default_factory=set)  # steps whose action could not be read


def parse_flow(source: Source, stem: str) -> tuple[Draft | None, list[Problem]]:
    """Read one flow file's data into a draft flow, with every problem found on the way."""
    reader = Reader(source)
    data = reader.mapping((), source.data, "a call flow file", FLOW_KEYS, ("steps",))
    if data is None:
        return None, reader.problems
    name = reader.name(("flow",), data.get("flow", stem), "flow") or stem
    description = data.get("description", "")
    if not isinstance(description, str):
        reader.error(("description",), "description must be text")
        description = ""
    numbers = _numbers(reader, data.get("numbers", []))
    default = reader.flag(("default",), data.get("default", False), "default") or False
    languages = _languages(reader, data.get("languages", list(DEFAULT_LANGUAGES)))
    voices = _voices(reader, data.get("voices", {}), languages)
    heard = _speech_languages(reader, data.get("speech_languages", {}), languages)
    steps = _steps(reader, data.get("steps"))
    if not steps:
        return None, reader.problems
    start = data.get("start", next(iter(steps)))
    fallback = data.get("fallback")
    flow = m.Flow(
        name=name,
        path=source.path,
        languages=languages,
        start=reader.name(("start",), start, "start") or "",
        steps=steps,
        numbers=numbers,
        default=default,
        voices=voices,
        speech_languages=heard,
        fallback=None if fallback is None else reader.name(("fallback",), fallback, "fallback"),
        description=description.strip(),
    )
    origins = {step: Origin(name, step, source) for step in steps}
    return Draft(flow, source, origins, reader.includes, reader.broken), reader.problems


def _numbers(reader: Reader, value: Any) -> tuple[str, ...]:
    found: list[str] = []
    for where, item in reader.items(("numbers",), value, "numbers", may_be_empty=True):
        number = reader.number(where, item, "number")
        if number in found:
            reader.error(where, f"number {number} is listed twice", "warning")
        elif number:
            found.append(number)
    return tuple(found)


def _languages(reader: Reader, value: Any) -> tuple[str, ...]:
    found: list[str] = []
    for where, item in reader.items(("languages",), value, "languages"):
        code = reader.language(where, item)
        if code in found:
            reader.error(where, f"language {code} is listed twice")
        elif code:
            found.append(code)
            if not has_words_for(code):
                known = ", ".join(PHRASES["apology"])
                reader.error(
                    where,
                    f"the router's own words to callers (connecting, all agents busy, sorry, "
                    f"goodbye) are not written in {code}: these callers hear them in "
                    f"{FALLBACK_LANGUAGE} (written in: {known})",
                    "warning",
                )
    return tuple(found) or DEFAULT_LANGUAGES


def _speech_languages(reader: Reader, value: Any, languages: tuple[str, ...]) -> dict[str, str]:
    """The code a spoken answer is recognised in, per flow language that needs another one."""
    chosen = {c: heard for c, heard in DEFAULT_SPEECH_LANGUAGES.items() if c in languages}
    if not isinstance(value, dict):
        what = "speech_languages must be a map of language code to a speech recognition code"
        reader.error(("speech_languages",), what)
        return chosen
    for written, heard in value.items():
        where = ("speech_languages", written)
        code = canonical_language(written) if isinstance(written, str) else written
        if code not in languages:
            reader.error(where, f"speech language for {code}, which is not in languages")
            continue
        recognised = reader.language(where, heard)
        if recognised is None:
            continue
        chosen[code] = recognised
        if recognised.split("-")[0] != str(code).split("-")[0]:
            reader.error(where, f"{code} callers would be heard as {recognised}", "warning")
    return chosen


def _voices(reader: Reader, value: Any, languages: tuple[str, ...]) -> dict[str, str]:
    chosen = {code: voice for code, voice in DEFAULT_VOICES.items() if code in languages}
    if not isinstance(value, dict):
        reader.error(("voices",), "voices must be a map of language code to voice name")
        return chosen
    for written, voice in value.items():
        code = canonical_language(written) if isinstance(written, str) else written
        if code not in languages:
            reader.error(("voices", written), f"voice for {code}, which is not in languages")
        elif reader.text(("voices", written), voice, f"the voice for {code}"):
            chosen[code] = voice
            _voice_speaks(reader, ("voices", written), code, voice)
    return chosen


def _voice_speaks(reader: Reader, where: YamlPath, code: str, voice: str) -> None:
    """Warn when a Google voice, whose name says its language, is given for another one: Twilio
    may fail the Say, and the caller would hear nothing of it."""
    match = GOOGLE_VOICE.match(voice)
    if match and match[1].casefold() != code.casefold():
        reader.error(
            where,
            f"voice {voice} speaks {match[1]}, not {code}: Twilio may refuse to say its prompts",
            "warning",
        )


def _steps(reader: Reader, value: Any) -> dict[str, m.Step]:
    if not isinstance(value, dict) or not value:
        reader.error(("steps",), "steps must be a map of step name to step, with at least one step")
        return {}
    steps: dict[str, m.Step] = {}
    for name, body in value.items():
        reader.step = name
        if not NAME.match(name):
            reader.error(
                ("steps", name), "a step name is made of letters, digits, '_', '-' and '.'"
            )
        steps[name] = _step(reader, name, body)
    reader.step = None
    return steps


def _step(reader: Reader, name: str, body: Any) -> m.Step:
    where: YamlPath = ("steps", name)
    line, col = reader.source.at(where)
    at = m.Located(reader.source.path, line, col)
    data = reader.mapping(where, {} if body is None else body, "a step", STEP_KEYS)
    if data is None:
        reader.broken.add(name)
        return m.Step(name, None, at=at)
    actions = [key for key in ACTIONS if key in data]
    target = data.get("next")
    following = None if target is None else reader.name((*where, "next"), target, "next")
    hangup = reader.flag((*where, "hangup"), data.get("hangup", False), "hangup") or False
    if len(actions) > 1:
        reader.error(
            (*where, actions[1]),
            f"a step has one action, this one has {' and '.join(actions)}: "
            "split it into steps joined by next",
        )
        reader.broken.add(name)
        return m.Step(name, None, following, hangup, at)
    kind = actions[0] if actions else None
    if hangup and kind not in (None, *HANGUP_AFTER):
        reader.error((*where, "hangup"), f"hangup: true can follow say, play or pause, not {kind}")
    if hangup and following:
        reader.error((*where, "next"), "hangup: true ends the call, so next would never be used")
    if kind == "branch" and following:
        reader.error(
            (*where, "next"), "a branch picks the next step itself: use its cases and default"
        )
    if kind is None:
        return m.Step(name, None, following, hangup, at)
    if kind == "include":
        included = reader.name((*where, "include"), data["include"], "include")
        if included:
            reader.includes[name] = included
        return m.Step(name, None, following, hangup, at)
    action = ACTION_READERS[kind](reader, (*where, kind), data[kind])
    if action is None:
        reader.broken.add(name)
    return m.Step(name, action, following, hangup, at)
