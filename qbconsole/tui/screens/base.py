"""What every section screen shares: section bar, status line, body, footer; snapshot updates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from qbconsole.tui.data import Snapshot
from qbconsole.tui.widgets.chrome import SectionBar, StatusLine

if TYPE_CHECKING:
    from qbconsole.tui.app import QBConsoleApp


class SectionScreen(Screen):
    """A section of the console. Subclasses set ``MODE`` and implement ``compose_body``/``show_body``."""

    MODE = ""

    @property
    def console(self) -> "QBConsoleApp":
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield SectionBar(self.MODE)
        yield StatusLine()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.console.snapshot_signal.subscribe(self, self.show_snapshot)
        if self.console.snapshot is not None:
            self.show_snapshot(self.console.snapshot)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """Called on the UI thread with each new snapshot (and the current one on mount)."""
        self.query_one(StatusLine).show(snapshot, self.console.own_holder)
        self.show_body(snapshot)

    def show_body(self, snapshot: Snapshot) -> None:
        """Update the section's own widgets; sections without data ignore snapshots."""
