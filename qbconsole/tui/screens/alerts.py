"""Alerts: the live feed (severity, name, labels, value, since, state, acknowledged by).

``a`` acknowledges, ``s`` silences, ``enter`` opens the detail, ``/`` filters by
text and ``f`` cycles the state filter. The feed comes from each snapshot in
the store's order; writes go through the app's thread workers.
"""

from __future__ import annotations

from typing import Mapping

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Input, Static

from qbconsole.store.alerts import AlertRow
from qbconsole.tui.alertfmt import (
    STATE_FILTERS, ack_text, compact_labels, filtered, severity_mark, since_text, state_mark, value_text,
)
from qbconsole.tui.data import Snapshot
from qbconsole.tui.screens.base import SectionScreen

EMPTY = ("No alerts. Alert rules come from rules.yaml (alert_rules or groups); "
         "`qbconsole rules check` validates them.")
WIDE_AT = 96
"""From this screen width the feed also shows labels and value."""
NARROW_COLUMNS = (("severity", "Severity"), ("name", "Alert"), ("state", "State"), ("since", "Since"),
                  ("ack", "Acknowledged"))
WIDE_COLUMNS = (("severity", "Severity"), ("name", "Alert"), ("labels", "Labels"), ("value", "Value"),
                ("since", "Since"), ("state", "State"), ("ack", "Acknowledged"))
MIN_FLEX = 10
"""The column that takes the leftover width (labels when wide, the name when narrow) gets at least this."""


def fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def alert_cells(alert: AlertRow, now_ms: int, silenced: bool, expr: str | None,
                colours: Mapping[str, str]) -> dict[str, Text]:
    """One feed row as styled cells keyed by column; words and symbols carry the meaning, colour helps."""
    sev, state = severity_mark(alert.severity), state_mark(alert.state)
    resolved = alert.state == "resolved"
    sev_style = "dim" if resolved else f"bold {colours.get(sev.colour, '')}".strip()
    state_style = colours.get(state.colour, "") + (" bold" if alert.state == "firing" else "")
    acked = alert.acknowledged(now_ms)
    return {
        "severity": Text(sev.text, style=sev_style),
        "name": Text(alert.rule, style="dim" if resolved else "bold"),
        "labels": Text(compact_labels(alert.labels), style="dim"),
        "value": Text(value_text(alert.value, expr), justify="right"),
        "since": Text(since_text(alert, now_ms), justify="right"),
        "state": Text(state.text, style=state_style.strip()),
        "ack": Text(ack_text(alert, now_ms, silenced), style=colours.get("success", "") if acked else "dim"),
    }


def feed_rows(alerts: list[AlertRow], snapshot: Snapshot, exprs: Mapping[str, str],
              colours: Mapping[str, str], columns: tuple[tuple[str, str], ...],
              table_width: int) -> list[tuple[Text, ...]]:
    """Rows for the table; the flexible column is cut to what the others leave of ``table_width``."""
    cells = [alert_cells(a, snapshot.now_ms, snapshot.silenced(a), exprs.get(a.rule), colours) for a in alerts]
    flex = "labels" if any(key == "labels" for key, _ in columns) else "name"
    used = sum(max([len(label), *(c[key].cell_len for c in cells)]) + 2 for key, label in columns if key != flex)
    room = max(MIN_FLEX, table_width - used - 2 - 1)  # the flexible column's padding, a scrollbar
    for c in cells:
        c[flex] = Text(fit(c[flex].plain, room), style=c[flex].style)
    return [tuple(c[key] for key, _ in columns) for c in cells]


class AlertTable(DataTable):
    """The feed; ``enter`` opens the highlighted alert's detail (shown in the footer)."""

    BINDINGS = [Binding("enter", "select_cursor", "Details", key_display="⏎", id="alerts.detail",
                        tooltip="Annotations, history and notifications of the highlighted alert")]


class AlertsScreen(SectionScreen):
    """The alert feed with its filters and the acknowledge/silence/detail actions."""

    MODE = "alerts"
    AUTO_FOCUS = "#alerts-table"
    BINDINGS = [
        Binding("a", "ack", "Acknowledge", tooltip="Acknowledge the highlighted alert (stops escalation)",
                id="alerts.ack"),
        Binding("s", "silence", "Silence", tooltip="Silence notifications for alerts like the highlighted one",
                id="alerts.silence"),
        Binding("slash", "filter", "Filter", key_display="/", tooltip="Filter the feed by name or label text",
                id="alerts.filter"),
        Binding("f", "state_filter", "State", tooltip="Cycle the state filter: all, firing, pending, resolved",
                id="alerts.state_filter"),
        Binding("enter", "detail", "Details", show=False, tooltip="Annotations, history and notifications",
                id="alerts.details"),
        Binding("escape", "clear_filter", "Clear filter", show=False, tooltip="Clear the text and state filters",
                id="alerts.clear_filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.state_filter = "all"
        self._shown: tuple | None = None
        self._columns: tuple[tuple[str, str], ...] = ()

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="alerts-bar"):
            yield Static("", id="alerts-summary", markup=False)
            yield Button("Acknowledge", id="alerts-ack-button", compact=True, tooltip="a")
            yield Button("Silence", id="alerts-silence-button", compact=True, tooltip="s")
            yield Button("Details", id="alerts-detail-button", compact=True, tooltip="enter")
        yield Input(placeholder="filter: words in the alert's name or labels; enter keeps it, escape clears",
                    id="alerts-filter")
        yield AlertTable(id="alerts-table", cursor_type="row", zebra_stripes=True)
        yield Static(EMPTY, id="alerts-empty", markup=False)

    def on_mount(self) -> None:
        self.query_one("#alerts-filter", Input).display = False
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._reshow())

    def on_resize(self) -> None:
        self._reshow()

    def _reshow(self) -> None:
        if self.console.snapshot is not None:
            self.show_body(self.console.snapshot, force=True)

    # ---- showing the feed ---------------------------------------------------------------------
    def visible_alerts(self, snapshot: Snapshot) -> list[AlertRow]:
        return filtered(snapshot.alerts, self.filter_text, self.state_filter)

    def show_body(self, snapshot: Snapshot, *, force: bool = False) -> None:
        exprs = self.console.alert_expressions()
        shown = (snapshot.now_ms, snapshot.alerts, snapshot.silences, self.size.width, self.filter_text,
                 self.state_filter, tuple(sorted(exprs.items())))
        if shown == self._shown and not force:
            return
        self._shown = shown
        table = self.query_one(AlertTable)
        alerts = self.visible_alerts(snapshot)
        columns = WIDE_COLUMNS if self.size.width >= WIDE_AT else NARROW_COLUMNS
        current = self.selected_id()
        if columns != self._columns:
            table.clear(columns=True)
            for key, label in columns:
                table.add_column(label, key=key)
            self._columns = columns
        rows = feed_rows(alerts, snapshot, exprs, self.app.theme_variables, columns,
                         table.size.width or self.size.width)
        keys = [str(a.id) for a in alerts]
        if [k.value for k in table.rows] == keys:
            for key, row in zip(keys, rows):
                for (column, _), cell in zip(columns, row):
                    table.update_cell(key, column, cell, update_width=True)
        else:
            table.clear()
            for key, row in zip(keys, rows):
                table.add_row(*row, key=key)
            if current is not None and str(current) in keys:
                table.move_cursor(row=keys.index(str(current)))
        self._show_summary(snapshot, alerts)

    def _show_summary(self, snapshot: Snapshot, alerts: list[AlertRow]) -> None:
        counts = {s: sum(a.state == s for a in snapshot.alerts) for s in STATE_FILTERS[1:]}
        total = len(snapshot.alerts)
        parts = [f"{counts['firing']} firing · {counts['pending']} pending · {counts['resolved']} resolved (15m)"]
        if self.state_filter != "all" or self.filter_text:  # first: it explains rows that are missing
            what = [self.state_filter] if self.state_filter != "all" else []
            what += [f'"{self.filter_text}"'] if self.filter_text else []
            parts.insert(0, f"showing {len(alerts)} of {total}: {' '.join(what)}")
        self.query_one("#alerts-summary", Static).update(" │ ".join(parts))
        empty = self.query_one("#alerts-empty", Static)
        table = self.query_one(AlertTable)
        if not snapshot.alerts:
            empty.update(EMPTY)
        elif not alerts:
            empty.update("No alert matches the filter. / edits the text, f cycles the state, escape clears both.")
        empty.display = not alerts
        table.display = bool(alerts)
        self.refresh_bindings()

    # ---- the highlighted alert ------------------------------------------------------------------
    def selected_id(self) -> int | None:
        table = self.query_one(AlertTable)
        if not table.row_count or not table.display:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def selected_alert(self) -> AlertRow | None:
        snapshot, alert_id = self.console.snapshot, self.selected_id()
        if snapshot is None or alert_id is None:
            return None
        return next((a for a in snapshot.alerts if a.id == alert_id), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("ack", "silence"):
            return True if self.selected_alert() is not None else None  # None: shown, but dimmed
        if action == "clear_filter":
            return bool(self.filter_text or self.state_filter != "all" or self.query_one("#alerts-filter").display)
        return True

    # ---- actions ---------------------------------------------------------------------------------
    def action_ack(self) -> None:
        alert = self.selected_alert()
        if alert is not None:
            self.console.ask_acknowledge(alert)

    def action_silence(self) -> None:
        alert = self.selected_alert()
        if alert is not None:
            snapshot = self.console.snapshot
            self.console.ask_silence(alert, snapshot.alerts if snapshot else ())

    def action_detail(self) -> None:
        alert_id = self.selected_id()
        if alert_id is not None:
            self.console.open_alert_detail(alert_id)

    def action_filter(self) -> None:
        box = self.query_one("#alerts-filter", Input)
        box.display = True
        box.focus()
        self.refresh_bindings()

    def action_state_filter(self) -> None:
        self.state_filter = STATE_FILTERS[(STATE_FILTERS.index(self.state_filter) + 1) % len(STATE_FILTERS)]
        self._reshow()  # the summary line says which states are shown

    def action_clear_filter(self) -> None:
        box = self.query_one("#alerts-filter", Input)
        self.filter_text, self.state_filter = "", "all"
        box.value = ""
        box.display = False
        self.query_one(AlertTable).focus()
        self._reshow()

    @on(Input.Changed, "#alerts-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._reshow()

    @on(Input.Submitted, "#alerts-filter")
    def _filter_submitted(self) -> None:
        box = self.query_one("#alerts-filter", Input)
        box.display = bool(self.filter_text)
        self.query_one(AlertTable).focus()

    @on(DataTable.RowSelected, "#alerts-table")
    def _row_selected(self) -> None:
        self.action_detail()

    @on(DataTable.RowHighlighted, "#alerts-table")
    def _row_highlighted(self) -> None:
        self.refresh_bindings()

    @on(Button.Pressed, "#alerts-ack-button")
    def _ack_pressed(self) -> None:
        self.action_ack()

    @on(Button.Pressed, "#alerts-silence-button")
    def _silence_pressed(self) -> None:
        self.action_silence()

    @on(Button.Pressed, "#alerts-detail-button")
    def _detail_pressed(self) -> None:
        self.action_detail()
