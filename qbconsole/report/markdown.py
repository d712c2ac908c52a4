"""The report as Markdown (GitHub-flavoured tables); charts become a small value table."""

from __future__ import annotations

from qbconsole.report.figures import display, iso
from qbconsole.report.layout import Chart, Heading, Items, Para, Table, blocks

CHART_ROWS = 12  # a chart is summarised by this many evenly spaced points


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _para(p: Para) -> str:
    lead = f"**{p.strong}** " if p.strong else ""
    return f"{'> ' if p.note else ''}{lead}{p.text}"


def _table(t: Table) -> list[str]:
    lines = [f"**{t.title}**", ""] if t.title else []
    lines.append("| " + " | ".join(_esc(h) for h in t.headers) + " |")
    lines.append("|" + "|".join("---" for _ in t.headers) + "|")
    lines += ["| " + " | ".join(_esc(c) for c in row) + " |" for row in t.rows]
    return lines


def _chart(c: Chart) -> list[str]:
    chart = c.chart
    points = chart["points"]
    step = max(1, len(points) // CHART_ROWS)
    picked = points[::step]
    if points and picked[-1] is not points[-1]:
        picked.append(points[-1])
    rows = [[iso(ts).replace("T", " ").replace("Z", ""), display(v, chart["unit"])] for ts, v in picked]
    return _table(Table(["until (UTC)", chart["label"]], rows, f"{chart['label']} over the window")) + \
        ["", f"_{chart['method']}_"]


def render_markdown(report) -> str:
    """The whole report as one Markdown document."""
    lines: list[str] = []
    for block in blocks(report):
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text]
        elif isinstance(block, Para):
            lines += [_para(block)]
        elif isinstance(block, Table):
            lines += _table(block)
        elif isinstance(block, Chart):
            lines += _chart(block)
        elif isinstance(block, Items):
            for n, entry in enumerate(block.items, 1):
                lines.append(f"{n}. {_para(entry[0])}")
                lines += [f"   - {_para(p)}" for p in entry[1:]]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
