"""A report figure: a value with its unit, how it was computed, or why it is missing.

Every number in a report is a :class:`Figure`. A figure without data has
``value=None`` and a ``reason`` ("no samples of system_cpu_percent in the
window"); a report never invents a number.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Iterable

from qbconsole.catalog import format_value

# Units used by reports beyond the catalogue's: an instant, a Net Promoter Score.
TIMESTAMP = "timestamp_ms"
NPS = "nps"


@dataclass
class Figure:
    """One figure of a report. ``value`` None means missing, and ``reason`` says why."""

    value: float | None
    unit: str
    label: str = ""
    method: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None

    def text(self) -> str:
        """The value in its unit for people ("42.1 %", "120 ms", "2026-01-01 10:00 UTC")."""
        return display(self.value, self.unit)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "unit": self.unit}
        if self.label:
            out["label"] = self.label
        if self.method:
            out["method"] = self.method
        if self.reason:
            out["reason"] = self.reason
        if self.unit == TIMESTAMP and self.value is not None:
            out["iso"] = iso(self.value)
        return out


def figure(value: float | None, unit: str, label: str = "", method: str | None = None,
           reason: str | None = None) -> Figure:
    """A figure; a NaN or infinite value becomes missing (with ``reason`` or a default one)."""
    if value is not None and not isinstance(value, int):
        value = float(value)
        if not math.isfinite(value):
            why = "not a number (no data to divide by)" if value != value else "infinite"
            return Figure(None, unit, label, method, reason or why)
    if value is None and not reason:
        reason = "no data in the window"
    return Figure(value, unit, label, method, reason if value is None else None)


def missing(unit: str, label: str, reason: str) -> Figure:
    return Figure(None, unit, label, None, reason)


def ratio(num: Figure, den: Figure, unit: str, label: str, method: str) -> Figure:
    """num / den as a figure; missing when either is missing or den is zero."""
    if num.value is None:
        return missing(unit, label, num.reason or "numerator missing")
    if den.value is None:
        return missing(unit, label, den.reason or "denominator missing")
    if den.value == 0:
        return missing(unit, label, f"{den.label or 'denominator'} is zero in the window")
    return figure(num.value / den.value, unit, label, method)


def iso(ms: float) -> str:
    """ISO 8601 UTC with seconds ("2026-01-01T10:00:00Z"); milliseconds when not whole."""
    ms = int(ms)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else text + "Z"


def display(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == TIMESTAMP:
        return iso(value).replace("T", " ").replace("Z", " UTC")
    if unit == NPS:
        return f"{value:+.0f}"
    if unit == "seconds" and value >= 3600:
        return duration_text(value)
    return format_value(value, unit)


def duration_text(seconds: float) -> str:
    """"2 d 3 h 4 min" style for long durations; short ones through format_value."""
    if seconds < 60:
        return format_value(seconds, "seconds")
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    if secs and not days:
        parts.append(f"{secs} s")
    return " ".join(parts)


def walk(tree: Any) -> Iterable[Figure]:
    """Every Figure in a tree of dicts, lists and figures."""
    if isinstance(tree, Figure):
        yield tree
    elif isinstance(tree, dict):
        for v in tree.values():
            yield from walk(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from walk(v)


def plain(tree: Any) -> Any:
    """The tree with figures as dicts and non-finite floats as None (JSON-safe)."""
    if isinstance(tree, Figure):
        return tree.to_dict()
    if isinstance(tree, dict):
        return {str(k): plain(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [plain(v) for v in tree]
    if isinstance(tree, float) and not math.isfinite(tree):
        return None
    return tree
