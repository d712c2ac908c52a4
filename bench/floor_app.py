"""The floor under any Textual console: the smallest app that does what a monitor's screen does.

    python bench/floor_app.py

A header, twelve one-line figures rewritten every second and a footer, nothing
collected, stored or evaluated. ``bench/overhead.py`` runs it beside the console
and glances, so the figures show how much of the console's CPU the stack costs
before any of its own work.
"""

from __future__ import annotations

import time

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static

FIGURES = 12


class FloorApp(App):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        self.figures = [Static(f"figure {i}") for i in range(FIGURES)]
        yield from self.figures
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        clock = time.strftime("%H:%M:%S")
        for i, figure in enumerate(self.figures):
            figure.update(f"figure {i}: {clock}  {time.monotonic() % 100:6.2f}")


if __name__ == "__main__":
    FloorApp().run()
