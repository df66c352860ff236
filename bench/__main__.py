"""`make bench`: the webhook figures, then the routing ones (when that bench exists), one table.

A ratio is goal / measured: above 1 the goal is met. Nothing here fails on a missed goal; the
figures are for reading, and for the notes of whoever changes the code they measure.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Sequence
from typing import Any

from bench import webhooks

COLUMNS = ("figure", "value", "unit", "goal", "ratio", "note")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benches and print their figures."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=webhooks.REQUESTS, help="per series")
    parser.add_argument("--clients", type=int, default=webhooks.CLIENTS)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    # One client measures latency with nothing queued; several, latency under load on 2 cores.
    sections: list[tuple[str, list[dict[str, Any]]]] = [
        (
            f"webhooks ({clients} client{'s' if clients > 1 else ''})",
            webhooks.run(args.requests, clients),
        )
        for clients in dict.fromkeys((1, args.clients))
    ]
    if importlib.util.find_spec("bench.routing") is not None:
        from bench import routing

        sections.append(("routing", routing.run()))
    print(table(sections))
    print(f"\n{time.perf_counter() - began:.0f} s in all; ratio = goal / measured, met when >= 1")


def table(sections: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> str:
    """The figures of every section as one aligned text table."""
    rows = [COLUMNS]
    for section, figures in sections:
        for figure in figures:
            goal, ratio = figure.get("goal"), figure.get("ratio")
            verdict = "" if ratio is None else (" met" if ratio >= 1 else " MISSED")
            rows.append(
                (
                    f"{section}: {figure['name']}",
                    _number(figure["value"]),
                    str(figure["unit"]),
                    "" if goal is None else f"{_number(goal)} {figure['unit']}",
                    "" if ratio is None else f"{ratio:.2f}{verdict}",
                    str(figure.get("note", "")),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in (1, 4) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


if __name__ == "__main__":
    main()
