"""The Reports section's pure parts: ranges (presets and custom), the report split into tabs,
and the export (file name, format, writing).

Building is :func:`build` (``qbconsole.report.build_report`` on the store, or with a
Prometheus datasource ``qbconsole.report.remote.build_remote_report``: the same figures
from Prometheus's samples); the tabs are the blocks of
``qbconsole.report.layout`` (the same ones the Markdown and HTML exports use),
so the console shows exactly the figures the exports contain. Times in
reports are UTC, as in the exports.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from qbconsole.config.durations import parse_duration
from qbconsole.report import Report, build_report, render_html, render_json, render_markdown
from qbconsole.report.figures import display, duration_text
from qbconsole.report.layout import Block, Chart, Heading, Items, Para, Table, blocks

PRESETS: tuple[tuple[str, int], ...] = (("1h", 3_600_000), ("6h", 21_600_000), ("24h", 86_400_000),
                                        ("7d", 604_800_000))
DEFAULT_PRESET = "1h"
FORMATS: dict[str, tuple[str, Any]] = {
    "md": ("Markdown", render_markdown),
    "html": ("HTML (self-contained, inline SVG charts)", render_html),
    "json": ("JSON", render_json),
}
# Tabs: (id, label, the report headings (level 2) they hold).
TABS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("summary", "Summary", ()),
    ("system", "System", ("System",)),
    ("application", "Application", ("Application",)),
    ("business", "Business", ("Business",)),
    ("ux", "UX", ("User experience",)),
    ("slo", "SLOs", ("SLO compliance",)),
    ("incidents", "Incidents", ("Incidents",)),
    ("advice", "Advice", ("Recommendations",)),
    ("compare", "Compare", ("Compared with the previous period",)),
)
SUMMARY_CHARTS = ("application.requests_per_second", "application.p95")
"""The application charts the Summary tab repeats: traffic and the p95 response time."""
SUMMARY_RECOMMENDATIONS = 3
_RELATIVE = re.compile(r"^now\s*(?:-\s*(?P<ago>.+))?$|^-\s*(?P<ago2>.+)$", re.IGNORECASE)
_EPOCH = re.compile(r"^\d{9,}(\.\d+)?$")


@dataclass(frozen=True)
class ReportRange:
    """Samples with start_ms < ts <= end_ms; ``preset`` ("24h") when it is "the last ...", else None."""

    start_ms: int
    end_ms: int
    preset: str | None = None

    @property
    def label(self) -> str:
        span = f"{utc(self.start_ms)} → {utc(self.end_ms, same_day_as=self.start_ms)} UTC"
        return f"last {self.preset}: {span}" if self.preset else span


def utc(ms: int, *, same_day_as: int | None = None) -> str:
    """``2026-01-01 11:00``; only ``12:00`` when it is on the day of ``same_day_as``."""
    text = time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))
    if same_day_as is not None and text[:10] == time.strftime("%Y-%m-%d", time.gmtime(same_day_as / 1000)):
        return text[11:]
    return text


def preset_range(name: str, now_ms: int) -> ReportRange:
    length = dict(PRESETS)[name]
    return ReportRange(now_ms - length, now_ms, name)


def next_preset(current: str | None) -> str:
    names = [n for n, _ in PRESETS]
    return names[(names.index(current) + 1) % len(names)] if current in names else names[0]


def parse_when(text: str, now_ms: int) -> int:
    """``now``, ``now-6h`` / ``-6h``, ISO 8601 (``2026-01-01T10:00``; UTC unless a zone is given)
    or epoch seconds -> integer ms UTC. ValueError says what is accepted."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        ago = relative.group("ago") or relative.group("ago2")
        if not ago:
            return now_ms
        try:
            return now_ms - int(parse_duration(ago.strip()) * 1000)
        except ValueError:
            raise ValueError(f"{text!r}: {ago.strip()!r} is not a duration (e.g. 90m, 6h, 2d)") from None
    if _EPOCH.match(text):
        return int(round(float(text) * 1000))
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use 2026-01-01T10:00 (UTC), now, now-6h or -6h") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(round(moment.timestamp() * 1000))


def custom_range(start: str, end: str, now_ms: int) -> ReportRange:
    """A From/To pair as typed; ValueError names the field that is wrong."""
    if not start.strip() or not end.strip():
        raise ValueError("give both From and To (To may be 'now')")
    try:
        start_ms = parse_when(start, now_ms)
    except ValueError as err:
        raise ValueError(f"From: {err}") from None
    try:
        end_ms = parse_when(end, now_ms)
    except ValueError as err:
        raise ValueError(f"To: {err}") from None
    if end_ms <= start_ms:
        raise ValueError("To must be after From")
    return ReportRange(start_ms, end_ms)


def build(console, config, report_range: ReportRange, now_ms: int) -> Report:
    """The report for ``report_range``: from the console's store, or from Prometheus when the console
    reads its metrics there (``console.metrics``, a ``PrometheusReader``), its incidents from the store.
    Safe in a thread worker; a Prometheus that cannot answer raises its PromQLEvalError."""
    store = console.store
    metrics = getattr(console, "metrics", None)
    backend = getattr(metrics, "backend", None)
    if metrics is None or metrics is store or backend is None:
        return build_report(store, config, report_range.start_ms, report_range.end_ms, now_ms=now_ms)
    from qbconsole.datasource.reader import PrometheusReader
    from qbconsole.report.remote import build_remote_report

    # A reader of its own (same backend): the report's wide reads do not disturb the Overview's cache.
    return build_remote_report(PrometheusReader(backend), store, config, report_range.start_ms,
                               report_range.end_ms, now_ms=now_ms)


# ---- the report in tabs -----------------------------------------------------------------------
@dataclass
class ReportTabs:
    """The report's blocks per tab id; ``window`` is the title paragraph and notes."""

    window: list[Block] = field(default_factory=list)
    tabs: dict[str, list[Block]] = field(default_factory=dict)


def report_tabs(report: Report) -> ReportTabs:
    """Split the report's blocks at its section headings; the Summary tab gathers the glance:
    window and notes, SLO counts and misses, the top recommendations and the headline charts."""
    out = ReportTabs(tabs={tab: [] for tab, _, _ in TABS})
    where = {heading: tab for tab, _, headings in TABS for heading in headings}
    current: str | None = None
    for block in blocks(report):
        if isinstance(block, Heading) and block.level == 2:
            current = where.get(block.text)
            continue
        if isinstance(block, Heading):
            continue
        if current is None:
            out.window.append(block)
        else:
            out.tabs[current].append(block)
    compare = out.tabs["compare"]
    if compare and isinstance(compare[0], Para) and not compare[0].strong:
        compare[0] = Para(compare[0].text, strong="Previous period:", note=compare[0].note)
    out.tabs["summary"] = summary_blocks(report)
    return out


def summary_blocks(report: Report) -> list[Block]:
    slo = report.slo
    found: list[Block] = []
    objectives = slo.get("objectives") or []
    if objectives:
        s = slo["summary"]
        found.append(Para(f"{s['met'].text()} met, {s['missed'].text()} missed, {s['no_data'].text()} without data",
                          strong="SLOs:"))
        missed = [o for o in objectives if o["status"] == "missed"]
        if missed:
            found.append(Table(["Missed SLO", "Target", "Actual", "Error budget used"],
                               [[o["name"], f"{o['op']} {o['target'].text()}", o["actual"].text(),
                                 o["error_budget_used"].text()] for o in missed]))
    else:
        found.append(Para("the rules file defines no SLOs", strong="SLOs:"))
    inc = report.incidents
    found.append(Para(f"{inc['count'].text()} began in the window; MTTA {inc['mtta'].text()}, "
                      f"MTTR {inc['mttr'].text()}", strong="Incidents:"))
    recs = report.recommendations
    if recs:
        items = Items()
        for rec in recs[:SUMMARY_RECOMMENDATIONS]:
            items.items.append([Para(f"{rec['title']} — {rec['finding']}.", strong=f"[{rec['priority'].upper()}]")])
        more = len(recs) - SUMMARY_RECOMMENDATIONS
        found.append(Para(f"{len(recs)} in all" + (f"; {more} more in Advice" if more > 0 else ""),
                          strong="Recommendations:"))
        found.append(items)
    else:
        found.append(Para("nothing crossed a recommendation threshold", strong="Recommendations:"))
    charts = report.charts()
    found += [Chart(charts[key]) for key in SUMMARY_CHARTS if key in charts]
    return found


def window_text(report: Report) -> str:
    r = report.range
    return (f"{display(r['from'].value, r['from'].unit)} → {display(r['to'].value, r['to'].unit)} "
            f"({duration_text(r['duration'].value)})")


# ---- export -----------------------------------------------------------------------------------
def stamp(ms: int) -> str:
    """``20260101T1100Z``: a compact UTC time for file names."""
    return time.strftime("%Y%m%dT%H%MZ", time.gmtime(ms / 1000))


def default_export_path(start_ms: int, end_ms: int, fmt: str) -> str:
    return f"./qbconsole-report-{stamp(start_ms)}-{stamp(end_ms)}.{fmt}"


def render(report: Report, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return FORMATS[fmt][1](report)


def write_export(report: Report, fmt: str, path: str, *, cwd: Path | None = None) -> Path:
    """Render and write through a temporary file (no half-written report); the absolute path.
    A relative path is taken from ``cwd`` (default: the working directory)."""
    text = render(report, fmt)
    target = Path(os.path.expanduser(path.strip()))
    if not path.strip():
        raise ValueError("give a file name")
    if not target.is_absolute():
        target = (cwd or Path.cwd()) / target
    if target.is_dir():
        raise ValueError(f"{target} is a directory: give a file name")
    if not target.parent.is_dir():
        raise ValueError(f"no such directory: {target.parent}")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return target.resolve()
