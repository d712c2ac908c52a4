"""A time-series chart over a window (15 minutes to 7 days), drawn with plotext.

Each line is first reduced to the chart's own dot grid (braille: 2 dots per cell across,
4 down): per dot column, the lowest and highest value, each snapped to a dot row. That is
what gets plotted, so the picture is a function of the reduced lines, and the chart is
rebuilt only when they (or the axes) change: a new sample that lands on an already-lit
dot costs a comparison, not a plotext build. Time ticks are spaced for the window: every
5 minutes to every day."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import plotext._utility as plotext_utility
from rich.text import Text
from textual.app import RenderResult
from textual.color import Color
from textual.content import Content
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
        self._rendered: tuple[tuple, RenderResult] | None = None
        self._drawn: tuple | None = None
        """The reduced picture last drawn (see ``picture``); equal pictures are not rebuilt."""
        self.draw_count = 0
        """How many times the plot was rebuilt (tests check redraws happen only on change)."""

    def on_mount(self) -> None:
        # PlotextPlot's own on_mount also runs (Textual calls each class's handler).
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._draw(force=True))

    def on_resize(self) -> None:
        self._draw()  # the dot grid changed with the size

    def render(self) -> RenderResult:
        """The plot, built by plotext only when it was redrawn, resized or re-themed since the last
        render (``PlotextPlot.render`` builds it on every call, and Textual re-renders a widget
        whenever its tile repaints or restyles)."""
        key = (self.size, self.app.theme, self.draw_count)
        if self._rendered is None or self._rendered[0] != key:
            built = super().render()
            self._rendered = (key, Content.from_rich_text(built) if isinstance(built, Text) else built)
        return self._rendered[1]

    def show(self, data: ChartData, format_y: Callable[[float], str] | None = None) -> None:
        """Draw ``data`` unless it looks like what is already shown; ``format_y`` replaces the y tick format."""
        if format_y is not None and format_y is not self._format_y:
            self._format_y = format_y
            self._drawn = None
        if data == self._shown:
            return
        self._shown = data
        self._draw()

    def _colour(self, variable: str) -> tuple[int, int, int]:
        value = self.app.theme_variables.get(variable) or self.app.theme_variables["foreground"]
        return Color.parse(value).rgb

    def _grid(self) -> tuple[int, int]:
        """Dot columns and rows: the widget's cells times braille's 2x4 (finer than plotext's canvas,
        which leaves room for the axes), so the reduction never drops a dot plotext would light."""
        width, height = self.size
        return max(1, width) * 2, max(1, height) * 4

    def _draw(self, force: bool = False) -> None:
        data = self._shown
        if data is None:
            return
        top = _top(data)
        columns, rows = self._grid()
        start = data.end_ms - data.window_ms
        lines = tuple(reduce_line(line.points, start, data.window_ms, top, columns, rows) for line in data.series)
        picture = (lines, top, start, data.window_ms, data.threshold, data.threshold_label,
                   tuple((line.label, line.colour, line.marker) for line in data.series), columns, rows)
        if picture == self._drawn and not force:
            return
        self._drawn = picture
        self.draw_count += 1
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        column_min = data.window_ms / columns / MINUTE_MS
        row_value = top / rows
        for line, reduced in zip(data.series, lines):
            if not reduced:
                continue
            xs = [(column + 0.5) * column_min for column, _ in reduced]
            ys = [row * row_value for _, row in reduced]
            # A legend only where there is more than one line to tell apart.
            label = line.label if len(data.series) > 1 else None
            plt.plot(xs, ys, label=label, marker=line.marker, color=self._colour(line.colour))
        plt.xlim(0, data.window_ms / MINUTE_MS)
        every = tick_step(data.window_ms)
        ticks = _time_ticks(start, data.end_ms, every)
        label = day_label if every >= DAY_MS else clock_minutes
        plt.xticks([(t - start) / MINUTE_MS for t in ticks], [label(t) for t in ticks])
        plt.ylim(0, top)
        if data.threshold is not None and 0 <= data.threshold <= top:
            plt.hline(data.threshold, color=self._colour("warning"))
            plt.text(data.threshold_label or "target", x=data.window_ms / MINUTE_MS * 0.02,
                     y=data.threshold, color=self._colour("warning"), alignment="left")
        plt.yticks([0, top / 2, top], [self._format_y(v) for v in (0, top / 2, top)])
        if not any(line.points for line in data.series):
            plt.text("no data in this window", x=data.window_ms / MINUTE_MS * 0.4, y=top / 2)
        self.refresh()


def _top(data: ChartData) -> float:
    """The y axis's top: the fixed maximum, else the data's peak (or a nearby target) plus 15 %."""
    if data.y_max is not None:
        return data.y_max if data.y_max > 0 else 1.0
    peak = max((v for line in data.series for _, v in line.points if math.isfinite(v)), default=0.0)
    top = peak if 0 < peak < 1e300 else 1.0
    if data.threshold is not None and 0 < data.threshold <= 2 * top:
        top = max(top, data.threshold)  # show the target when it is near the data
    return top * 1.15


def reduce_line(points: Sequence[tuple[int, float]], start_ms: int, window_ms: int, top: float,
                columns: int, rows: int) -> tuple[tuple[int, int], ...]:
    """``points`` on a ``columns`` x ``rows`` dot grid over the window and ``[0, top]``: per column
    the lowest and highest row in time order (one point if they are equal). Points outside the
    window are dropped; values beyond the axis are kept (plotext clips them at the edge)."""
    if not points or window_ms <= 0:
        return ()
    out: list[tuple[int, int]] = []
    column_ms = window_ms / columns
    scale = rows / top
    current = -1
    low = high = first = 0
    for ts, value in points:
        offset = ts - start_ms
        if offset < 0 or offset > window_ms or not math.isfinite(value):
            continue
        column = min(columns - 1, int(offset / column_ms))
        row = round(min(max(value * scale, -rows), 2 * rows))  # far outside the axis: clipped anyway
        if column != current:
            if current >= 0:
                _emit(out, current, first, low, high)
            current, low, high, first = column, row, row, row
        elif row < low:
            low = row
        elif row > high:
            high = row
    if current >= 0:
        _emit(out, current, first, low, high)
    return tuple(out)


def _emit(out: list[tuple[int, int]], column: int, first: int, low: int, high: int) -> None:
    if low == high:
        out.append((column, low))
    elif first == high:  # falling within the column
        out += ((column, high), (column, low))
    else:
        out += ((column, low), (column, high))


def tick_step(window_ms: int) -> int:
    """The smallest tick spacing that leaves at most MAX_TICKS ticks in the window."""
    return next((step for step in TICK_STEPS_MS if window_ms // step <= MAX_TICKS), DAY_MS)


def _time_ticks(start_ms: int, end_ms: int, every_ms: int = TICK_EVERY_MS) -> Sequence[int]:
    """Instants on whole ``every_ms`` marks of local time inside the window (local minutes line up
    with UTC ones; hours and days follow the zone's offset)."""
    offset = time.localtime(start_ms / 1000).tm_gmtoff * 1000 if every_ms >= 60 * MINUTE_MS else 0
    first = -(-(start_ms + offset) // every_ms) * every_ms - offset
    return range(first, end_ms + 1, every_ms)
