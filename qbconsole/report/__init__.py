"""Performance reports for a date range: system, application, business, user experience,
SLO compliance, incidents, ranked recommendations and the previous period.

    report = build_report(store, config, start_ms, end_ms)   # a Report (dataclass tree)
    text = render_markdown(report)   # or render_html(report), render_json(report)

Every figure is a :class:`Figure` (value, unit, method, or a reason when missing).
"""

from qbconsole.report.build import SECTIONS, Report, build_report, render_json
from qbconsole.report.figures import Figure
from qbconsole.report.html import render_html
from qbconsole.report.markdown import render_markdown

__all__ = ["SECTIONS", "Figure", "Report", "build_report", "render_html", "render_json", "render_markdown"]
