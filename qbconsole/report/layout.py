"""The report as a sequence of blocks (headings, paragraphs, tables, charts) that the
Markdown and HTML writers render the same way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from qbconsole.report.figures import Figure, display, duration_text

TITLES = {"system": "System", "application": "Application", "business": "Business",
          "user_experience": "User experience"}
# Lists inside sections, shown as their own tables: key -> (title, columns).
TABLES = {
    "slowest_queries": ("Slowest queries", ("query", "average", "p95", "count")),
    "top": ("Top server errors by route and status", ("route", "status", "count", "share")),
    "targets": ("Probe targets", ("target", "availability", "uptime", "downtime", "probe_interval")),
    "outages": ("Longest outages", ("target", "start", "end", "duration")),
    "slowest_routes": ("Slowest routes", ("route", "p95", "average", "requests")),
    "backends": ("Requests per backend", ("backend", "requests", "share")),
    "pages": ("Slowest pages (page load p75)", ("page", "p75", "views")),
    "steps": ("Funnel", ("step", "metric", "count", "from_previous")),
}


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str
    strong: str = ""  # a bold lead-in
    note: bool = False


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    title: str = ""


@dataclass
class Chart:
    chart: dict[str, Any]


@dataclass
class Items:
    items: list[list[Para]] = field(default_factory=list)


Block = Heading | Para | Table | Chart | Items


def cell(value: Any) -> str:
    if isinstance(value, Figure):
        return value.text() if value.value is not None else f"— ({value.reason})"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "—"
    return "—" if value is None else str(value)


def _how(fig: Figure) -> str:
    return fig.method or fig.reason or ""


def figure_rows(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Figure]]:
    """(label, figure) of the figures in nested dicts (lists and charts are left out)."""
    for key, value in tree.items():
        if key == "charts":
            continue
        if isinstance(value, Figure):
            yield (value.label or f"{prefix}{key}".replace("_", " ")), value
        elif isinstance(value, dict):
            yield from figure_rows(value, f"{prefix}{key} ")


def lists(tree: dict[str, Any]) -> Iterator[tuple[str, list]]:
    for key, value in tree.items():
        if isinstance(value, list) and key in TABLES and value and isinstance(value[0], dict):
            yield key, value
        elif isinstance(value, dict) and key != "charts":
            yield from lists(value)


def _texts(tree: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in tree.items():
        if key in ("definition", "assumption", "mount") and isinstance(value, str):
            yield key, value
        elif isinstance(value, dict) and key != "charts":
            yield from _texts(value)


def section_blocks(name: str, tree: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading(2, TITLES[name])]
    blocks.append(Table(["Figure", "Value", "How it was computed"],
                        [[label, cell(fig), _how(fig) if fig.value is not None else ""]
                         for label, fig in figure_rows(tree)]))
    for key, text in _texts(tree):
        blocks.append(Para(text, strong=key.capitalize() + ":", note=True))
    for key, rows in lists(tree):
        title, columns = TABLES[key]
        blocks.append(Table([c.replace("_", " ") for c in columns],
                            [[cell(r.get(c)) for c in columns] for r in rows], title))
    for chart in (tree.get("charts") or {}).values():
        blocks.append(Chart(chart))
    return blocks


def _slo_blocks(slo: dict[str, Any]) -> list[Block]:
    rows = []
    for r in slo.get("objectives", []):
        status = {"met": "✔ met", "missed": "✘ missed"}.get(r["status"], "? no data")
        if r.get("why"):
            status += f" ({r['why']})"
        rows.append([r["name"], r.get("description", ""), f"{r['op']} {r['target'].text()}", cell(r["actual"]),
                     status, cell(r["error_budget_used"])])
    blocks: list[Block] = [Heading(2, "SLO compliance")]
    if not rows:
        return blocks + [Para("The rules file defines no SLOs.")]
    summary = slo["summary"]
    blocks.append(Para(f"{summary['met'].text()} met, {summary['missed'].text()} missed, "
                       f"{summary['no_data'].text()} without data."))
    blocks.append(Table(["SLO", "Description", "Target", "Actual", "Status", "Error budget used"], rows))
    blocks.append(Para("ratio objectives: (1 − actual) ÷ (1 − target) for “above” targets, actual ÷ target for "
                       "“below” ones; threshold objectives: time in spans that broke the target ÷ the allowed "
                       "1 % of the time; capacity targets: met when reached while the required SLOs held in the "
                       "same span.", strong="Error budget:", note=True))
    return blocks


def _incident_blocks(inc: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Incidents")]
    blocks.append(Table(["Figure", "Value", "How it was computed"],
                        [[label, cell(fig), _how(fig) if fig.value is not None else ""]
                         for label, fig in figure_rows({k: v for k, v in inc.items() if k != "items"})]))
    items = inc.get("items") or []
    if items:
        blocks.append(Table(["Alert", "Severity", "Labels", "Start", "End", "Duration", "Time to ack",
                             "Time to resolve"],
                            [[i["alert"], i["severity"], cell(i["labels"]), cell(i["start"]), cell(i["end"]),
                              cell(i["duration"]), cell(i["time_to_acknowledge"]), cell(i["time_to_resolve"])]
                             for i in items], "Alerts that fired"))
    return blocks


def _recommendation_blocks(recs: list[dict[str, Any]]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Recommendations")]
    if not recs:
        return blocks + [Para("Nothing to recommend: no figure crossed a recommendation threshold.")]
    items = Items()
    for rec in recs:
        entry = [Para(f"{rec['title']} — {rec['finding']}.", strong=f"[{rec['priority'].upper()}]"),
                 Para(rec["next_step"], strong="Next step:")]
        if rec["evidence"]:
            entry.append(Para("; ".join(f"{e.label} {e.text()}" for e in rec["evidence"]), strong="Evidence:"))
        if rec.get("optimization"):
            entry.append(Para(f"optimization rule “{rec['optimization']}” proposes this action",
                              strong="Automation:"))
        items.items.append(entry)
    return blocks + [items]


def signed(fig: Figure) -> str:
    """A change with its sign; changes of shares are in percentage points."""
    if fig.value is None:
        return "—"
    if fig.unit in ("ratio", "percent"):
        points = fig.value * 100 if fig.unit == "ratio" else fig.value
        return f"{points:+.2f} pp" if abs(points) < 1 else f"{points:+.1f} pp"
    text = fig.text()
    return text if text.startswith("-") or fig.value == 0 else "+" + text


def _previous_blocks(prev: dict[str, Any]) -> list[Block]:
    rng = prev["range"]
    rows = []
    for h in prev["headlines"]:
        verdict = {"better": "▲ better", "worse": "▼ worse", "same": "= same"}.get(h["verdict"], "")
        rel = h["change_relative"]
        rows.append([h["label"], h["previous"].text(), h["current"].text(), signed(h["change"]),
                     "—" if rel.value is None else f"{rel.value:+.1%}", verdict])
    return [Heading(2, "Compared with the previous period"),
            Para(f"{display(rng['from'].value, rng['from'].unit)} → {display(rng['to'].value, rng['to'].unit)}"),
            Table(["Figure", "Previous", "Current", "Change", "Relative", ""], rows)]


def blocks(report) -> list[Block]:
    r = report.range
    out: list[Block] = [
        Heading(1, "QuickBid performance report"),
        Para(f"{r['from'].text()} → {r['to'].text()} ({duration_text(r['duration'].value)}); "
             f"generated {r['generated_at'].text()}", strong="Window:"),
    ]
    out += [Para(n, strong="Note:", note=True) for n in r.get("notes", [])]
    for name in ("system", "application", "business", "user_experience"):
        out += section_blocks(name, getattr(report, name))
    out += _slo_blocks(report.slo)
    out += _incident_blocks(report.incidents)
    out += _recommendation_blocks(report.recommendations)
    out += _previous_blocks(report.previous_period)
    return out
