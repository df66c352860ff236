"""The error types of the product: one root, a few narrow kinds."""

from __future__ import annotations

from dataclasses import dataclass


class IvrError(Exception):
    """Root of every error the product raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One finding of a configuration check, located in its source file."""

    path: str
    line: int
    col: int
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}:{self.col}: {prefix}{self.message}"


class ConfigError(IvrError):
    """Call flows or pools that cannot be used; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class BadRequest(IvrError):
    """A webhook whose parameters cannot be acted on."""


class StoreUnavailable(IvrError):
    """Redis did not answer in time."""


class BadQuery(IvrError):
    """A query of the call records (filters, dates, cursor) that cannot be answered."""
