"""A one-line text of fixed size that repaints only when what it shows changes."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class Line(Static):
    """For lines updated on every poll (a bar, a header): an unchanged content costs a comparison,
    a changed one a repaint without a layout pass (the line's size does not depend on it)."""

    def __init__(self, content: Content | str = "", **kwargs) -> None:
        super().__init__(content, **kwargs)
        self._shown: Content | str = content

    def show(self, content: Content | str) -> None:
        if content != self._shown:
            self._shown = content
            self.update(content, layout=False)
