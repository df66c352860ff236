"""Coverage drawn as a plain SVG grid: a row per pool, UTC time across, gaps in red."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

from routing.coverage import gap_seconds
from routing.model import DAY_NAMES, Pool
from routing.shifts import local, span_seconds, timestamp, utc

LABEL_WIDTH = 190
PLOT_WIDTH = 1000
ROW_HEIGHT = 26
TOP = 56  # room for the title above the time axis
BAR_COLOUR = "#3b7dd8"
GAP_COLOUR = "#d93025"
CHAR_WIDTH = 7  # a generous width of one character of the 12 px labels


def render(pools: Sequence[Pool], start: datetime, end: datetime, title: str) -> str:
    """An SVG document showing when each of `pools` is on shift in [start, end), and the gaps."""
    low, high = int(timestamp(start)), int(timestamp(end))
    if high <= low:
        raise ValueError("the drawing needs an end after its start")
    rows = [(pool, span_seconds(pool, low, high)) for pool in pools]
    holes = gap_seconds(pools, low, high)
    height = TOP + ROW_HEIGHT * (len(rows) + 1) + 30
    width = LABEL_WIDTH + PLOT_WIDTH + 20

    def x(instant: int) -> float:
        return round(LABEL_WIDTH + PLOT_WIDTH * (instant - low) / (high - low), 2)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    out += _grid(low, high, x, height)
    for row, (pool, found) in enumerate(rows):
        y = TOP + row * ROW_HEIGHT
        out.append(_label(y, f"{pool.name} ({pool.timezone})"))
        out += [_bar(x(s), x(e), y, BAR_COLOUR, _span_title(pool, s, e)) for s, e in found]
    y = TOP + len(rows) * ROW_HEIGHT
    out.append(_label(y, "no one on shift", GAP_COLOUR))
    for s, e in holes:
        tip = f"gap {utc(s):%a %Y-%m-%d %H:%M} to {utc(e):%a %Y-%m-%d %H:%M} UTC"
        out.append(
            f'<rect x="{x(s)}" y="{TOP - 4}" width="{max(x(e) - x(s), 1)}" '
            f'height="{ROW_HEIGHT * len(rows) + 4}" fill="{GAP_COLOUR}" fill-opacity="0.12"/>'
        )
        out.append(_bar(x(s), x(e), y, GAP_COLOUR, tip))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _grid(low: int, high: int, x: Callable[[int], float], height: int) -> list[str]:
    lines: list[str] = []
    first = utc(low).replace(hour=0, minute=0, second=0, microsecond=0)
    step = timedelta(hours=6)
    tick = first
    free = float("-inf")  # where the last label ends: one that would overlap it is left out
    while (instant := int(tick.timestamp())) <= high:
        if instant >= low:
            midnight = tick.hour == 0
            colour, dash = ("#888", "") if midnight else ("#ddd", ' stroke-dasharray="3,3"')
            lines.append(
                f'<line x1="{x(instant)}" y1="{TOP - 14}" x2="{x(instant)}" '
                f'y2="{height - 24}" stroke="{colour}"{dash}/>'
            )
            label = f"{DAY_NAMES[tick.weekday()]} {tick:%m-%d}" if midnight else f"{tick:%H}h"
            left = x(instant) + 3
            if instant < high and left >= free:
                lines.append(f'<text x="{left}" y="{TOP - 18}">{label}</text>')
                free = left + CHAR_WIDTH * len(label) + 4
        tick += step
    lines.append(
        f'<text x="{LABEL_WIDTH}" y="{height - 8}" fill="#555">time in UTC; '
        "hover a bar for local times</text>"
    )
    return lines


def _label(y: int, text: str, colour: str = "#222") -> str:
    return f'<text x="10" y="{y + ROW_HEIGHT * 0.65}" fill="{colour}">{escape(text)}</text>'


def _bar(left: float, right: float, y: int, colour: str, tip: str) -> str:
    return (
        f'<rect x="{left}" y="{y + 4}" width="{max(round(right - left, 2), 1)}" '
        f'height="{ROW_HEIGHT - 8}" rx="3" fill="{colour}"><title>{escape(tip)}</title></rect>'
    )


def _span_title(pool: Pool, start: int, end: int) -> str:
    first, last = local(start, pool.zone), local(end, pool.zone)
    return (
        f"{pool.name}: {DAY_NAMES[first.weekday()]} {first:%H:%M} to "
        f"{DAY_NAMES[last.weekday()]} {last:%H:%M} {pool.timezone} "
        f"({utc(start):%H:%M} to {utc(end):%H:%M} UTC)"
    )
