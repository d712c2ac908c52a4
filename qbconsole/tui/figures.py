"""Overview figures as text: a value in its unit, its target, its status; rows and group summaries.

Pure functions of a snapshot's windows and the targets, so the screens only place them.
A figure without samples says "no data", never a number.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Mapping

from qbconsole.catalog import format_value
from qbconsole.tui.groups import BY_LABEL, RATE, Group, MetricSpec, part_key
from qbconsole.tui.metricdata import WINDOW_MS, MetricWindow
from qbconsole.tui.targets import SEVERITY, Status, Target, judge
from qbconsole.tui.timefmt import ago, span
from qbconsole.tui.widgets.metric_row import RowView

STALE_AFTER_MS = 60_000
"""A gauge's latest value older than this is shown with its age: the collector may have stopped."""
COUNTER_STALE_AFTER_MS = 150_000
"""Counter figures are whole minutes, so their latest point is up to a minute old anyway."""
NO_DATA = "no data"
WINDOW_TEXT = span(WINDOW_MS)


def value_text(value: float | None, unit: str) -> str:
    """``format_value`` plus the Overview's own unit: events per minute (``per_min``)."""
    if unit == "per_min":
        if value is None or value != value:
            return "—"
        return f"{value:,.0f}/min" if abs(value) >= 10 else f"{value:.1f}/min"
    if unit == "score" and value is not None:
        return f"{value:.2f}"
    return format_value(value, unit)


@lru_cache(maxsize=None)
def tick_for(unit: str) -> Callable[[float], str]:
    """A chart's y tick format for a unit (one function per unit, so a chart can tell it has not changed)."""
    return lambda value: value_text(value, unit).replace(".0 %", " %")


def threshold_text(target: Target, unit: str) -> str:
    """``< 500 ms``, ``≥ 1,000 req/s``: the target in the figure's unit, whole numbers without ".0"."""
    text = value_text(target.threshold, unit)
    if float(target.threshold).is_integer() or unit in ("percent", "ratio"):
        text = text.replace(".0 ", " ", 1)
    op = {"<=": "≤", ">=": "≥"}.get(target.op, target.op)
    return f"{op} {text}"


def target_text(target: Target | None, unit: str) -> str:
    """``target < 70 %`` (tiles) or ``no target set``."""
    return "no target set" if target is None else f"target {threshold_text(target, unit)}"


def stale_after(spec: MetricSpec) -> int:
    return COUNTER_STALE_AFTER_MS if spec.how in (RATE, BY_LABEL) else STALE_AFTER_MS


def current_text(window: MetricWindow, unit: str, now_ms: int, stale_ms: int = STALE_AFTER_MS) -> str:
    """The latest value in its unit, with its age when it is old enough to doubt."""
    latest = window.latest
    if latest is None:
        return "—"
    text = value_text(latest[1], unit)
    if now_ms - latest[0] > stale_ms:
        text += f" (as of {ago(latest[0], now_ms)})"
    return text


def average_label(*windows: MetricWindow) -> str:
    """ "15m avg", or the span the data really covers when that is shorter (a new store)."""
    covered = max((w.points[-1][0] - w.points[0][0] for w in windows if w.points), default=0)
    return f"{WINDOW_TEXT} avg" if covered >= WINDOW_MS * 0.95 else f"{span(covered)} avg"


def figure_row(spec: MetricSpec, window: MetricWindow, target: Target | None, now_ms: int,
               *, title: str | None = None, part: bool = False) -> RowView:
    """One Overview row: value now (with the worst series' label), status, target, average, sparkline."""
    status = judge(window, target)
    latest = window.latest
    if latest is None:
        value = NO_DATA
    else:
        value = value_text(latest[1], spec.unit)
    target_part = threshold_text(target, spec.unit) if target is not None else "no target"
    if latest is not None and now_ms - latest[0] > stale_after(spec):
        target_part = f"as of {ago(latest[0], now_ms)}"
    name = title or spec.title
    if window.label and not part:
        name = f"{name} ({window.label})"
    average = value_text(window.average, spec.unit) if latest is not None else ""
    return RowView(name, value, status, target_part, average, window.points, now_ms - WINDOW_MS, now_ms, part)


def group_rows(group: Group, windows: Mapping[str, MetricWindow], targets: Mapping[str, Target],
               now_ms: int) -> list[tuple[str, str, RowView]]:
    """(row key, spec key, view) for every row of a group, BY_LABEL figures followed by one row per value."""
    rows = []
    for spec in group.metrics:
        window = windows.get(spec.key) or MetricWindow(spec.name)
        rows.append((spec.key, spec.key, figure_row(spec, window, targets.get(spec.name), now_ms)))
        if spec.how == BY_LABEL:
            prefix = part_key(spec.key, "")
            for key in sorted(k for k in windows if k.startswith(prefix)):
                rows.append((key, spec.key, figure_row(spec, windows[key], None, now_ms,
                                                       title=key[len(prefix):] or "(none)", part=True)))
    return rows


def group_statuses(group: Group, windows: Mapping[str, MetricWindow],
                   targets: Mapping[str, Target]) -> dict[Status, int]:
    """How many of the group's figures are in each status that needs attention (crit, warn, unmet)."""
    counts: dict[Status, int] = {}
    for spec in group.metrics:
        status = judge(windows.get(spec.key) or MetricWindow(spec.name), targets.get(spec.name))
        if SEVERITY[status]:
            counts[status] = counts.get(status, 0) + 1
    return counts
