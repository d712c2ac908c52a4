"""The Overview's metric groups and a figure's chart with its window picker.

A real store in tmp_path seeded with 15 minutes of every group's figures (some left
out on purpose), a frozen clock at NOW_MS. Pilot tests move between groups and
figures, check values, statuses and targets (from a config's SLOs), open charts and
switch windows (long windows read rollups: the raw samples behind them are purged);
snapshot tests pin each group, the 80x24 layout and a chart (regenerate with
``--snapshot-update`` after an intended change and read the SVGs' text first).
"""

from __future__ import annotations

import math

import pytest
from textual.widgets import Static

from helpers import until
from qbconsole.config import parse_config
from qbconsole.model import Sample
from qbconsole.store import Store
from qbconsole.tui.app import QBConsoleApp
from qbconsole.tui.groups import GROUPS, SPECS
from qbconsole.tui.history import WINDOWS, counter_minutes, read_history
from qbconsole.tui.metricdata import MINUTE_MS, per_minute, read_windows
from qbconsole.tui.screens.metric_chart import MetricChartScreen
from qbconsole.tui.screens.overview import OverviewScreen
from qbconsole.tui.targets import Status, Target, judge, targets_from_slos
from qbconsole.tui.widgets.metric_row import MetricRow, sparkline
from qbconsole.tui.metricdata import MetricWindow
from test_tui_snapshots import NOW_MS, seed_samples, utc, wait_for_data  # noqa: F401  (utc is a fixture)

STEP = 15_000
HOUR = 60 * MINUTE_MS
GAUGES = {  # recording rules and gauges: (labels, value at step i of 60)
    "quickbid:http_requests:rate1m": ({}, lambda i: 40 + i / 2),
    "quickbid:http_request_duration_seconds:avg5m": ({}, lambda i: 0.12),
    "quickbid:http_request_duration_seconds:p95_5m": ({}, lambda i: 0.35 + 0.05 * math.sin(i / 6)),
    "quickbid:http_request_duration_seconds:p99_5m": ({}, lambda i: 0.9),
    "quickbid:http_errors:ratio5m": ({}, lambda i: 0.02),
    "quickbid:http_requests_ok:rate1m": ({}, lambda i: 39 + i / 2),
    "quickbid_active_users": ({}, lambda i: 800 + i),
    "http_connections": ({}, lambda i: 120.0),
    "quickbid:db_query_duration_seconds:avg5m": ({}, lambda i: 0.004),
    "quickbid:cache_hit:ratio5m": ({}, lambda i: 0.95),
    "quickbid:signups:increase1h": ({}, lambda i: 270.0),
    "quickbid_active_auctions": ({}, lambda i: 480.0),
    "quickbid:bids:increase1h": ({}, lambda i: 600.0 + i),
    "quickbid:revenue:increase1h": ({}, lambda i: 8300.5),
    "quickbid:order_value:avg1h": ({}, lambda i: 244.25),
    "quickbid:rum_interaction_seconds:p75_5m": ({"page": "/bid"}, lambda i: 0.3),
    "quickbid:rum_bounce:ratio1h": ({}, lambda i: 0.26),
    "quickbid:rum_session_duration_seconds:avg1h": ({}, lambda i: 95.0),
    "quickbid:rum_task_completed:ratio1h": ({}, lambda i: 0.98),
}
"""Left out on purpose: conversion and satisfaction (they must say "no data")."""
PAGE_LOADS = {"/": 1.2, "/auction": 2.6, "/checkout": 1.8}


def seed_groups(store: Store, now: int = NOW_MS) -> None:
    """15 minutes of the Application, Business, UX and Security figures at 15 s steps."""
    samples = []
    for i in range(61):
        ts = now - (60 - i) * STEP
        for name, (labels, value) in GAUGES.items():
            samples.append(Sample(name, labels, ts, round(value(i), 6)))
        for page, seconds in PAGE_LOADS.items():
            samples.append(Sample("quickbid:rum_page_load_seconds:p75_5m", {"page": page}, ts, seconds))
        # counters: 3 failed logins a minute; security events by kind; nothing rate-limited
        samples.append(Sample("quickbid_login_failures_total", {}, ts, 100.0 + 0.75 * i))
        samples.append(Sample("quickbid_rate_limited_total", {}, ts, 7.0))
        samples.append(Sample("security_events_total", {"kind": "failed_login"}, ts, 50.0 + 0.75 * i))
        samples.append(Sample("security_events_total", {"kind": "blocked_ip"}, ts, 4.0 + 0.25 * i))
    store.write(samples)


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "qb.db")
    store.write(seed_samples(NOW_MS))
    seed_groups(store)
    yield store
    store.close()


def make_app(store, tmp_path, **kw) -> QBConsoleApp:
    kw.setdefault("clock", lambda: NOW_MS / 1000)
    kw.setdefault("settings_path", tmp_path / "config" / "settings.json")
    kw.setdefault("theme", "dark")
    return QBConsoleApp(store, **kw)


def rows(app) -> dict[str, MetricRow]:
    pane = app.screen.query_one(f"#group-{app.screen.group}")
    return {row.key: row for row in pane.query(MetricRow)}


async def show_group(pilot, key: str, *, keys: bool = True) -> None:
    """Show a group with the ``]`` key (or straight through the screen's action: quicker, for snapshots)."""
    app = pilot.app
    await until(pilot, lambda: app.snapshot is not None)
    if not keys:
        app.screen.action_show_group(key)
    while app.screen.group != key:
        await pilot.press("right_square_bracket")
    await until(pilot, lambda: all(row.view is not None for row in rows(app).values()) and rows(app))
    await pilot.pause()


# ---- pure parts -------------------------------------------------------------------------------
def test_sparkline_scales_slices_and_leaves_gaps_blank():
    points = ((0, 1.0), (10, 2.0), (20, 3.0), (30, 4.0))
    assert sparkline(points, 0, 39, 4) == "▁▃▆█"
    assert sparkline(((0, 5.0), (30, 5.0)), 0, 39, 4) == "▄  ▄"  # flat: the middle block; no point: blank
    assert sparkline((), 0, 39, 4) == "    "


def test_per_minute_counts_increases_per_whole_minute_with_resets():
    minute = MINUTE_MS
    points = [(0, 10.0), (30_000, 13.0), (minute, 16.0), (90_000, 2.0), (2 * minute, 5.0), (150_000, 5.0)]
    # minute 0: 3 + 3; minute 1: reset (2) + 3; minute 2 is not complete at now = 2.5 min
    assert per_minute([points], 0, 150_000) == ((minute, 6.0), (2 * minute, 5.0))
    assert counter_minutes([(0, 4, 0.0, 10.0, 16.0), (minute, 2, 0.0, 2.0, 5.0), (3 * minute, 1, 0.0, 11.0, 11.0)]) \
        == ((2 * minute, 5.0), (4 * minute, 3.0))  # a reset, then 6 over two minutes


def test_targets_come_from_slos_by_name_or_by_the_metric_their_expression_reads():
    slos = [
        {"name": "api_p95", "expr": "histogram_quantile(0.95, ...[W])", "op": "<", "target": 0.3},
        {"name": "checkout_tail", "expr": "max_over_time(quickbid:http_request_duration_seconds:p99_5m[W])",
         "op": "<", "target": 2},
        {"name": "throughput", "expr": "max_over_time(quickbid:http_requests_ok:rate1m[W])", "op": ">=",
         "target": 1000, "kind": "capacity"},
        {"name": "unrelated", "expr": "avg_over_time(probe_success[W])", "op": ">", "target": 0.999},
    ]
    names = [spec.name for group in GROUPS for spec in group.metrics]
    targets = targets_from_slos(slos, names)
    assert targets == {
        "quickbid:http_request_duration_seconds:p95_5m": Target("<", 0.3, "api_p95"),
        "quickbid:http_request_duration_seconds:p99_5m": Target("<", 2.0, "checkout_tail"),
        "quickbid:http_requests_ok:rate1m": Target(">=", 1000.0, "throughput", capacity=True),
    }
    capacity = targets["quickbid:http_requests_ok:rate1m"]
    assert judge(MetricWindow("x", ((1, 400.0), (2, 1200.0), (3, 300.0))), capacity) is Status.OK  # the peak
    assert judge(MetricWindow("x", ((1, 400.0),)), capacity) is Status.SHORT


def test_read_windows_reduces_each_figure(store):
    windows = read_windows(store, NOW_MS)
    page = windows["page-load"]
    assert page.label == "/auction" and page.latest == (NOW_MS, 2.6)  # the worst page
    assert windows["conversion"].latest is None and windows["satisfaction"].points == ()
    failures = windows["login-failures"]
    assert failures.latest == (NOW_MS, 3.0) and len(failures.points) == 15  # 3 a minute, whole minutes
    assert windows["security-events/blocked_ip"].latest[1] == pytest.approx(1.0)
    assert windows["security-events"].latest[1] == pytest.approx(4.0)  # all kinds together
    assert windows["rate-limited"].latest == (NOW_MS, 0.0)  # a flat counter is zero, not missing


# ---- pilot: groups, rows, statuses, targets ------------------------------------------------------
async def test_groups_rows_values_statuses_and_no_data_with_its_chart(store, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        assert isinstance(app.screen, OverviewScreen) and app.screen.group == "system"
        await show_group(pilot, "application")
        shown = rows(app)
        assert list(shown) == [spec.key for spec in GROUPS[1].metrics]
        p95, errors = shown["response-p95"].view, shown["errors"].view
        assert (p95.status, p95.target, p95.value) == (Status.OK, "< 500 ms", "323 ms")  # 0.35 + 0.05 sin(10)
        assert (errors.status, errors.value, errors.target) == (Status.CRIT, "2.0 %", "< 1 %")
        assert shown["throughput"].view.status is Status.SHORT and shown["throughput"].view.target == "≥ 1,000 req/s"
        assert shown["requests"].view.status is Status.NO_TARGET and shown["requests"].view.target == "no target"
        line = str(shown["errors"].render())
        assert "✖ CRIT" in line and "2.0 %" in line and "< 1 %" in line

        await pilot.press("right_square_bracket")
        await until(pilot, lambda: "conversion" in rows(app) and rows(app)["conversion"].view is not None)
        conversion = rows(app)["conversion"]
        assert (conversion.view.value, conversion.view.status) == ("no data", Status.NO_DATA)
        assert "○ NO DATA" in str(conversion.render()) and "%" not in conversion.view.value
        conversion.focus()
        await pilot.press("enter")  # its chart says the same
        await until(pilot, lambda: isinstance(app.screen, MetricChartScreen) and app.screen.history is not None)
        assert app.screen.spec.key == "conversion"
        assert str(app.screen.query_one("#chart-summary", Static).render()) == \
            "No data in the last 15m (raw samples)."
        assert "no data" in str(app.screen.query_one("#chart-heading", Static).render())
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, OverviewScreen))

        await show_group(pilot, "ux")
        page = rows(app)["page-load"].view
        assert page.title == "Page load p75 (/auction)" and page.status is Status.CRIT and page.target == "< 2 s"
        assert rows(app)["satisfaction"].view.value == "no data"

        await show_group(pilot, "security")
        assert list(rows(app)) == ["login-failures", "rate-limited", "security-events",
                                   "security-events/blocked_ip", "security-events/failed_login"]
        assert rows(app)["login-failures"].view.value == "3.0/min"

        await pilot.press("left_square_bracket")
        await until(pilot, lambda: app.screen.group == "ux")
        bar = str(app.screen.query_one("#group-bar", Static).render())
        assert "Application ✖1◇2" in bar and "User experience ✖1" in bar  # counts need no colour


async def test_arrows_and_tab_move_between_figures_and_the_preview_follows(store, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await show_group(pilot, "application")
        await until(pilot, lambda: isinstance(app.focused, MetricRow))
        assert app.focused.key == "requests" and "▶" in str(app.focused.render())
        await pilot.press("down", "down")
        assert app.focused.key == "response-p95"
        await pilot.press("tab")
        assert app.focused.key == "response-p99"
        await pilot.press("up")
        await pilot.pause()
        assert app.focused.key == "response-p95"
        description = str(app.screen.query_one("#tile-description", Static).render())
        assert "95th percentile" in description and "p95_5m" in description
        preview = app.screen.query_one("#group-application .preview")
        assert preview.border_title.startswith("Response p95")
        await pilot.click("#group-bar", offset=(5, 0))  # "System" on the group bar
        await until(pilot, lambda: app.screen.group == "system")


async def test_targets_from_the_configs_slos(store, tmp_path):
    config = parse_config("""
slos:
  - name: api_p95
    expr: histogram_quantile(0.95, sum by (le) (increase(http_request_duration_seconds_bucket[W])))
    op: "<"
    target: 0.3
    unit: seconds
  - name: tail_latency
    expr: max_over_time(quickbid:http_request_duration_seconds:p99_5m[W])
    op: "<"
    target: 2
    unit: seconds
""", "test-rules.yaml")
    app = make_app(store, tmp_path, config=config)
    async with app.run_test(size=(100, 30)) as pilot:
        await show_group(pilot, "application")
        shown = rows(app)
        assert (shown["response-p95"].view.target, shown["response-p95"].view.status) == ("< 300 ms", Status.CRIT)
        assert (shown["response-p99"].view.target, shown["response-p99"].view.status) == ("< 2 s", Status.OK)
        assert shown["errors"].view.target == "no target"  # this config has no error-rate SLO
        await until(pilot, lambda: app.screen.query_one("#tile-cpu").status is not Status.NO_DATA)
        assert app.screen.query_one("#tile-cpu").status is Status.NO_TARGET


# ---- pilot: charts and windows --------------------------------------------------------------------
@pytest.fixture
def long_store(tmp_path):
    """Five hours of p95 and failed logins; rolled up, then the raw samples older than an hour purged."""
    store = Store.open(tmp_path / "long.db", raw_retention_s=3600)
    samples = []
    for i in range(5 * 240 + 1):
        ts = NOW_MS - (5 * 240 - i) * STEP
        samples.append(Sample("quickbid:http_request_duration_seconds:p95_5m", {}, ts, 0.2 + 0.1 * ((i // 4) % 2)))
        samples.append(Sample("quickbid_login_failures_total", {}, ts, 1000.0 + 0.5 * i))
    store.write(samples)
    assert store.rollup(NOW_MS) > 0
    raw_deleted, _ = store.purge(NOW_MS)
    assert raw_deleted > 0
    yield store
    store.close()


def test_long_windows_read_rollups(long_store):
    p95 = SPECS["response-p95"]
    short = read_history(long_store, p95, HOUR, NOW_MS)
    assert short.source == "raw samples" and short.lines[0].points[0][0] >= NOW_MS - HOUR
    long = read_history(long_store, p95, 6 * HOUR, NOW_MS)
    assert long.source == "per-minute rollups"
    points = long.lines[0].points
    assert points[0][0] <= NOW_MS - 4 * HOUR  # older than any raw sample left
    # minutes alternate 0.2 and 0.3 (four 15 s samples each)
    assert {round(v, 6) for _, v in points} == {0.2, 0.3}
    failures = read_history(long_store, SPECS["login-failures"], 24 * HOUR, NOW_MS)
    values = [v for _, v in failures.lines[0].points]
    assert values and all(v == pytest.approx(2.0) for v in values)  # 0.5 per 15 s = 2 a minute


async def test_chart_opens_on_enter_and_switches_windows(long_store, tmp_path):
    app = make_app(long_store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await show_group(pilot, "application")
        await pilot.press("down", "down", "enter")
        await until(pilot, lambda: isinstance(app.screen, MetricChartScreen) and app.screen.history is not None)
        chart = app.screen
        assert chart.spec.key == "response-p95" and chart.history.window_ms == WINDOWS[0][1]
        assert "Window" in str(chart.query_one("#window-picker", Static).render())
        seen = []
        for _ in range(len(WINDOWS)):
            await pilot.press("w")
            await until(pilot, lambda: chart.history.window_ms == WINDOWS[chart.window][1])
            seen.append((WINDOWS[chart.window][0], chart.history.source))
        assert seen == [("1h", "raw samples"), ("6h", "per-minute rollups"), ("24h", "per-minute rollups"),
                        ("7d", "per-minute rollups"), ("15m", "raw samples")]
        await pilot.press("left_square_bracket")  # from 15m back round to 7d: 28-minute bins average
        await until(pilot, lambda: chart.window == len(WINDOWS) - 1 and chart.history.window_ms == WINDOWS[-1][1])
        summary = str(chart.query_one("#chart-summary", Static).render())
        assert "average 250 ms" in summary and "per-minute rollups" in summary
        await pilot.press("right_square_bracket", "w", "w")  # 15m, 1h, 6h: one point a minute
        await until(pilot, lambda: chart.window == 2 and chart.history.window_ms == WINDOWS[2][1])
        summary = str(chart.query_one("#chart-summary", Static).render())
        assert "low 200 ms" in summary and "high 300 ms" in summary and "at 12:00:00" in summary
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, OverviewScreen))


async def test_groups_usable_at_80x24(store, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen.region
        for group in GROUPS[1:]:
            await show_group(pilot, group.key)
            for row in rows(app).values():
                assert screen.contains_region(row.region), row.key
                text = str(row.render())
                assert row.view.value in text and row.view.target in text, row.key
            bar = app.screen.query_one("#group-bar", Static)
            assert str(bar.render()).count("│") == len(GROUPS) - 1 and len(str(bar.render())) <= bar.region.width
            preview = app.screen.query_one(f"#group-{group.key} .preview")
            assert preview.region.height >= 5 and screen.contains_region(preview.region)


# ---- snapshots --------------------------------------------------------------------------------------
@pytest.fixture
def frozen(tmp_path, utc, store):
    return make_app(store, tmp_path, refresh=60.0)


@pytest.mark.parametrize("group", [g.key for g in GROUPS[1:]])
def test_group_snapshot(snap_compare, frozen, group):
    async def run_before(pilot):
        await wait_for_data(pilot)
        await show_group(pilot, group, keys=False)

    assert snap_compare(frozen, terminal_size=(100, 30), run_before=run_before)


def test_application_snapshot_80x24(snap_compare, frozen):
    async def run_before(pilot):
        await wait_for_data(pilot)
        await show_group(pilot, "application", keys=False)

    assert snap_compare(frozen, terminal_size=(80, 24), run_before=run_before)


def test_chart_snapshot(snap_compare, frozen):
    async def run_before(pilot):
        await wait_for_data(pilot)
        await show_group(pilot, "ux", keys=False)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, MetricChartScreen)
                    and pilot.app.screen.history is not None)
        await pilot.pause()

    assert snap_compare(frozen, terminal_size=(100, 30), run_before=run_before)


def test_finite_drops_nans_and_gives_int_times_and_float_values():
    from qbconsole.model import STALE_NAN
    from qbconsole.tui.metricdata import finite

    plain = [(1_000, 1.5), (2_000, 2.5)]
    assert finite(plain) == ((1_000, 1.5), (2_000, 2.5))
    mixed = [(1_000, 1.5), (2_000, float("nan")), (3_000, STALE_NAN), (4_000, 7), (5_000.0, 2.0)]
    got = finite(iter(mixed))
    assert got == ((1_000, 1.5), (4_000, 7.0), (5_000, 2.0))
    assert [(type(t), type(v)) for t, v in got] == [(int, float)] * 3
    assert finite([(True, 1.0)]) == ((1, 1.0),) and type(finite([(True, 1.0)])[0][0]) is int
    assert finite([]) == ()
