"""YAML read with the position of every key and value, for errors that point at a line.

Scalars follow the YAML 1.2 core schema rather than PyYAML's 1.1 defaults, so `NO` (Norway),
`off` and `8:30` stay strings, and a key given twice is an error instead of a silent overwrite.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from ivr.errors import Problem

Path = tuple[str | int, ...]

_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


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


def parse(text: str, path: str) -> tuple[Source | None, list[Problem]]:
    """Parse one YAML document; on failure return the syntax problems instead."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, [Problem(path, line, col, f"YAML syntax: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem(path, 1, 1, f"YAML syntax: {exc}")]
    source = Source(path, None)
    problems: list[Problem] = []
    if node is not None:
        source.data = _build(node, (), source, problems)
    return source, problems


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _build(node: yaml.Node, where: Path, source: Source, problems: list[Problem]) -> Any:
    source.marks.setdefault(where, _mark(node))
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*where, i), source, problems) for i, item in enumerate(node.value)]
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
            result[key] = _build(value_node, (*where, key), source, problems)
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
