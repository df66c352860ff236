"""Fault scenarios' shared parts: the figures each scenario reports, written and printed at the end.

The figures go to var/faults.txt and to the terminal summary, so they show with or without `-s`.
"""

from __future__ import annotations

import pytest
from _pytest.terminal import TerminalReporter

from tests.conftest import ROOT

FIGURES_PATH = ROOT / "var" / "faults.txt"
REPORTED: list[str] = []


@pytest.fixture
def report() -> list[str]:
    """Where a scenario appends its lines of figures."""
    return REPORTED


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if not REPORTED:
        return
    FIGURES_PATH.parent.mkdir(parents=True, exist_ok=True)
    FIGURES_PATH.write_text("\n".join(REPORTED) + "\n", encoding="utf-8")
    terminalreporter.section("fault scenarios")
    for line in REPORTED:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(also in {FIGURES_PATH})")
