"""The console's six sections: key, mode name, title and a one-line summary (palette and help)."""

from __future__ import annotations

from typing import NamedTuple


class Section(NamedTuple):
    key: str
    mode: str
    title: str
    summary: str


SECTIONS: tuple[Section, ...] = (
    Section("1", "overview", "Overview", "Status line, tiles and charts of the headline figures"),
    Section("2", "alerts", "Alerts", "Firing and pending alerts; acknowledge and silence"),
    Section("3", "actions", "Actions", "Proposed optimizations awaiting approval, and their history"),
    Section("4", "reports", "Reports", "Performance reports over a date range"),
    Section("5", "experiments", "Experiments", "A/B tests, their variants and verdicts"),
    Section("6", "sources", "Sources", "Every metric source: up/down, last scrape, errors; the agent's lease"),
)

BY_MODE = {s.mode: s for s in SECTIONS}
