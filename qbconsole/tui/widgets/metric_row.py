"""One Overview figure on one line: name, value now, status (symbol and word), target, sparkline.

Rows are focusable: ``tab``/``shift+tab`` and the arrow keys move between them, ``enter``
opens the figure's chart. The columns fit the row's width; wider rows also show the
window's average. The focused row is marked with ``▶`` as well as its colour.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.content import Content
from textual.widget import Widget

from qbconsole.tui.targets import Status
from qbconsole.tui.metricdata import Points

SPARK = "▁▂▃▄▅▆▇█"
STATUS_MARKS: dict[Status, tuple[str, str]] = {
    Status.OK: ("✔ OK", "bold $success"),
    Status.WARN: ("▲ WARN", "bold $warning"),
    Status.CRIT: ("✖ CRIT", "bold reverse $error"),
    Status.SHORT: ("◇ UNMET", "$accent"),
    Status.NO_DATA: ("○ NO DATA", "$text-muted"),
    Status.NO_TARGET: ("·", "$text-muted"),
}
"""Each status has a symbol and a word as well as a colour (no target: a dot, the target column says so)."""

TITLE_W, VALUE_W, STATUS_W, TARGET_W, AVG_W = 24, 11, 9, 13, 11
WIDE_AT = 96
"""From this row width the average over the window is shown too."""
MIN_SPARK = 8


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis, or padded to it."""
    if width <= 0:
        return ""
    if len(text) > width:
        return text[: max(0, width - 1)] + "…"
    return text.ljust(width)


def spark_width(points: Points, start_ms: int, end_ms: int, room: int) -> int:
    """At most ``room`` slices, and no more than the points' usual spacing fills (a figure with a
    point per minute gets 15 slices over 15 minutes, not 40 with gaps between them)."""
    gaps = sorted(t1 - t0 for (t0, _), (t1, _) in zip(points, points[1:]) if t1 > t0)
    if not gaps:
        return room
    return max(1, min(room, (end_ms - start_ms) // max(1, gaps[len(gaps) // 2])))


def sparkline(points: Points, start_ms: int, end_ms: int, width: int) -> str:
    """The points averaged into ``width`` equal slices of [start, end], as block characters
    scaled from the lowest to the highest slice; slices without points are blanks."""
    if width <= 0:
        return ""
    span = max(1, end_ms - start_ms)
    sums = [0.0] * width
    counts = [0] * width
    for ts, value in points:
        if start_ms <= ts <= end_ms:
            i = min(width - 1, (ts - start_ms) * width // span)
            sums[i] += value
            counts[i] += 1
    values = [s / c if c else None for s, c in zip(sums, counts)]
    present = [v for v in values if v is not None]
    if not present:
        return " " * width
    lo, hi = min(present), max(present)
    flat = hi - lo <= 1e-9 * max(1.0, abs(hi))
    top = len(SPARK) - 1
    return "".join(" " if v is None else SPARK[top // 2 if flat else round((v - lo) / (hi - lo) * top)]
                   for v in values)


@dataclass(frozen=True)
class RowView:
    """What a row shows; built from a snapshot by the Overview screen."""

    title: str
    value: str
    status: Status
    target: str
    average: str
    points: Points
    start_ms: int
    end_ms: int
    part: bool = False
    """A sub-row (one label value of a figure broken down by label): indented, no status."""


def row_content(view: RowView, width: int, focused: bool) -> Content:
    """The row's line at ``width`` cells (see the module docstring)."""
    mark = ("▶ ", "bold $primary") if focused else ("  ", "")
    title = ("  · " + view.title) if view.part else view.title
    word, style = STATUS_MARKS[view.status]
    used = 2 + TITLE_W + 1 + VALUE_W + 1 + STATUS_W + 1 + TARGET_W + 1
    wide = width >= WIDE_AT
    if wide:
        used += AVG_W + 1
    spark = max(0, width - used)
    parts: list[tuple[str, str] | str] = [
        mark,
        (fit(title, TITLE_W), "bold" if not view.part else "$text-muted"), " ",
        (view.value.rjust(VALUE_W) if len(view.value) <= VALUE_W else fit(view.value, VALUE_W),
         "bold" if view.status is not Status.NO_DATA else "$text-muted"), " ",
        (fit(word if not view.part else "", STATUS_W), style), " ",
        (fit(view.target, TARGET_W), "$text-muted"), " ",
    ]
    if wide:
        parts += [(fit(view.average, AVG_W), "$text-muted"), " "]
    if spark >= MIN_SPARK:
        spark = spark_width(view.points, view.start_ms, view.end_ms, spark)
        parts.append((sparkline(view.points, view.start_ms, view.end_ms, spark), "$primary"))
    return Content.assemble(*parts)


def header_content(width: int, window: str) -> Content:
    """The column heads above the rows."""
    wide = width >= WIDE_AT
    text = ("  " + fit("Metric", TITLE_W) + " " + "Now".rjust(VALUE_W) + " " + fit("Status", STATUS_W) + " "
            + fit("Target", TARGET_W) + " " + (fit(f"{window} avg", AVG_W) + " " if wide else "") + f"last {window}")
    return Content.assemble((text[:width], "bold $text-muted"))


class MetricRow(Widget, can_focus=True):
    """A focusable one-line figure; ``key`` is its snapshot key (spec key or part key)."""

    DEFAULT_CSS = """
    MetricRow { height: 1; width: 1fr; }
    """
    BINDINGS = [
        Binding("down", "app.focus_next", "Next", show=False, id="overview.row_next"),
        Binding("up", "app.focus_previous", "Previous", show=False, id="overview.row_previous"),
    ]

    def __init__(self, key: str, spec_key: str, description: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.key = key
        self.spec_key = spec_key
        """The figure whose chart ``enter`` opens."""
        self.description = description
        self.tooltip = description
        self.view: RowView | None = None

    def show(self, view: RowView) -> None:
        if view != self.view:
            self.view = view
            self.set_class(view.status is Status.CRIT, "-crit")
            self.set_class(view.status is Status.WARN, "-warn")
            self.refresh()

    def render(self) -> Content:
        if self.view is None:
            return Content("")
        return row_content(self.view, self.content_region.width or self.size.width, self.has_focus)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
