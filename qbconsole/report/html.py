"""The report as one self-contained HTML file: inline CSS and inline SVG charts, no
scripts, no external resources — the file does not even contain the letters "http".
The markup is well-formed (every element closed, all text escaped), so XML parsers
read it as well as browsers do."""

from __future__ import annotations

from qbconsole.report.layout import Chart, Heading, Items, Para, Table, blocks
from qbconsole.report.svg import escape, line_chart

CSS = """
:root { color-scheme: light dark; --fg: #1d2330; --muted: #5b6474; --line: #2563c9; --rule: #d5d9e0;
        --bg: #ffffff; --band: #f3f5f8; --good: #1f7a3d; --bad: #b3261e; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e4e7ec; --muted: #a3abb8; --line: #7fb0ff; --rule: #3a404b; --bg: #15181d;
          --band: #1d2128; --good: #6fd08c; --bad: #ff8a80; } }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; }
main { max-width: 1040px; margin: 0 auto; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 8px; }
h2 { font-size: 20px; margin: 32px 0 8px; border-bottom: 1px solid var(--rule); padding-bottom: 4px; }
p { margin: 6px 0; }
p.note { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 14px; }
caption { text-align: left; font-weight: 600; padding: 6px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { background: var(--band); }
td.how { color: var(--muted); font-size: 13px; }
.met { color: var(--good); } .missed { color: var(--bad); }
ol li { margin-bottom: 10px; }
figure { margin: 8px 0 16px; }
figcaption { font-weight: 600; }
svg.chart { width: 100%; max-width: 680px; height: auto; }
svg .line { fill: none; stroke: var(--line); stroke-width: 1.6; }
svg circle.line { fill: var(--line); }
svg .grid { stroke: var(--rule); stroke-dasharray: 3 3; }
svg .axisline { stroke: var(--muted); }
svg .axis { fill: var(--muted); font-size: 11px; }
"""


def _para(p: Para) -> str:
    lead = f"<strong>{escape(p.strong)}</strong> " if p.strong else ""
    cls = ' class="note"' if p.note else ""
    return f"<p{cls}>{lead}{escape(p.text)}</p>"


def _cell(text: str, header: str) -> str:
    cls = ""
    if text.startswith("✔"):
        cls = ' class="met"'
    elif text.startswith("✘"):
        cls = ' class="missed"'
    elif header == "How it was computed":
        cls = ' class="how"'
    return f"<td{cls}>{escape(text)}</td>"


def _table(t: Table) -> str:
    caption = f"<caption>{escape(t.title)}</caption>" if t.title else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(_cell(c, h) for c, h in zip(row, t.headers)) + "</tr>" for row in t.rows)
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chart(c: Chart) -> str:
    chart = c.chart
    return (f"<figure>{line_chart(chart)}<figcaption>{escape(chart['label'])}</figcaption>"
            f'<p class="note">{escape(chart["method"])}</p></figure>')


def render_html(report) -> str:
    """The whole report as one HTML document (UTF-8)."""
    parts: list[str] = []
    for block in blocks(report):
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            parts.append(_para(block))
        elif isinstance(block, Table):
            parts.append(_table(block))
        elif isinstance(block, Chart):
            parts.append(_chart(block))
        elif isinstance(block, Items):
            items = "".join("<li>" + "".join(_para(p) for p in entry) + "</li>" for entry in block.items)
            parts.append(f"<ol>{items}</ol>")
    title = escape(f"QuickBid performance report, {report.range['from'].text()} → {report.range['to'].text()}")
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8"/><title>{title}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
            f"<style>{CSS}</style></head><body><main>\n" + "\n".join(parts) + "\n</main></body></html>\n")
