"""Reading values out of one call flow file, recording a located problem for each bad one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ivr.config import E164, LANGUAGE_TAG, canonical_language
from ivr.flows import model as m
from ivr.yamlsource import Path as YamlPath
from ivr.yamlsource import Reader as YamlReader
from ivr.yamlsource import Source

LANGUAGE_CODE = LANGUAGE_TAG
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # flow and step names; "/" marks inlined steps
OPTION_KEY = re.compile(r"^[0-9*#]+$")
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CALLER_PREFIX = re.compile(r"^\+[0-9]{1,15}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
FINISH_KEYS = frozenset("0123456789*#")


class Reader(YamlReader):
    """Reads a flow file's values, naming the step being read in every message."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.step: str | None = None  # named in every message while reading a step
        # What the step reader learns on the way, for the draft flow.
        self.includes: dict[str, str] = {}  # include step -> included flow
        self.broken: set[str] = set()  # steps whose action could not be read

    def context(self) -> str:
        return f"step {self.step!r}: " if self.step is not None else ""

    def mapping(
        self,
        where: YamlPath,
        value: Any,
        what: str,
        keys: Iterable[str],
        required: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """`value` as a map whose keys are all among `keys`, with every `required` one."""
        data = self.typed(where, value, dict, f"{what} must be a map of keys")
        if data is None:
            return None
        self.unknown_keys(data, where, keys, f" in {what}")
        for key in required:
            if key not in data:
                self.error(where, f"{what} needs {key!r}")
        return data

    def text(self, where: YamlPath, value: Any, what: str) -> str | None:
        """`value` as non-empty text."""
        if isinstance(value, str) and value.strip():
            return value
        self.error(where, f"{what} must be non-empty text")
        return None

    def name(self, where: YamlPath, value: Any, what: str) -> str | None:
        """`value` as the name of a step or flow."""
        message = f"{what} must be a name made of letters, digits, '_', '-' and '.'"
        return self.matching(where, value, NAME, message)

    def whole(self, where: YamlPath, value: Any, what: str, low: int, high: int) -> int | None:
        """`value` as a whole number from `low` to `high`."""
        message = f"{what} must be a whole number from {low} to {high}"
        number = self.typed(where, value, int, message)
        if number is not None and not low <= number <= high:
            self.error(where, message)
            return None
        return number

    def flag(self, where: YamlPath, value: Any, what: str) -> bool | None:
        """`value` as true or false."""
        return self.typed(where, value, bool, f"{what} must be true or false")

    def language(self, where: YamlPath, value: Any) -> str | None:
        """`value` as a language code such as vi-VN."""
        message = f"{value!r} is not a language code such as en-US, vi-VN or ar-XA"
        code = self.matching(where, value, LANGUAGE_CODE, message)
        return canonical_language(code) if code else None

    def number(self, where: YamlPath, value: Any, what: str) -> str | None:
        """`value` as a phone number in E.164 form."""
        if isinstance(value, int) and not isinstance(value, bool):
            message = f'{what} must be quoted, like "+{value}": unquoted it is read as an integer'
        else:
            message = f'{what} {value!r} is not an E.164 number such as "+15005550006"'
        return self.matching(where, value, E164, message)

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
            if code in texts:  # vi-VN and vi-vn are one language
                self.error((*where, language), f"{what} gives {code} twice")
            elif code and said:
                texts[code] = said
        return m.Prompt(texts) if len(texts) == len(value) else None
