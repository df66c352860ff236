"""`make bench`: the webhook, routing, ticket, call-record and dashboard figures, as one table
(or JSON).

A ratio says how a figure stands to its goal (goal / measured for a time, measured / goal for a
throughput): above 1 the goal is met. Nothing here fails on a missed goal; the
figures are for reading, and for the notes of whoever changes the code they measure.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from typing import Any

from bench import dashboard, load, records, routing, tickets, webhooks

COLUMNS = ("figure", "value", "unit", "goal", "ratio", "note")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benches and print their figures."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=webhooks.REQUESTS, help="per series")
    parser.add_argument("--clients", type=int, default=webhooks.CLIENTS)
    parser.add_argument(
        "--calls", type=int, default=records.CALLS, help="call records loaded for their queries"
    )
    parser.add_argument(
        "--load-rate", type=int, default=load.RATE, help="webhooks a second of the sustained load"
    )
    parser.add_argument(
        "--load-seconds", type=int, default=load.SECONDS, help="how long the sustained load lasts"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    if min(args.calls, args.clients, args.load_rate, args.load_seconds) < 1:
        parser.error("--calls, --clients, --load-rate and --load-seconds must be at least 1")
    if args.requests < 2 * webhooks.ROUNDS:  # each server's turn gets a slice of the series
        parser.error(f"--requests must be at least {2 * webhooks.ROUNDS}")
    began = time.perf_counter()
    # One client measures latency with nothing queued; several, latency under load on 2 cores.
    sections: list[tuple[str, list[dict[str, Any]]]] = [
        (
            f"webhooks ({clients} client{'s' if clients > 1 else ''})",
            webhooks.run(args.requests, clients),
        )
        for clients in dict.fromkeys((1, args.clients))
    ]
    sections.append(
        (f"sustained load ({args.load_rate:,}/s)", load.run(args.load_rate, args.load_seconds))
    )
    sections.append(("routing", routing.run()))
    sections.append(("tickets", tickets.run()))
    sections.append((f"call records ({args.calls:,})", records.run(args.calls)))
    sections.append((f"dashboard ({args.calls:,} calls)", dashboard.run(args.calls)))
    seconds = time.perf_counter() - began
    if args.json:
        print(as_json(sections, seconds))
        return
    print(table(sections))
    print(f"\n{seconds:.0f} s in all; a ratio >= 1 means the goal is met")


def as_json(sections: Sequence[tuple[str, Sequence[dict[str, Any]]]], seconds: float) -> str:
    """Every figure as one JSON document: `{"figures": [{section, name, value, ...}], ...}`."""
    figures = [
        {"section": section} | {key: _finite(value) for key, value in figure.items()}
        for section, rows in sections
        for figure in rows
    ]
    return json.dumps({"figures": figures, "seconds": round(seconds, 1)}, indent=2)


def _finite(value: Any) -> Any:
    # NaN and infinities are not JSON: a figure that could not be measured is null.
    return None if isinstance(value, float) and not math.isfinite(value) else value


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
