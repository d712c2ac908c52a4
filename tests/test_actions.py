"""The action engine's lifecycle on a real store: propose (with `for`), approve once, reject,
expire, refuse stale proposals, cooldown, dry run, verification, and the audit trail."""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from qbconsole.actions import ActionEngine, approve, audit_entries, dry_run, get, list_proposals, reject
from qbconsole.actions import proposals as rows
from qbconsole.actions.schema import parse_rules
from qbconsole.config import DEFAULT_RULES, load_config, parse_config
from qbconsole.model import Sample
from qbconsole.store import Store
from qbconsole.store import alerts as alert_rows

T0 = 1_700_000_000_000
MIN = 60_000
RECORDER = "import pathlib, sys; pathlib.Path(sys.argv[1]).open('a').write(' '.join(sys.argv[2:]) + '\\n')"


def rules_text(out: Path, **over) -> str:
    o = {"for": "1m", "cooldown": "10m", "expiry": "5m", "settle": "1m", "bounds": "{n: {min: 1, max: 100}}"}
    o.update(over)
    return textwrap.dedent(f"""
        optimizations:
          - name: drain
            description: "Queue at {{{{ $value }}}} on {{{{ $labels.instance }}}}"
            expr: queue_depth > 10
            for: {o['for']}
            action:
              kind: command
              argv: [{sys.executable!r}, -c, {RECORDER!r}, {str(out)!r}, "{{n}}", "{{who}}"]
              params:
                n: "queue_depth + 5"
                who: "{{{{ $labels.instance }}}}"
            bounds: {o['bounds']}
            priority: high
            cooldown: {o['cooldown']}
            expiry: {o['expiry']}
            settle: {o['settle']}
            verify: {{expr: queue_depth, better: lower, min_change: 0.1}}
        """)


class Clock:
    def __init__(self, ms: int = T0) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


def engine_for(store, text: str, env=None, clock=None) -> ActionEngine:
    config = parse_config(text, "rules.yaml", env={})
    return ActionEngine(store, config, env=env if env is not None else dict(os.environ), interval_s=0,
                        clock=clock or Clock())


def queue(store, t: int, **values: float) -> None:
    store.write([Sample("queue_depth", {"instance": inst}, t, v) for inst, v in values.items()])


def runs(out: Path) -> list[str]:
    return out.read_text().splitlines() if out.exists() else []


def actions_of(store, pid: int) -> list[str]:
    return [e.action for e in audit_entries(store.read(), target=f"proposal:{pid}")]


def test_for_makes_exactly_one_proposal_per_rule_and_target(store, tmp_path):
    engine = engine_for(store, rules_text(tmp_path / "out"))
    for i, t in enumerate((T0, T0 + 30_000, T0 + MIN, T0 + 75_000, T0 + 2 * MIN)):
        queue(store, t, a=50, b=40 if i != 2 else 5)  # b dips once: its `for` starts again
        engine.tick(t)
        open_ = list_proposals(store.read(), open_only=True)
        if t < T0 + MIN:
            assert open_ == []
    assert [p.target for p in open_] == ["instance=a"]  # b's condition restarted at T0+75s
    engine.tick(T0 + 135_000 + 1)
    queue(store, T0 + 136_000, a=50, b=40)
    engine.tick(T0 + 136_000)
    open_ = list_proposals(store.read(), open_only=True)
    assert sorted(p.target for p in open_) == ["instance=a", "instance=b"]
    p = next(p for p in open_ if p.target == "instance=a")
    assert p.spec["argv"][-2:] == ["55", "a"]  # queue_depth + 5, and the label
    assert p.evidence["condition"]["value"] == 50 and p.evidence["params"]["n"]["value"] == 55
    assert p.evidence["verify"]["baseline"] == 50
    assert p.description == "Queue at 50 on a" and p.priority == "high"
    assert p.expires_at == T0 + MIN + 5 * MIN and p.bounds == {"n": {"min": 1, "max": 100, "clamp": True}}
    assert actions_of(store, p.id) == ["proposed"]


def test_two_approvals_and_two_engines_run_it_once(tmp_path):
    path = tmp_path / "shared.db"
    out = tmp_path / "out"
    one, two = Store.open(path), Store.open(path)  # two writers, as two processes have
    try:
        text = rules_text(out, **{"for": "0s"})
        engines = [engine_for(one, text), engine_for(two, text)]
        queue(one, T0, a=50)
        engines[0].tick(T0)
        engines[1].tick(T0)  # the same condition seen by the other engine: still one proposal
        (p,) = list_proposals(one.read())
        approve(one, p.id, "alice", T0 + 1000, "go")
        with pytest.raises(ValueError, match="already approved by alice"):
            approve(two, p.id, "bob", T0 + 1100)
        with pytest.raises(ValueError, match="already approved"):
            reject(two, p.id, "bob", T0 + 1200)
        barrier = threading.Barrier(2)

        def run(engine):
            barrier.wait()
            engine.tick(T0 + 2000)

        threads = [threading.Thread(target=run, args=(e,)) for e in engines]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert runs(out) == ["55 a"]
        done = get(one.read(), p.id)
        assert done.state == "succeeded" and done.exit_status == 0 and done.decided_by == "alice"
        assert done.decision_note == "go" and done.baseline == 50
        assert actions_of(one, p.id) == ["proposed", "approved", "executing", "succeeded"]
        for engine in engines:
            engine.tick(T0 + 3000)
        assert runs(out) == ["55 a"]
    finally:
        one.close()
        two.close()


def test_rejection_executes_nothing_and_holds_off_for_the_cooldown(store, tmp_path):
    out = tmp_path / "out"
    engine = engine_for(store, rules_text(out, **{"for": "0s"}))
    queue(store, T0, a=50)
    engine.tick(T0)
    (p,) = list_proposals(store.read())
    rejected = reject(store, p.id, "carol", T0 + 500, "not during the launch")
    assert rejected.state == "rejected" and rejected.decided_by == "carol"
    for t in (T0 + 1000, T0 + 5 * MIN):
        queue(store, t, a=50)
        engine.tick(t)
    assert not out.exists()
    assert list_proposals(store.read(), open_only=True) == []  # cooldown after a rejection
    with pytest.raises(ValueError, match="already rejected by carol"):
        approve(store, p.id, "dave", T0 + 2000)
    queue(store, T0 + 11 * MIN, a=50)
    engine.tick(T0 + 11 * MIN)
    assert len(list_proposals(store.read(), open_only=True)) == 1
    assert actions_of(store, p.id) == ["proposed", "rejected"]
    entry = audit_entries(store.read(), target=f"proposal:{p.id}")[1]
    assert entry.actor == "carol" and entry.detail["note"] == "not during the launch"


def test_expired_proposals_lapse_and_late_approvals_are_refused(store, tmp_path):
    out = tmp_path / "out"
    engine = engine_for(store, rules_text(out, **{"for": "0s", "expiry": "2m"}))
    queue(store, T0, a=50, b=60)
    engine.tick(T0)
    pa, pb = sorted(list_proposals(store.read()), key=lambda p: p.target)
    approve(store, pa.id, "alice", T0 + MIN)  # approved in time, but run only after expiry
    queue(store, T0 + 3 * MIN, a=50, b=60)
    engine.tick(T0 + 3 * MIN)
    a, b = get(store.read(), pa.id), get(store.read(), pb.id)
    assert b.state == "expired" and b.reason == "not decided before it expired"
    assert a.state == "refused" and "expired 60 s ago" in a.reason
    with pytest.raises(ValueError, match="already expired"):
        approve(store, pb.id, "alice", T0 + 4 * MIN)
    assert not out.exists()
    assert actions_of(store, pa.id) == ["proposed", "approved", "refused"]
    assert actions_of(store, pb.id) == ["proposed", "expired"]
    assert audit_entries(store.read(), target=f"proposal:{pa.id}")[-1].detail["approved_by"] == "alice"


def test_approving_after_expiry_expires_it_instead(store, tmp_path):
    engine = engine_for(store, rules_text(tmp_path / "out", **{"for": "0s", "expiry": "1m"}))
    queue(store, T0, a=50)
    engine.tick(T0)
    (p,) = list_proposals(store.read())
    with pytest.raises(ValueError, match="expired before it was approved"):
        approve(store, p.id, "alice", T0 + 2 * MIN)
    assert get(store.read(), p.id).state == "expired"


def test_stale_proposals_are_refused_with_the_reason(store, tmp_path):
    out = tmp_path / "out"
    text = rules_text(out, **{"for": "0s"})
    engine = engine_for(store, text)
    queue(store, T0, a=50, b=60)
    engine.tick(T0)
    pa, pb = sorted(list_proposals(store.read()), key=lambda p: p.target)
    approve(store, pa.id, "alice", T0 + 1000)
    approve(store, pb.id, "alice", T0 + 1000)
    queue(store, T0 + 2000, a=3, b=60)  # a's queue drained by itself
    engine.set_config(parse_config(text.replace("max: 100", "max: 60"), "rules.yaml", env={}), 0)
    engine.tick(T0 + 2000)
    a, b = get(store.read(), pa.id), get(store.read(), pb.id)
    assert a.state == "refused" and "condition no longer holds for instance=a" in a.reason
    assert b.state == "refused" and "n=65 is above the bound max 60" in b.reason  # bounds tightened meanwhile
    assert not out.exists()
    engine.set_config(parse_config("optimizations: []", "rules.yaml", env={}), 0)
    queue(store, T0 + 3000, a=50)
    engine_for(store, text).tick(T0 + 3000)
    pc = next(p for p in list_proposals(store.read(), open_only=True) if p.target == "instance=a")
    approve(store, pc.id, "alice", T0 + 4000)
    engine.tick(T0 + 5000)  # this engine no longer has the rule
    assert "rule 'drain' is no longer configured" in get(store.read(), pc.id).reason


def test_bounds_clamp_by_default_and_refuse_when_told(store, tmp_path):
    out = tmp_path / "out"
    clamp = engine_for(store, rules_text(out, **{"for": "0s", "bounds": "{n: {min: 1, max: 20}}"}))
    queue(store, T0, a=50)
    clamp.tick(T0)
    (p,) = list_proposals(store.read())
    assert p.spec["argv"][-2] == "20"
    assert p.evidence["params"]["n"] == {"source": "expr", "from": "queue_depth + 5", "value": 20,
                                         "before_bounds": 55}
    reject(store, p.id, "alice", T0 + 1)
    strict = engine_for(store, rules_text(out, **{"for": "0s", "cooldown": "0s",
                                                   "bounds": "{n: {min: 1, max: 20, clamp: false}}"}))
    strict.tick(T0 + 2)
    assert list_proposals(store.read(), open_only=True) == []
    assert "n=55 is above the bound max 20" in strict.last_errors["drain"]


def test_cooldown_after_a_run_then_a_new_proposal(store, tmp_path):
    out = tmp_path / "out"
    engine = engine_for(store, rules_text(out, **{"for": "0s", "cooldown": "5m"}))
    queue(store, T0, a=50)
    engine.tick(T0)
    (p,) = list_proposals(store.read())
    approve(store, p.id, "alice", T0 + 1000)
    engine.tick(T0 + 2000)
    assert runs(out) == ["55 a"]
    for t in (T0 + MIN, T0 + 4 * MIN):
        queue(store, t, a=50)
        engine.tick(t)
        assert list_proposals(store.read(), open_only=True) == []
    queue(store, T0 + 6 * MIN, a=50)
    engine.tick(T0 + 6 * MIN)
    assert len(list_proposals(store.read(), open_only=True)) == 1


def test_dry_run_runs_nothing_and_shows_exactly_what_would_run(store, tmp_path):
    out = tmp_path / "out"
    text = rules_text(out, **{"for": "0s"})
    engine = engine_for(store, text)
    queue(store, T0, a=50)
    engine.tick(T0)
    (p,) = list_proposals(store.read())
    before = len(audit_entries(store.read()))
    config = parse_config(text, "rules.yaml", env={})
    result = dry_run(store, p.id, config, env={"PATH": "/usr/bin", "API_TOKEN": "s3cret-value"}, now=T0 + 1000)
    assert result.would_run["argv"] == [sys.executable, "-c", RECORDER, str(out), "55", "a"]
    assert result.would_run["env"] == ["PATH"]
    assert result.runnable and [c.name for c in result.checks] == [
        "state", "configured", "not expired", "within bounds", "not in cooldown", "condition holds", "environment"]
    assert result.to_json()["ran"] is False
    late = dry_run(store, p.id, config, now=T0 + 10 * MIN)
    assert not late.runnable and not next(c for c in late.checks if c.name == "not expired").ok
    assert dry_run(store, p.id, None, now=T0 + 1000).runnable is False  # no config: rule unknown
    assert not out.exists()
    assert get(store.read(), p.id).state == "proposed"
    assert len(audit_entries(store.read())) == before
    with pytest.raises(ValueError, match="no proposal with id 999"):
        dry_run(store, 999, config)


@pytest.mark.parametrize("after, verdict", [(30.0, "improved"), (48.0, "not_improved"), (70.0, "not_improved")])
def test_verification_after_settle(store, tmp_path, after, verdict):
    out = tmp_path / "out"
    clock = Clock(T0 + 2000)
    engine = engine_for(store, rules_text(out, **{"for": "0s"}), clock=clock)
    queue(store, T0, a=50)
    engine.tick(T0)
    (p,) = list_proposals(store.read())
    approve(store, p.id, "alice", T0 + 1000)
    engine.tick(T0 + 2000)
    ran = get(store.read(), p.id)
    assert ran.verify_at == T0 + 2000 + MIN and ran.verdict is None
    queue(store, T0 + 30_000, a=after)
    engine.tick(T0 + 30_000)  # not settled yet
    assert get(store.read(), p.id).verdict is None
    engine.tick(T0 + 2000 + MIN)
    done = get(store.read(), p.id)
    assert (done.verdict, done.baseline, done.after) == (verdict, 50, after)
    assert actions_of(store, p.id)[-1] == verdict
    engine.tick(T0 + 3 * MIN)  # recorded once
    assert actions_of(store, p.id).count(verdict) == 1


def test_verification_without_data_is_not_improved(store, tmp_path):
    engine = engine_for(store, rules_text(tmp_path / "out", **{"for": "0s"}), clock=Clock(T0 + 2000))
    queue(store, T0, a=50)
    engine.tick(T0)
    (p,) = list_proposals(store.read())
    approve(store, p.id, "alice", T0 + 1000)
    engine.tick(T0 + 2000)
    engine.tick(T0 + 20 * MIN)  # the series went silent: nothing in the lookback window
    done = get(store.read(), p.id)
    assert done.verdict == "not_improved"
    assert audit_entries(store.read(), target=f"proposal:{p.id}")[-1].detail["reason"] == "no after value to compare"


def test_audit_log_is_append_only_and_records_every_step(store, tmp_path):
    engine = engine_for(store, rules_text(tmp_path / "out", **{"for": "0s"}), clock=Clock(T0 + 2000))
    queue(store, T0, a=50)
    engine.tick(T0)
    (p,) = list_proposals(store.read())
    approve(store, p.id, "alice", T0 + 1000)
    engine.tick(T0 + 2000)
    queue(store, T0 + MIN, a=20)
    engine.tick(T0 + 2000 + MIN)
    trail = audit_entries(store.read(), target=f"proposal:{p.id}")
    assert [(e.action, e.actor) for e in trail] == [
        ("proposed", "engine"), ("approved", "alice"), ("executing", "engine"), ("succeeded", "engine"),
        ("improved", "engine")]
    assert trail[3].detail["exit_status"] == 0 and trail[2].detail["action"] == p.summary
    conn = sqlite3.connect(store.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit_log")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("INSERT OR REPLACE INTO audit_log(id, ts, actor, action, target) "
                         "VALUES (?, 0, 'mallory', 'x', 'y')", (trail[0].id,))
    finally:
        conn.close()
    assert audit_entries(store.read(), target=f"proposal:{p.id}") == trail


def test_alert_linked_proposal_with_a_guard_carries_the_alerts(store, tmp_path):
    out = tmp_path / "out"
    text = textwrap.dedent(f"""
        alert_rules:
          - {{alert: WorkersSaturated, expr: busy > 0}}
          - {{alert: HighCPU, expr: cpu > 80}}
        optimizations:
          - name: scale_up
            description: "{{{{ $labels.alertname }}}} is firing"
            alert: [HighCPU, WorkersSaturated]
            expr: max(workers) < 20
            target: quickbid
            action:
              kind: command
              argv: [{sys.executable!r}, -c, {RECORDER!r}, {str(out)!r}, "{{workers}}"]
              params: {{workers: {{expr: "max(workers) + 2", type: int}}}}
            bounds: {{workers: {{min: 1, max: 20}}}}
        """)
    engine = engine_for(store, text)
    store.write([Sample("workers", {}, T0, 19.0)])
    engine.tick(T0)
    assert list_proposals(store.read()) == []  # no alert firing
    ids = store.transaction(lambda c: [
        alert_rows.insert_alert(c, name, "fp" + name, {"alertname": name, "instance": "x"}, {}, "warning",
                                "firing", 3.0, T0, T0, T0) for name in ("WorkersSaturated", "HighCPU")])
    engine.tick(T0 + 1000)
    (p,) = list_proposals(store.read())
    assert p.target == "quickbid" and p.spec["argv"][-1] == "20"  # 19 + 2, clamped to 20
    assert sorted(a["id"] for a in p.evidence["alerts"]) == sorted(ids)
    assert p.description.endswith("is firing")
    reject(store, p.id, "alice", T0 + 2000)
    store.write([Sample("workers", {}, T0 + 11 * MIN, 20.0)])
    engine.tick(T0 + 11 * MIN)
    assert list_proposals(store.read(), open_only=True) == []  # at the maximum: the guard holds it back
    store.write([Sample("workers", {}, T0 + 12 * MIN, 12.0)])
    engine.tick(T0 + 12 * MIN)
    assert list_proposals(store.read(), open_only=True)[0].spec["argv"][-1] == "14"


def test_rollback_placeholder_is_refused_until_configured(store, tmp_path):
    config = load_config(DEFAULT_RULES, env={})
    rules = {r.name: r for r in parse_rules(config.optimizations)}
    assert set(rules) == {"add_missing_indexes", "grow_cache", "balance_backends", "scale_up", "emergency_rollback"}
    assert rules["scale_up"].alerts == ("HighCPU", "WorkersSaturated")
    assert rules["emergency_rollback"].action["executable_env"] == "QUICKBID_ROLLBACK_COMMAND"
    engine = ActionEngine(store, config, env={"PATH": os.environ["PATH"]}, interval_s=0, clock=Clock())
    store.transaction(lambda c: alert_rows.insert_alert(
        c, "HighErrorRate", "fp", {"alertname": "HighErrorRate", "severity": "critical"}, {}, "critical",
        "firing", 0.2, T0, T0, T0))
    engine.tick(T0)
    (p,) = list_proposals(store.read(), rule="emergency_rollback")
    assert p.spec["argv"] == ["$QUICKBID_ROLLBACK_COMMAND", "--reason", "HighErrorRate"]
    assert p.description == "Error rate 20%: roll back the last deployment"
    approve(store, p.id, "alice", T0 + 1000)
    engine.tick(T0 + 2000)
    refused = get(store.read(), p.id)
    assert refused.state == "refused" and "QUICKBID_ROLLBACK_COMMAND is not set" in refused.reason

    out = tmp_path / "rolled"
    script = tmp_path / "rollback"
    script.write_text(f"#!{sys.executable}\nimport sys, pathlib\npathlib.Path({str(out)!r}).write_text(repr(sys.argv[1:]))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    engine.env = {"PATH": os.environ["PATH"], "QUICKBID_ROLLBACK_COMMAND": str(script)}
    engine.tick(T0 + 3000)
    (p2,) = list_proposals(store.read(), rule="emergency_rollback", open_only=True)
    approve(store, p2.id, "alice", T0 + 4000)
    engine.tick(T0 + 5000)
    assert get(store.read(), p2.id).state == "succeeded"
    assert out.read_text() == "['--reason', 'HighErrorRate']"


def test_a_run_interrupted_by_a_dead_process_is_marked_failed(store, tmp_path):
    engine = engine_for(store, rules_text(tmp_path / "out", **{"for": "0s"}))
    queue(store, T0, a=50)
    engine.tick(T0)
    (p,) = list_proposals(store.read())
    approve(store, p.id, "alice", T0 + 1000)
    assert store.transaction(lambda c: rows.engine_claim(c, get(c, p.id), T0 + 2000, None, "gone:1"))
    engine.tick(T0 + 3000)
    assert get(store.read(), p.id).state == "executing"  # could still be running elsewhere
    engine.tick(T0 + 2000 + 30_000 * 2 + 61_000)
    done = get(store.read(), p.id)
    assert done.state == "failed" and done.reason.startswith("interrupted")
    assert actions_of(store, p.id)[-1] == "failed"
