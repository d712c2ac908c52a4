"""Reports: a performance report over a range, in tabs, with charts; ``e`` exports it.

The range is a preset (last 1h / 6h / 24h / 7d: the buttons, or ``p`` to cycle)
or From/To typed after ``c``. The report is built by ``reports_data.build``
(``qbconsole.report.build_report`` over the store, or over Prometheus's samples when
it is the datasource) in a thread worker (a 7-day report can take
a second or two), only when the range changes or on ``r``, never on a poll;
while it builds the last report stays shown, marked as such. The tabs hold
the report's own blocks (the same the Markdown and HTML exports contain).
"""

from __future__ import annotations

import threading
import time
from typing import Mapping

from rich import box
from rich.table import Table as RichTable
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Input, Static, TabbedContent, TabPane

from qbconsole.report import Report
from qbconsole.report.layout import Block, Chart, Items, Para, Table
from qbconsole.tui.modals.export_report import ExportModal, ExportRequest
from qbconsole.tui.reports_data import build as build_from_source
from qbconsole.tui.reports_data import (
    DEFAULT_PRESET, PRESETS, TABS, ReportRange, custom_range, next_preset, preset_range, report_tabs,
    write_export,
)
from qbconsole.tui.screens.base import SectionScreen
from qbconsole.tui.timefmt import span
from qbconsole.tui.widgets.range_chart import RangeChart

DIM_HEADERS = frozenset({"How it was computed"})
STALE_AFTER_MS = 60_000
"""From this age the bar says how old the report shown is (it is rebuilt only on r or a new range)."""
WIDE_AT = 120
"""From this width tables also show how each figure was computed (``m`` toggles it anywhere)."""


def para_content(p: Para) -> Content:
    lead = (f"{p.strong} ", "bold") if p.strong else ""
    return Content.assemble(lead, (p.text, "$text-muted" if p.note else ""))


def rich_table(t: Table, colours: Mapping[str, str], *, methods: bool = True) -> RichTable:
    """A report table for the terminal: words carry met/missed (✔/✘), colour only helps.
    ``methods=False`` leaves out the "How it was computed" column (``m`` shows it)."""
    keep = [i for i, h in enumerate(t.headers) if methods or h not in DIM_HEADERS]
    figures = t.headers[:2] == ["Figure", "Value"]
    table = RichTable(box=box.SIMPLE_HEAD, expand=figures and len(keep) > 2, show_edge=False, pad_edge=False,
                      title=t.title or None, title_justify="left", title_style="bold")
    for i in keep:
        header = t.headers[i]
        ratio = (3, 2, 5)[i] if figures and len(keep) > 2 else None
        table.add_column(header, style="dim" if header in DIM_HEADERS else "", overflow="fold", ratio=ratio)
    for row in t.rows:
        table.add_row(*(Text(row[i], style=_cell_style(row[i], colours)) for i in keep))
    return table


def _cell_style(text: str, colours: Mapping[str, str]) -> str:
    if text.startswith(("✔", "▲")):
        return colours.get("success", "")
    if text.startswith("✘"):
        return f"bold {colours.get('error', '')}"
    if text.startswith("▼"):
        return colours.get("warning", "")
    return ""


def items_content(items: Items) -> Content:
    lines = []
    for n, entry in enumerate(items.items, 1):
        lines.append(Content.assemble(f"{n}. ", para_content(entry[0])))
        lines += [Content.assemble("   ", para_content(p)) for p in entry[1:]]
    return Content("\n").join(lines)


class ReportBuilt(Message):
    """Posted by the build worker: the report (or the error), for which build and range."""

    def __init__(self, serial: int, report_range: ReportRange, report: Report | None, seconds: float,
                 thread: str, error: str | None = None) -> None:
        super().__init__()
        self.serial, self.range, self.report = serial, report_range, report
        self.seconds, self.thread, self.error = seconds, thread, error


class ExportDone(Message):
    def __init__(self, text: str, failed: bool = False) -> None:
        super().__init__()
        self.text, self.failed = text, failed


class ReportsScreen(SectionScreen):
    """The report of the chosen range in tabs; presets, custom range, refresh and export."""

    MODE = "reports"
    AUTO_FOCUS = "#report-tabs Tabs"
    BINDINGS = [
        Binding("p", "next_preset", "Range", tooltip="Next preset range: last 1h, 6h, 24h, 7d", id="reports.range"),
        Binding("c", "custom", "Custom", tooltip="Type a From/To range", id="reports.custom"),
        Binding("r", "rebuild", "Refresh", tooltip="Build the report again up to now (presets) or as typed",
                id="reports.refresh"),
        Binding("e", "export", "Export", tooltip="Write the report shown as Markdown, HTML or JSON",
                id="reports.export"),
        Binding("m", "methods", "Methods", tooltip="Show or hide how each figure was computed",
                id="reports.methods"),
        Binding("escape", "hide_custom", "Close", show=False, id="reports.close_custom"),
        *(Binding(key, f"scroll_report('{how}')", "Scroll", show=False, key_display=shown,
                  tooltip=f"Scroll the report {words}")
          for key, how, shown, words in (("down", "down", "↓", "down"), ("up", "up", "↑", "up"),
                                         ("pagedown", "page_down", "PgDn", "down a page"),
                                         ("pageup", "page_up", "PgUp", "up a page"))),
    ]

    DEFAULT_CSS = """
    #reports-bar { height: 1; margin: 1 1 0 1; }
    #reports-bar Button { width: auto; min-width: 0; margin-right: 1; }
    #reports-bar Button.-current { text-style: bold reverse; }
    #reports-state { width: 1fr; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    #reports-custom { height: auto; margin: 1 1 0 1; }
    #reports-custom Input { width: 1fr; }
    #reports-custom Button { width: auto; min-width: 0; }
    #reports-error { display: none; height: auto; margin: 0 2; color: $error; text-style: bold; }
    #reports-range { height: 1; margin: 0 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #report-tabs { height: 1fr; margin: 0 1; }
    #report-tabs TabPane { padding: 0; }
    .report-scroll { height: 1fr; padding: 0 1; }
    .report-block { height: auto; margin: 1 0 0 0; }
    .report-chart { height: 12; margin: 1 0 0 0; }
    .report-chart-method { height: auto; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.range: ReportRange | None = None
        self.report: Report | None = None
        self.building: ReportRange | None = None
        self.built_in_s: float | None = None
        self.built_on_thread: str | None = None
        self.exported: str | None = None
        self.build_count = 0
        self._serial = 0
        self._preset: str | None = DEFAULT_PRESET
        self.show_methods: bool | None = None
        """Whether tables show "How it was computed"; None: only on wide terminals."""

    # ---- layout ----------------------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        with Horizontal(id="reports-bar"):
            for name, _length in PRESETS:
                yield Button(name, id=f"preset-{name}", compact=True, tooltip=f"the last {name}")
            yield Button("Custom…", id="reports-custom-button", compact=True, tooltip="c")
            yield Button("Export…", id="reports-export-button", compact=True, tooltip="e")
            yield Static("", id="reports-state", markup=False)
        with Horizontal(id="reports-custom"):
            yield Input(placeholder="From: 2026-01-01T09:00 (UTC) or now-6h", id="reports-from")
            yield Input(placeholder="To: 2026-01-01T12:00 or now", id="reports-to")
            yield Button("Build", id="reports-build", compact=True)
        yield Static("", id="reports-error", markup=False)
        yield Static("", id="reports-range", markup=False)
        with TabbedContent(id="report-tabs"):
            for tab, label, _headings in TABS:
                with TabPane(label, id=f"tab-{tab}"):
                    yield VerticalScroll(id=f"report-{tab}", classes="report-scroll")

    def on_mount(self) -> None:
        self.query_one("#reports-custom").display = False
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._redraw_tables())
        self.build(preset_range(DEFAULT_PRESET, self._now_ms()))

    def _now_ms(self) -> int:
        return int(self.console.clock() * 1000)

    # ---- building ------------------------------------------------------------------------------
    def build(self, report_range: ReportRange) -> None:
        """Build the report for ``report_range`` in a thread worker (the one shown stays until then)."""
        self._serial += 1
        self.building = report_range
        self._preset = report_range.preset
        self._show_state()
        self._build(self._serial, report_range)

    @work(thread=True, exclusive=True, group="report-build", name="build report", exit_on_error=False)
    def _build(self, serial: int, report_range: ReportRange) -> None:
        started = time.perf_counter()
        config = getattr(self.console.agent, "config", None)
        thread = threading.current_thread().name
        try:
            report = build_from_source(self.console, config, report_range, self._now_ms())
        except Exception as err:  # shown in the bar; the last report stays
            self.post_message(ReportBuilt(serial, report_range, None, time.perf_counter() - started, thread,
                                          f"{type(err).__name__}: {err}"))
            return
        self.post_message(ReportBuilt(serial, report_range, report, time.perf_counter() - started, thread))

    def on_report_built(self, message: ReportBuilt) -> None:
        if message.serial != self._serial:
            return  # an older range's build finished after a newer one was asked for
        self.building = None
        if message.report is None:
            self.notify(message.error or "unknown error", title="The report could not be built", severity="error",
                        timeout=10)
            self._show_state(error=message.error)
            return
        self.range, self.report = message.range, message.report
        self.built_in_s, self.built_on_thread = message.seconds, message.thread
        self.build_count += 1
        self._show_report(message.report)
        self._show_state()

    # ---- showing -------------------------------------------------------------------------------
    def _show_state(self, error: str | None = None) -> None:
        for name, _length in PRESETS:
            self.query_one(f"#preset-{name}", Button).set_class(name == self._preset, "-current")
        self.query_one("#reports-custom-button", Button).set_class(self._preset is None, "-current")
        if self.building is not None:
            text = f"building {self.building.preset or 'the custom range'}…"
        elif error:
            text = f"✖ not built: {error}"
        elif self.report is not None:
            made_ms = int(self.report.range["generated_at"].value)
            age = self._now_ms() - made_ms
            text = f"built {time.strftime('%H:%M:%S', time.gmtime(made_ms / 1000))} UTC"
            text += f" ({span(age)} ago) · r rebuilds up to now" if age >= STALE_AFTER_MS else " · r refreshes"
        else:
            text = ""
        if self.exported and self.building is None:
            text += f" · exported {self.exported}"
        self.query_one("#reports-state", Static).update(text)
        shown = self.range.label if self.range else "no report yet"
        if self.building is not None and self.report is not None:
            shown += f"  (shown until the {self.building.preset or 'custom'} report is built)"
        self.query_one("#reports-range", Static).update(Content.styled(shown, "bold"))
        self.refresh_bindings()

    def _show_report(self, report: Report) -> None:
        tabs = report_tabs(report)
        for tab, _label, _headings in TABS:
            scroll = self.query_one(f"#report-{tab}", VerticalScroll)
            scroll.remove_children()
            notes = [b for b in tabs.window if isinstance(b, Para) and b.note] if tab == "summary" else []
            widgets = [self._widget(b, report) for b in notes + tabs.tabs[tab]]
            scroll.mount_all([w for group in widgets for w in group])
            scroll.scroll_home(animate=False)

    def _widget(self, block: Block, report: Report) -> list[Widget]:
        if isinstance(block, Para):
            return [Static(para_content(block), classes="report-block")]
        if isinstance(block, Table):
            static = Static(rich_table(block, self.app.theme_variables, methods=self.methods_shown),
                            classes="report-block report-table")
            static.block = block  # type: ignore[attr-defined]  (redrawn on a theme change)
            return [static]
        if isinstance(block, Items):
            return [Static(items_content(block), classes="report-block")]
        if isinstance(block, Chart):
            return [RangeChart(block.chart, report.start_ms, report.end_ms, classes="report-chart"),
                    Static(block.chart["method"], classes="report-chart-method", markup=False)]
        return []

    @property
    def methods_shown(self) -> bool:
        return self.show_methods if self.show_methods is not None else self.size.width >= WIDE_AT

    def _redraw_tables(self) -> None:
        for static in self.query(".report-table"):
            static.update(rich_table(static.block, self.app.theme_variables,  # type: ignore[attr-defined]
                                     methods=self.methods_shown))

    def show_body(self, snapshot) -> None:
        """Each poll: only the age of the report shown moves (the report is not rebuilt)."""
        if self.report is not None and self.building is None:
            self._show_state()

    def on_resize(self) -> None:
        if self.show_methods is None:
            self._redraw_tables()

    def action_scroll_report(self, how: str) -> None:
        """Scroll the tab shown, wherever the focus is (the tab strip has it by default)."""
        pane = self.query_one(TabbedContent).active
        scroll = self.query_one(f"#report-{pane.removeprefix('tab-')}", VerticalScroll)
        {"down": scroll.scroll_down, "up": scroll.scroll_up, "page_down": scroll.scroll_page_down,
         "page_up": scroll.scroll_page_up}[how](animate=False)

    def action_methods(self) -> None:
        self.show_methods = not self.methods_shown
        self._redraw_tables()
        self.notify("How each figure was computed: " + ("shown" if self.show_methods else "hidden (m shows it)"),
                    timeout=3)

    # ---- actions --------------------------------------------------------------------------------
    def action_next_preset(self) -> None:
        self.build(preset_range(next_preset(self._preset), self._now_ms()))

    def action_rebuild(self) -> None:
        current = self.building or self.range
        if current is None:
            self.build(preset_range(DEFAULT_PRESET, self._now_ms()))
        elif current.preset:
            self.build(preset_range(current.preset, self._now_ms()))
        else:
            self.build(current)

    def action_custom(self) -> None:
        row = self.query_one("#reports-custom")
        row.display = True
        start = self.query_one("#reports-from", Input)
        if not start.value and self.range is not None:
            start.value = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(self.range.start_ms / 1000))
            self.query_one("#reports-to", Input).value = "now"
        start.focus()
        self.refresh_bindings()

    def action_hide_custom(self) -> None:
        self.query_one("#reports-custom").display = False
        self.query_one("#reports-error").display = False
        self.query_one("#report-tabs Tabs").focus()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "export":
            return True if self.report is not None else None
        if action == "hide_custom":
            return bool(self.query_one("#reports-custom").display)
        return True

    @on(Input.Submitted, "#reports-custom Input")
    @on(Button.Pressed, "#reports-build")
    def _custom_submitted(self) -> None:
        error = self.query_one("#reports-error", Static)
        try:
            report_range = custom_range(self.query_one("#reports-from", Input).value,
                                        self.query_one("#reports-to", Input).value, self._now_ms())
        except ValueError as err:
            error.update(f"✖ {err}")
            error.display = True
            return
        error.display = False
        self.query_one("#reports-custom").display = False
        self.query_one("#report-tabs Tabs").focus()
        self.build(report_range)

    @on(Button.Pressed, "#reports-bar Button")
    def _bar_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button.startswith("preset-"):
            self.build(preset_range(button.removeprefix("preset-"), self._now_ms()))
        elif button == "reports-custom-button":
            self.action_custom()
        elif button == "reports-export-button":
            self.action_export()

    def action_export(self) -> None:
        if self.report is None or self.range is None:
            return
        self.app.push_screen(ExportModal(self.range), self._export)

    def _export(self, request: ExportRequest | None) -> None:
        if request is not None and self.report is not None:
            self._write(self.report, request)

    @work(thread=True, group="report-export", name="export report", exit_on_error=False)
    def _write(self, report: Report, request: ExportRequest) -> None:
        try:
            path = write_export(report, request.format, request.path)
        except (OSError, ValueError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            self.post_message(ExportDone(f"Cannot write {request.path}: {reason}", failed=True))
            return
        self.post_message(ExportDone(str(path)))

    def on_export_done(self, message: ExportDone) -> None:
        if message.failed:
            self.notify(message.text, title="Not exported", severity="error", timeout=10)
            return
        self.exported = message.text
        self.notify(f"Report written to {message.text}", title="Exported", timeout=8)
        self._show_state()
