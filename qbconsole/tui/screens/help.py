"""The help screen: every key that works here, generated from the bindings, plus the sections."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.content import Content
from textual.widgets import Static

from qbconsole.tui.sections import SECTIONS


def key_rows(app_bindings: list[Binding], screen: Screen) -> list[tuple[str, str]]:
    """(key, description) for the app's bindings and the section's own, in declaration order."""
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for binding in [*app_bindings, *screen.BINDINGS]:
        if not isinstance(binding, Binding) or binding.key in seen:
            continue
        seen.add(binding.key)
        description = binding.tooltip or binding.description or binding.action
        rows.append((binding.key_display or binding.key, description))
    return rows


class HelpScreen(ModalScreen[None]):
    """Lists all keys; ``escape``, ``?`` or ``q`` closes it."""

    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="help.close"),
        Binding("question_mark", "dismiss", "Close", show=False, id="help.close_question"),
        Binding("q", "dismiss", "Close", show=False, id="help.close_q"),
    ]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self._rows = rows

    def compose(self) -> ComposeResult:
        width = max((len(key) for key, _ in self._rows), default=3) + 2
        lines = [Content.assemble((key.ljust(width), "bold $accent"), description)
                 for key, description in self._rows]
        with VerticalScroll(id="help-body") as body:
            body.border_title = "Keys"
            body.border_subtitle = "escape closes"
            yield Static(Content("\n").join(lines), id="help-keys")
            yield Static(
                "Sections: " + ", ".join(f"{s.key} {s.title}" for s in SECTIONS) + ". tab moves "
                "between the tiles and tables of a section; ctrl+p finds every section, theme and "
                "action by name.",
                id="help-hint",
                markup=False,
            )

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
