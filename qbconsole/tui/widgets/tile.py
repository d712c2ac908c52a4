"""An Overview tile: one figure's current value, target, status (word and colour) and chart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from qbconsole.tui.targets import Status
from qbconsole.tui.widgets.chart import ChartData, TimeChart

STATUS_LABELS = {
    Status.OK: "✔ OK",
    Status.WARN: "▲ WARN",
    Status.CRIT: "✖ CRIT",
    Status.NO_DATA: "○ NO DATA",
    Status.NO_TARGET: "NO TARGET",
}
"""Each status has a word and a symbol as well as a colour."""

STATUS_CLASSES = {status: "-" + status.name.lower().replace("_", "") for status in Status}


@dataclass(frozen=True)
class TileView:
    """What a tile shows; built from a snapshot by the Overview screen."""

    value: str
    detail: str
    status: Status
    chart: ChartData


class Tile(Vertical, can_focus=True):
    """A focusable tile; its description shows in the tooltip and on the Overview detail line."""

    DEFAULT_CSS = """
    Tile { height: 1fr; }
    Tile > .tile-head { height: 1; }
    Tile .tile-value { width: 1fr; text-style: bold; }
    Tile .tile-status { width: auto; margin-left: 1; }
    Tile > .tile-detail { height: 1; }
    Tile > TimeChart { height: 1fr; }
    """

    def __init__(self, title: str, description: str, format_y: Callable[[float], str], *,
                 id: str | None = None, spec_key: str = "") -> None:
        super().__init__(id=id)
        self.spec_key = spec_key
        """The Overview figure whose chart ``enter`` opens."""
        self.border_title = title
        self.description = description
        self.tooltip = description
        self._format_y = format_y
        self.status = Status.NO_DATA
        self.set_class(True, STATUS_CLASSES[self.status])
        self._view: TileView | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="tile-head"):
            yield Static("—", classes="tile-value", markup=False)
            yield Static(STATUS_LABELS[self.status], classes="tile-status", markup=False)
        yield Static("", classes="tile-detail", markup=False)
        yield TimeChart(self._format_y)

    def show(self, view: TileView) -> None:
        """Update the texts and the chart, only where they changed (most polls change nothing)."""
        if view == self._view:
            return
        previous, self._view = self._view, view
        # One-line texts of fixed size: a repaint, not a layout pass (the status word is
        # auto-width, so a new status is laid out).
        if previous is None or view.value != previous.value:
            self.query_one(".tile-value", Static).update(view.value, layout=False)
        if previous is None or view.detail != previous.detail:
            self.query_one(".tile-detail", Static).update(view.detail, layout=False)
        if view.status is not self.status or previous is None:
            self.query_one(".tile-status", Static).update(STATUS_LABELS[view.status])
        if view.status is not self.status:
            self.set_class(False, STATUS_CLASSES[self.status])
            self.set_class(True, STATUS_CLASSES[view.status])
            self.status = view.status
        self.query_one(TimeChart).show(view.chart)
