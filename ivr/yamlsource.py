"""YAML read with the position of every key and value, for errors that point at a line.

Scalars follow the YAML 1.2 core schema rather than PyYAML's 1.1 defaults, so `NO` (Norway),
`off` and `8:30` stay strings, and a key given twice is an error instead of a silent overwrite.

`Reader` is what every loader of these files (call flows, pools, ticket sinks) builds on: located
problems, type checks, unknown keys with the key most likely meant. A loader adds its own rules
and words.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, TypeVar

import yaml

from ivr.errors import Problem

Path = tuple[str | int, ...]
T = TypeVar("T")

_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_STEPS = re.compile(r"steps:\s*(#.*)?$")
_KEY = re.compile(r"( *)([^\s#:'\"{}\[\],][^:#]*?|\"[^\"]*\"|'[^']*'):(\s|$)")

# Values repeated through aliases are built anew each time; a few nested anchors repeated
# nine times each expand to millions of nodes, so the copies made through aliases are bounded.
ALIASED_NODES_LIMIT = 10_000


class _TooManyAliases(Exception):
    """Raised inside the build when aliases expand past ALIASED_NODES_LIMIT."""


@dataclass
class _Build:
    source: Source
    problems: list[Problem]
    seen: set[int] = field(default_factory=set)
    aliased: int = 0
    where: Path = ()


@dataclass
class Source:
    """A parsed YAML document: plain data plus where each part of it was written."""

    path: str
    data: Any
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def at(self, where: Path) -> tuple[int, int]:
        """The (line, col) of `where`, or of its nearest ancestor that has one."""
        while where:
            if where in self.marks:
                return self.marks[where]
            where = where[:-1]
        return self.marks.get((), (1, 1))

    def problem(self, where: Path, message: str, severity: str = "error") -> Problem:
        """A problem located at `where` in this file."""
        line, col = self.at(where)
        return Problem(self.path, line, col, message, severity)


def read_text(path: FilePath, what: str = "") -> tuple[str | None, list[Problem]]:
    """A file's UTF-8 text, or the problem that it cannot be read (`what` names the file's
    role) or is not UTF-8, located at its first bad byte."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return None, [
            Problem(str(path), 1, 1, f"cannot read{' ' + what if what else ''}: {reason}")
        ]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8")
        line, col = _line_col(good, len(good))
        message = f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        return None, [Problem(str(path), line, col, message)]


def parse(text: str, path: str) -> tuple[Source | None, list[Problem]]:
    """Parse one YAML document; on failure return the syntax problems instead."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"YAML syntax: {exc.problem or exc}{_in_step(text, line)}"
        return None, [Problem(path, line, col, message)]
    except yaml.reader.ReaderError as exc:
        # The reader reports a character offset, not a mark: turn it into the line and column.
        line, col = _line_col(text, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"YAML syntax: character U+{code:04X} is not allowed in YAML text"
        return None, [Problem(path, line, col, message + _in_step(text, line))]
    except yaml.YAMLError as exc:
        return None, [Problem(path, 1, 1, f"YAML syntax: {exc}")]
    source = Source(path, None)
    build = _Build(source, [])
    if node is not None:
        try:
            source.data = _build(node, (), build, False)
        except _TooManyAliases:
            line, col = source.at(build.where)
            message = (
                f"aliases expand to more than {ALIASED_NODES_LIMIT} values: "
                "write the repeated parts out, or repeat them less"
            )
            return None, [Problem(path, line, col, message)]
    return source, build.problems


def _line_col(text: str, position: int) -> tuple[int, int]:
    """The line and column (in characters, from 1) of `position` in `text`."""
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def _in_step(text: str, line: int) -> str:
    """` (in step "name")` for the step of a flow file that holds `line`, else nothing."""
    lines = text.splitlines()[:line]
    start = next((i for i, row in enumerate(lines) if _STEPS.match(row)), None)
    if start is None:
        return ""
    indent, name = None, None
    for row in lines[start + 1 :]:
        if not row.strip() or row.lstrip().startswith("#"):
            continue
        match = _KEY.match(row)
        width = len(row) - len(row.lstrip(" "))
        if indent is None:
            indent = width
        if width < indent or indent == 0:
            return ""  # left the steps mapping
        if width == indent and match:
            name = match.group(2).strip("'\"")
    return f' (in step "{name}")' if name else ""


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _build(node: yaml.Node, where: Path, build: _Build, aliased: bool) -> Any:
    source, problems = build.source, build.problems
    source.marks.setdefault(where, _mark(node))
    # The composer hands an alias back as the very node its anchor made: meeting it again is
    # an alias, and everything under it is a copy.
    aliased = aliased or id(node) in build.seen
    build.seen.add(id(node))
    if aliased:
        build.aliased += 1
        if build.aliased > ALIASED_NODES_LIMIT:
            build.where = where
            raise _TooManyAliases
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*where, i), build, aliased) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in _pairs(node):
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int | bool) or key is None:
                line, col = _mark(key_node)
                problems.append(Problem(source.path, line, col, "a key must be a plain value"))
                continue
            key = str(key) if not isinstance(key, bool) else str(key).lower()
            if key in result:
                line, col = _mark(key_node)
                problems.append(Problem(source.path, line, col, f"key {key!r} given twice"))
                continue
            source.marks[(*where, key)] = _mark(key_node)
            result[key] = _build(value_node, (*where, key), build, aliased)
            source.marks[(*where, key)] = _mark(key_node)
        return result
    return None  # pragma: no cover - yaml.compose yields only the three node kinds


def _pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" and isinstance(value_node, yaml.MappingNode):
            yield from _pairs(value_node)
        else:
            yield key_node, value_node


def _scalar(node: yaml.ScalarNode) -> Any:
    value: str = node.value
    if node.style in ("'", '"', "|", ">"):
        return value
    lowered = value.lower()
    if lowered in ("", "~", "null"):
        return None
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value) and any(c.isdigit() for c in value):
        return float(value)
    return value


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice that `word` most likely misspells, or None when none is close."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None


def suggest(word: str, choices: Iterable[str]) -> str:
    """A " (did you mean ...?)" hint for a misspelt `word`, or the empty string."""
    hint = closest(word, choices)
    return f" (did you mean {hint!r}?)" if hint else ""


def suggest_or_list(word: str, choices: Iterable[str]) -> str:
    """A "; did you mean ...?" hint for a misspelt `word`, else the choices listed."""
    known = list(choices)
    hint = closest(word, known)
    return f"; did you mean {hint!r}?" if hint else f" (known: {', '.join(known)})"


class Reader:
    """Reads values out of one parsed file, recording a located problem for each bad one."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def context(self) -> str:
        """Words put before every message, such as the part of the file being read."""
        return ""

    def hint(self, word: str, choices: Iterable[str]) -> str:
        """What to add to the message about a misspelt word."""
        return suggest(word, choices)

    def error(self, where: Path, message: str, severity: str = "error") -> None:
        """Record a problem at `where`."""
        self.problems.append(self.source.problem(where, self.context() + message, severity))

    def warn(self, where: Path, message: str) -> None:
        """Record a warning at `where`."""
        self.error(where, message, "warning")

    def unknown_keys(
        self, body: dict[str, Any], where: Path, allowed: Iterable[str], what: str = ""
    ) -> None:
        """An error at each key of `body` not among `allowed` (`what`: " in ..." to name the
        map), with the key most likely meant."""
        known = tuple(allowed)
        for key in body:
            if key not in known:
                self.error((*where, key), f"unknown key {key!r}{what}{self.hint(key, known)}")

    def typed(self, where: Path, value: Any, kind: type[T], message: str) -> T | None:
        """`value` when it is a `kind`, else None and `message` at `where`; true and false are
        not numbers here, whatever Python says."""
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        self.error(where, message)
        return None

    def matching(
        self, where: Path, value: Any, pattern: re.Pattern[str], message: str
    ) -> str | None:
        """`value` when it is text that `pattern` matches, else None and `message` at `where`."""
        if isinstance(value, str) and pattern.match(value):
            return value
        self.error(where, message)
        return None
