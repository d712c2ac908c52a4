"""The console's Reports section: range picker, the report's figures, charts, export, building off the UI thread.

The store holds the known-answer data of tests/test_report.py (two hours, a
sample every 10 s, alerts with known acknowledge and resolve times); the
console's clock is frozen at the end of the second hour, so "last 1h" is the
window that test checks figure by figure. Here the console must show exactly
what ``build_report`` computes for the same range, and export it.
"""

from __future__ import annotations

import json
import threading

import pytest
from rich.console import Console
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Footer, Input, RadioButton, Static, TabbedContent
from textual.widgets._footer import FooterKey

from helpers import until
from qbconsole.config import parse_config
from qbconsole.report import SECTIONS, build_report, render_json
from qbconsole.report.layout import cell, figure_rows
from qbconsole.store import Store
from qbconsole.tui.app import QBConsoleApp
from qbconsole.tui.modals.export_report import ExportModal
from qbconsole.tui.reports_data import (
    ReportRange, custom_range, default_export_path, next_preset, parse_when, preset_range, report_tabs,
)
from qbconsole.tui.screens import reports as reports_screen
from qbconsole.tui.screens.reports import ReportsScreen
from qbconsole.tui.widgets.range_chart import RangeChart, segments, time_ticks
from test_report import END, RULES, START, samples, seed_alerts
from test_tui_snapshots import utc  # noqa: F401  (a fixture)

H = 3_600_000


class ConfigOnly:
    """Stands in for the agent: it carries the rules file (its SLOs), and starts nothing."""

    holder = None

    def __init__(self) -> None:
        self.config = parse_config(RULES, "rules.yaml", env={})

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory):
    """One store file for the module (writing two hours of samples takes a while); tests only read it."""
    path = tmp_path_factory.mktemp("reports") / "qb.db"
    store = Store.open(path)
    store.write(samples())
    seed_alerts(store)
    store.close()
    return path


@pytest.fixture
def store(seeded_db):
    store = Store.open(seeded_db)
    yield store
    store.close()


def make_app(store, tmp_path, **kw) -> QBConsoleApp:
    kw.setdefault("clock", lambda: END / 1000)
    kw.setdefault("refresh", 1.0)
    kw.setdefault("settings_path", tmp_path / "config" / "settings.json")
    kw.setdefault("theme", "dark")
    kw.setdefault("agent", ConfigOnly())
    return QBConsoleApp(store, **kw)


async def open_reports(pilot) -> ReportsScreen:
    await until(pilot, lambda: pilot.app.snapshot is not None)
    await pilot.press("4")
    await until(pilot, lambda: isinstance(pilot.app.screen, ReportsScreen))
    screen = pilot.app.screen
    await until(pilot, lambda: screen.report is not None and screen.building is None)
    await pilot.pause()
    return screen


def tab_text(screen: ReportsScreen, tab: str) -> str:
    """What a tab shows, as text (tables rendered wide enough not to wrap)."""
    console = Console(width=1000, record=True, color_system=None)
    for widget in screen.query_one(f"#report-{tab}", VerticalScroll).children:
        if isinstance(widget, Static):
            content = widget.content
            console.print(content.plain if isinstance(content, Content) else content)
    return console.export_text()


def line_with(text: str, start: str) -> str:
    """The first line that starts with ``start``, its runs of spaces made single."""
    return next(" ".join(line.split()) for line in text.splitlines() if line.strip().startswith(start))


def expected(store, start: int, end: int):
    return build_report(store, ConfigOnly().config, start, end, now_ms=END)


def bar_text(screen) -> str:
    return str(screen.query_one("#reports-state", Static).render())


# ---- figures --------------------------------------------------------------------------------------
async def test_the_report_is_built_off_the_ui_thread_and_shows_build_reports_figures(store, tmp_path, monkeypatch):
    ui_thread = threading.current_thread()
    seen: list[threading.Thread] = []
    release = threading.Event()

    real_build = reports_screen.build_from_source

    def slow_build(*args, **kw):  # the real build, held until the test has looked at the UI meanwhile
        seen.append(threading.current_thread())
        release.wait(5)
        return real_build(*args, **kw)

    monkeypatch.setattr(reports_screen, "build_from_source", slow_build)
    app = make_app(store, tmp_path)
    async with app.run_test(size=(130, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, ReportsScreen) and seen)
        screen = app.screen
        assert bar_text(screen) == "building 1h…" and screen.report is None
        await pilot.press("right")  # the UI answers while the report builds
        await until(pilot, lambda: screen.query_one(TabbedContent).active == "tab-system")
        release.set()
        await until(pilot, lambda: screen.report is not None)
        await pilot.pause()
        assert seen and all(t is not ui_thread for t in seen)
        assert screen.built_on_thread != ui_thread.name

        assert screen.range == ReportRange(START, END, "1h")
        want = expected(store, START, END)
        assert render_json(screen.report) == render_json(want)
        assert bar_text(screen) == "built 02:00:00 UTC · r refreshes"
        for section, tab in (("system", "system"), ("application", "application"), ("business", "business"),
                             ("user_experience", "ux")):
            shown = tab_text(screen, tab)
            for label, fig in figure_rows(getattr(want, section)):
                assert label in shown and cell(fig) in shown, (section, label, cell(fig))
        assert "mean of 360 samples of system_cpu_percent" in tab_text(screen, "system"), "wide: methods shown"
        slo = tab_text(screen, "slo")
        for objective in want.slo["objectives"]:
            word = {"met": "✔ met", "missed": "✘ missed"}[objective["status"]]
            line = line_with(slo, objective["name"] + " ")
            assert word in line and objective["actual"].text() in line, line
        incidents = tab_text(screen, "incidents")
        assert line_with(incidents, "mean time to acknowledge").startswith(
            f"mean time to acknowledge (MTTA) {want.incidents['mtta'].text()}")
        assert line_with(incidents, "mean time to resolve").startswith("mean time to resolve (MTTR) 20.0 min")
        advice = tab_text(screen, "advice")
        for rank, rec in enumerate(want.recommendations, 1):
            assert f"{rank}. [{rec['priority'].upper()}] {rec['title']}" in advice
            assert f"Next step: {rec['next_step']}"[:60] in " ".join(advice.split())
        compare = tab_text(screen, "compare")
        cpu = next(h for h in want.previous_period["headlines"] if h["key"] == "cpu_average")
        assert line_with(compare, "CPU average").startswith(
            f"CPU average {cpu['previous'].text()} {cpu['current'].text()}")
        assert line_with(compare, "CPU average").endswith("▼ worse")
        summary = tab_text(screen, "summary")
        assert "SLOs: 3 met, 6 missed, 0 without data" in summary
        assert "MTTA 2.0 min, MTTR 20.0 min" in summary
        charts = screen.query_one("#report-summary").query(RangeChart)
        assert [c._shown[0] for c in charts] == ["Requests per second", "Response time p95"]
        assert all(c.draw_count == 1 for c in charts)


async def test_the_range_picker_rebuilds_and_polls_do_not(store, tmp_path):
    now = [END]
    app = make_app(store, tmp_path, refresh=60.0, clock=lambda: now[0] / 1000)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_reports(pilot)
        assert screen.build_count == 1
        now[0] = END + 5 * 60_000
        for _ in range(3):  # polls only age the report shown
            app.poll_now()
            await pilot.pause(0.05)
        await until(pilot, lambda: "(5m ago)" in bar_text(screen))
        assert bar_text(screen) == "built 02:00:00 UTC (5m ago) · r rebuilds up to now"
        assert screen.build_count == 1, "the report is not rebuilt on a poll"
        await pilot.press("r")
        await until(pilot, lambda: screen.build_count == 2 and screen.building is None)
        assert screen.range == ReportRange(START + 5 * 60_000, END + 5 * 60_000, "1h")
        now[0] = END
        await pilot.press("r")
        await until(pilot, lambda: screen.build_count == 3 and screen.building is None)
        assert screen.range == ReportRange(START, END, "1h")

        await pilot.press("p")
        await until(pilot, lambda: screen.build_count == 4 and screen.building is None)
        assert screen.range == ReportRange(END - 6 * H, END, "6h")
        assert render_json(screen.report) == render_json(expected(store, END - 6 * H, END))
        assert "last 6h: 2025-12-31 20:00 → 2026-01-01 02:00 UTC" in str(screen.query_one("#reports-range").render())

        await pilot.click("#preset-7d")
        await until(pilot, lambda: screen.build_count == 5 and screen.building is None)
        assert screen.range == ReportRange(END - 168 * H, END, "7d")

        await pilot.press("c")
        start_box, end_box = screen.query_one("#reports-from", Input), screen.query_one("#reports-to", Input)
        assert screen.focused is start_box
        start_box.value, end_box.value = "2026-01-01T01:30", "2026-01-01T01:00"
        await pilot.press("enter")
        await pilot.pause()
        error = screen.query_one("#reports-error", Static)
        assert error.display and "To must be after From" in str(error.render())
        assert screen.build_count == 5
        start_box.value, end_box.value = "2026-01-01T01:30Z", "now"
        await pilot.press("enter")
        await until(pilot, lambda: screen.build_count == 6 and screen.building is None)
        assert screen.range == ReportRange(START + H // 2, END, None)
        assert not screen.query_one("#reports-custom").display and not error.display
        assert render_json(screen.report) == render_json(expected(store, START + H // 2, END))

        await pilot.press("r")  # the same custom range again
        await until(pilot, lambda: screen.build_count == 7 and screen.building is None)
        assert screen.range == ReportRange(START + H // 2, END, None)

        # 80x24: the picker, the tabs and the keys still fit.
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        for widget in ("#preset-1h", "#preset-7d", "#reports-export-button", "#report-tabs"):
            assert screen.region.contains_region(screen.query_one(widget).region) or widget == "#report-tabs"
        footer = screen.query_one(Footer)

        def keys() -> set[str]:
            return {k.key for k in footer.query(FooterKey) if screen.region.contains_region(k.region)}

        await until(pilot, lambda: {"p", "r", "e"} <= keys())
        assert "How it was computed" not in tab_text(screen, "system"), "narrow: methods hidden until m"
        await pilot.press("m")
        await pilot.pause()
        assert "How it was computed" in tab_text(screen, "system")


# ---- export ---------------------------------------------------------------------------------------
async def test_export_writes_the_chosen_format(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_reports(pilot)
        default = "./qbconsole-report-20260101T0100Z-20260101T0200Z.md"

        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExportModal))
        modal = app.screen
        box = modal.query_one("#export-path", Input)
        assert box.value == default and modal.focused is box
        await pilot.press("enter")  # Markdown, at the default path (relative to the working directory)
        written = tmp_path / default[2:]
        await until(pilot, lambda: written.exists())
        assert written.read_text().startswith("# QuickBid performance report\n")
        await until(pilot, lambda: f"exported {written}" in bar_text(screen))
        assert any(f"Report written to {written}" in n.message for n in app._notifications)

        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExportModal))
        modal = app.screen
        next(b for b in modal.query(RadioButton) if b.name == "html").value = True
        await pilot.pause()
        box = modal.query_one("#export-path", Input)
        assert box.value == default[:-2] + "html", "an unedited path follows the format"
        await pilot.press("enter")
        html = written.with_suffix(".html")
        await until(pilot, lambda: html.exists())
        text = html.read_text()
        assert text.startswith("<!DOCTYPE html>\n") and "<svg" in text and "http://" not in text.split("<body")[0]

        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExportModal))
        modal = app.screen
        next(b for b in modal.query(RadioButton) if b.name == "json").value = True
        await pilot.pause()
        modal.query_one("#export-path", Input).value = str(tmp_path / "out" / "report.json")
        await pilot.press("enter")  # no such directory: refused, said
        await until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        assert any("no such directory" in n.message for n in app._notifications if n.severity == "error")
        (tmp_path / "out").mkdir()
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExportModal))
        modal = app.screen
        next(b for b in modal.query(RadioButton) if b.name == "json").value = True
        await pilot.pause()
        modal.query_one("#export-path", Input).value = "out/report.json"
        await pilot.press("enter")
        target = tmp_path / "out" / "report.json"
        await until(pilot, lambda: target.exists())
        data = json.loads(target.read_text())
        assert list(data) == list(SECTIONS)
        assert data == json.loads(render_json(screen.report))


# ---- pure parts -----------------------------------------------------------------------------------
def test_ranges_presets_and_times():
    now = END
    assert preset_range("24h", now) == ReportRange(now - 24 * H, now, "24h")
    assert [next_preset(p) for p in ("1h", "6h", "24h", "7d", None)] == ["6h", "24h", "7d", "1h", "1h"]
    assert parse_when("now", now) == now and parse_when("now-6h", now) == now - 6 * H
    assert parse_when("-90m", now) == now - 90 * 60_000
    assert parse_when("2026-01-01T01:00", now) == START == parse_when("2026-01-01T01:00Z", now)
    assert parse_when("2026-01-01T03:00+02:00", now) == START
    assert parse_when(str(START // 1000), now) == START
    for bad, reason in (("yesterday", "not a time"), ("now-soon", "not a duration")):
        with pytest.raises(ValueError, match=reason):
            parse_when(bad, now)
    with pytest.raises(ValueError, match="^From: "):
        custom_range("later", "now", now)
    with pytest.raises(ValueError, match="To must be after From"):
        custom_range("now", "now-1h", now)
    assert custom_range("now-2h", "now", now) == ReportRange(now - 2 * H, now)
    assert ReportRange(START, END).label == "2026-01-01 01:00 → 02:00 UTC"
    assert ReportRange(END - 24 * H, END, "24h").label == "last 24h: 2025-12-31 02:00 → 2026-01-01 02:00 UTC"
    assert default_export_path(START, END, "json") == "./qbconsole-report-20260101T0100Z-20260101T0200Z.json"


def test_chart_gaps_and_ticks():
    assert segments([[1, 1.0], [2, None], [3, 2.0], [4, 3.0], [5, None]]) == [[(1, 1.0)], [(3, 2.0), (4, 3.0)]]
    assert time_ticks(START, END) == [START + i * 15 * 60_000 for i in range(5)]
    assert len(time_ticks(END - 168 * H, END)) <= 6


def test_tabs_hold_every_section_of_the_report(store):
    report = expected(store, START, END)
    tabs = report_tabs(report).tabs
    assert list(tabs) == ["summary", "system", "application", "business", "ux", "slo", "incidents", "advice",
                          "compare"]
    assert all(tabs.values()), "every tab has content"


# ---- snapshots ------------------------------------------------------------------------------------
@pytest.fixture
def frozen_reports_app(store, tmp_path, utc):  # noqa: F811  (utc is the fixture imported above)
    return make_app(store, tmp_path, refresh=60.0)


async def _report_ready(pilot) -> None:
    await open_reports(pilot)


def test_reports_snapshot(snap_compare, frozen_reports_app):
    assert snap_compare(frozen_reports_app, terminal_size=(100, 30), run_before=_report_ready)


def test_reports_snapshot_80x24(snap_compare, frozen_reports_app):
    assert snap_compare(frozen_reports_app, terminal_size=(80, 24), run_before=_report_ready)
