"""`qbconsole actions ...` and `qbconsole audit` end to end on a temporary store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from qbconsole.actions import ActionEngine, get, list_proposals
from qbconsole.cli import main
from qbconsole.config import load_config
from qbconsole.model import Sample
from qbconsole.store import Store

RECORDER = "import pathlib, sys; pathlib.Path(sys.argv[1]).open('a').write(' '.join(sys.argv[2:]) + '\\n')"


@pytest.fixture
def setup(tmp_path):
    out = tmp_path / "ran"
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent(f"""
        optimizations:
          - name: drain
            description: "Queue at {{{{ $value }}}} on {{{{ $labels.instance }}}}"
            expr: queue_depth > 10
            action:
              kind: command
              argv: [{sys.executable!r}, -c, {RECORDER!r}, {str(out)!r}, "{{n}}"]
              params: {{n: "queue_depth + 1"}}
            bounds: {{n: {{min: 1, max: 100}}}}
            expiry: 1h
            settle: 1h
            verify: {{expr: queue_depth, better: lower}}
        """))
    db = tmp_path / "qb.db"
    store = Store.open(db)
    now = int(time.time() * 1000)
    store.write([Sample("queue_depth", {"instance": i}, now, v) for i, v in (("a", 20), ("b", 30))])
    engine = ActionEngine(store, load_config(rules, env={}), interval_s=0)
    engine.tick(now)
    ids = {p.target: p.id for p in list_proposals(store.read())}
    yield store, engine, ids, ["--db", str(db), "--rules", str(rules)], out
    store.close()


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_show_dry_run_approve_reject_and_audit(setup, capsys):
    store, engine, ids, base, out = setup
    a, b = ids["instance=a"], ids["instance=b"]
    code, text, _ = run(capsys, *base, "actions", "list")
    assert code == 0 and "drain" in text and "instance=a" in text and "queue_depth" not in text
    assert f"{out} 21" in text and f"{out} 31" in text and text.count("proposed") == 2

    code, text, _ = run(capsys, *base, "actions", "show", str(a))
    assert code == 0 and "Queue at 20 on a" in text and "runs exactly:" in text and "history:" in text

    code, text, _ = run(capsys, *base, "actions", "approve", str(a), "--dry-run")
    assert code == 0 and "would run:" in text and "'21'" not in text and "21" in text
    assert "ok    condition holds" in text and "nothing was run, approved or recorded" in text
    code, text, _ = run(capsys, *base, "actions", "approve", str(a), "--dry-run", "--json")
    dry = json.loads(text)
    assert dry["ran"] is False and dry["would_run"]["argv"][-1] == "21" and dry["runnable"] is True
    assert get(store.read(), a).state == "proposed" and not out.exists()

    code, text, _ = run(capsys, *base, "actions", "approve", str(a), "--operator", "alice", "--note", "go")
    assert code == 0 and f"{a} approved by alice" in text and "no agent is running" in text
    code, _, err = run(capsys, *base, "actions", "approve", str(a), "--operator", "bob")
    assert code == 1 and "already approved by alice" in err
    code, text, _ = run(capsys, *base, "actions", "reject", str(b), "--operator", "carol", "--json")
    assert code == 0 and json.loads(text)["state"] == "rejected" and json.loads(text)["decided_by"] == "carol"
    code, _, err = run(capsys, *base, "actions", "reject", "999")
    assert code == 1 and "no proposal with id 999" in err

    engine.tick()
    assert out.read_text() == "21\n"  # the approved one ran; the rejected one did not
    code, text, _ = run(capsys, *base, "actions", "list", "--all", "--json")
    states = {p["id"]: p["state"] for p in json.loads(text)}
    assert states == {a: "succeeded", b: "rejected"}
    code, text, _ = run(capsys, *base, "actions", "show", str(a), "--json")
    shown = json.loads(text)
    assert [e["action"] for e in shown["audit"]] == ["proposed", "approved", "executing", "succeeded"]
    assert shown["exit_status"] == 0 and shown["summary"].endswith(" 21")

    code, text, _ = run(capsys, *base, "audit", "--since", "1h", "--json")
    trail = [(e["actor"], e["action"], e["target"]) for e in json.loads(text)]
    assert ("alice", "approved", f"proposal:{a}") in trail and ("carol", "rejected", f"proposal:{b}") in trail
    assert ("engine", "succeeded", f"proposal:{a}") in trail
    code, text, _ = run(capsys, *base, "audit")
    assert code == 0 and "alice" in text and "rejected" in text and "evidence" not in text
    code, text, _ = run(capsys, *base, "actions", "list")
    assert "no open proposals" in text


def test_approve_waits_for_the_agents_outcome(setup, capsys):
    store, engine, ids, base, out = setup
    assert store.lease_acquire("agent-under-test", 60_000)
    stop = threading.Event()

    def agent():
        while not stop.is_set():
            engine.tick()
            stop.wait(0.2)

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    try:
        code, text, _ = run(capsys, *base, "actions", "approve", str(ids["instance=b"]), "--operator", "alice")
    finally:
        stop.set()
        thread.join(5)
    assert code == 0 and "now succeeded (exit status 0)" in text
    assert out.read_text() == "31\n"


def test_the_installed_command_runs_as_a_subprocess(setup):
    _, _, ids, base, _ = setup
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-m", "qbconsole", *base, "actions", "list", "--json"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(p["id"] for p in json.loads(done.stdout)) == sorted(ids.values())
