"""Build a performance report for a window: the sections, SLOs, incidents, recommendations
and the comparison with the previous period of equal length."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from typing import Any, Iterator

from qbconsole.report import application, business, compare, incidents, recommend, system
from qbconsole.report.figures import TIMESTAMP, Figure, figure, iso, plain, walk
from qbconsole.report.slo import SLOs
from qbconsole.report.window import Window
from qbconsole.store import Store

SECTIONS = ("range", "system", "application", "business", "user_experience", "slo", "incidents",
            "recommendations", "previous_period")


@dataclass
class Report:
    """A report as a tree of dicts, lists and :class:`Figure` objects, one attribute per
    section (the JSON's top-level keys). ``to_dict()`` gives the JSON-ready form."""

    range: dict[str, Any]
    system: dict[str, Any]
    application: dict[str, Any]
    business: dict[str, Any]
    user_experience: dict[str, Any]
    slo: dict[str, Any]
    incidents: dict[str, Any]
    recommendations: list[dict[str, Any]]
    previous_period: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    def figures(self) -> Iterator[Figure]:
        for f in fields(self):
            yield from walk(getattr(self, f.name))

    def charts(self) -> dict[str, dict[str, Any]]:
        """Every chart, keyed "section.name" (e.g. "system.cpu", "application.p95")."""
        out = {}
        for section in ("system", "application", "business", "user_experience"):
            for name, chart in (getattr(self, section).get("charts") or {}).items():
                out[f"{section}.{name}"] = chart
        return out

    @property
    def start_ms(self) -> int:
        return int(self.range["from"].value)

    @property
    def end_ms(self) -> int:
        return int(self.range["to"].value)


def _range(w: Window, prev: Window, now: int) -> dict[str, Any]:
    notes = []
    if w.end > now:
        notes.append(f"the window ends after the report was made ({iso(now)}); later data is not included")
    if w.trimmed_start is not None:
        notes.append(f"raw samples before {iso(w.raw_from)} are purged: figures begin at {iso(w.trimmed_start)} "
                     "(whole minutes from rollups), percentiles of raw samples cover only what is kept")
    elif w.raw_incomplete:
        notes.append(f"raw samples before {iso(w.raw_from)} may be purged: percentiles of raw samples cover "
                     "only what is kept")
    if prev.raw_incomplete:
        notes.append("the previous period is partly older than the raw retention: its percentiles of raw "
                     "samples may be missing, its other figures come from rollups")
    return {
        "from": figure(w.start, TIMESTAMP, "from"),
        "to": figure(w.end, TIMESTAMP, "to"),
        "duration": figure(w.seconds, "seconds", "duration"),
        "previous_from": figure(prev.start, TIMESTAMP, "previous period from"),
        "previous_to": figure(prev.end, TIMESTAMP, "previous period to"),
        "generated_at": figure(now, TIMESTAMP, "generated at"),
        "window": "(from, to]: samples after 'from' up to and including 'to'",
        "notes": notes,
    }


def _sections(w: Window, config, detail: bool) -> dict[str, Any]:
    return {
        "system": system.build(w, config, detail=detail),
        "application": application.build(w, detail=detail),
        "business": business.build_business(w, detail=detail),
        "user_experience": business.build_experience(w, detail=detail),
        "incidents": incidents.build(w, detail=detail),
    }


def build_report(store: Store, config, start_ms: int, end_ms: int, *, now_ms: int | None = None) -> Report:
    """The report for samples with start_ms < ts <= end_ms (integer ms UTC).

    ``config`` is the loaded rules file (its ``slos`` and ``optimizations``), or None.
    ``now_ms`` (default: the clock) dates the report, ongoing incidents and retention.
    Reads with the calling thread's store connection; safe to run in a worker thread.
    """
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    start, end = int(start_ms), int(end_ms)
    w = Window(store, start, end, now)
    prev = Window(store, start - (end - start), start, now)
    current = _sections(w, config, detail=True)
    current["slo"] = SLOs(w, config).build()
    previous = _sections(prev, config, detail=False)
    prev_range = {"from": figure(prev.start, TIMESTAMP, "from"), "to": figure(prev.end, TIMESTAMP, "to")}
    return Report(
        range=_range(w, prev, now),
        recommendations=recommend.build(current, config),
        previous_period=compare.build(current, previous, prev_range),
        **current,
    )


def render_json(report: Report) -> str:
    """The report as JSON: the sections as top-level keys, every figure as
    ``{"value", "unit", "label", "method" | "reason"}``; missing values are null."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
