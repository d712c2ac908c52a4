"""Sections not built yet: they say what will appear there and how to configure it, nothing more."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from qbconsole.tui.screens.base import SectionScreen
from qbconsole.tui.sections import BY_MODE

NOT_BUILT = "Not built yet: this section shows no data until it is. Below: what it will show."

PLANS: dict[str, str] = {
    "actions": """\
What will appear here
  Proposed optimizations (scale up, add a missing index, grow the cache,
  adjust weights), open proposals first, then the history. enter opens the
  confirmation dialog with the exact command, request or SQL, the evidence,
  bounds and expiry; y approves, n refuses (No has the focus). Nothing runs
  before a person approves it.

How to configure it
  Optimization rules go in rules.yaml under optimizations: a condition, the
  proposed action, its bounds and a cooldown.""",
    "reports": """\
What will appear here
  Performance reports for a date range: system, application (p95/p99),
  business, user experience, SLO compliance, incidents and ranked
  recommendations, with charts; e exports Markdown, HTML or JSON.

How to configure it
  Reports judge the targets in rules.yaml under slos: (each a name, expr,
  op and target; the defaults are the source design's: CPU < 70 % average,
  memory < 80 % average, API p95 < 500 ms, error rate < 1 %, ...). They
  read the metrics already in the store; nothing else needs setting up.""",
}


class PlaceholderScreen(SectionScreen):
    """A section whose capability is not built yet."""

    def __init__(self, mode: str) -> None:
        super().__init__(name=mode)
        self.MODE = mode

    def compose_body(self) -> ComposeResult:
        section = BY_MODE[self.MODE]
        with VerticalScroll(classes="placeholder", can_focus=True):
            yield Static(f"{section.title} — {section.summary}", classes="placeholder-title", markup=False)
            yield Static(NOT_BUILT, classes="placeholder-notice", markup=False)
            yield Static(PLANS[self.MODE], classes="placeholder-plan", markup=False)
