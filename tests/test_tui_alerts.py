"""The console's Alerts section and the alert figures of the status line.

A real store in tmp_path, seeded through ``qbconsole.store.alerts`` and the
outbox's own functions; the clock is frozen at NOW_MS. Pilot tests drive the
feed, the acknowledge and silence dialogs, the detail screen and the filters;
snapshot tests pin how they look (regenerate with ``--snapshot-update`` after an
intended change and read the SVGs' text before committing them).
"""

from __future__ import annotations

import getpass
import time

import pytest
from textual.widgets import DataTable, Footer, Input, Static
from textual.widgets._footer import FooterKey

from helpers import until
from qbconsole.notify import outbox
from qbconsole.notify.channels import DeliveryError
from qbconsole.store import Store
from qbconsole.store import alerts as rows
from qbconsole.store.alerts import Matcher
from qbconsole.tui.alertfmt import (
    compact_labels, firing_counts, matchers_text, parse_matchers, value_metric, value_text,
)
from qbconsole.tui.app import QBConsoleApp
from qbconsole.tui.modals.ack import AckModal, parse_timeout
from qbconsole.tui.modals.silence import SilenceModal
from qbconsole.tui.screens.alert_detail import AlertDetailScreen
from qbconsole.tui.screens.alerts import EMPTY, NARROW_COLUMNS, WIDE_COLUMNS, AlertsScreen, AlertTable
from qbconsole.tui.widgets.chrome import StatusLine
from test_tui_snapshots import NOW_MS, seed_store, utc, wait_for_data  # noqa: F401  (utc is a fixture)

MIN = 60_000
OPERATOR = "carol"
EXPRS = {
    "HighMemory": "system_memory_percent > 85",
    "HighCPU": "system_cpu_percent > 80",
    "LowConversion": "quickbid:conversion:ratio1h < 0.10 and on() sum(increase(quickbid_sessions_total[1h])) > 100",
    "HighResponseTime": "quickbid:http_request_duration_seconds:avg5m > 2",
    "HighErrorRate": "quickbid:http_errors:ratio5m > 0.05",
    "QueueBacklog": "sum(quickbid_request_queue) / 3 > 10",
}
FEED_ORDER = ["HighMemory", "HighCPU", "LowConversion", "QueueBacklog", "HighResponseTime", "HighErrorRate"]
"""Firing (critical, then warnings newest first), pending, resolved: the store's order."""


class Accepts:
    def send(self, payload, key, done=frozenset()):
        return None


class Refuses:
    def __init__(self, message: str, retryable: bool, retry_after_s: float | None = None) -> None:
        self.error = DeliveryError(message, retryable, retry_after_s)

    def send(self, payload, key, done=frozenset()):
        raise self.error


def _alert(conn, rule, labels, annotations, severity, *, value, active_ago, fired_ago=None, resolved_ago=None,
           now=NOW_MS) -> int:
    """An alert that went pending, maybe fired and maybe resolved, with the engine's events."""
    labels = {"alertname": rule, "severity": severity, **labels}
    active = now - active_ago
    alert_id = rows.insert_alert(conn, rule, f"fp-{rule}", labels, annotations, severity, "pending", value,
                                 active, None, active)
    rows.add_event(conn, alert_id, active, "pending", rows.ENGINE, {"from": "inactive", "value": value})
    if fired_ago is not None:
        fired = now - fired_ago
        rows.update_alert(conn, alert_id, state="firing", value=value, annotations=annotations, fired_at=fired,
                          resolved_at=None, keep_firing_since=None, t=fired)
        rows.add_event(conn, alert_id, fired, "firing", rows.ENGINE, {"from": "pending", "value": value})
    if resolved_ago is not None:
        resolved = now - resolved_ago
        rows.update_alert(conn, alert_id, state="resolved", value=value, annotations=annotations,
                          fired_at=now - fired_ago, resolved_at=resolved, keep_firing_since=None, t=resolved)
        rows.add_event(conn, alert_id, resolved, "resolved", rows.ENGINE, {"from": "firing", "value": value})
    return alert_id


def seed_alerts(store: Store, now: int = NOW_MS) -> dict[str, int]:
    """Six alerts in every state; HighCPU acknowledged by alice; three notifications for HighMemory."""
    def seed(conn) -> dict[str, int]:
        ids = {
            "HighMemory": _alert(conn, "HighMemory", {"instance": "web-1"},
                                 {"summary": "Memory above 85 % on web-1",
                                  "description": "92.3 % of memory in use; the OOM killer is next."},
                                 "critical", value=92.3, active_ago=8 * MIN, fired_ago=7 * MIN),
            "HighCPU": _alert(conn, "HighCPU", {"instance": "web-2"}, {"summary": "CPU above 80 % on web-2"},
                              "warning", value=88.5, active_ago=5 * MIN, fired_ago=3 * MIN),
            "LowConversion": _alert(conn, "LowConversion", {}, {"summary": "Conversion below 10 %"},
                                    "warning", value=0.073, active_ago=20 * MIN, fired_ago=12 * MIN),
            "QueueBacklog": _alert(conn, "QueueBacklog", {"job": "api"}, {}, "info", value=12.6667,
                                   active_ago=15 * MIN, fired_ago=14 * MIN),
            "HighResponseTime": _alert(conn, "HighResponseTime", {"route": "/bid"}, {"summary": "Slow /bid"},
                                       "warning", value=2.4, active_ago=30_000),
            "HighErrorRate": _alert(conn, "HighErrorRate", {}, {"summary": "5xx above 5 %"}, "critical",
                                    value=0.081, active_ago=30 * MIN, fired_ago=29 * MIN, resolved_ago=5 * MIN),
        }
        rows.acknowledge(conn, ids["HighCPU"], "alice", now - 2 * MIN, "looking")
        for channel in ("email", "slack", "sms"):
            outbox.enqueue(conn, dedup_key=f"k-{channel}", channel=channel, route="default", group_key="g",
                           kind="firing", payload={"alerts": ["HighMemory"]}, alert_ids=[ids["HighMemory"]],
                           now=now - 6 * MIN)
        return ids

    ids = store.transaction(seed)
    outbox.deliver_due(store, {"email": Accepts(), "slack": Refuses("HTTP 503 Service Unavailable", True, 30),
                               "sms": Refuses("HTTP 400 Bad Request: invalid 'To' number", False)},
                       now - 6 * MIN + 5_000)
    return ids


@pytest.fixture
def store(tmp_path):
    """Alerts only: the Overview has no metrics to chart, which keeps pilot tests quick."""
    store = Store.open(tmp_path / "qb.db")
    yield store
    store.close()


@pytest.fixture
def full_store(tmp_path):
    """Alerts and the system metrics, sources and lease of the Overview snapshot tests."""
    store = seed_store(tmp_path / "qb.db")
    seed_alerts(store)
    yield store
    store.close()


@pytest.fixture
def ids(store):
    return seed_alerts(store)


def make_app(store, tmp_path, **kw) -> QBConsoleApp:
    kw.setdefault("clock", lambda: NOW_MS / 1000)
    kw.setdefault("refresh", 1.0)
    kw.setdefault("settings_path", tmp_path / "config" / "settings.json")
    kw.setdefault("operator", OPERATOR)
    kw.setdefault("alert_exprs", EXPRS)
    kw.setdefault("theme", "dark")
    return QBConsoleApp(store, **kw)


async def open_alerts(pilot) -> AlertTable:
    await until(pilot, lambda: pilot.app.snapshot is not None)
    await pilot.press("2")
    await until(pilot, lambda: isinstance(pilot.app.screen, AlertsScreen))
    await pilot.pause()
    return pilot.app.screen.query_one(AlertTable)


def feed(table: DataTable) -> list[dict[str, str]]:
    """The table as rows of column key -> shown text."""
    keys = [c.key.value for c in table.ordered_columns]
    return [dict(zip(keys, map(str, table.get_row(r.key)))) for r in table.ordered_rows]


def text_of(widget: Static) -> str:
    return str(widget.render())


def status_text(app) -> str:
    return text_of(app.screen.query_one(StatusLine))


def acks(store: Store) -> dict[str, tuple]:
    return {a.rule: (a.ack_by, a.ack_at, a.ack_comment, a.ack_expires)
            for a in rows.current_alerts(store.read(), NOW_MS)}


async def select(pilot, table: DataTable, ids: dict[str, int], rule: str) -> None:
    table.move_cursor(row=table.get_row_index(str(ids[rule])))
    await pilot.pause()


# ---- the feed -----------------------------------------------------------------------------------
async def test_feed_lists_alerts_in_store_order_and_fits_80x24(store, ids, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        table = await open_alerts(pilot)
        assert [c.key.value for c in table.ordered_columns] == [k for k, _ in WIDE_COLUMNS]
        shown = feed(table)
        assert [r["name"] for r in shown] == FEED_ORDER
        assert [a.rule for a in rows.current_alerts(store.read(), NOW_MS)] == FEED_ORDER
        by_name = {r["name"]: r for r in shown}
        assert by_name["HighMemory"] == {
            "severity": "✖ CRITICAL", "name": "HighMemory", "labels": "instance=web-1", "value": "92.3 %",
            "since": "7m", "state": "● FIRING", "ack": "—"}
        assert by_name["HighCPU"]["ack"] == "✔ alice" and by_name["HighCPU"]["since"] == "3m"
        assert by_name["LowConversion"]["value"] == "7.3 %"  # the ratio's unit, left of `and`
        assert by_name["QueueBacklog"]["value"] == "12.67"  # computed: a compact number
        assert by_name["QueueBacklog"]["severity"] == "● INFO"
        assert by_name["HighResponseTime"]["value"] == "2.4 s"
        assert by_name["HighResponseTime"]["state"] == "◌ PENDING"
        assert by_name["HighResponseTime"]["since"] == "30s"
        assert by_name["HighErrorRate"]["state"] == "✔ RESOLVED" and by_name["HighErrorRate"]["labels"] == ""
        line = status_text(app)
        assert "✖ 1 critical" in line and "▲ 2 warning" in line and "● 1 info" in line
        assert "✉ 1 notification pending (6m)" in line and "sources DOWN" not in line  # no sources here
        summary = text_of(app.screen.query_one("#alerts-summary", Static))
        assert summary.startswith("4 firing · 1 pending · 1 resolved")

        # At 80x24 the essential columns remain, and the highlighted alert stays highlighted.
        await select(pilot, table, ids, "HighCPU")
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: len(table.ordered_columns) == 5)
        await pilot.pause()
        assert app.screen.selected_id() == ids["HighCPU"], "the highlighted alert stays highlighted"
        assert [c.key.value for c in table.ordered_columns] == ["severity", "name", "state", "since", "ack"]
        assert [k for k, _ in NARROW_COLUMNS] == ["severity", "name", "state", "since", "ack"]
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= table.region.width
        assert app.screen.region.contains_region(table.region)
        assert [r["name"] for r in feed(table)] == FEED_ORDER
        footer = app.screen.query_one(Footer)
        shown = {key.key for key in footer.query(FooterKey) if app.screen.region.contains_region(key.region)}
        assert {"a", "s", "enter", "slash", "f"} <= shown, shown


async def test_empty_store_says_where_alerts_come_from(tmp_path):
    store = Store.open(tmp_path / "qb.db")
    try:
        app = make_app(store, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.snapshot is not None)
            await pilot.pause()
            assert "✔ no alerts firing" in status_text(app) and "notification" not in status_text(app)
            await open_alerts(pilot)
            empty = app.screen.query_one("#alerts-empty", Static)
            assert empty.display and text_of(empty) == EMPTY
            assert not app.screen.query_one(AlertTable).display
            await pilot.press("a")  # nothing to acknowledge: no dialog
            await pilot.pause()
            assert isinstance(app.screen, AlertsScreen)
    finally:
        store.close()


# ---- acknowledge --------------------------------------------------------------------------------
async def test_escape_acknowledges_nothing_then_acknowledge_with_comment_and_timeout(store, ids, tmp_path):
    app = make_app(store, tmp_path)
    before = acks(store)
    events_before = rows.events(store.read(), ids["HighMemory"])
    async with app.run_test(size=(100, 30)) as pilot:
        table = await open_alerts(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AckModal))
        await pilot.press("x", "escape")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        await pilot.pause(0.1)
        assert acks(store) == before and before["HighMemory"][0] is None
        assert rows.events(store.read(), ids["HighMemory"]) == events_before

        await pilot.click("#alerts-ack-button")  # the button does what `a` does
        await until(pilot, lambda: isinstance(app.screen, AckModal))
        assert app.screen.alert.id == ids["HighMemory"]
        assert app.screen.focused is app.screen.query_one("#ack-comment", Input)
        await pilot.press(*"on it")
        assert app.screen.query_one("#ack-comment", Input).value == "on it"
        app.screen.query_one("#ack-comment", Input).value = "rolling back"
        app.screen.query_one("#ack-timeout", Input).value = "soon"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AckModal), "a bad timeout keeps the dialog open"
        assert "timeout 'soon' is not a duration" in text_of(app.screen.query_one("#ack-error", Static))
        assert acks(store)["HighMemory"][0] is None
        app.screen.query_one("#ack-timeout", Input).value = "2h"
        await pilot.press("enter")
        await until(pilot, lambda: acks(store)["HighMemory"][0] is not None)
        assert acks(store)["HighMemory"] == (OPERATOR, NOW_MS, "rolling back", NOW_MS + 2 * 3_600_000)
        kinds = [(e.kind, e.actor, e.detail.get("comment")) for e in rows.events(store.read(), ids["HighMemory"])]
        assert ("acknowledged", OPERATOR, "rolling back") in kinds
        await until(pilot, lambda: feed(table)[0]["ack"] == f"✔ {OPERATOR}")
        assert any(f"Acknowledged HighMemory (#{ids['HighMemory']}) as {OPERATOR}" in n.message
                   for n in app._notifications)


async def test_acknowledging_a_resolved_alert_is_refused(store, ids, tmp_path):
    app = make_app(store, tmp_path)
    before = acks(store)
    async with app.run_test(size=(100, 30)) as pilot:
        table = await open_alerts(pilot)
        await select(pilot, table, ids, "HighErrorRate")
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen), "no dialog for a resolved alert"
        assert any(n.severity == "error" and "is resolved" in n.message for n in app._notifications)
        # Resolved by the engine while the dialog is open: the store refuses, the console says why.
        await select(pilot, table, ids, "HighMemory")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AckModal))
        store.transaction(lambda c: rows.update_alert(
            c, ids["HighMemory"], state="resolved", value=80.0, annotations={}, fired_at=NOW_MS - 7 * MIN,
            resolved_at=NOW_MS - 1_000, keep_firing_since=None, t=NOW_MS - 1_000))
        await pilot.press("enter")
        await until(pilot, lambda: any("only active alerts can be acknowledged" in n.message
                                       for n in app._notifications))
    assert acks(store) == before
    assert "acknowledged" not in [e.kind for e in rows.events(store.read(), ids["HighMemory"])]


# ---- silence ------------------------------------------------------------------------------------
async def test_silence_refuses_bad_matchers_inline_then_creates_the_silence(store, ids, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_alerts(pilot)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SilenceModal))
        modal = app.screen
        error = modal.query_one("#silence-error", Static)
        modal.query_one("#silence-matchers", Input).value = 'alertname="HighMemory" instance~web'
        modal.query_one("#silence-comment", Input).value = "maintenance"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SilenceModal)
        assert "bad matcher 'instance~web'" in text_of(error)
        modal.query_one("#silence-matchers", Input).value = 'instance=~"web-("'
        await pilot.press("enter")
        await pilot.pause()
        assert "bad regular expression" in text_of(error)
        modal.query_one("#silence-matchers", Input).value = 'alertname="HighMemory"'
        modal.query_one("#silence-comment", Input).value = "  "
        await pilot.press("enter")
        await pilot.pause()
        assert "a comment is required" in text_of(error)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        await pilot.pause(0.1)
        assert rows.silences(store.read()) == []

        # Then a good one, from the highlighted HighCPU.
        table = app.screen.query_one(AlertTable)
        await select(pilot, table, ids, "HighCPU")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SilenceModal))
        modal = app.screen
        box = modal.query_one("#silence-matchers", Input)
        assert box.value == 'alertname="HighCPU" instance="web-2" severity="warning"'
        assert modal.query_one("#silence-duration", Input).value == "1h"
        assert modal.focused is modal.query_one("#silence-comment", Input)
        box.value = 'alertname="HighCPU" instance=~"web-.*"'
        await pilot.pause()
        assert "Mutes 1 alert in the feed (including this one) for 1h" in text_of(modal.query_one("#silence-matches"))
        modal.query_one("#silence-comment", Input).value = "deploy 4.2"
        await pilot.press("enter")
        await until(pilot, lambda: rows.silences(store.read(), NOW_MS) != [])
        (silence,) = rows.silences(store.read(), NOW_MS)
        assert silence.matchers == [Matcher("alertname", "=", "HighCPU"), Matcher("instance", "=~", "web-.*")]
        assert (silence.created_by, silence.comment) == (OPERATOR, "deploy 4.2")
        assert (silence.starts_at, silence.ends_at) == (NOW_MS, NOW_MS + 3_600_000)
        await until(pilot, lambda: {r["name"]: r["ack"] for r in feed(table)}["HighCPU"] == "✔ alice · silenced")
        assert {r["name"]: r["ack"] for r in feed(table)}["HighMemory"] == "—"


# ---- detail -------------------------------------------------------------------------------------
async def test_detail_shows_annotations_history_and_delivery(store, ids, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_alerts(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AlertDetailScreen))
        screen = app.screen
        await until(pilot, lambda: "HighMemory" in text_of(screen.query_one("#detail-heading", Static)))
        await pilot.pause()
        facts = text_of(screen.query_one("#detail-facts", Static))
        assert "Summary: Memory above 85 % on web-1" in facts
        assert "Description: 92.3 % of memory in use; the OOM killer is next." in facts
        assert "Labels: alertname=HighMemory instance=web-1 severity=critical" in facts
        assert "Value: 92.3 %" in facts and "expr: system_memory_percent > 85" in facts
        assert "Active since 11:52:00 (8m ago)" in facts and "Fired at 11:53:00 (7m ago)" in facts
        assert "Not acknowledged" in facts
        history = text_of(screen.query_one("#detail-history", Static)).splitlines()
        assert [line.split()[1] for line in history] == [
            "pending", "firing", "notified", "notify_failed", "notify_failed"]
        assert "from inactive · value 92.3 %" in history[0]
        assert history[2].endswith("notifier  firing to email, attempt 1: delivered")
        assert history[3].endswith("firing to slack, attempt 1: retry at 11:54:35 · HTTP 503 Service Unavailable")
        assert history[4].endswith("firing to sms, attempt 1: failed · HTTP 400 Bad Request: invalid 'To' number")
        notes = text_of(screen.query_one("#detail-notifications", Static))
        assert "email  firing  ✔ delivered  1 attempt · delivered 11:54:05 (5m55s ago)" in notes
        assert "slack  firing  … pending    1 attempt · next attempt 11:54:35 (overdue 5m25s)" in notes
        assert "last error: HTTP 503 Service Unavailable" in notes
        assert "sms    firing  ✖ failed" in notes and "last error: HTTP 400 Bad Request" in notes
        # Live: an acknowledgement made elsewhere shows at the next poll, with its history row.
        store.transaction(lambda c: rows.acknowledge(c, ids["HighMemory"], "dave", NOW_MS - 1_000, "on it"))
        app.poll_now()
        await until(pilot, lambda: "Acknowledged by dave" in text_of(screen.query_one("#detail-facts", Static)))
        assert '"on it"' in text_of(screen.query_one("#detail-facts", Static))
        assert "acknowledged" in text_of(screen.query_one("#detail-history", Static))
        await pilot.press("a")  # taking it over, from the detail
        await until(pilot, lambda: isinstance(app.screen, AckModal))
        await pilot.press("x", "enter")
        await until(pilot, lambda: app.screen is screen)
        await until(pilot, lambda: f"Acknowledged by {OPERATOR}" in text_of(screen.query_one("#detail-facts")))
        assert acks(store)["HighMemory"][:3] == (OPERATOR, NOW_MS, "x")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen))
        assert app.detail_alert_id is None


# ---- filters and palette ------------------------------------------------------------------------
async def test_text_and_state_filters_and_the_palette(store, ids, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        table = await open_alerts(pilot)
        names = lambda: [r["name"] for r in feed(table)]  # noqa: E731
        await pilot.press("slash")
        assert app.screen.focused is app.screen.query_one("#alerts-filter", Input)
        await pilot.press("2")  # typing filters as it goes: instance=web-2
        await until(pilot, lambda: names() == ["HighCPU"])
        app.screen.query_one("#alerts-filter", Input).value = "web-"
        await pilot.pause()
        assert names() == ["HighMemory", "HighCPU"]
        await pilot.press("enter")
        assert app.screen.focused is table
        assert 'showing 2 of 6: "web-"' in text_of(app.screen.query_one("#alerts-summary", Static))
        await pilot.press("escape")
        await until(pilot, lambda: names() == FEED_ORDER)

        await pilot.press("f")
        await until(pilot, lambda: names() == FEED_ORDER[:4])
        assert "showing 4 of 6: firing" in text_of(app.screen.query_one("#alerts-summary", Static))
        await pilot.press("f")
        await until(pilot, lambda: names() == ["HighResponseTime"])
        await pilot.press("f")
        await until(pilot, lambda: names() == ["HighErrorRate"])
        await pilot.press("slash", "z", "z", "enter")
        await pilot.pause()
        empty = app.screen.query_one("#alerts-empty", Static)
        assert empty.display and "No alert matches the filter" in text_of(empty)
        await pilot.press("escape")
        await until(pilot, lambda: names() == FEED_ORDER)

        # The same actions by name in the command palette.
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Acknowledge (Alerts)", "Silence (Alerts)", "Filter (Alerts)", "State (Alerts)",
                      "Details (Alerts)"):
            assert title in titles
        await pilot.press("ctrl+p", *"ack")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AckModal))


# ---- two consoles -------------------------------------------------------------------------------
async def test_an_acknowledgement_in_one_console_shows_in_another_within_two_seconds(store, ids, tmp_path):
    first = make_app(store, tmp_path, operator="erin")
    second = make_app(store, tmp_path, operator="frank")
    async with first.run_test(size=(100, 30)) as one, second.run_test(size=(100, 30)) as two:
        table_one, table_two = await open_alerts(one), await open_alerts(two)
        assert feed(table_two)[0]["ack"] == "—"
        await one.press("a")
        await until(one, lambda: isinstance(first.screen, AckModal))
        await one.press("enter")
        await until(one, lambda: acks(store)["HighMemory"][0] == "erin")
        started = time.monotonic()
        await until(two, lambda: feed(table_two)[0]["ack"] == "✔ erin", timeout=2.5)
        assert time.monotonic() - started < 2.0
        assert feed(table_one)[0]["ack"] == "✔ erin"


# ---- pure parts ---------------------------------------------------------------------------------
def test_value_units_come_from_plain_metric_expressions():
    assert value_metric("system_cpu_percent > 80") == "system_cpu_percent"
    assert value_metric("80 < system_cpu_percent") == "system_cpu_percent"
    assert value_metric("avg_over_time(system_cpu_percent[15m]) > 70") == "system_cpu_percent"
    assert value_metric('max by (mount) (system_disk_percent{mount!="/boot"}) > 90') == "system_disk_percent"
    assert value_metric("quickbid:conversion:ratio1h < 0.1 and on() x > 100") == "quickbid:conversion:ratio1h"
    assert value_metric('up{job="a and b"} == 0') == "up"
    assert value_metric("system_cpu_percent > bool 80") is None  # 0 or 1, not a percentage
    assert value_metric("sum(rate(http_requests_total[5m])) > 3") is None
    assert value_metric(None) is None
    assert value_text(92.25, "system_cpu_percent > 80") == "92.2 %"
    assert value_text(0.0, "probe_success == 0") == "no"
    assert value_text(0.000123, "a / b > 0") == "0.000123"
    assert value_text(123456.0, None) == "123k"
    assert value_text(None, "x") == "—" and value_text(float("nan"), "x") == "—"


def test_matchers_round_trip_through_text():
    labels = {"severity": "warning", "alertname": "HighCPU", "path": 'C:\\tmp "x"'}
    text = matchers_text(labels)
    assert text.startswith('alertname="HighCPU" ')
    assert parse_matchers(text) == [Matcher(k, "=", labels[k]) for k in ("alertname", "path", "severity")]
    assert parse_matchers('a!=b c=~"x y" d!~"z"') == [Matcher("a", "!=", "b"), Matcher("c", "=~", "x y"),
                                                    Matcher("d", "!~", "z")]
    for bad, reason in (("", "at least one matcher"), ("a", "bad matcher 'a'"), ('a="b', "not closed"),
                        ('a=~"("', "bad regular expression")):
        with pytest.raises(ValueError, match=reason):
            parse_matchers(bad)


def test_small_helpers():
    assert compact_labels({"alertname": "X", "severity": "critical", "b": "2", "a": "1"}) == "a=1 b=2"
    assert parse_timeout("") is None and parse_timeout("1h30m") == 5_400_000
    with pytest.raises(ValueError, match="not a duration"):
        parse_timeout("later")
    with pytest.raises(ValueError, match="longer than zero"):
        parse_timeout("0s")


def test_firing_counts_most_severe_first(store, ids):
    assert firing_counts(rows.current_alerts(store.read(), NOW_MS)) == [("critical", 1), ("warning", 2), ("info", 1)]


def test_operator_defaults_to_the_os_user(store, tmp_path):
    app = QBConsoleApp(store, settings_path=tmp_path / "s.json")
    assert app.operator == getpass.getuser()


# ---- snapshots ----------------------------------------------------------------------------------
@pytest.fixture
def frozen_alerts_app(full_store, tmp_path, utc):  # noqa: F811  (utc is the fixture imported above)
    return make_app(full_store, tmp_path, refresh=60.0)


async def _feed_ready(pilot) -> None:
    await wait_for_data(pilot)
    await pilot.press("2")
    await until(pilot, lambda: isinstance(pilot.app.screen, AlertsScreen))
    await pilot.pause()


def test_alerts_feed_snapshot(snap_compare, frozen_alerts_app):
    assert snap_compare(frozen_alerts_app, terminal_size=(100, 30), run_before=_feed_ready)


def test_alerts_feed_snapshot_80x24(snap_compare, frozen_alerts_app):
    assert snap_compare(frozen_alerts_app, terminal_size=(80, 24), run_before=_feed_ready)


def test_alert_detail_snapshot(snap_compare, frozen_alerts_app):
    async def detail(pilot):
        await _feed_ready(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, AlertDetailScreen)
                    and pilot.app.screen.current() is not None)
        await pilot.pause()

    assert snap_compare(frozen_alerts_app, terminal_size=(100, 30), run_before=detail)


def test_ack_modal_snapshot(snap_compare, frozen_alerts_app):
    async def modal(pilot):
        await _feed_ready(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(pilot.app.screen, AckModal))
        app = pilot.app
        app.screen.query_one("#ack-comment", Input).value = "rolling back"
        await pilot.pause()

    assert snap_compare(frozen_alerts_app, terminal_size=(100, 30), run_before=modal)


def test_overview_status_line_snapshot(snap_compare, frozen_alerts_app):
    assert snap_compare(frozen_alerts_app, terminal_size=(100, 30), run_before=wait_for_data)
