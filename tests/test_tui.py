"""Pilot tests of the console: sections, palette, themes and settings, help, 80x24, errors, agent, SIGHUP."""

from __future__ import annotations

import asyncio
import json
import math
import re
import signal
import sqlite3
import threading
from pathlib import Path

import pytest
from textual.widgets import DataTable, Footer, Static
from textual.widgets._footer import FooterKey

from helpers import until
from qbconsole.model import Sample
from qbconsole.store import LeaseInfo, SourceStatus, Store
from qbconsole.tui.app import HANGUP_RETURN_CODE, QBConsoleApp
from qbconsole.tui.data import MetricWindow, counter_rates, read_snapshot
from qbconsole.tui.screens.actions import ActionsScreen
from qbconsole.tui.screens.alerts import AlertsScreen
from qbconsole.tui.screens.experiments import ExperimentsScreen
from qbconsole.tui.screens.help import HelpScreen
from qbconsole.tui.screens.overview import OverviewScreen
from qbconsole.tui.screens.reports import ReportsScreen
from qbconsole.tui.screens.sources import SourcesScreen, lease_content
from qbconsole.tui.sections import SECTIONS
from qbconsole.tui.settings import load_settings
from qbconsole.tui.targets import Status, Target, judge
from qbconsole.tui.themes import PACKAGE_THEME_DIR, ThemeFileError, load_theme_file
from qbconsole.tui.widgets.chart import TimeChart
from qbconsole.tui.widgets.chrome import StatusLine
from qbconsole.tui.widgets.tile import Tile
from test_tui_snapshots import HOLDER, NOW_MS, seed_store

REPO = Path(__file__).resolve().parent.parent
HEX_IN_VALUE = re.compile(r":[^;{}]*#[0-9a-fA-F]{3,8}\b")


@pytest.fixture
def store(tmp_path):
    store = seed_store(tmp_path / "qb.db")
    yield store
    store.close()


def make_app(store, tmp_path, **kw) -> QBConsoleApp:
    kw.setdefault("clock", lambda: NOW_MS / 1000)
    kw.setdefault("refresh", 1.0)
    kw.setdefault("settings_path", tmp_path / "config" / "settings.json")
    return QBConsoleApp(store, **kw)


def text_of(widget: Static) -> str:
    return str(widget.render())


def status_text(app: QBConsoleApp) -> str:
    return text_of(app.screen.query_one(StatusLine))


# ---- sections ----------------------------------------------------------------
async def test_every_section_by_key(store, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.current_mode == "overview" and isinstance(app.screen, OverviewScreen)
        for section in reversed(SECTIONS):
            await pilot.press(section.key)
            await pilot.pause()
            assert app.current_mode == section.mode
        for mode, screen in (("alerts", AlertsScreen), ("actions", ActionsScreen), ("reports", ReportsScreen),
                             ("experiments", ExperimentsScreen)):
            await pilot.press(next(s.key for s in SECTIONS if s.mode == mode))
            await pilot.pause()
            assert isinstance(app.screen, screen), f"the {mode} section is built"
        await pilot.press("6")
        await pilot.pause()
        assert isinstance(app.screen, SourcesScreen)


async def test_every_section_from_the_palette(store, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        for section in [*SECTIONS[1:], SECTIONS[0]]:
            await pilot.press("ctrl+p")
            await pilot.press(*section.title.lower()[:3])
            await until(pilot, lambda: _palette_offers(app, f"Go to {section.title}"))
            await pilot.press("enter")
            await until(pilot, lambda: app.current_mode == section.mode)


def _palette_offers(app, title: str) -> bool:
    from textual.command import CommandList

    lists = app.screen.query(CommandList)
    if not lists:
        return False
    options = lists.first()
    return options.option_count > 0 and title in str(options.get_option_at_index(0).prompt)


# ---- themes and settings -------------------------------------------------------
async def test_theme_cycles_is_persisted_and_restored(store, tmp_path):
    settings = tmp_path / "config" / "settings.json"
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.theme == "dark"
        await pilot.pause(0.2)
        assert not settings.exists(), "nothing chosen yet: nothing written"
        seen = []
        for _ in range(3):
            await pilot.press("t")
            await pilot.pause()
            seen.append(app.theme)
        assert seen == ["light", "high-contrast", "dark"]
        await pilot.press("t")
        await until(pilot, lambda: load_settings(settings)[0].get("theme") == "light")
    assert json.loads(settings.read_text())["theme"] == "light"

    again = make_app(store, tmp_path)
    async with again.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert again.theme == "light"
        assert again.current_theme.dark is False


async def test_theme_from_palette_is_persisted(store, tmp_path):
    settings = tmp_path / "config" / "settings.json"
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"high")
        await until(pilot, lambda: _palette_offers(app, "Use theme high-contrast"))
        await pilot.press("enter")
        await until(pilot, lambda: app.theme == "high-contrast")
        await until(pilot, lambda: load_settings(settings)[0].get("theme") == "high-contrast")


async def test_broken_theme_file_is_reported_not_fatal(store, tmp_path):
    user_themes = tmp_path / "config" / "themes"
    user_themes.mkdir(parents=True)
    (user_themes / "broken.yaml").write_text("name: broken\ndark: true\nprimray: \"#123456\"\n")
    (user_themes / "ocean.yaml").write_text("name: ocean\ndark: true\nprimary: \"#1E90FF\"\n")
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("broken.yaml:3:1: unknown key 'primray'; did you mean 'primary'?" in m for m in messages)
        assert app.cycle_names == ["dark", "light", "high-contrast", "ocean"]
        assert "broken" not in app.available_themes


def test_theme_file_errors_name_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    cases = {
        "name: x\ndark: true\nprimary: notacolour\n": "bad.yaml:3:10: primary: 'notacolour' is not a colour",
        "name: x\nprimary: \"#fff\"\n": "bad.yaml:1:1: missing required key 'dark'",
        "name: x\ndark: maybe\nprimary: \"#fff\"\n": "bad.yaml:2:7: dark must be true or false",
        "name: x\n  dark: [\n": "bad.yaml:2:7: invalid YAML",
        "- a list\n": "bad.yaml:1:1: a theme file is a mapping",
    }
    for text, expected in cases.items():
        bad.write_text(text)
        with pytest.raises(ThemeFileError) as err:
            load_theme_file(bad)
        assert str(err.value).startswith(str(tmp_path / expected.split(":", 1)[0]))
        assert expected.split(":", 1)[1] in str(err.value), str(err.value)


def test_packaged_themes_are_the_top_level_ones_and_load():
    top = REPO / "themes"
    packaged = {p.name: p.read_bytes() for p in PACKAGE_THEME_DIR.iterdir() if p.is_file()}
    assert {"dark.yaml", "light.yaml", "high-contrast.yaml", "app.tcss"} <= set(packaged)
    assert {p.name: p.read_bytes() for p in top.iterdir() if p.is_file()} == packaged
    for name in ("dark", "light", "high-contrast"):
        assert load_theme_file(PACKAGE_THEME_DIR / f"{name}.yaml").name == name


def test_no_hex_colour_in_any_tcss():
    files = [*REPO.joinpath("themes").glob("*.tcss"), *REPO.joinpath("qbconsole").rglob("*.tcss")]
    assert files
    for path in files:
        css = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        assert not HEX_IN_VALUE.search(css), f"{path}: hex colour; use a theme variable"


def test_broken_settings_file_is_reported(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{\"theme\": ")
    settings, error = load_settings(path)
    assert settings == {} and error.startswith(f"{path}:1:11: settings are not valid JSON")


# ---- help and layout -----------------------------------------------------------
async def test_help_lists_every_key_and_closes(store, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = text_of(app.screen.query_one("#help-keys", Static))
        for expected in ["1", "6", "t", "?", "q", "ctrl+p"]:
            assert re.search(rf"^{re.escape(expected)}\s", keys, re.M), expected
        assert "Next theme" in keys and "Quit" in keys
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_works_at_80x24(store, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        await pilot.pause()
        screen = app.screen.region
        for tile in app.screen.query(Tile):
            assert screen.contains_region(tile.region), tile.id
            chart = tile.query_one(TimeChart)
            assert chart.region.height >= 5, tile.id
            for part in tile.query(".tile-value, .tile-status, .tile-detail"):
                text = text_of(part)
                assert "…" not in text and part.region.width >= len(text), (tile.id, text)
        footer = app.screen.query_one(Footer)
        assert footer.region.y == 23 and screen.contains_region(footer.region)
        shown = {key.key for key in footer.query(FooterKey)}
        assert {"1", "6", "t", "question_mark", "q"} <= shown
        for key in footer.query(FooterKey):
            assert screen.contains_region(key.region), key.key
        assert "sources DOWN" in status_text(app)
        await pilot.press("6")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert screen.contains_region(table.region)
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= table.region.width
        row = [str(c) for c in table.get_row("quickbid-api")]
        assert row[1] == "✖ DOWN" and row[4].startswith("ConnectError")


# ---- data shown ----------------------------------------------------------------
async def test_source_down_shows_down(tmp_path):
    store = seed_store(tmp_path / "qb.db")
    try:
        store.set_source_status(SourceStatus("system", False, NOW_MS - 1_000, 5.0, "TimeoutError: took 5 s"))
        app = make_app(store, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.snapshot is not None)
            await pilot.pause()
            assert "2 of 2 sources DOWN" in status_text(app)
            await pilot.press("6")
            await pilot.pause()
            table = app.screen.query_one(DataTable)
            states = {str(table.get_row(name)[0]): str(table.get_row(name)[1]) for name in ("system", "quickbid-api")}
            assert states == {"system": "✖ DOWN", "quickbid-api": "✖ DOWN"}
            detail = text_of(app.screen.query_one("#source-detail", Static))
            assert "TimeoutError: took 5 s" in detail or "ConnectError" in detail
    finally:
        store.close()


async def test_store_read_error_shows_in_status_line_and_app_keeps_running(store, tmp_path):
    app = make_app(store, tmp_path, refresh=0.1)
    real_select = store.select
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and app.snapshot.error is None)

        def broken(*args, **kw):
            raise sqlite3.OperationalError("disk I/O error")

        store.select = broken
        await until(pilot, lambda: app.snapshot.error is not None)
        await pilot.pause()
        line = status_text(app)
        assert "store read failed" in line and "OperationalError: disk I/O error" in line
        assert "showing data from 12:00:00" in line
        assert app.screen.query_one("#tile-cpu", Tile).status is Status.OK  # last good data kept
        await pilot.press("6")
        await pilot.pause()
        assert "store read failed" in status_text(app)
        store.select = real_select
        await until(pilot, lambda: app.snapshot.error is None)
        await pilot.pause()
        assert "refreshed" in status_text(app)
        assert app.is_running


async def test_tiles_show_values_targets_and_status(tmp_path):
    store = Store.open(tmp_path / "qb.db")
    try:
        # CPU average over target: crit; memory average ok but latest over target: warn.
        store.write([Sample("system_cpu_percent", {}, NOW_MS - i * 10_000, 90.0) for i in range(10)]
                    + [Sample("system_memory_percent", {}, NOW_MS - i * 10_000, 50.0) for i in range(1, 10)]
                    + [Sample("system_memory_percent", {}, NOW_MS, 95.0)])
        app = make_app(store, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.snapshot is not None)
            await pilot.pause()
            cpu, mem, disk, net = (app.screen.query_one(f"#tile-{k}", Tile)
                                   for k in ("cpu", "memory", "disk", "network"))
            assert (cpu.status, mem.status, disk.status, net.status) == (
                Status.CRIT, Status.WARN, Status.NO_DATA, Status.NO_DATA)
            assert cpu.has_class("-crit") and "CRIT" in text_of(cpu.query_one(".tile-status", Static))
            assert text_of(cpu.query_one(".tile-value", Static)) == "90.0 %"
            # ten samples cover 90 s of the 15 min window: the average says so
            assert text_of(cpu.query_one(".tile-detail", Static)) == "1m30s avg 90.0 % · target < 70 %"
            assert "target < 80 %" in text_of(mem.query_one(".tile-detail", Static))
            assert "NO DATA" in text_of(disk.query_one(".tile-status", Static))
            assert "○ no sources reported" in status_text(app) and "no agent" in status_text(app)
            description = text_of(app.screen.query_one("#tile-description", Static))
            assert description.startswith("CPU: ") and "system_cpu_percent" in description
            await pilot.press("tab")
            await pilot.pause()
            assert "Memory: " in text_of(app.screen.query_one("#tile-description", Static))
    finally:
        store.close()


async def test_charts_redraw_only_when_data_changes(store, tmp_path):
    app = make_app(store, tmp_path, refresh=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        await pilot.pause()
        charts = {tile.id: tile.query_one(TimeChart) for tile in app.screen.query(Tile)}
        before = {key: chart.draw_count for key, chart in charts.items()}
        assert all(n == 1 for n in before.values()), before
        first = app.snapshot
        await until(pilot, lambda: app.snapshot is not first)  # more polls, same data
        await pilot.pause(0.3)
        assert {key: chart.draw_count for key, chart in charts.items()} == before
        store.write([Sample("system_cpu_percent", {}, NOW_MS - 5_000, 99.0)])  # new CPU point only
        await until(pilot, lambda: charts["tile-cpu"].draw_count == 2)
        await pilot.pause(0.3)
        assert {key: chart.draw_count for key, chart in charts.items()} == {**before, "tile-cpu": 2}


def test_network_rate_handles_counter_reset_and_skips_loopback(store):
    assert counter_rates([(0, 100.0), (1000, 300.0), (2000, 50.0)]) == ((1000, 200.0), (2000, 50.0))
    snapshot = read_snapshot(store, NOW_MS)
    # Seeded: eth0 and lo each receive 120 kB/s + 40 kB/s * sin(i/5); lo must not be counted.
    # The last counter sample (NOW_MS + 3 ms) is after "now", so step 89 is the latest.
    ts, rate = snapshot.net_rx.latest
    assert ts == NOW_MS - 10_000 + 3
    assert rate == pytest.approx(120_000 + 40_000 * math.sin(89 / 5), abs=0.2)
    assert len(snapshot.net_rx.points) == 89
    assert snapshot.disk.label == "/" and snapshot.disk.latest == (NOW_MS, 72.5)


def test_judge_against_targets():
    cpu = Target("<", 70.0)
    assert judge(MetricWindow("x", ((1, 10.0), (2, 20.0))), cpu) is Status.OK
    assert judge(MetricWindow("x", ((1, 10.0), (2, 75.0))), cpu) is Status.WARN
    assert judge(MetricWindow("x", ((1, 80.0), (2, 60.0))), cpu) is Status.CRIT
    assert judge(MetricWindow("x"), cpu) is Status.NO_DATA
    assert judge(MetricWindow("x", ((1, 1.0),)), None) is Status.NO_TARGET


# ---- agent and terminal --------------------------------------------------------
class RecordingAgent:
    """Something with the agent's contract: non-blocking start()/stop(), a holder name."""

    holder = HOLDER

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def start(self) -> None:
        self.calls.append(("start", threading.current_thread() is threading.main_thread()))

    def stop(self) -> None:
        self.calls.append(("stop", threading.current_thread() is threading.main_thread()))


async def test_agent_started_on_mount_and_stopped_on_exit_off_the_ui_thread(store, tmp_path):
    agent = RecordingAgent()
    app = make_app(store, tmp_path, agent=agent)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: agent.calls == [("start", False)])
        await until(pilot, lambda: app.snapshot is not None)
        await pilot.pause()
        assert "(this console)" in status_text(app)
        await pilot.press("q")
    assert agent.calls == [("start", False), ("stop", False)]


async def test_sighup_exits_cleanly(store, tmp_path):
    agent = RecordingAgent()
    app = make_app(store, tmp_path, agent=agent)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        loop = asyncio.get_running_loop()
        assert signal.SIGHUP in loop._signal_handlers, "the console must handle SIGHUP itself"
        signal.raise_signal(signal.SIGHUP)
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == HANGUP_RETURN_CODE
    assert [name for name, _ in agent.calls] == ["start", "stop"]
    assert signal.SIGHUP not in asyncio.get_running_loop()._signal_handlers


def test_a_hangup_in_a_real_run_arms_the_watchdog_and_the_finished_run_calls_it_off(store, tmp_path, monkeypatch):
    armed: list[tuple[object, int, threading.Event]] = []

    def start_watchdog(agent, code, **_kw):
        event = threading.Event()
        armed.append((agent, code, event))
        return event

    monkeypatch.setattr("qbconsole.tui.hangup.start_watchdog", start_watchdog)
    agent = RecordingAgent()
    app = make_app(store, tmp_path, agent=agent)

    async def hang_up(pilot) -> None:  # under run(), as a terminal would
        await pilot.pause()
        signal.raise_signal(signal.SIGHUP)

    app.run(headless=True, size=(100, 30), auto_pilot=hang_up)
    assert app.return_code == HANGUP_RETURN_CODE
    assert [(a, code) for a, code, _ in armed] == [(agent, HANGUP_RETURN_CODE)]
    assert armed[0][2].is_set(), "run() returned: the watchdog must stand down"


async def test_theme_argument_overrides_without_being_saved_and_unknown_falls_back(store, tmp_path):
    settings = tmp_path / "config" / "settings.json"
    app = make_app(store, tmp_path, theme="high-contrast")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        assert app.theme == "high-contrast" and not settings.exists()
    app = make_app(store, tmp_path, theme="no-such-theme")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.theme == "dark"
        assert any("Unknown theme 'no-such-theme'" in n.message for n in app._notifications)


def test_lease_line_says_who_collects():
    lease = LeaseInfo(HOLDER, NOW_MS - 60_000, NOW_MS - 2_000, NOW_MS + 4_000)
    mine = lease_content(lease, NOW_MS, HOLDER).plain
    assert "(this console)" in mine and "heartbeat 2s ago" in mine and "expires in 4s" in mine
    assert "this console waits on standby" in lease_content(lease, NOW_MS, "me@here:1").plain
    gone = lease_content(lease, NOW_MS + 10_000, None).plain
    assert gone.startswith("✖ Agent gone") and "expired 6s ago" in gone
    assert lease_content(None, NOW_MS, None).plain.startswith("○ No agent holds the lease")
