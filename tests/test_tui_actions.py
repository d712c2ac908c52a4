"""The console's Actions section: proposals, the confirmation dialog, rejection, audit, two consoles.

A real store in tmp_path, seeded through ``qbconsole.actions``' own functions
(``engine_insert`` as the engine proposes, ``approve``/``reject`` and the
engine's claim/finish/verdict steps for the history); the clock is frozen at
NOW_MS. The console never runs an action: these tests check what it writes
(the decision, who made it, the audit row) and what it shows.
"""

from __future__ import annotations

import time

import pytest
from textual.widgets import Button, DataTable, Footer, Input, Static
from textual.widgets._footer import FooterKey

from helpers import until
from qbconsole.actions import approve, audit_entries, get, list_proposals, reject
from qbconsole.actions import proposals as rows
from qbconsole.actions.executors import Outcome
from qbconsole.config import parse_config
from qbconsole.store import Store
from qbconsole.tui.actions_data import action_text, spec_lines
from qbconsole.tui.app import QBConsoleApp
from qbconsole.tui.modals.confirm_action import ConfirmActionModal, RejectModal
from qbconsole.tui.screens.actions import COLUMNS, EMPTY, ActionsScreen, ProposalTable
from test_tui_snapshots import NOW_MS, seed_store, utc  # noqa: F401  (utc is a fixture)

MIN = 60_000
OPERATOR = "carol"
TOKEN = "QUICKBID_ADMIN_TOKEN"
ROLLBACK_REASON = 'HighErrorRate; x="1 2"'
RULES = """
optimizations:
  - name: scale_up
    alert: [HighCPU, WorkersSaturated]
    expr: max(quickbid_workers) < 20
    target: quickbid
    action: {kind: scale, workers: "max(quickbid_workers) + 2", url: "http://127.0.0.1:8080"}
    bounds: {workers: {min: 1, max: 20}}
    priority: high
    cooldown: 10m
    expiry: 10m
  - name: emergency_rollback
    alert: HighErrorRate
    target: quickbid
    action: {kind: command, argv: [/opt/deploy/rollback, --reason, "{alert}"], params: {alert: "{{ $labels.alertname }}"}}
    cooldown: 30m
"""


def _http(path: str, body: dict, port: int = 8080, **extra) -> dict:
    return {"kind": "http", "method": "POST", "url": f"http://127.0.0.1:{port}{path}", "json": body, "headers": {},
            "headers_env": {}, "bearer_token_env": TOKEN, "timeout_s": 10.0, **extra}


def _condition(expr, value, held_ago, now, alerts=()) -> dict:
    return {"expr": expr, "alerts": list(alerts), "value": value, "labels": {}, "held_since": now - held_ago,
            "at": now - held_ago}


def seed_proposals(store: Store, now: int = NOW_MS) -> dict[str, int]:
    """Four open proposals (one past its expiry, not yet expired by the engine) and a history:
    one that ran and improved the metric (approved by alice), one rejected by bob."""
    def propose(key, rule, target, kind, description, spec, evidence, bounds, verify, priority, ago, expires_in):
        return key, store.transaction(lambda c: rows.engine_insert(
            c, rule=rule, target=target, action=kind, description=description, spec=spec, evidence=evidence,
            bounds=bounds, verify=verify, priority=priority, now=now - ago, expires_at=now + expires_in))

    latency = "quickbid:http_request_duration_seconds:avg5m"
    ids = dict([
        propose("scale", "scale_up", "quickbid", "scale", "HighCPU is firing: add two workers",
                _http("/admin/workers", {"workers": 6}, builtin="scale"),
                {"condition": _condition("max(quickbid_workers) < 20", 4.0, 2 * MIN, now, ["HighCPU"]),
                 "labels": {"instance": "web-1"},
                 "alerts": [{"id": 7, "alert": "HighCPU", "state": "firing", "value": 91.5,
                             "fired_at": now - 4 * MIN, "labels": {}}],
                 "params": {"workers": {"source": "expr", "from": "max(quickbid_workers) + 2", "value": 6}},
                 "verify": {"expr": latency, "baseline": 0.84}},
                {"workers": {"min": 1, "max": 20, "clamp": True}},
                {"expr": latency, "better": "lower", "min_change": 0.05, "settle_ms": 180_000}, "high", 2 * MIN, 8 * MIN),
        propose("index", "add_missing_indexes", "bids(auction_id)", "missing_indexes",
                "Database queries average 240ms: add the missing indexes",
                _http("/admin/index", {"table": "bids", "columns": ["auction_id"]}, builtin="missing_indexes",
                      statement="CREATE INDEX IF NOT EXISTS ix_bids_auction_id ON bids(auction_id)"),
                {"condition": _condition("quickbid:db_query_duration_seconds:avg5m > 0.1", 0.24, 5 * MIN, now),
                 "labels": {}, "params": {},
                 "query": {"name": "bids_for_auction", "avg_seconds": 0.2403, "count": 812,
                           "sql": "SELECT * FROM bids WHERE auction_id = ? ORDER BY amount DESC"},
                 "plan": ["SCAN bids", "USE TEMP B-TREE FOR ORDER BY"]},
                {}, {}, "high", 3 * MIN, 12 * MIN),
        propose("rollback", "emergency_rollback", "quickbid", "command", "Error rate 7.2%: roll back the last deployment",
                {"kind": "command", "argv": ["/opt/deploy/rollback", "--reason", ROLLBACK_REASON], "timeout_s": 300.0,
                 "env": [], "executable_env": None, "cwd": None},
                {"condition": _condition(None, 0.072, MIN, now, ["HighErrorRate"]), "labels": {},
                 "params": {"alert": {"source": "template", "from": "{{ $labels.alertname }}",
                                      "value": ROLLBACK_REASON}}},
                {}, {}, "high", MIN, 9 * MIN),
        propose("stale", "balance_backends", "all", "weights", "Backend load varies by 45 % of its mean",
                _http("/admin/weights", {"a": 100.0, "b": 100.0, "c": 100.0}, builtin="weights"),
                {"condition": _condition("quickbid:backend_load:variance_percent1m > 30", 45.2, 20 * MIN, now),
                 "labels": {}}, {"weight": {"min": 1, "max": 1000, "clamp": True}}, {}, "medium", 18 * MIN, -3 * MIN),
        propose("cache", "grow_cache", "all", "cache_resize", "Cache hit rate 71%: double the cache",
                _http("/admin/cache", {"size": 512}, builtin="cache_resize"),
                {"condition": _condition("quickbid:cache_hit:ratio5m < 0.8", 0.71, 50 * MIN, now), "labels": {},
                 "verify": {"expr": "quickbid:cache_hit:ratio5m", "baseline": 0.71}},
                {"size": {"min": 1, "max": 100_000, "clamp": True}},
                {"expr": "quickbid:cache_hit:ratio5m", "better": "higher", "min_change": 0.02, "settle_ms": 300_000},
                "medium", 45 * MIN, -30 * MIN),
        propose("rejected", "scale_up", "quickbid-eu", "scale", "WorkersSaturated is firing: add two workers",
                _http("/admin/workers", {"workers": 8}, port=8081, builtin="scale"),
                {"condition": _condition("max(quickbid_workers) < 20", 6.0, 31 * MIN, now, ["WorkersSaturated"]),
                 "labels": {}}, {}, {}, "high", 30 * MIN, -20 * MIN),
    ])
    p = approve(store, ids["cache"], "alice", now - 40 * MIN, "hit rate keeps falling")
    store.transaction(lambda c: rows.engine_claim(c, p, now - 39 * MIN, 0.71, "test:1"))
    p = get(store.read(), ids["cache"])
    store.transaction(lambda c: rows.engine_finish(c, p, now - 39 * MIN + 400,
                                                   Outcome(True, 200, 'HTTP 200 OK\n{"size":512}', 0.4), now - 34 * MIN))
    p = get(store.read(), ids["cache"])
    store.transaction(lambda c: rows.engine_verdict(c, p, now - 34 * MIN, "improved", 0.93, {"change": 0.31}))
    reject(store, ids["rejected"], "bob", now - 28 * MIN, "load test traffic, not real")
    return ids


class ConfigOnly:
    """Stands in for the agent: it carries the loaded rules file, and starts nothing."""

    holder = None

    def __init__(self, text: str = RULES) -> None:
        self.config = parse_config(text, "rules.yaml", env={})

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_admin_token(monkeypatch):
    """The dry run reads this process's environment: keep it the same everywhere."""
    monkeypatch.delenv(TOKEN, raising=False)


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "qb.db")
    yield store
    store.close()


@pytest.fixture
def ids(store):
    return seed_proposals(store)


def make_app(store, tmp_path, **kw) -> QBConsoleApp:
    kw.setdefault("clock", lambda: NOW_MS / 1000)
    kw.setdefault("refresh", 1.0)
    kw.setdefault("settings_path", tmp_path / "config" / "settings.json")
    kw.setdefault("operator", OPERATOR)
    kw.setdefault("theme", "dark")
    kw.setdefault("agent", ConfigOnly())
    kw.setdefault("alert_exprs", {"HighCPU": "system_cpu_percent > 80"})
    return QBConsoleApp(store, **kw)


def text_of(widget) -> str:
    return str(widget.render())


def table_rows(table: DataTable) -> list[dict[str, str]]:
    keys = [c.key.value for c in table.ordered_columns]
    return [dict(zip(keys, map(str, table.get_row(r.key)))) for r in table.ordered_rows]


def row_of(table: DataTable, proposal_id: int) -> dict[str, str]:
    keys = [c.key.value for c in table.ordered_columns]
    return dict(zip(keys, map(str, table.get_row(str(proposal_id)))))


async def open_actions(pilot) -> ProposalTable:
    await until(pilot, lambda: pilot.app.snapshot is not None)
    await pilot.press("3")
    await until(pilot, lambda: isinstance(pilot.app.screen, ActionsScreen))
    screen = pilot.app.screen
    await until(pilot, lambda: screen.data is not None)
    await pilot.pause()
    return screen.query_one(ProposalTable)


async def select(pilot, table: ProposalTable, proposal_id: int) -> None:
    table.move_cursor(row=table.get_row_index(str(proposal_id)))
    await pilot.pause()


async def open_dialog(pilot, table: ProposalTable, proposal_id: int) -> ConfirmActionModal:
    await select(pilot, table, proposal_id)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmActionModal))
    dialog = pilot.app.screen
    await until(pilot, lambda: dialog.run is not None)
    return dialog


def audit_actions(store: Store, proposal_id: int) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in audit_entries(store.read(), target=f"proposal:{proposal_id}")]


# ---- the list -----------------------------------------------------------------------------------
async def test_open_proposals_first_then_history_the_essentials_at_80x24_and_the_audit_log(store, ids, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(130, 30)) as pilot:
        table = await open_actions(pilot)
        order = [str(p.id) for p in list_proposals(store.read())]
        assert [r.key.value for r in table.ordered_rows] == order
        shown = {r["rule"] + "/" + r["target"]: r for r in table_rows(table)}
        assert [c.key.value for c in table.ordered_columns] == [k for k, _ in COLUMNS["wide"]]
        assert shown["scale_up/quickbid"] == {
            "state": "◆ PROPOSED", "rule": "scale_up", "target": "quickbid",
            "action": 'POST /admin/workers {"workers":6}', "when": "8m left", "by": "—", "verdict": "—"}
        assert shown["balance_backends/all"]["when"] == "expired"
        assert shown["grow_cache/all"] == {
            "state": "✔ SUCCEEDED", "rule": "grow_cache", "target": "all", "action": 'POST /admin/cache {"size":512}',
            "when": "34m ago", "by": "alice", "verdict": "▲ improved"}
        assert shown["scale_up/quickbid-eu"]["state"] == "✖ REJECTED" and shown["scale_up/quickbid-eu"]["by"] == "bob"
        states = [r["state"] for r in table_rows(table)]
        assert states[:4] == ["◆ PROPOSED"] * 4 and "◆ PROPOSED" not in states[4:]
        summary = text_of(app.screen.query_one("#actions-summary"))
        assert summary == "4 awaiting a decision · 2 in history"
        detail = text_of(app.screen.query_one("#actions-detail"))
        first = list_proposals(store.read())[0]
        assert detail.startswith(f"#{first.id} {first.rule} → {first.target} (proposed)") and f"runs: {first.summary}" in detail

        await select(pilot, table, ids["scale"])
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: len(table.ordered_columns) == len(COLUMNS["narrow"]))
        await pilot.pause()
        assert app.screen.selected_id() == ids["scale"], "the highlighted proposal stays highlighted"
        assert [c.key.value for c in table.ordered_columns] == ["state", "rule", "action", "when"]
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= table.region.width
        assert app.screen.region.contains_region(table.region)
        footer = app.screen.query_one(Footer)

        def keys() -> set[str]:
            return {key.key for key in footer.query(FooterKey) if app.screen.region.contains_region(key.region)}

        await until(pilot, lambda: {"enter", "r", "u"} <= keys())

        # u: the audit log instead, newest first.
        await pilot.resize_terminal(100, 30)
        await pilot.press("u")
        audit = app.screen.query_one("#audit-table", DataTable)
        await until(pilot, lambda: audit.display and audit.row_count > 0)
        entries = audit_entries(store.read())
        assert [r.key.value for r in audit.ordered_rows] == [str(e.id) for e in reversed(entries)]
        first = table_rows(audit)[0]
        assert (first["actor"], first["action"], first["target"]) == ("bob", "rejected", f"proposal:{ids['rejected']}")
        assert first["ts"] == "01-01 11:32:00"
        by_action = {(r["actor"], r["action"]): r for r in table_rows(audit)}
        assert ("alice", "approved") in by_action and ("engine", "improved") in by_action
        assert "note" in text_of(app.screen.query_one("#actions-detail"))
        assert not app.screen.query_one(ProposalTable).display
        await pilot.press("u")
        await until(pilot, lambda: app.screen.query_one(ProposalTable).display)


async def test_empty_store_says_where_proposals_come_from(store, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_actions(pilot)
        empty = app.screen.query_one("#actions-empty", Static)
        assert empty.display and text_of(empty) == EMPTY
        assert "rules.yaml" in EMPTY and "`optimizations`" in EMPTY and "Nothing runs without approval" in EMPTY
        assert not app.screen.query_one(ProposalTable).display
        await pilot.press("enter", "r")
        await pilot.pause()
        assert isinstance(app.screen, ActionsScreen), "nothing to review or reject: no dialog"


# ---- the confirmation dialog ----------------------------------------------------------------------
async def test_dialog_shows_the_exact_action_and_evidence_and_enter_on_no_approves_nothing(store, ids, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        table = await open_actions(pilot)
        dialog = await open_dialog(pilot, table, ids["rollback"])
        assert dialog.focused is dialog.query_one("#confirm-no", Button), "focus starts on No"
        spec = text_of(dialog.query_one("#confirm-spec"))
        assert spec.splitlines() == [
            "command (argv, no shell), timeout 300 s",
            '  argv[0] "/opt/deploy/rollback"',
            '  argv[1] "--reason"',
            '  argv[2] "HighErrorRate; x=\\"1 2\\""',  # one element, quotes and ';' included
        ]
        evidence = text_of(dialog.query_one("#confirm-evidence"))
        assert f'parameter alert = {ROLLBACK_REASON}' in evidence
        assert "cooldown 30m" in text_of(dialog.query_one("#confirm-bounds"))
        assert text_of(dialog.query_one("#confirm-expiry")) == "expires in 9m00s (12:09:00)"
        checks = text_of(dialog.query_one("#confirm-checks"))
        assert "✔ configured: the rule is configured" in checks and "✔ not expired: expires in 540 s" in checks
        assert "✖ condition holds" in checks  # no HighErrorRate firing in this store

        await pilot.press("enter")  # on No
        await until(pilot, lambda: isinstance(app.screen, ActionsScreen))
        await pilot.pause(0.2)
        assert get(store.read(), ids["rollback"]).state == "proposed"
        assert audit_actions(store, ids["rollback"]) == [("engine", "proposed")]

        dialog = await open_dialog(pilot, table, ids["index"])
        spec = text_of(dialog.query_one("#confirm-spec")).splitlines()
        assert spec[:2] == ["POST http://127.0.0.1:8080/admin/index", "  Authorization: Bearer $QUICKBID_ADMIN_TOKEN"]
        assert "(the platform runs: CREATE INDEX IF NOT EXISTS ix_bids_auction_id ON bids(auction_id))" in "\n".join(spec)
        evidence = text_of(dialog.query_one("#confirm-evidence"))
        assert "value 240 ms" in evidence and "slow query bids_for_auction, avg 240.3 ms, 812 runs" in evidence
        assert "plan: SCAN bids" in evidence
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ActionsScreen))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmActionModal))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ActionsScreen))
        await pilot.pause(0.2)
        assert [p.state for p in list_proposals(store.read(), open_only=True)] == ["proposed"] * 4


async def test_y_approves_as_the_operator_and_an_expired_proposal_is_refused(store, ids, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        table = await open_actions(pilot)
        dialog = await open_dialog(pilot, table, ids["scale"])
        assert "workers within [1, 20]; values outside are clamped" in text_of(dialog.query_one("#confirm-bounds"))
        evidence = text_of(dialog.query_one("#confirm-evidence"))
        assert "condition: HighCPU firing while max(quickbid_workers) < 20; held since 11:58:00" in evidence
        assert "alert HighCPU #7 firing value 91.5 %, firing since 11:56:00" in evidence  # the alert's unit
        assert "verify quickbid:http_request_duration_seconds:avg5m: baseline 840 ms" in evidence
        await pilot.press("y")
        await until(pilot, lambda: get(store.read(), ids["scale"]).state == "approved")
        p = get(store.read(), ids["scale"])
        assert (p.decided_by, p.decided_at) == (OPERATOR, NOW_MS)
        assert audit_actions(store, ids["scale"]) == [("engine", "proposed"), (OPERATOR, "approved")]
        await until(pilot, lambda: row_of(table, ids["scale"])["state"] == "✔ APPROVED")
        assert any(f"Approved #{ids['scale']} scale_up → quickbid as {OPERATOR}" in n.message for n in app._notifications)
        # A decided proposal opens read-only: y says why nothing happens.
        dialog = await open_dialog(pilot, table, ids["scale"])
        assert dialog.query_one("#confirm-yes", Button).disabled
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmActionModal)
        assert f"is already approved by {OPERATOR}" in text_of(dialog.query_one("#confirm-error"))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ActionsScreen))

        # Past its expiry (the engine has not marked it yet): the store refuses, the console says why.
        dialog = await open_dialog(pilot, table, ids["stale"])
        expiry = dialog.query_one("#confirm-expiry")
        assert text_of(expiry) == "EXPIRED 3m ago (11:57:00): approving it will be refused"
        assert expiry.has_class("-expired")
        assert "✖ not expired: expired 180 s ago" in text_of(dialog.query_one("#confirm-checks"))
        await pilot.press("y")
        await until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        message = next(n.message for n in app._notifications if n.severity == "error")
        assert f"proposal {ids['stale']} expired before it was approved; nothing runs" in message
        assert get(store.read(), ids["stale"]).state == "expired"
        assert ("engine", "expired") in audit_actions(store, ids["stale"])
        assert (OPERATOR, "approved") not in audit_actions(store, ids["stale"])
        await until(pilot, lambda: row_of(table, ids["stale"])["state"] == "◌ EXPIRED")
    assert audit_actions(store, ids["scale"]).count((OPERATOR, "approved")) == 1


async def test_r_rejects_with_a_note_from_the_list_and_from_the_dialog(store, ids, tmp_path):
    app = make_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        table = await open_actions(pilot)
        await select(pilot, table, ids["rollback"])
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RejectModal))
        assert app.screen.focused is app.screen.query_one("#reject-note", Input)
        await pilot.press("escape")  # cancel: nothing written
        await until(pilot, lambda: isinstance(app.screen, ActionsScreen))
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RejectModal))
        await pilot.press(*"not a deploy", "enter")
        await until(pilot, lambda: get(store.read(), ids["rollback"]).state == "rejected")
        p = get(store.read(), ids["rollback"])
        assert (p.decided_by, p.decision_note) == (OPERATOR, "not a deploy")
        assert audit_actions(store, ids["rollback"])[-1] == (OPERATOR, "rejected")
        assert audit_entries(store.read(), target=f"proposal:{p.id}")[-1].detail["note"] == "not a deploy"

        dialog = await open_dialog(pilot, table, ids["index"])
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, RejectModal))
        await pilot.press("enter")  # no note
        await until(pilot, lambda: get(store.read(), ids["index"]).state == "rejected")
        assert get(store.read(), ids["index"]).decision_note is None
        assert isinstance(app.screen, ActionsScreen) and dialog not in app.screen_stack


# ---- two consoles ---------------------------------------------------------------------------------
async def test_an_approval_in_one_console_shows_in_another_which_cannot_approve_again(store, ids, tmp_path):
    first = make_app(store, tmp_path, operator="erin")
    second = make_app(store, tmp_path, operator="frank")
    async with first.run_test(size=(100, 30)) as one, second.run_test(size=(100, 30)) as two:
        table_one, table_two = await open_actions(one), await open_actions(two)
        dialog_two = await open_dialog(two, table_two, ids["scale"])  # frank is still reading it
        dialog_one = await open_dialog(one, table_one, ids["scale"])
        assert dialog_one.focused is dialog_one.query_one("#confirm-no")
        await one.press("y")
        await until(one, lambda: get(store.read(), ids["scale"]).state == "approved")
        started = time.monotonic()
        await until(two, lambda: dialog_two.proposal.state == "approved", timeout=2.5)
        assert time.monotonic() - started < 2.0
        assert "decided by erin" in text_of(dialog_two.query_one("#confirm-outcome"))
        assert dialog_two.query_one("#confirm-yes", Button).disabled
        await two.press("escape")
        await until(two, lambda: isinstance(second.screen, ActionsScreen))
        await until(two, lambda: row_of(table_two, ids["scale"])["by"] == "erin")
    assert audit_actions(store, ids["scale"]).count(("erin", "approved")) == 1
    assert ("frank", "approved") not in audit_actions(store, ids["scale"])


async def test_two_consoles_approving_at_once_approve_once(store, ids, tmp_path):
    """Neither console re-reads in between (slow polls): both send the approval; the store takes one."""
    first = make_app(store, tmp_path, operator="erin", refresh=60.0)
    second = make_app(store, tmp_path, operator="frank", refresh=60.0)
    async with first.run_test(size=(100, 30)) as one, second.run_test(size=(100, 30)) as two:
        table_one, table_two = await open_actions(one), await open_actions(two)
        await open_dialog(one, table_one, ids["index"])
        await open_dialog(two, table_two, ids["index"])
        await one.press("y")
        await until(one, lambda: get(store.read(), ids["index"]).state == "approved")
        await two.press("y")
        await until(two, lambda: any(n.severity == "error" for n in second._notifications))
        refusal = next(n.message for n in second._notifications if n.severity == "error")
        assert f"proposal {ids['index']} is already approved by erin; nothing changed" in refusal
        await until(two, lambda: row_of(table_two, ids["index"])["by"] == "erin")
    assert [a for a in audit_actions(store, ids["index"]) if a[1] == "approved"] == [("erin", "approved")]
    assert get(store.read(), ids["index"]).decided_by == "erin"


# ---- pure parts -----------------------------------------------------------------------------------
def test_spec_lines_write_out_every_kind_in_full(store, ids):
    sql = {"kind": "sql", "dsn": "/srv/qb.db", "statement": "UPDATE t SET x = ?\nWHERE id = ?", "args": [1, "a b"],
           "timeout_s": 30.0}
    assert spec_lines(sql) == ["SQL on /srv/qb.db, timeout 30 s", "  UPDATE t SET x = ?", "  WHERE id = ?",
                               '  args [1, "a b"]']
    long_arg = "x" * 500
    lines = spec_lines({"kind": "command", "argv": ["/bin/tool", long_arg], "timeout_s": 5})
    assert lines[-1] == f'  argv[1] "{long_arg}"', "never shortened"
    p = get(store.read(), ids["rollback"])
    assert action_text(p) == p.summary == "/opt/deploy/rollback --reason 'HighErrorRate; x=\"1 2\"'"


# ---- snapshots ------------------------------------------------------------------------------------
@pytest.fixture
def frozen_actions_app(tmp_path, utc):  # noqa: F811  (utc is the fixture imported above)
    store = seed_store(tmp_path / "qb.db")
    seed_proposals(store)
    yield make_app(store, tmp_path, refresh=60.0)
    store.close()


async def _list_ready(pilot) -> None:
    await open_actions(pilot)


def test_actions_list_snapshot(snap_compare, frozen_actions_app):
    assert snap_compare(frozen_actions_app, terminal_size=(100, 30), run_before=_list_ready)


def test_actions_list_snapshot_80x24(snap_compare, frozen_actions_app):
    assert snap_compare(frozen_actions_app, terminal_size=(80, 24), run_before=_list_ready)


def test_confirm_action_snapshot(snap_compare, frozen_actions_app):
    async def dialog(pilot):
        table = await open_actions(pilot)
        screen = pilot.app.screen
        proposal_id = next(p.id for p in screen.data.proposals if p.rule == "scale_up" and p.state == "proposed")
        await open_dialog(pilot, table, proposal_id)
        await pilot.pause()

    assert snap_compare(frozen_actions_app, terminal_size=(100, 30), run_before=dialog)
