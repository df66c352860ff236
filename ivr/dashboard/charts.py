"""Server-rendered SVG charts for the KPI page: no script, every label escaped.

Each chart is a function from rows of `ivr.calls.kpis` to SVG markup; bars carry a class per
series (coloured by the stylesheet) and a <title> so a pointer shows the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

OUTCOME_SERIES = ("answered", "voicemail", "abandoned", "self_service", "failed")
SERVICE_TARGET = 0.8
BAR = 28
GAP = 10
HEIGHT = 160
TOP = 12
LEFT = 56
BOTTOM = 64


def _frame(columns: int, title: str, body: list[str], peak: str) -> Markup:
    width = LEFT + columns * (BAR + GAP) + GAP
    total = TOP + HEIGHT + BOTTOM
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {total}" width="{width}" height="{total}">'
        f"<title>{escape(title)}</title>"
        f'<line class="axis" x1="{LEFT}" y1="{TOP + HEIGHT}" x2="{width}" y2="{TOP + HEIGHT}"/>'
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{escape(peak)}</text>'
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + HEIGHT}" text-anchor="end">0</text>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _x(index: int) -> int:
    return LEFT + GAP + index * (BAR + GAP)


def _bar(x: float, value: float, scale: float, base: float, css: str, label: str,
         width: float = BAR) -> str:  # fmt: skip
    height = value * scale
    y = TOP + HEIGHT - base - height
    return (
        f'<rect class="bar {escape(css)}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
        f'height="{height:.1f}"><title>{escape(label)}</title></rect>'
    )


def _label(index: int, key: Any) -> str:
    x = _x(index) + BAR / 2
    y = TOP + HEIGHT + 14
    text = escape("—" if key is None else str(key))
    return (
        f'<text class="label" x="{x:.1f}" y="{y}" text-anchor="end" '
        f'transform="rotate(-35 {x:.1f} {y})">{text}</text>'
    )


def calls_by_outcome(rows: Sequence[Mapping[str, Any]]) -> Markup:
    """Calls per row, stacked by outcome."""
    peak = max([int(r["calls"]) for r in rows] + [1])
    scale = HEIGHT / peak
    body: list[str] = []
    for i, row in enumerate(rows):
        base = 0.0
        for outcome in OUTCOME_SERIES:
            count = int(row[outcome])
            if count:
                label = f"{row['key']}: {count} {outcome}"
                body.append(_bar(_x(i), count, scale, base, outcome, label))
                base += count * scale
        body.append(_label(i, row["key"]))
    return _frame(len(rows), "Calls by outcome", body, str(peak))


def service_level(rows: Sequence[Mapping[str, Any]], target: float = SERVICE_TARGET) -> Markup:
    """Service level per row (rows without offered calls have no bar) against its target."""
    scale = float(HEIGHT)
    body: list[str] = []
    for i, row in enumerate(rows):
        level = row["service_level"]
        if level is not None:
            label = f"{row['key']}: {level * 100:.0f} %"
            body.append(_bar(_x(i), float(level), scale, 0.0, "service", label))
        body.append(_label(i, row["key"]))
    y = TOP + HEIGHT - target * scale
    right = LEFT + len(rows) * (BAR + GAP) + GAP
    body.append(
        f'<line class="target" x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}">'
        f"<title>target {target * 100:.0f} %</title></line>"
    )
    return _frame(len(rows), "Service level", body, "100 %")


def answer_times(rows: Sequence[Mapping[str, Any]]) -> Markup:
    """Time to answer per row: p50 and p90 side by side, in seconds."""
    values = [float(r[k]) for r in rows for k in ("answer_p50", "answer_p90") if r[k] is not None]
    peak = max([*values, 1.0])
    scale = HEIGHT / peak
    half = BAR / 2
    body: list[str] = []
    for i, row in enumerate(rows):
        for offset, name in ((0.0, "answer_p50"), (half, "answer_p90")):
            if row[name] is not None:
                label = f"{row['key']}: {name.removeprefix('answer_')} {row[name]:g} s"
                css = name.removeprefix("answer_")
                body.append(_bar(_x(i) + offset, float(row[name]), scale, 0.0, css, label, half))
        body.append(_label(i, row["key"]))
    return _frame(len(rows), "Time to answer (p50, p90)", body, f"{peak:g} s")
