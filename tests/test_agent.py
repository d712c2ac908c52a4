"""The agent as a real process: lease holding, takeover after kill -9, clean SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from qbconsole.store import Store

from helpers import holder_pid, kill_if_running, qbconsole_process, wait_for

HEARTBEAT = 1.0

RULES = """
sources:
  - name: system
    kind: system
    interval: 500ms
"""


def start_agent(db: Path, rules: Path) -> subprocess.Popen:
    return qbconsole_process(["--db", str(db), "--rules", str(rules), "agent", "--heartbeat", str(HEARTBEAT)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def env(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    db = tmp_path / "qb.db"
    procs: list[subprocess.Popen] = []
    store_holder: list[Store] = []

    def spawn():
        proc = start_agent(db, rules)
        procs.append(proc)
        return proc

    def store():
        if not store_holder:
            wait_for(db.exists, 10)
            store_holder.append(Store.open(db))
        return store_holder[0]

    yield spawn, store
    for proc in procs:
        kill_if_running(proc, 5)
    for s in store_holder:
        s.close()


def test_second_agent_takes_over_within_two_heartbeats_after_kill_9(env):
    spawn, store = env
    first = spawn()
    assert wait_for(lambda: holder_pid(store()) == first.pid, 15), "first agent never took the lease"
    assert wait_for(lambda: store().latest("system_cpu_percent"), 10), "first agent collected nothing"

    second = spawn()
    time.sleep(4 * HEARTBEAT)
    assert holder_pid(store()) == first.pid, "the standby agent must wait while the holder lives"
    assert second.poll() is None

    os.kill(first.pid, signal.SIGKILL)
    first.wait(5)
    killed_at = time.monotonic()
    assert wait_for(lambda: holder_pid(store()) == second.pid, 10)
    took = time.monotonic() - killed_at
    assert took <= 2 * HEARTBEAT + 1.0, f"takeover took {took:.2f}s"

    before = max(p.ts for p in store().latest("system_cpu_percent"))
    assert wait_for(lambda: max(p.ts for p in store().latest("system_cpu_percent")) > before, 5), \
        "the new holder does not collect"


def test_sigterm_exits_cleanly_and_releases_the_lease(env):
    spawn, store = env
    agent = spawn()
    assert wait_for(lambda: holder_pid(store()) == agent.pid, 15)
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(10) == 0
    assert holder_pid(store()) is None
    err = agent.stderr.read()
    assert "Traceback" not in err


def test_in_process_agent_runs_ingest_rules_and_reloads_keeping_the_last_good_file(tmp_path, monkeypatch):
    import httpx

    from qbconsole.agent import Agent

    monkeypatch.setenv("QBCONSOLE_INGEST_TOKEN", "t0ken")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "sources: [{name: system, kind: system, interval: 500ms}]\n"
        "settings: {ingest_listen: '127.0.0.1:0', evaluation_interval: 1s}\n"
        "recording_rules:\n  - {record: 'job:load:x2', expr: 'system_load1 * 2'}\n")
    store = Store.open(tmp_path / "qb.db")
    agent = Agent(store, rules, heartbeat_s=0.5)
    agent.start()
    try:
        assert wait_for(lambda: agent.ingest is not None, 10)
        reply = httpx.post(f"{agent.ingest.url}/v1/events", headers={"Authorization": "Bearer t0ken"},
                           json={"type": "rum", "name": "survey", "satisfaction": 4})
        assert reply.status_code == 202
        assert [p.value for p in store.latest("rum_satisfaction_score")] == [4.0]
        assert wait_for(lambda: store.latest("job:load:x2"), 10), "recording rule never wrote"

        rules.write_text("sources: [{name: system, kind: sytem}]\n")  # bad: unknown kind
        agent.request_reload()
        assert wait_for(lambda: agent.last_config_error is not None, 5)
        assert "rules.yaml:1:" in str(agent.last_config_error)
        assert agent.active and agent.config.sources[0].kind == "system"
    finally:
        agent.stop()
        store.close()
