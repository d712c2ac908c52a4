"""The agent as a real process: lease holding, takeover after kill -9, clean SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qbconsole.store import Store

HEARTBEAT = 1.0

RULES = """
sources:
  - name: system
    kind: system
    interval: 500ms
"""


def start_agent(db: Path, rules: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "qbconsole", "--db", str(db), "--rules", str(rules),
         "agent", "--heartbeat", str(HEARTBEAT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def holder_pid(store: Store) -> int | None:
    info = store.lease_info()
    if info is None or info.expires < time.time() * 1000:
        return None
    return int(info.holder.rsplit(":", 1)[1])


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
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
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
