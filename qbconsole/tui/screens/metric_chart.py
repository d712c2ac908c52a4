"""One Overview figure's chart over a window picked from 15m, 1h, 6h, 24h and 7d.

``w`` (or ``]``) picks the next, longer window and ``[`` the shorter one (``1``–``6``
stay the section keys); ``escape`` goes back to the Overview. The history is read in
a thread worker: raw samples up to an hour, per-minute rollups beyond (see
``tui.history``), and read again every few seconds while the screen is open.
"""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from qbconsole.tui.data import Snapshot
from qbconsole.tui.figures import figure_row, threshold_text, tick_for, value_text
from qbconsole.tui.groups import MetricSpec
from qbconsole.tui.history import RAW_UP_TO_MS, WINDOWS, History, read_history
from qbconsole.tui.metricdata import MetricWindow
from qbconsole.tui.screens.base import SectionScreen
from qbconsole.tui.timefmt import clock, span
from qbconsole.tui.widgets.chart import ChartData, ChartSeries, TimeChart
from qbconsole.tui.widgets.metric_row import STATUS_MARKS

LINE_STYLES = (("primary", "braille"), ("accent", "dot"), ("success", "+"), ("warning", "x"),
               ("error", "•"), ("secondary", "*"))
"""Each line differs by marker as well as colour."""
RELOAD_RAW_S = 5.0
RELOAD_ROLLUPS_S = 60.0


class HistoryReady(Message):
    """Posted by the history worker."""

    def __init__(self, history: History | None, error: str | None = None) -> None:
        super().__init__()
        self.history = history
        self.error = error


def window_picker(current: int, source: str) -> Content:
    """``Window  15m [1h] 6h 24h 7d`` with the current one in reverse video, each one clickable."""
    parts: list[tuple[str, str] | str] = [("Window ", "bold")]
    for i, (label, _ms) in enumerate(WINDOWS):
        style = "bold reverse" if i == current else "$accent"
        parts += [" ", (f" {label} ", f"{style} @click=screen.pick_window({i})")]
    parts.append((f"   w/] longer · [ shorter · {source}", "$text-muted"))
    return Content.assemble(*parts)


def summary_text(history: History, unit: str) -> str:
    """Lowest, average and highest of the first line over the window, and what was read."""
    line = history.lines[0] if history.lines else None
    if line is None or not line.points:
        return f"No data in the last {span(history.window_ms)} ({history.source})."
    values = [v for _, v in line.points]
    ts, last = line.points[-1]
    text = (f"{line.label}: low {value_text(min(values), unit)} · average {value_text(sum(values) / len(values), unit)}"
            f" · high {value_text(max(values), unit)} · last {value_text(last, unit)} at {clock(ts)}"
            f" · from {history.source}")
    if history.hidden:
        text += f" · {history.hidden} more series not drawn"
    return text


class MetricChartScreen(SectionScreen):
    """A figure's chart with its window picker (see the module docstring)."""

    MODE = "overview"
    AUTO_FOCUS = None
    BINDINGS = [
        Binding("w", "next_window", "Window", tooltip="Next window: 15m, 1h, 6h, 24h, 7d (then 15m again)",
                id="chart.window"),
        Binding("right_square_bracket", "next_window", "Longer", key_display="]", show=False,
                tooltip="A longer window", id="chart.longer"),
        Binding("left_square_bracket", "previous_window", "Shorter", key_display="[", show=False,
                tooltip="A shorter window", id="chart.shorter"),
        Binding("escape", "back", "Back", tooltip="Back to the Overview", id="chart.back"),
    ]

    def __init__(self, spec: MetricSpec, window: int = 0) -> None:
        super().__init__()
        self.spec = spec
        self.window = window
        self.history: History | None = None
        self._loaded_at = 0.0
        self._loading = False

    def compose_body(self) -> ComposeResult:
        yield Static("", id="chart-heading")
        yield Static("", id="window-picker")
        yield TimeChart(tick_for(self.spec.unit), id="history-chart")
        yield Static("reading…", id="chart-summary", markup=False)

    def on_mount(self) -> None:
        self._show_picker()
        self._load()
        self.set_interval(2.0, self._maybe_reload)

    @property
    def window_ms(self) -> int:
        return WINDOWS[self.window][1]

    # ---- the live heading ------------------------------------------------------------------
    def show_body(self, snapshot: Snapshot) -> None:
        spec = self.spec
        window = snapshot.metrics.get(spec.key) or MetricWindow(spec.name)
        target = self.console.targets().get(spec.name)
        row = figure_row(spec, window, target, snapshot.now_ms)
        word, style = STATUS_MARKS[row.status]
        parts: list[tuple[str, str] | str] = [(row.title, "bold"), "  ", (row.value, "bold"), "  "]
        if word != "·":
            parts += [(word, style), "  "]
        if target is not None:
            where = f" (SLO {target.slo})" if target.slo else ""
            kind = "capacity target" if target.capacity else "target"
            parts.append((f"{kind} {threshold_text(target, spec.unit)}{where}; status over the last 15m",
                          "$text-muted"))
        else:
            parts.append(("no target set", "$text-muted"))
        parts.append(("\n" + spec.description, "$text-muted"))
        self.query_one("#chart-heading", Static).update(Content.assemble(*parts))

    # ---- windows -----------------------------------------------------------------------------
    def _show_picker(self) -> None:
        source = "per-minute rollups" if self.window_ms > RAW_UP_TO_MS else "raw samples"
        self.query_one("#window-picker", Static).update(window_picker(self.window, source))

    def action_pick_window(self, index: int) -> None:
        if 0 <= index < len(WINDOWS) and index != self.window:
            self.window = index
            self._show_picker()
            self.query_one("#chart-summary", Static).update("reading…")
            self._load()

    def action_next_window(self) -> None:
        self.action_pick_window((self.window + 1) % len(WINDOWS))

    def action_previous_window(self) -> None:
        self.action_pick_window((self.window - 1) % len(WINDOWS))

    def action_back(self) -> None:
        self.dismiss()

    # ---- reading -------------------------------------------------------------------------------
    def _maybe_reload(self) -> None:
        every = RELOAD_ROLLUPS_S if self.window_ms > RAW_UP_TO_MS else RELOAD_RAW_S
        if not self._loading and time.monotonic() - self._loaded_at >= every:
            self._load()

    def _load(self) -> None:
        self._loading = True
        self._read(self.spec, self.window_ms, int(self.console.clock() * 1000))

    @work(thread=True, exclusive=True, group="history", name="chart history", exit_on_error=False)
    def _read(self, spec: MetricSpec, window_ms: int, now_ms: int) -> None:
        try:
            history = read_history(self.console.metrics, spec, window_ms, now_ms)
        except Exception as exc:  # shown under the chart; the next reload tries again
            self.post_message(HistoryReady(None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(HistoryReady(history))

    def on_history_ready(self, message: HistoryReady) -> None:
        self._loading = False
        self._loaded_at = time.monotonic()
        summary = self.query_one("#chart-summary", Static)
        if message.history is None:
            summary.update(f"✖ reading the history failed: {message.error}")
            return
        history = message.history
        if history.window_ms != self.window_ms:
            return  # an older window's answer; the current one is on its way
        self.history = history
        series = tuple(ChartSeries(line.label, line.points, *LINE_STYLES[i % len(LINE_STYLES)])
                       for i, line in enumerate(history.lines)) or (ChartSeries(self.spec.title, ()),)
        target = self.console.targets().get(self.spec.name)
        threshold = (target.threshold, f"target {threshold_text(target, self.spec.unit)}") if target else (None, "")
        self.query_one(TimeChart).show(ChartData(series, history.end_ms, history.window_ms, y_max=self.spec.y_max,
                                                 threshold=threshold[0], threshold_label=threshold[1]))
        summary.update(summary_text(history, self.spec.unit))
