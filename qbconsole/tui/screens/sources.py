"""Sources: every metric source (up/down, last scrape, duration, last error) and the agent's lease."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import DataTable, Static

from qbconsole.catalog import format_value
from qbconsole.store import LeaseInfo, SourceStatus
from qbconsole.tui.data import Snapshot
from qbconsole.tui.screens.base import SectionScreen
from qbconsole.tui.timefmt import ago, clock, until

MIN_ERROR_CHARS = 12
"""Errors are cut to the width left in the table (at least this); the highlighted source's
full error shows below the table."""

COLUMNS = (("source", "Source"), ("state", "State"), ("last", "Last scrape"),
           ("duration", "Duration"), ("error", "Last error"))


def lease_content(lease: LeaseInfo | None, now_ms: int, own_holder: str | None) -> Content:
    """One line about the agent: who holds the lease, heartbeat age, when it expires."""
    if lease is None:
        return Content.assemble(
            ("○ No agent holds the lease", "bold $warning"),
            ": nothing collects into this store. Run `qbconsole agent`, or open the console "
            "without one running (it then collects itself).",
        )
    if own_holder is None:
        mine = ""
    elif lease.holder == own_holder:
        mine = " (this console)"
    else:
        mine = " (this console waits on standby)"
    if lease.expires < now_ms:
        return Content.assemble(
            ("✖ Agent gone", "bold $error"),
            f": {lease.holder} last renewed its lease {ago(lease.heartbeat, now_ms)}; "
            f"it expired {ago(lease.expires, now_ms)}. A waiting agent or console takes over.",
        )
    return Content.assemble(
        ("● Agent ", "bold $success"),
        (lease.holder, "bold"),
        (mine, "$text-muted"),
        f" · since {clock(lease.acquired)} · heartbeat {ago(lease.heartbeat, now_ms)}"
        f" · expires {until(lease.expires, now_ms)}",
    )


def state_text(source: SourceStatus, colours: dict[str, str]) -> Text:
    if source.up:
        return Text("✔ UP", style=colours.get("success", ""))
    return Text("✖ DOWN", style=f"bold {colours.get('error', '')}".strip())


def short_error(error: str | None, width: int) -> str:
    if not error:
        return "—"
    line = " ".join(error.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def source_rows(sources: tuple[SourceStatus, ...], now_ms: int, colours: dict[str, str],
                table_width: int) -> list[tuple[Text, ...]]:
    """Table rows; the error column gets what the other columns leave of ``table_width``."""
    rows = []
    for source in sources:
        last = f"{ago(source.last_ts, now_ms)} ({clock(source.last_ts)})" if source.last_ts else "never"
        duration = format_value(source.duration_s, "seconds") if source.duration_s is not None else "—"
        rows.append([Text(source.name, style="bold"), state_text(source, colours), Text(last),
                     Text(duration, justify="right")])
    used = sum(max([len(label), *(row[i].cell_len for row in rows)]) + 2
               for i, (_, label) in enumerate(COLUMNS[:-1]))
    width = max(MIN_ERROR_CHARS, table_width - used - 2 - 1)  # the error column's padding, a scrollbar
    return [(*row, Text(short_error(source.last_error, width))) for row, source in zip(rows, sources)]


class SourcesScreen(SectionScreen):
    """The sources table and the agent line."""

    MODE = "sources"
    _shown: tuple | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(lease_content(None, 0, None), id="agent-line")
        table: DataTable[Text] = DataTable(id="sources-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="source-detail", markup=False)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._reshow())

    def on_resize(self) -> None:
        self._reshow()

    def _reshow(self) -> None:
        if self.console.snapshot is not None:
            self.show_body(self.console.snapshot, force=True)

    def show_body(self, snapshot: Snapshot, *, force: bool = False) -> None:
        shown = (snapshot.now_ms, snapshot.lease, snapshot.sources, self.size.width)
        if shown == self._shown and not force:
            return  # nothing on this screen would change
        self._shown = shown
        self.query_one("#agent-line", Static).update(
            lease_content(snapshot.lease, snapshot.now_ms, self.console.own_holder)
        )
        table = self.query_one("#sources-table", DataTable)
        colours = self.app.theme_variables
        names = [s.name for s in snapshot.sources]
        rows = source_rows(snapshot.sources, snapshot.now_ms, colours, table.size.width or self.size.width)
        if [key.value for key in table.rows] == names:
            for name, row in zip(names, rows):
                for (column, _), cell in zip(COLUMNS, row):
                    table.update_cell(name, column, cell, update_width=True)
        else:
            current = self._highlighted_name(table)
            table.clear()
            for name, row in zip(names, rows):
                table.add_row(*row, key=name)
            if current in names:
                table.move_cursor(row=names.index(current))
        self._show_detail(snapshot)

    @staticmethod
    def _highlighted_name(table: DataTable) -> str | None:
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        if self.console.snapshot is not None:
            self._show_detail(self.console.snapshot)

    def _show_detail(self, snapshot: Snapshot) -> None:
        detail = self.query_one("#source-detail", Static)
        if not snapshot.sources:
            detail.update("No source has reported to this store yet. Sources are configured in "
                          "rules.yaml under sources:; an agent (or this console, when no agent "
                          "runs) collects them.")
            return
        name = self._highlighted_name(self.query_one("#sources-table", DataTable))
        source = next((s for s in snapshot.sources if s.name == name), None)
        if source is None:
            detail.update("")
        elif source.last_error:
            detail.update(f"{source.name}: last error: {source.last_error}")
        else:
            detail.update(f"{source.name}: no error at the last scrape.")
