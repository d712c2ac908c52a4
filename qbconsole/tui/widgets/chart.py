"""A time-series chart over a window (15 minutes to 7 days), drawn with plotext; redrawn only when
its data changes. Time ticks are spaced for the window: every 5 minutes to every day."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import time

import plotext._utility as plotext_utility
from textual.color import Color
from textual_plotext import PlotextPlot

from qbconsole.tui.timefmt import clock_minutes, day_label

# plotext de-duplicates plotted points through set(), whose order follows the per-process
# hash seed; where two points land on one cell the last drawn wins, so identical data could
# render differently from one run to the next. Keep first-seen order instead (same result set).
plotext_utility.no_duplicates = lambda data: list(dict.fromkeys(data))

MINUTE_MS = 60_000
TICK_EVERY_MS = 5 * MINUTE_MS
TICK_STEPS_MS = tuple(m * MINUTE_MS for m in (5, 10, 15, 30, 60, 120, 180, 360, 720, 1440))
MAX_TICKS = 7
DAY_MS = 1440 * MINUTE_MS


@dataclass(frozen=True)
class ChartSeries:
    """One line: a legend label, the theme colour variable it is drawn in, and its points."""

    label: str
    points: tuple[tuple[int, float], ...]
    colour: str = "primary"
    marker: str = "braille"
    """Lines differ by marker as well as colour, so colour is never the only signal."""


@dataclass(frozen=True)
class ChartData:
    """What one chart draws: lines over the window ``[end_ms - window_ms, end_ms]``."""

    series: tuple[ChartSeries, ...]
    end_ms: int
    window_ms: int
    y_max: float | None = None
    """Fixed top of the y axis (100 for percentages); None scales to the data."""
    threshold: float | None = None
    """A target drawn as a labelled horizontal line (the label says what it is, not only its colour)."""
    threshold_label: str = ""


class TimeChart(PlotextPlot):
    """Lines over a time window, x axis in local clock time, y ticks formatted by ``format_y``."""

    def __init__(self, format_y: Callable[[float], str] = str, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._format_y = format_y
        self._shown: ChartData | None = None
        self.draw_count = 0
        """How many times the plot was rebuilt (tests check redraws happen only on change)."""

    def on_mount(self) -> None:
        # PlotextPlot's own on_mount also runs (Textual calls each class's handler).
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._draw())

    def show(self, data: ChartData, format_y: Callable[[float], str] | None = None) -> None:
        """Draw ``data`` unless it is what is already shown; ``format_y`` replaces the y tick format."""
        if format_y is not None and format_y is not self._format_y:
            self._format_y = format_y
            self._shown = None
        if data == self._shown:
            return
        self._shown = data
        self._draw()

    def _colour(self, variable: str) -> tuple[int, int, int]:
        value = self.app.theme_variables.get(variable) or self.app.theme_variables["foreground"]
        return Color.parse(value).rgb

    def _draw(self) -> None:
        data = self._shown
        if data is None:
            return
        self.draw_count += 1
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        start = data.end_ms - data.window_ms
        top = data.y_max
        for line in data.series:
            if not line.points:
                continue
            xs = [(ts - start) / MINUTE_MS for ts, _ in line.points]
            ys = [v for _, v in line.points]
            # A legend only where there is more than one line to tell apart.
            label = line.label if len(data.series) > 1 else None
            plt.plot(xs, ys, label=label, marker=line.marker, color=self._colour(line.colour))
            peak = max(ys)
            if data.y_max is None:
                top = max(top or 0.0, peak)
        plt.xlim(0, data.window_ms / MINUTE_MS)
        every = tick_step(data.window_ms)
        ticks = _time_ticks(start, data.end_ms, every)
        label = day_label if every >= DAY_MS else clock_minutes
        plt.xticks([(t - start) / MINUTE_MS for t in ticks], [label(t) for t in ticks])
        top = top if top and top > 0 else 1.0
        if data.y_max is None and data.threshold is not None and 0 < data.threshold <= 2 * top:
            top = max(top, data.threshold)  # show the target when it is near the data
        if data.y_max is None:
            top *= 1.15
        plt.ylim(0, top)
        if data.threshold is not None and 0 <= data.threshold <= top:
            plt.hline(data.threshold, color=self._colour("warning"))
            plt.text(data.threshold_label or "target", x=data.window_ms / MINUTE_MS * 0.02,
                     y=data.threshold, color=self._colour("warning"), alignment="left")
        plt.yticks([0, top / 2, top], [self._format_y(v) for v in (0, top / 2, top)])
        if not any(line.points for line in data.series):
            plt.text("no data in this window", x=data.window_ms / MINUTE_MS * 0.4, y=top / 2)
        self.refresh()


def tick_step(window_ms: int) -> int:
    """The smallest tick spacing that leaves at most MAX_TICKS ticks in the window."""
    return next((step for step in TICK_STEPS_MS if window_ms // step <= MAX_TICKS), DAY_MS)


def _time_ticks(start_ms: int, end_ms: int, every_ms: int = TICK_EVERY_MS) -> Sequence[int]:
    """Instants on whole ``every_ms`` marks of local time inside the window (local minutes line up
    with UTC ones; hours and days follow the zone's offset)."""
    offset = time.localtime(start_ms / 1000).tm_gmtoff * 1000 if every_ms >= 60 * MINUTE_MS else 0
    first = -(-(start_ms + offset) // every_ms) * every_ms - offset
    return range(first, end_ms + 1, every_ms)
