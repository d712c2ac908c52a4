"""A report chart: one series over a report's window (an hour to weeks), drawn with plotext.

The series is a report chart dict (``label``, ``unit``, ``method``, ``points`` of
``[ts_ms, value or None]``). Gaps (None) split the line rather than being drawn
as zero. The x axis is in UTC like the rest of a report: clock times for
windows up to two days, dates beyond. Drawn once per chart (and on a theme
change), never on a timer.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from textual.color import Color
from textual_plotext import PlotextPlot

import qbconsole.tui.widgets.chart  # noqa: F401  (makes plotext's point order stable across runs)
from qbconsole.report.figures import display

HOUR_MS = 3_600_000
TICK_STEPS_MS = (5 * 60_000, 15 * 60_000, 30 * 60_000, HOUR_MS, 2 * HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS,
                 12 * HOUR_MS, 24 * HOUR_MS, 48 * HOUR_MS, 7 * 24 * HOUR_MS)
MAX_TICKS = 6


def segments(points: Sequence[Sequence[Any]]) -> list[list[tuple[int, float]]]:
    """Runs of consecutive points with a value; a None ends a run."""
    runs: list[list[tuple[int, float]]] = [[]]
    for ts, value in points:
        if value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((int(ts), float(value)))
    return [run for run in runs if run]


def time_ticks(start_ms: int, end_ms: int, max_ticks: int = MAX_TICKS) -> list[int]:
    """Round UTC instants inside the window, at most ``max_ticks`` of them."""
    length = max(1, end_ms - start_ms)
    step = next((s for s in TICK_STEPS_MS if length / s <= max_ticks), TICK_STEPS_MS[-1])
    first = -(-start_ms // step) * step
    return list(range(first, end_ms + 1, step))


def tick_label(ts_ms: int, window_ms: int) -> str:
    pattern = "%H:%M" if window_ms <= 48 * HOUR_MS else "%m-%d"
    return time.strftime(pattern, time.gmtime(ts_ms / 1000))


class RangeChart(PlotextPlot):
    """One report chart; ``show(chart, start_ms, end_ms)`` draws it unless it is already shown."""

    DEFAULT_CSS = """
    RangeChart { height: 12; width: 1fr; }
    """

    def __init__(self, chart: dict[str, Any] | None = None, start_ms: int = 0, end_ms: int = 0, *,
                 id: str | None = None, classes: str | None = None) -> None:
        """With ``chart``, it is drawn once mounted (else call :meth:`show`)."""
        super().__init__(id=id, classes=classes)
        self._initial = (chart, start_ms, end_ms) if chart is not None else None
        self._shown: tuple | None = None
        self.draw_count = 0

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._draw())
        if self._initial is not None:
            self.show(*self._initial)

    def show(self, chart: dict[str, Any], start_ms: int, end_ms: int) -> None:
        key = (chart.get("label"), chart.get("unit"), tuple(tuple(p) for p in chart.get("points", ())),
               start_ms, end_ms)
        if key == self._shown:
            return
        self._shown = key
        self._draw()

    def _colour(self, variable: str) -> tuple[int, int, int]:
        value = self.app.theme_variables.get(variable) or self.app.theme_variables["foreground"]
        return Color.parse(value).rgb

    def _draw(self) -> None:
        if self._shown is None:
            return
        label, unit, points, start, end = self._shown
        self.draw_count += 1
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        window = max(1, end - start)
        runs = segments(points)
        top = max((v for run in runs for _, v in run), default=0.0)
        top = top * 1.15 if top > 0 else 1.0
        colour = self._colour("primary")
        for run in runs:
            xs = [(ts - start) / HOUR_MS for ts, _ in run]
            ys = [v for _, v in run]
            plt.plot(xs, ys, marker="braille", color=colour)
        plt.xlim(0, window / HOUR_MS)
        ticks = time_ticks(start, end)
        plt.xticks([(t - start) / HOUR_MS for t in ticks], [tick_label(t, window) for t in ticks])
        plt.ylim(0, top)
        plt.yticks([0, top / 2, top], [display(v, unit) for v in (0, top / 2, top)])
        plt.title(f"{label} (UTC)")
        if not runs:
            plt.text("no data in this window", x=window / HOUR_MS / 2 * 0.7, y=top / 2)
        self.refresh()
