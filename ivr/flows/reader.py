"""Reading values out of one YAML file, recording a located problem for each bad one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ivr.config import E164, LANGUAGE_TAG
from ivr.config import suggest as suggest  # the flow readers import it from here
from ivr.errors import Problem
from ivr.flows import model as m
from ivr.yamlsource import Path as YamlPath
from ivr.yamlsource import Source

LANGUAGE_CODE = LANGUAGE_TAG
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # flow and step names; "/" marks inlined steps
OPTION_KEY = re.compile(r"^[0-9*#]+$")
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CALLER_PREFIX = re.compile(r"^\+[0-9]{1,15}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
FINISH_KEYS = frozenset("0123456789*#")


class Reader:
    """Reads values out of one file, recording a located problem for each bad one."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self.step: str | None = None  # named in every message while reading a step
        # What the step reader learns on the way, for the draft flow.
        self.includes: dict[str, str] = {}  # include step -> included flow
        self.broken: set[str] = set()  # steps whose action could not be read

    def error(self, where: YamlPath, message: str, severity: str = "error") -> None:
        """Record a problem at `where`, naming the step being read."""
        prefix = f"step {self.step!r}: " if self.step is not None else ""
        self.problems.append(self.source.problem(where, prefix + message, severity))

    def mapping(
        self,
        where: YamlPath,
        value: Any,
        what: str,
        keys: Iterable[str],
        required: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """`value` as a map whose keys are all among `keys`, with every `required` one."""
        if not isinstance(value, dict):
            self.error(where, f"{what} must be a map of keys")
            return None
        allowed = tuple(keys)
        for key in value:
            if key not in allowed:
                self.error((*where, key), f"unknown key {key!r} in {what}{suggest(key, allowed)}")
        for key in required:
            if key not in value:
                self.error(where, f"{what} needs {key!r}")
        return value

    def text(self, where: YamlPath, value: Any, what: str) -> str | None:
        """`value` as non-empty text."""
        if isinstance(value, str) and value.strip():
            return value
        self.error(where, f"{what} must be non-empty text")
        return None

    def name(self, where: YamlPath, value: Any, what: str) -> str | None:
        """`value` as the name of a step or flow."""
        if isinstance(value, str) and NAME.match(value):
            return value
        self.error(where, f"{what} must be a name made of letters, digits, '_', '-' and '.'")
        return None

    def whole(self, where: YamlPath, value: Any, what: str, low: int, high: int) -> int | None:
        """`value` as a whole number from `low` to `high`."""
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        self.error(where, f"{what} must be a whole number from {low} to {high}")
        return None

    def flag(self, where: YamlPath, value: Any, what: str) -> bool | None:
        """`value` as true or false."""
        if isinstance(value, bool):
            return value
        self.error(where, f"{what} must be true or false")
        return None

    def language(self, where: YamlPath, value: Any) -> str | None:
        """`value` as a language code such as vi-VN."""
        if isinstance(value, str) and LANGUAGE_CODE.match(value):
            return value
        self.error(where, f"{value!r} is not a language code such as en-US, vi-VN or ar-XA")
        return None

    def number(self, where: YamlPath, value: Any, what: str) -> str | None:
        """`value` as a phone number in E.164 form."""
        if isinstance(value, str) and E164.match(value):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            self.error(
                where, f'{what} must be quoted, like "+{value}": unquoted it is read as an integer'
            )
        else:
            self.error(where, f'{what} {value!r} is not an E.164 number such as "+15005550006"')
        return None

    def items(
        self, where: YamlPath, value: Any, what: str, may_be_empty: bool = False
    ) -> list[tuple[YamlPath, Any]]:
        """A value given as one item or a list of items, each with where it was written."""
        if isinstance(value, list):
            if not value and not may_be_empty:
                self.error(where, f"{what} must not be empty")
            return [((*where, i), item) for i, item in enumerate(value)]
        return [(where, value)]

    def prompt(self, where: YamlPath, value: Any, what: str) -> m.Prompt | None:
        """`value` as words to speak: one text, or a map of language code to text."""
        if isinstance(value, str):
            return m.Prompt({m.ANY_LANGUAGE: value}) if self.text(where, value, what) else None
        if not isinstance(value, dict) or not value:
            self.error(where, f"{what} must be text, or a map of language code to text")
            return None
        texts: dict[str, str] = {}
        for language, words in value.items():
            code = self.language((*where, language), language)
            said = self.text((*where, language), words, f"{what} in {language}")
            if code and said:
                texts[code] = said
        return m.Prompt(texts) if len(texts) == len(value) else None
