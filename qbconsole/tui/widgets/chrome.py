"""The two lines at the top of every section: the section bar and the status line."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from qbconsole.tui.data import Snapshot
from qbconsole.tui.sections import SECTIONS
from qbconsole.tui.timefmt import clock

SEPARATOR = ("  │  ", "$text-muted")


class SectionBar(Static):
    """``1 Overview  2 Alerts ...`` with the current section highlighted (reverse video, not only colour)."""

    def __init__(self, current: str) -> None:
        super().__init__(classes="section-bar")
        parts: list[tuple[str, str] | str] = []
        for section in SECTIONS:
            text = f" {section.key} {section.title} "
            if section.mode == current:
                parts.append((text, "bold reverse"))
            else:
                parts.append((f" {section.key}", "bold $accent"))
                parts.append((f" {section.title} ", ""))
        self.update(Content.assemble(*parts))


def status_content(snapshot: Snapshot | None, own_holder: str | None = None) -> Content:
    """The status line: store errors first, then sources down, the lease holder and the refresh time.

    Later issues add firing alerts by severity and open proposals here.
    """
    if snapshot is None:
        return Content.assemble(("… reading the store", "$text-muted"))
    parts: list[tuple[str, str] | str] = []
    if snapshot.error:
        parts.append((f"✖ store read failed at {clock(snapshot.now_ms)}: ", "bold $error"))
        parts.append((snapshot.error, "$error"))
        parts.append(SEPARATOR)
        if snapshot.read_ms is None:
            parts.append(("no data read yet", "$text-muted"))
        else:
            parts.append((f"showing data from {clock(snapshot.read_ms)}", "$text-muted"))
        return Content.assemble(*parts)
    down = snapshot.sources_down
    if not snapshot.sources:
        parts.append(("○ no sources reported", "$warning"))
    elif down:
        parts.append((f"✖ {len(down)} of {len(snapshot.sources)} sources DOWN", "bold $error"))
    else:
        count = len(snapshot.sources)
        parts.append((f"✔ {count} source{'s' if count != 1 else ''} up", "$success"))
    parts.append(SEPARATOR)
    lease = snapshot.lease
    if lease is None or lease.expires < snapshot.now_ms:
        parts.append(("○ no agent", "bold $warning"))
    else:
        parts.append(("● agent ", "$success"))
        parts.append(lease.holder)
        if own_holder is not None and lease.holder == own_holder:
            parts.append((" (this console)", "$text-muted"))
    parts.append(SEPARATOR)
    parts.append((f"refreshed {clock(snapshot.read_ms)}", "$text-muted"))
    return Content.assemble(*parts)


class StatusLine(Static):
    """One line of state every section shares; updated from each snapshot."""

    def __init__(self) -> None:
        self._content = status_content(None)
        super().__init__(self._content, classes="status-line")

    def show(self, snapshot: Snapshot, own_holder: str | None = None) -> None:
        content = status_content(snapshot, own_holder)
        if content != self._content:
            self._content = content
            self.update(content)
