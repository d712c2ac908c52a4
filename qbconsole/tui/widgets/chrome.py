"""The two lines at the top of every section: the section bar and the status line."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from qbconsole.tui.alertfmt import firing_counts, severity_mark
from qbconsole.tui.data import Snapshot
from qbconsole.tui.sections import SECTIONS
from qbconsole.tui.timefmt import clock, span

SEPARATOR = ("  │  ", "$text-muted")
NARROW_SEPARATOR = (" │ ", "$text-muted")
BACKLOG_AGE_SHOWN_MS = 60_000
"""The oldest pending notification's age is shown once it is older than this (delivery is stuck)."""


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


Parts = list[tuple[str, str] | str]


def firing_parts(snapshot: Snapshot) -> Parts:
    """Firing alerts by severity: ``✖ 2 critical  ▲ 1 warning``, or ``✔ no alerts firing``."""
    counts = firing_counts(snapshot.alerts)
    if not counts:
        return [("✔ no alerts firing", "$success")]
    parts: Parts = []
    for i, (severity, count) in enumerate(counts):
        mark = severity_mark(severity)
        parts.append((" " if i else "", ""))
        parts.append((f"{mark.symbol} {count} {severity}", f"bold ${mark.colour}"))
    return parts


def backlog_parts(snapshot: Snapshot) -> Parts:
    """``✉ 3 notifications pending``, with the oldest one's age (``(6m)``) once delivery looks stuck."""
    backlog = snapshot.backlog
    if backlog is None or not backlog.pending:
        return []
    text = f"✉ {backlog.pending} notification{'s' if backlog.pending != 1 else ''} pending"
    oldest = backlog.oldest_created_at
    if oldest is not None and snapshot.now_ms - oldest > BACKLOG_AGE_SHOWN_MS:
        text += f" ({span(snapshot.now_ms - oldest)})"
    return [(text, "$warning")]


METRICS_ERROR_SHOWN = 40
"""The status line shows this much of a failing metrics source's error (Sources has all of it)."""


def status_segments(snapshot: Snapshot, own_holder: str | None) -> list[tuple[int, Parts]]:
    """The status line's segments in display order, each with a rank: 0 is kept longest when
    the line is too narrow; good news and the refresh time go first."""
    segments: list[tuple[int, Parts]] = []
    if snapshot.metrics_error:  # first: every figure on screen is older than it looks
        error = snapshot.metrics_error
        error = error if len(error) <= METRICS_ERROR_SHOWN else error[:METRICS_ERROR_SHOWN - 1] + "…"
        since = f" (figures from {clock(snapshot.metrics_ms)})" if snapshot.metrics_ms is not None else ""
        segments.append((0, [(f"✖ metrics read failed{since}: ", "bold $error"), (error, "$error")]))
    segments.append((0, firing_parts(snapshot)))
    if backlog := backlog_parts(snapshot):
        segments.append((2, backlog))
    down = snapshot.sources_down
    if not snapshot.sources:
        segments.append((3, [("○ no sources reported", "$warning")]))
    elif down:
        segments.append((1, [(f"✖ {len(down)} of {len(snapshot.sources)} sources DOWN", "bold $error")]))
    else:
        count = len(snapshot.sources)
        segments.append((4, [(f"✔ {count} source{'s' if count != 1 else ''} up", "$success")]))
    lease = snapshot.lease
    if lease is None or lease.expires < snapshot.now_ms:
        segments.append((1, [("○ no agent", "bold $warning")]))
    else:
        agent: Parts = [("● agent ", "$success"), lease.holder]
        if own_holder is not None and lease.holder == own_holder:
            agent.append((" (this console)", "$text-muted"))
        segments.append((5, agent))
    segments.append((6, [(f"refreshed {clock(snapshot.read_ms)}", "$text-muted")]))
    return segments


def _joined(segments: list[tuple[int, Parts]], separator: tuple[str, str] = SEPARATOR) -> Content:
    parts: Parts = []
    for i, (_, segment) in enumerate(segments):
        if i:
            parts.append(separator)
        parts.extend(segment)
    return Content.assemble(*parts)


def status_content(snapshot: Snapshot | None, own_holder: str | None = None, width: int | None = None) -> Content:
    """The status line: store errors first; then firing alerts, the notification backlog, sources,
    the lease holder and the refresh time. Given a ``width``, the least important segments are
    left out until the rest fits. Later issues add open proposals."""
    if snapshot is None:
        return Content.assemble(("… reading the store", "$text-muted"))
    if snapshot.error:
        parts: Parts = [(f"✖ store read failed at {clock(snapshot.now_ms)}: ", "bold $error"),
                        (snapshot.error, "$error"), SEPARATOR]
        if snapshot.read_ms is None:
            parts.append(("no data read yet", "$text-muted"))
        else:
            parts.append((f"showing data from {clock(snapshot.read_ms)}", "$text-muted"))
        return Content.assemble(*parts)
    segments = status_segments(snapshot, own_holder)
    content = _joined(segments)
    if width is None or content.cell_length <= width:
        return content
    content = _joined(segments, NARROW_SEPARATOR)  # first closer together, then fewer
    while content.cell_length > width and len(segments) > 1:
        least = max(range(len(segments)), key=lambda i: (segments[i][0], i))
        segments = segments[:least] + segments[least + 1:]
        content = _joined(segments, NARROW_SEPARATOR)
    return content


class StatusLine(Static):
    """One line of state every section shares; updated from each snapshot, fitted to its width."""

    def __init__(self) -> None:
        self._content = status_content(None)
        self._last: tuple[Snapshot, str | None] | None = None
        super().__init__(self._content, classes="status-line")

    def show(self, snapshot: Snapshot, own_holder: str | None = None) -> None:
        self._last = (snapshot, own_holder)
        width = self.content_region.width or None
        content = status_content(snapshot, own_holder, width)
        if content != self._content:
            self._content = content
            self.update(content, layout=False)  # one line, always the screen's width

    def on_resize(self) -> None:
        if self._last is not None:
            self.show(*self._last)
