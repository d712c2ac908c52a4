"""End to end: the demo platform under load, with its missing index and too few workers.

The platform and the load generator run as real subprocesses on 127.0.0.1; this
test scrapes the platform, runs the rules engine and the action engine once a
second (what the agent does), approves the two proposals that appear (scale up,
add the index) in the console (pilot: Actions section, review dialog, y), and checks that database query
time and latency fell and that both verifications are recorded as improved.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from qbconsole.actions import ActionEngine, audit_entries, get, list_proposals
from qbconsole.collect import PrometheusSource, ScrapeFailed
from qbconsole.config import parse_config
from qbconsole.demo.spawn import start_platform
from qbconsole.rules.engine import RulesEngine
from qbconsole.rules.promql import Evaluator, StoreQuerier
from qbconsole.rules.ruleset import rule_groups
from qbconsole.store import Store

from helpers import until

TOKEN = "e2e-admin-token-5d1c"
DB_AVG = "quickbid:db_query_duration_seconds:avg15s"
LATENCY = "quickbid:http_request_duration_seconds:avg15s"
RULES = f"""
settings: {{evaluation_interval: 1s}}
recording_rules:
  - record: {DB_AVG}
    expr: sum(rate(db_query_duration_seconds_sum[15s])) / sum(rate(db_query_duration_seconds_count[15s]))
  - record: {LATENCY}
    expr: sum(rate(http_request_duration_seconds_sum[15s])) / sum(rate(http_request_duration_seconds_count[15s]))
alert_rules:
  - alert: WorkersSaturated
    expr: max(max_over_time(quickbid_request_queue[5s])) > 5
    for: 3s
    severity: warning
optimizations:
  - name: add_missing_indexes
    expr: {DB_AVG} > 0.001
    for: 3s
    action: {{kind: missing_indexes, via: http, min_avg: 2ms}}
    priority: high
    settle: 20s
    verify: {{expr: "{DB_AVG}", better: lower, min_change: 0.3}}
  - name: scale_up
    alert: WorkersSaturated
    expr: max(quickbid_workers) < 20
    target: quickbid
    action: {{kind: scale, workers: "max(quickbid_workers) + 2"}}
    bounds: {{workers: {{min: 1, max: 20}}}}
    priority: high
    settle: 20s
    verify: {{expr: "{LATENCY}", better: lower, min_change: 0.2}}
"""


async def approve_in_console(store: Store, config, proposal_ids: list[int], tmp_path) -> None:
    """Open the console on the store, and approve each proposal as an operator would."""
    from types import SimpleNamespace

    from qbconsole.tui.app import QBConsoleApp
    from qbconsole.tui.modals.confirm_action import ConfirmActionModal
    from qbconsole.tui.screens.actions import ActionsScreen, ProposalTable

    app = QBConsoleApp(store, operator="e2e-operator", settings_path=tmp_path / "settings.json",
                       agent=SimpleNamespace(config=config, start=lambda: None, stop=lambda: None))

    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, ActionsScreen) and app.screen.data is not None)
        table = app.screen.query_one(ProposalTable)
        for proposal_id in proposal_ids:
            await until(pilot, lambda: str(proposal_id) in {r.key.value for r in table.ordered_rows})
            table.move_cursor(row=table.get_row_index(str(proposal_id)))
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ConfirmActionModal) and app.screen.run is not None)
            await pilot.press("y")
            await until(pilot, lambda: get(store.read(), proposal_id).state != "proposed")


@pytest.mark.slow
def test_demo_platform_proposals_approved_make_it_faster(tmp_path):
    env = {**os.environ, "QUICKBID_ADMIN_TOKEN": TOKEN}
    platform_db = str(tmp_path / "quickbid.db")
    with open(tmp_path / "platform.log", "wb") as err:
        platform = start_platform(platform_db, ["--service-ms", "40", "--seed", "3"], env=env, stderr=err)
    load = None
    store = Store.open(tmp_path / "qb.db")
    source = PrometheusSource("quickbid", interval=1.0, timeout=1.0, url=platform.url + "/metrics")
    try:
        with open(tmp_path / "load.log", "wb") as log:
            load = subprocess.Popen([sys.executable, "-m", "qbconsole.demo.load", "--target", platform.url,
                                     "--scenario", "steady", "--users", "60", "--no-bots", "--duration", "150"],
                                    stdout=subprocess.DEVNULL, stderr=log, env=env)
        config = parse_config(textwrap.dedent(RULES), "rules.yaml", env={})
        rules = RulesEngine(store, rule_groups(config))
        actions = ActionEngine(store, config, env={"PATH": os.environ["PATH"], "QUICKBID_URL": platform.url,
                                                   "QUICKBID_ADMIN_TOKEN": TOKEN, "QUICKBID_DB": platform_db})
        evaluator = Evaluator(StoreQuerier(store))

        def step() -> int:
            now = int(time.time() * 1000)
            try:
                samples = source.collect(now)
            except ScrapeFailed as failed:
                samples = failed.samples
            store.write(samples)
            rules.tick(now)
            actions.tick(now)
            time.sleep(max(0.0, 1.0 - (time.time() * 1000 - now) / 1000))
            return now

        def value(expr: str, now: int) -> float:
            evaluator.new_tick()
            result = evaluator.evaluate(expr, now)
            return float(result[0].value) if result else float("nan")

        deadline = time.monotonic() + 75
        wanted = {"add_missing_indexes", "scale_up"}
        while time.monotonic() < deadline:
            now = step()
            found = {p.rule: p for p in list_proposals(store.read(), open_only=True)}
            if wanted <= set(found):
                break
        else:
            pytest.fail(f"proposals did not appear: {sorted(found)}; errors {actions.last_errors}")
        db_before, latency_before = value(DB_AVG, now), value(LATENCY, now)
        index, scale = found["add_missing_indexes"], found["scale_up"]
        assert index.target == "bids(auction_id)" and index.spec["json"] == {"table": "bids", "columns": ["auction_id"]}
        assert index.evidence["statement"] == "CREATE INDEX IF NOT EXISTS ix_bids_auction_id ON bids(auction_id)"
        assert scale.spec["json"] == {"workers": 4} and scale.evidence["alerts"][0]["alert"] == "WorkersSaturated"

        # A person approves both, in the console (Actions section, review dialog, y).
        asyncio.run(approve_in_console(store, config, [scale.id, index.id], tmp_path))
        assert {get(store.read(), p.id).decided_by for p in (scale, index)} == {"e2e-operator"}
        step()
        for p in (scale, index):
            ran = get(store.read(), p.id)
            assert ran.state == "succeeded", (ran.state, ran.reason, ran.output)
        config_now = httpx.get(platform.url + "/admin/config", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert config_now["workers"] == 4
        assert any(i["name"] == "admin_idx_bids_auction_id" for i in config_now["indexes"])

        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            now = step()
            if all(get(store.read(), p.id).verdict for p in (scale, index)):
                break
        db_after, latency_after = value(DB_AVG, now), value(LATENCY, now)
        index, scale = get(store.read(), index.id), get(store.read(), scale.id)
        assert (index.verdict, scale.verdict) == ("improved", "improved"), (
            index.baseline, index.after, scale.baseline, scale.after)
        assert db_after < db_before * 0.5, (db_before, db_after)
        assert latency_after < latency_before * 0.8, (latency_before, latency_after)
        assert [e.action for e in audit_entries(store.read(), target=f"proposal:{index.id}")] == [
            "proposed", "approved", "executing", "succeeded", "improved"]
        assert not [p for p in list_proposals(store.read(), open_only=True) if p.rule == "add_missing_indexes"]
    finally:
        if load is not None and load.poll() is None:
            load.terminate()
            try:
                load.wait(10)
            except subprocess.TimeoutExpired:
                load.kill()
                load.wait()
        platform.stop()
        source.close()
        store.close()
