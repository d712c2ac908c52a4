"""The export dialog: a format (Markdown, HTML, JSON) and a path; the screen writes the file.

The path starts as ``./qbconsole-report-<from>-<to>.<ext>`` and follows the
format while it has not been edited. Enter exports, escape cancels.
"""

from __future__ import annotations

from typing import NamedTuple

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from qbconsole.tui.reports_data import FORMATS, ReportRange, default_export_path


class ExportRequest(NamedTuple):
    format: str
    path: str


class ExportModal(ModalScreen[ExportRequest | None]):
    """Where to write the report shown, and in which format."""

    DEFAULT_CSS = """
    ExportModal { align: center middle; }
    #export-formats { width: 1fr; height: auto; margin: 0 0 1 0; }
    #export-error { display: none; height: auto; color: $error; text-style: bold; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="export.cancel"),
    ]

    def __init__(self, report_range: ReportRange, fmt: str = "md") -> None:
        super().__init__()
        self.range = report_range
        self.format = fmt

    def default_path(self, fmt: str) -> str:
        return default_export_path(self.range.start_ms, self.range.end_ms, fmt)

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog", classes="dialog") as dialog:
            dialog.border_title = "Export report"
            dialog.border_subtitle = "enter exports · escape cancels"
            yield Static(f"The report shown: {self.range.label}", classes="dialog-note", markup=False)
            yield Label("Format")
            with RadioSet(id="export-formats"):
                for key, (name, _render) in FORMATS.items():
                    yield RadioButton(f"{name} · .{key}", value=key == self.format, name=key)
            yield Label("File (relative to the directory qbconsole was started in)")
            yield Input(self.default_path(self.format), id="export-path")
            yield Static("", id="export-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="export-confirm", compact=True)
                yield Button("Cancel", id="export-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    @on(RadioSet.Changed, "#export-formats")
    def _format_changed(self, event: RadioSet.Changed) -> None:
        fmt = event.pressed.name or "md"
        box = self.query_one("#export-path", Input)
        if box.value.strip() == self.default_path(self.format):  # not edited: follow the format
            box.value = self.default_path(fmt)
        self.format = fmt

    @on(Input.Submitted, "#export-path")
    @on(Button.Pressed, "#export-confirm")
    def confirm(self) -> None:
        path = self.query_one("#export-path", Input).value.strip()
        if not path:
            error = self.query_one("#export-error", Static)
            error.update("✖ give a file name")
            error.display = True
            return
        self.dismiss(ExportRequest(self.format, path))

    @on(Button.Pressed, "#export-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
