"""Performance reports for a date range: system, application, business, user experience,
SLO compliance, incidents, ranked recommendations and the previous period.

    report = build_report(store, config, start_ms, end_ms)   # a Report (dataclass tree)
    text = render(report, "html")     # or render_markdown / render_html / render_json

Every figure is a :class:`Figure` (value, unit, method, or a reason when missing).
Charts are ``report.system["charts"]`` and ``report.application["charts"]``: dicts
``{"label", "unit", "method", "points": [[ts_ms, value or None], ...]}``.
"""

from qbconsole.report.build import SECTIONS, Report, build_report, render_json
from qbconsole.report.figures import Figure
from qbconsole.report.html import render_html
from qbconsole.report.markdown import render_markdown

FORMATS = {"md": render_markdown, "html": render_html, "json": render_json}
EXTENSIONS = {"md": ".md", "html": ".html", "json": ".json"}


def render(report: Report, fmt: str) -> str:
    """The report in ``fmt`` (one of FORMATS: md, html, json)."""
    try:
        return FORMATS[fmt](report)
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}") from None


__all__ = ["EXTENSIONS", "FORMATS", "SECTIONS", "Figure", "Report", "build_report", "render", "render_html",
           "render_json", "render_markdown"]
