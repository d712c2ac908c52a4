"""Overview: the status line, a group bar, and one metric group at a time.

System keeps its four tiles with charts; Application, Business, User experience and
Security list their figures one per row (value, status, target, sparkline) above a
chart of the focused figure's last 15 minutes. ``[``/``]`` (or a click on the group
bar) change the group, ``tab`` and the arrows move between figures, ``enter`` opens
the focused figure's chart with a window picker.
"""

from __future__ import annotations

from typing import Mapping

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import ContentSwitcher, Static

from qbconsole.tui.data import CPU, DISK, LOOPBACK_NICS, MEMORY, RATE_BUCKET_MS, MetricWindow, Snapshot
from qbconsole.tui.figures import (
    average_label, current_text, group_rows, group_statuses, target_text, threshold_text, tick_for, value_text,
)
from qbconsole.tui.groups import GROUP_OF, GROUPS, SPECS, SYSTEM, Group
from qbconsole.tui.metricdata import WINDOW_MS
from qbconsole.tui.screens.base import SectionScreen
from qbconsole.tui.screens.metric_chart import MetricChartScreen
from qbconsole.tui.targets import Status, Target, judge
from qbconsole.tui.timefmt import span
from qbconsole.tui.widgets.chart import ChartData, ChartSeries, TimeChart
from qbconsole.tui.widgets.line import Line
from qbconsole.tui.widgets.metric_row import MetricRow, header_content
from qbconsole.tui.widgets.tile import Tile, TileView

WINDOW_TEXT = span(WINDOW_MS)
SHORT_TITLES = {"system": "Sys", "application": "App", "business": "Biz", "ux": "UX", "security": "Sec"}
COUNT_MARKS = ((Status.CRIT, "✖", "$error"), (Status.WARN, "▲", "$warning"), (Status.SHORT, "◇", "$accent"))


def chart_end(now_ms: int) -> int:
    """The charts' right edge, rounded up to the rate bucket so a chart redraws only when its data moves."""
    return -(-now_ms // RATE_BUCKET_MS) * RATE_BUCKET_MS


def gauge_view(window: MetricWindow, target: Target | None, now_ms: int, *, unit: str = "percent",
               prefix: str = "", y_max: float | None = 100.0) -> TileView:
    """A System tile: the latest value, the window's average, the target and the status."""
    status = judge(window, target)
    if status is Status.NO_DATA:
        detail = f"no samples in the last {WINDOW_TEXT} · {target_text(target, unit)}"
    else:
        detail = f"{average_label(window)} {value_text(window.average, unit)} · {target_text(target, unit)}"
    chart = ChartData((ChartSeries(window.label or window.name, window.points),), chart_end(now_ms),
                      WINDOW_MS, y_max=y_max)
    return TileView(prefix + current_text(window, unit, now_ms), detail, status, chart)


def network_view(rx: MetricWindow, tx: MetricWindow, now_ms: int) -> TileView:
    """Receive and send rates (bytes/s), summed over the NICs; no target in the source design."""
    if rx.latest is None and tx.latest is None:
        status, detail = Status.NO_DATA, f"no samples in the last {WINDOW_TEXT} · no target set"
    else:
        status = Status.NO_TARGET
        detail = (f"{average_label(rx, tx)} ↓ {value_text(rx.average, 'bytes/s')} "
                  f"↑ {value_text(tx.average, 'bytes/s')}")
    value = f"↓ {current_text(rx, 'bytes/s', now_ms)} ↑ {current_text(tx, 'bytes/s', now_ms)}"
    chart = ChartData(
        (ChartSeries("↓ recv", rx.points, "primary", "braille"),
         ChartSeries("↑ sent", tx.points, "accent", "dot")),
        chart_end(now_ms), WINDOW_MS,
    )
    return TileView(value, detail, status, chart)


def tile_views(snapshot: Snapshot, targets: Mapping[str, Target]) -> dict[str, TileView]:
    """Tile id -> what it shows, for one snapshot."""
    now = snapshot.now_ms
    disk_prefix = f"{snapshot.disk.label}  " if snapshot.disk.label else ""
    return {
        "tile-cpu": gauge_view(snapshot.cpu, targets.get(CPU), now),
        "tile-memory": gauge_view(snapshot.memory, targets.get(MEMORY), now),
        "tile-disk": gauge_view(snapshot.disk, targets.get(DISK), now, prefix=disk_prefix),
        "tile-network": network_view(snapshot.net_rx, snapshot.net_tx, now),
    }


def group_bar_content(groups: tuple[Group, ...], current: str, counts: Mapping[str, Mapping[Status, int]],
                      width: int | None = None) -> Content:
    """``System │ Application ✖2 │ ...`` with the current group in reverse video, each one clickable.

    When ``width`` is too narrow the key hint goes first, then the titles shorten.
    """
    def build(short: bool, hint: bool) -> Content:
        parts: list[tuple[str, str] | str] = []
        for i, group in enumerate(groups):
            if i:
                parts.append((" │ ", "$text-muted"))
            title = SHORT_TITLES.get(group.key, group.title) if short else group.title
            action = f"@click=screen.show_group('{group.key}')"
            style = "bold reverse" if group.key == current else "bold"
            parts.append((f" {title} ", f"{style} {action}"))
            for status, mark, colour in COUNT_MARKS:
                if counts.get(group.key, {}).get(status):
                    parts.append((f"{mark}{counts[group.key][status]}", f"bold {colour}"))
        if hint:
            parts.append(("   [ ] group", "$text-muted"))
        return Content.assemble(*parts)

    for short, hint in ((False, True), (False, False), (True, True), (True, False)):
        content = build(short, hint)
        if width is None or content.cell_length <= width:
            break
    return content


class GroupPane(Vertical):
    """A group's rows and the chart of the focused row."""

    def __init__(self, group: Group) -> None:
        super().__init__(id=f"group-{group.key}", classes="group-pane")
        self.group = group

    def compose(self) -> ComposeResult:
        yield Line("", classes="rows-header")
        yield VerticalScroll(classes="rows", can_focus=False)
        chart = Vertical(classes="preview")
        chart.border_title = "—"
        with chart:
            yield TimeChart(id=f"preview-{self.group.key}")


class OverviewScreen(SectionScreen):
    """The Overview section (see the module docstring)."""

    MODE = "overview"
    BINDINGS = [
        Binding("enter", "open_chart", "Chart", key_display="⏎", tooltip="Chart of the focused figure over "
                "15m, 1h, 6h, 24h or 7d", id="overview.chart"),
        Binding("right_square_bracket", "next_group", "Group", key_display="]",
                tooltip="Next metric group (System, Application, Business, User experience, Security)",
                id="overview.next_group"),
        Binding("left_square_bracket", "previous_group", "Previous group", key_display="[", show=False,
                tooltip="Previous metric group", id="overview.previous_group"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.group = GROUPS[0].key
        self._focused_key: dict[str, str] = {}
        self._preview_key: dict[str, str] = {}

    def compose_body(self) -> ComposeResult:
        yield Line("", id="group-bar")
        with ContentSwitcher(initial=f"group-{SYSTEM.key}", id="groups"):
            with Grid(id="group-system", classes="group-pane"):
                loopback = ", ".join(sorted(LOOPBACK_NICS))
                for spec, tile_id in zip(SYSTEM.metrics, ("tile-cpu", "tile-memory", "tile-disk", "tile-network")):
                    description = spec.description
                    if spec.pair:
                        description = (f"Bytes per second received and sent, all interfaces but {loopback} "
                                       f"(rates of {spec.name} and {spec.pair})")
                    yield Tile(spec.title, description, tick_for(spec.unit), id=tile_id, spec_key=spec.key)
            for group in GROUPS[1:]:
                yield GroupPane(group)
        yield Static("", id="tile-description", markup=False)

    # ---- showing a snapshot -------------------------------------------------------------
    def show_body(self, snapshot: Snapshot) -> None:
        targets = self.console.targets()
        for tile_id, view in tile_views(snapshot, targets).items():
            self.query_one(f"#{tile_id}", Tile).show(view)
        shown = next(g for g in GROUPS if g.key == self.group)
        if shown is not SYSTEM:
            self._show_group(shown, snapshot, targets)
        self._show_group_bar(snapshot, targets)

    def _show_group_bar(self, snapshot: Snapshot, targets: Mapping[str, Target]) -> None:
        counts = {g.key: group_statuses(g, snapshot.metrics, targets) for g in GROUPS}
        bar = self.query_one("#group-bar", Line)
        bar.show(group_bar_content(GROUPS, self.group, counts, bar.content_region.width or None))

    def _show_group(self, group: Group, snapshot: Snapshot, targets: Mapping[str, Target]) -> None:
        pane = self.query_one(f"#group-{group.key}", GroupPane)
        rows = group_rows(group, snapshot.metrics, targets, snapshot.now_ms)
        container = pane.query_one(".rows", VerticalScroll)
        existing = {row.key: row for row in container.query(MetricRow)}
        wanted = {key for key, _, _ in rows}
        for key, row in existing.items():
            if key not in wanted:
                row.remove()
        previous: MetricRow | None = None
        for key, spec_key, _view in rows:  # new rows (a label value seen for the first time) in place
            row = existing.get(key)
            if row is None:
                row = existing[key] = MetricRow(key, spec_key, self._row_description(key, spec_key))
                if previous is None:
                    container.mount(row, before=0 if container.children else None)
                else:
                    container.mount(row, after=previous)
            previous = row
        for key, _spec_key, view in rows:
            existing[key].show(view)
        header = pane.query_one(".rows-header", Line)
        first = next(iter(existing.values()), None)
        width = (first.size.width if first is not None and first.size.width else 0) or header.content_region.width
        header.show(header_content(width or self.size.width - 4, WINDOW_TEXT))
        self._show_preview(group, snapshot)

    def _row_description(self, key: str, spec_key: str) -> str:
        spec = SPECS[spec_key]
        if key == spec_key:
            return f"{spec.title}: {spec.description}"
        return f"{spec.title}, {spec.label} {key.split('/', 1)[1]}: {spec.description}"

    def _show_preview(self, group: Group, snapshot: Snapshot) -> None:
        """The chart under the rows: the focused row's figure (else the group's first)."""
        key = self._preview_key.get(group.key) or group.metrics[0].key
        spec = SPECS[key.split("/", 1)[0]]
        window = snapshot.metrics.get(key) or MetricWindow(spec.name)
        pane = self.query_one(f"#group-{group.key}", GroupPane)
        preview = pane.query_one(".preview", Vertical)
        title = next((row.view.title for row in pane.query(MetricRow) if row.key == key and row.view), spec.title)
        border_title = f"{title} · last {WINDOW_TEXT}"
        if preview.border_title != border_title:
            preview.border_title = border_title
        target = self.console.targets().get(spec.name) if key == spec.key else None
        pane.query_one(TimeChart).show(ChartData(
            (ChartSeries(title, window.points),), chart_end(snapshot.now_ms), WINDOW_MS, y_max=spec.y_max,
            threshold=target.threshold if target else None,
            threshold_label=f"target {threshold_text(target, spec.unit)}" if target else ""), tick_for(spec.unit))

    # ---- groups ----------------------------------------------------------------------------
    def action_show_group(self, key: str) -> None:
        if key == self.group or key not in {g.key for g in GROUPS}:
            return
        if isinstance(self.focused, (MetricRow, Tile)):
            self._focused_key[self.group] = self.focused.id or getattr(self.focused, "key", "")
        self.group = key
        self.query_one("#groups", ContentSwitcher).current = f"group-{key}"
        if self.console.snapshot is not None:
            self.show_snapshot(self.console.snapshot)
        self.call_after_refresh(self._focus_group)

    def _focus_group(self) -> None:
        pane = self.query_one(f"#group-{self.group}")
        wanted = self._focused_key.get(self.group)
        candidates = [w for w in pane.query("MetricRow, Tile") if w.focusable]
        chosen = next((w for w in candidates if wanted in (w.id, getattr(w, "key", None))), None)
        if chosen is None and candidates:
            chosen = candidates[0]
        if chosen is not None:
            chosen.focus()

    def action_next_group(self) -> None:
        keys = [g.key for g in GROUPS]
        self.action_show_group(keys[(keys.index(self.group) + 1) % len(keys)])

    def action_previous_group(self) -> None:
        keys = [g.key for g in GROUPS]
        self.action_show_group(keys[(keys.index(self.group) - 1) % len(keys)])

    # ---- charts and descriptions -------------------------------------------------------------
    def action_open_chart(self) -> None:
        widget = self.focused
        key = getattr(widget, "spec_key", None)
        if key in SPECS:
            self.app.push_screen(MetricChartScreen(SPECS[key]))

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        widget = event.widget
        description = self.query_one("#tile-description", Static)
        if isinstance(widget, Tile):
            description.update(f"{widget.border_title}: {widget.description}")
        elif isinstance(widget, MetricRow):
            description.update(widget.description)
            group = GROUP_OF[widget.spec_key]
            if self._preview_key.get(group.key) != widget.key:
                self._preview_key[group.key] = widget.key
                if self.console.snapshot is not None:
                    self._show_preview(group, self.console.snapshot)

    def on_resize(self) -> None:
        if self.console.snapshot is not None:
            self.show_snapshot(self.console.snapshot)
