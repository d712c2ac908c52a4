"""A/B experiments: assignment, exposures, lifecycle and audit, the config section and its sync, the CLI."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter

import pytest
from scipy import stats as dist

from qbconsole.cli import main
from qbconsole.config import ConfigError, parse_config
from qbconsole.experiments import lifecycle
from qbconsole.experiments.analyze import analyze
from qbconsole.experiments.assign import assign, bucket, expose, exposure_of, track
from qbconsole.experiments.model import (
    ExperimentError,
    Metric,
    NotRunning,
    Spec,
    SplitLocked,
    UnknownExperiment,
    parse_metric_arg,
    parse_mde,
    parse_split,
    spec_from_config,
)
from qbconsole.experiments.sync import sync_from_config
from qbconsole.store import Store

T0 = 1_767_225_600_000
IDS = [f"user-{i}" for i in range(100_000)]
METRICS = (Metric("conversion", "purchase", "conversion"), Metric("revenue", "purchase", "value"))


def spec(name="bid", variants=("control", "treatment"), weights=(50, 50), **kw) -> Spec:
    return Spec(name, tuple(variants), tuple(weights), kw.pop("metrics", METRICS), **kw)


def make(store, s: Spec | None = None, start=True, actor="alice", now=T0):
    return store.transaction(lambda c: lifecycle.create(c, s or spec(), actor, now, start=start))


def audit_rows(store) -> list[tuple]:
    return [(a, act, t, json.loads(d)) for a, act, t, d in
            store.read().execute("SELECT actor, action, target, detail FROM audit_log ORDER BY id")]


# ---- assignment ------------------------------------------------------------------------------
def test_bucket_is_the_documented_sha256_and_stable(store):
    expected = int(hashlib.sha256(b"seed-1\nuser-42").hexdigest()[:16], 16) / 2**64
    assert bucket("seed-1", "user-42") == expected
    exp = make(store)
    first = [assign(exp, u) for u in IDS[:2000]]
    again = lifecycle.get(store.read(), "bid")  # re-read from the store: same seed, same answers
    assert [assign(again, u) for u in IDS[:2000]] == first
    assert exp.seed.startswith("bid:") and len(exp.seed) > len("bid:")  # the name and a random salt


def test_buckets_are_uniform_over_100k_ids():
    counts = Counter(int(bucket("uniformity", u) * 20) for u in IDS)
    assert dist.chisquare([counts[k] for k in range(20)]).pvalue > 0.001


@pytest.mark.parametrize("weights", [(50, 50), (90, 10), (1, 1, 1, 1), (0.2, 0.3, 0.5)])
def test_the_split_is_respected_over_100k_ids(store, weights):
    variants = [f"v{i}" for i in range(len(weights))]
    exp = make(store, spec(variants=variants, weights=weights, seed="split-test"))
    counts = Counter(assign(exp, u) for u in IDS)
    observed = [counts[v] for v in variants]
    expected = [w / sum(weights) * len(IDS) for w in weights]
    assert dist.chisquare(observed, expected).pvalue > 0.001
    for o, e in zip(observed, expected):
        assert abs(o - e) / len(IDS) < 0.005


def test_two_experiments_assign_independently(store):
    a = make(store, spec("a"))
    b = make(store, spec("b"))
    table = Counter((assign(a, u), assign(b, u)) for u in IDS[:20_000])
    cells = [[table[(x, y)] for y in b.variants] for x in a.variants]
    assert dist.chi2_contingency(cells).pvalue > 0.001


def test_first_exposure_wins_and_keeps_its_time(store):
    exp = make(store)
    first = store.transaction(lambda c: expose(c, exp, "u1", T0 + 10))
    later = store.transaction(lambda c: expose(c, exp, "u1", T0 + 99))
    assert first.first and not later.first
    assert first.variant == later.variant == assign(exp, "u1")
    assert later.ts == T0 + 10
    assert exposure_of(store.read(), exp, "u1") == (assign(exp, "u1"), T0 + 10)


def test_exposures_and_events_need_the_right_status(store):
    draft = make(store, spec("draft"), start=False)
    with pytest.raises(NotRunning, match="draft"):
        store.transaction(lambda c: expose(c, draft, "u1", T0))
    with pytest.raises(NotRunning, match="has not started"):
        store.transaction(lambda c: track(c, draft, "u1", "purchase", T0))
    exp = make(store, now=T0)
    with pytest.raises(ExperimentError, match="before experiment"):
        store.transaction(lambda c: expose(c, exp, "u1", T0 - 1))
    stopped = store.transaction(lambda c: lifecycle.stop(c, "bid", "bob", T0 + 100))
    store.transaction(lambda c: track(c, stopped, "u1", "purchase", T0 + 50, 3.0))  # a late arrival from before
    with pytest.raises(NotRunning, match="stopped"):
        store.transaction(lambda c: track(c, stopped, "u1", "purchase", T0 + 101))
    with pytest.raises(NotRunning):
        store.transaction(lambda c: expose(c, stopped, "u2", T0 + 101))
    with pytest.raises(ExperimentError, match="finite"):
        store.transaction(lambda c: track(c, exp, "u1", "purchase", T0, float("nan")))


# ---- lifecycle, refusals and the audit log ---------------------------------------------------------
def test_lifecycle_is_audited_with_the_actor(store):
    make(store, start=False, actor="alice")
    store.transaction(lambda c: lifecycle.start(c, "bid", "bob", T0 + 1))
    exp = store.transaction(lambda c: lifecycle.stop(c, "bid", "carol", T0 + 2, "done"))
    assert (exp.status, exp.started_at, exp.stopped_at, exp.stopped_by) == ("stopped", T0 + 1, T0 + 2, "carol")
    rows = audit_rows(store)
    assert [(a, act, t) for a, act, t, _ in rows] == [
        ("alice", "experiment.create", "bid"), ("bob", "experiment.start", "bid"), ("carol", "experiment.stop", "bid")]
    assert rows[0][3]["split"] == [50.0, 50.0] and rows[0][3]["metrics"] == {"conversion": "purchase",
                                                                           "revenue": "purchase.value"}
    with pytest.raises(ExperimentError, match="cannot run again"):
        store.transaction(lambda c: lifecycle.start(c, "bid", "bob", T0 + 3))
    with pytest.raises(ExperimentError, match="already stopped"):
        store.transaction(lambda c: lifecycle.stop(c, "bid", "bob", T0 + 3))
    with pytest.raises(UnknownExperiment, match="unknown experiment 'nope'"):
        lifecycle.get(store.read(), "nope")
    with pytest.raises(ExperimentError, match="already exists"):
        make(store)


def test_changing_the_split_of_a_running_experiment_is_refused_with_the_reason(store):
    make(store)
    before = audit_rows(store)
    for change in ({"weights": (90, 10)}, {"variants": ("control", "other")}, {"seed": "new"}):
        with pytest.raises(SplitLocked, match="would bias the comparison.*Stop it"):
            store.transaction(lambda c, ch=change: lifecycle.edit(c, "bid", "bob", T0 + 5, **ch))
    exp = lifecycle.get(store.read(), "bid")
    assert exp.weights == (50.0, 50.0) and exp.variants == ("control", "treatment")
    assert audit_rows(store) == before
    with pytest.raises(Exception, match="split of a started experiment is fixed"):  # the trigger, too
        store.transaction(lambda c: c.execute("UPDATE experiments SET weights = '[9, 1]'"))
    # the analysis plan may change, and is audited
    store.transaction(lambda c: lifecycle.edit(c, "bid", "bob", T0 + 6, mde=0.1, metrics=METRICS[:1]))
    actor, action, _, detail = audit_rows(store)[-1]
    assert (actor, action) == ("bob", "experiment.edit")
    assert detail["mde"] == {"from": 0.05, "to": 0.1} and "split" not in detail


def test_a_draft_may_change_its_split(store):
    make(store, start=False)
    exp = store.transaction(lambda c: lifecycle.edit(c, "bid", "bob", T0, weights=(90, 10)))
    assert exp.shares == (0.9, 0.1)
    assert audit_rows(store)[-1][3]["split"] == {"from": [50.0, 50.0], "to": [90.0, 10.0]}


def test_parsing_refuses_bad_definitions():
    assert parse_metric_arg("revenue=purchase.value") == Metric("revenue", "purchase", "value")
    assert parse_metric_arg("n=purchase.count").kind == "count"
    assert parse_mde("5%") == parse_mde(0.05) == 0.05
    assert parse_split("90,10", 2) == (90.0, 10.0)
    for bad, message in [(lambda: parse_metric_arg("revenue"), "NAME=EVENT"),
                         (lambda: parse_metric_arg("r=purchase.sum"), "unknown measure 'sum'"),
                         (lambda: parse_split("50,x", 2), "numbers"),
                         (lambda: parse_split("50,50,0", 3), "positive"),
                         (lambda: parse_split("50", 2), "1 weights but there are 2"),
                         (lambda: spec(variants=("a",), weights=(1,)), "at least two variants"),
                         (lambda: spec(variants=("a", "a")), "unique"),
                         (lambda: spec(metrics=()), "at least one metric"),
                         (lambda: spec(name="has space"), "invalid experiment name")]:
        with pytest.raises(ExperimentError, match=message):
            bad()


# ---- the config section and its sync ----------------------------------------------------------------
CONFIG = """
experiments:
  - name: bid_button
    variants: [control, treatment]
    split: [50, 50]
    metrics: {conversion: purchase, revenue: purchase.value}
    duration: 14d
    start: true
"""


def test_config_section_is_validated_with_positions():
    config = parse_config(CONFIG)
    s, start = spec_from_config(config.experiments[0])
    assert start and s.metrics == METRICS and s.duration_s == 14 * 86400 and s.shares == (0.5, 0.5)
    assert not any("experiments" in n for n in config.notices)
    bad = CONFIG.replace("split: [50, 50]", "split: [50, 30, 20]").replace("purchase.value", "purchase.valeu")
    with pytest.raises(ConfigError) as caught:
        parse_config(bad + "    strat: false\n")
    text = str(caught.value)
    assert "<string>:5:12: split has 3 weights but there are 2 variants" in text
    assert "<string>:6:46: metrics: metric revenue: unknown measure 'valeu'" in text
    assert "<string>:9:5: unknown key 'strat' in experiment; did you mean 'start'?" in text


def test_sync_creates_starts_and_refuses_a_split_change_of_a_running_experiment(store, caplog):
    config = parse_config(CONFIG)
    results = sync_from_config(store, config.experiments, now=T0)
    assert [(r.name, r.action) for r in results] == [("bid_button", "created")]
    exp = lifecycle.get(store.read(), "bid_button")
    assert (exp.status, exp.origin, exp.started_at) == ("running", "config", T0)
    assert [(r.action) for r in sync_from_config(store, config.experiments, now=T0 + 1)] == ["unchanged"]

    changed = parse_config(CONFIG.replace("[50, 50]", "[90, 10]").replace("14d", "21d"))
    with caplog.at_level(logging.WARNING, logger="qbconsole.experiments"):
        [result] = sync_from_config(store, changed.experiments, now=T0 + 2)
    assert result.action == "refused" and "would bias the comparison" in result.detail
    assert "bid_button from the config not applied" in caplog.text and "bias" in caplog.text
    after = lifecycle.get(store.read(), "bid_button")
    assert after.weights == (50.0, 50.0) and after.duration_s == 14 * 86400  # nothing of it applied

    plan_only = parse_config(CONFIG.replace("14d", "21d"))
    [result] = sync_from_config(store, plan_only.experiments, now=T0 + 3)
    assert result.action == "updated" and lifecycle.get(store.read(), "bid_button").duration_s == 21 * 86400
    assert [a for a, act, *_ in audit_rows(store) if act == "experiment.edit"] == ["config"]

    store.transaction(lambda c: lifecycle.stop(c, "bid_button", "alice", T0 + 4))
    [result] = sync_from_config(store, changed.experiments, now=T0 + 5)
    assert result.action == "unchanged" and lifecycle.get(store.read(), "bid_button").status == "stopped"


def test_sync_updates_a_draft_and_starts_it_when_asked(store):
    draft = parse_config(CONFIG.replace("start: true", "start: false"))
    sync_from_config(store, draft.experiments, now=T0)
    assert lifecycle.get(store.read(), "bid_button").status == "draft"
    go = parse_config(CONFIG.replace("[50, 50]", "[80, 20]"))
    [result] = sync_from_config(store, go.experiments, now=T0 + 1)
    assert result.action == "updated and started"
    exp = lifecycle.get(store.read(), "bid_button")
    assert exp.status == "running" and exp.shares == (0.8, 0.2)


# ---- CLI end to end ---------------------------------------------------------------------------------
def run(capsys, db, *argv) -> tuple[int, str, str]:
    code = main(["--db", str(db), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_end_to_end(tmp_path, capsys):
    db = tmp_path / "cli.db"
    code, out, _ = run(capsys, db, "ab", "create", "bid", "--variants", "control,treatment", "--split", "50,50",
                       "--metric", "conversion=purchase", "--metric", "revenue=purchase.value",
                       "--duration", "14d", "--start", "--operator", "alice")
    assert code == 0 and "created experiment bid (running) as alice" in out
    with Store.open(db) as s:
        exp = lifecycle.get(s.read(), "bid")
    variants = {}
    for i in range(40):
        code, out, _ = run(capsys, db, "ab", "assign", "bid", f"u{i}")
        variants[f"u{i}"] = out.strip()
        assert code == 0 and out.strip() == assign(exp, f"u{i}")
    code, out, err = run(capsys, db, "ab", "assign", "bid", "u0")
    assert out.strip() == variants["u0"] and "exposed before" in err
    for i in range(0, 40, 3):
        assert run(capsys, db, "ab", "track", "bid", f"u{i}", "purchase", "--value", "10")[0] == 0
    code, _, err = run(capsys, db, "ab", "track", "bid", "stranger", "purchase")
    assert code == 0 and "does not count" in err

    code, out, _ = run(capsys, db, "ab", "show", "bid", "--json")
    shown = json.loads(out)
    assert shown["status"] == "running" and shown["split"] == [50.0, 50.0]
    arms = {v["variant"]: v for v in shown["analysis"]["variants"]}
    for name in ("control", "treatment"):
        members = [u for u, v in variants.items() if v == name]
        buyers = [u for u in members if int(u[1:]) % 3 == 0]
        assert arms[name]["users"] == len(members)
        assert arms[name]["metrics"]["conversion"]["conversions"] == len(buyers)
        assert arms[name]["metrics"]["revenue"]["total"] == 10.0 * len(buyers)
    assert shown["verdict"]["outcome"] == "no_difference_yet"
    code, out, _ = run(capsys, db, "ab", "show", "bid")
    assert code == 0 and "verdict: no difference detected yet" in out and "sample ratio: ok" in out
    code, out, _ = run(capsys, db, "ab", "list")
    assert "bid" in out and "running" in out and "no difference detected yet" in out

    code, _, err = run(capsys, db, "ab", "edit", "bid", "--split", "90,10", "--operator", "bob")
    assert code == 1 and "would bias the comparison" in err
    code, out, _ = run(capsys, db, "ab", "stop", "bid", "--operator", "carol")
    assert code == 0 and "stopped experiment bid as carol" in out
    code, _, err = run(capsys, db, "ab", "assign", "bid", "u99")
    assert code == 1 and "stopped" in err
    code, _, err = run(capsys, db, "ab", "show", "nope")
    assert code == 1 and "unknown experiment 'nope'" in err
    with Store.open(db) as s:
        actions = [(a, act) for a, act, *_ in s.read().execute("SELECT actor, action FROM audit_log ORDER BY id")]
        assert actions == [("alice", "experiment.create"), ("alice", "experiment.start"),
                           ("carol", "experiment.stop")]
        assert analyze(s.read(), lifecycle.get(s.read(), "bid")).users == 40
