"""Overview: the status line, tiles for CPU, memory, disk and network, and their last 15 minutes."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Static

from qbconsole.catalog import describe, format_value
from qbconsole.tui.data import (
    CPU, DISK, LOOPBACK_NICS, MEMORY, NET_RX, NET_TX, RATE_BUCKET_MS, WINDOW_MS, MetricWindow, Snapshot,
)
from qbconsole.tui.screens.base import SectionScreen
from qbconsole.tui.targets import TARGETS, Status, Target, judge
from qbconsole.tui.timefmt import ago, span
from qbconsole.tui.widgets.chart import ChartData, ChartSeries
from qbconsole.tui.widgets.tile import Tile, TileView

STALE_AFTER_MS = 60_000
"""A latest value older than this is shown with its age: the collector may have stopped."""

WINDOW_TEXT = span(WINDOW_MS)


def unit_of(metric: str) -> str:
    info = describe(metric)
    return info.unit if info else ""


def description_of(metric: str) -> str:
    info = describe(metric)
    return f"{info.description} ({metric})" if info else metric


def percent_tick(value: float) -> str:
    return f"{value:.0f}%"


def rate_tick(value: float) -> str:
    return format_value(value, "bytes/s")


def chart_end(now_ms: int) -> int:
    """The charts' right edge, rounded up to the rate bucket so a chart redraws only when its data moves."""
    return -(-now_ms // RATE_BUCKET_MS) * RATE_BUCKET_MS


def target_text(target: Target | None, unit: str) -> str:
    if target is None:
        return "no target set"
    text = format_value(target.threshold, unit)
    if float(target.threshold).is_integer():
        text = text.replace(".0 ", " ", 1)  # "70 %", not "70.0 %"
    return f"target {target.op} {text}"


def current_text(window: MetricWindow, unit: str, now_ms: int) -> str:
    """The latest value in its unit, with its age when it is old enough to doubt."""
    latest = window.latest
    if latest is None:
        return "—"
    text = format_value(latest[1], unit)
    if now_ms - latest[0] > STALE_AFTER_MS:
        text += f" (as of {ago(latest[0], now_ms)})"
    return text


def average_label(*windows: MetricWindow) -> str:
    """ "15m avg", or the span the data really covers when that is shorter (a new store)."""
    covered = max((w.points[-1][0] - w.points[0][0] for w in windows if w.points), default=0)
    return f"{WINDOW_TEXT} avg" if covered >= WINDOW_MS * 0.95 else f"{span(covered)} avg"


def gauge_view(window: MetricWindow, now_ms: int, *, prefix: str = "") -> TileView:
    """A percentage gauge judged against its entry in TARGETS (if any)."""
    unit = unit_of(window.name)
    target = TARGETS.get(window.name)
    status = judge(window, target)
    if status is Status.NO_DATA:
        detail = f"no samples in the last {WINDOW_TEXT} · {target_text(target, unit)}"
    else:
        detail = f"{average_label(window)} {format_value(window.average, unit)} · {target_text(target, unit)}"
    chart = ChartData((ChartSeries(window.label or window.name, window.points),), chart_end(now_ms),
                      WINDOW_MS, y_max=100.0)
    return TileView(prefix + current_text(window, unit, now_ms), detail, status, chart)


def network_view(rx: MetricWindow, tx: MetricWindow, now_ms: int) -> TileView:
    """Receive and send rates (bytes/s), summed over the NICs; no target in the source design."""
    if rx.latest is None and tx.latest is None:
        status, detail = Status.NO_DATA, f"no samples in the last {WINDOW_TEXT} · no target set"
    else:
        status = Status.NO_TARGET
        detail = (f"{average_label(rx, tx)} ↓ {format_value(rx.average, 'bytes/s')} "
                  f"↑ {format_value(tx.average, 'bytes/s')}")
    value = f"↓ {current_text(rx, 'bytes/s', now_ms)} ↑ {current_text(tx, 'bytes/s', now_ms)}"
    chart = ChartData(
        (ChartSeries("↓ recv", rx.points, "primary", "braille"),
         ChartSeries("↑ sent", tx.points, "accent", "dot")),
        chart_end(now_ms), WINDOW_MS,
    )
    return TileView(value, detail, status, chart)


def tile_views(snapshot: Snapshot) -> dict[str, TileView]:
    """Tile id -> what it shows, for one snapshot."""
    now = snapshot.now_ms
    disk_prefix = f"{snapshot.disk.label}  " if snapshot.disk.label else ""
    return {
        "tile-cpu": gauge_view(snapshot.cpu, now),
        "tile-memory": gauge_view(snapshot.memory, now),
        "tile-disk": gauge_view(snapshot.disk, now, prefix=disk_prefix),
        "tile-network": network_view(snapshot.net_rx, snapshot.net_tx, now),
    }


class OverviewScreen(SectionScreen):
    """Headline figures of this machine (System group); more groups arrive with later sources."""

    MODE = "overview"

    def compose_body(self) -> ComposeResult:
        loopback = ", ".join(sorted(LOOPBACK_NICS))
        with Grid(id="tiles"):
            yield Tile("CPU", description_of(CPU), percent_tick, id="tile-cpu")
            yield Tile("Memory", description_of(MEMORY), percent_tick, id="tile-memory")
            yield Tile("Disk (fullest mount)", description_of(DISK), percent_tick, id="tile-disk")
            yield Tile(
                "Network",
                f"Bytes per second received and sent, all interfaces but {loopback} "
                f"(rates of {NET_RX} and {NET_TX})",
                rate_tick,
                id="tile-network",
            )
        yield Static("", id="tile-description", markup=False)

    def show_body(self, snapshot: Snapshot) -> None:
        for tile_id, view in tile_views(snapshot).items():
            self.query_one(f"#{tile_id}", Tile).show(view)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, Tile):
            self.query_one("#tile-description", Static).update(
                f"{event.widget.border_title}: {event.widget.description}"
            )
