"""Experiment analysis and verdicts: SQL aggregates equal hand-computed ones fed to ``stats``; the four verdicts."""

from __future__ import annotations

import math
import random

import pytest

from qbconsole.experiments import lifecycle, stats
from qbconsole.experiments.analyze import SEQUENTIAL_TUNING, analyze
from qbconsole.experiments.assign import expose, track
from qbconsole.experiments.model import Metric, Spec
from qbconsole.experiments.verdict import decide

T0 = 1_767_225_600_000
DAY = 86_400_000
CONVERSION = Metric("conversion", "purchase", "conversion")
REVENUE = Metric("revenue", "purchase", "value")
VIEWS = Metric("views", "view", "count")


def create(store, variants=("control", "treatment"), weights=(50, 50), metrics=(CONVERSION,), **kw):
    s = Spec("exp", tuple(variants), tuple(weights), tuple(metrics), **{"duration_s": 14 * 86400, **kw})
    return store.transaction(lambda c: lifecycle.create(c, s, "test", T0, start=True))


def load(store, exp, arms: dict[str, tuple[int, int]], at=T0 + 1000):
    """``arms``: variant -> (exposed users, converting users); converters buy once, value 10 + i % 7."""
    exposures, events = [], []
    for variant, (n, converted) in arms.items():
        for i in range(n):
            user = f"{variant}-{i}"
            exposures.append((exp.id, user, variant, at))
            if i < converted:
                events.append((exp.id, user, "purchase", 10.0 + i % 7, at + 5))

    def write(conn):
        conn.executemany("INSERT INTO exposures(experiment_id, user_id, variant, ts) VALUES (?, ?, ?, ?)", exposures)
        conn.executemany("INSERT INTO experiment_events(experiment_id, user_id, event, value, ts)"
                         " VALUES (?, ?, ?, ?, ?)", events)
    store.transaction(write)


# ---- exposure filtering ---------------------------------------------------------------------------
def test_only_exposed_users_and_events_at_or_after_exposure_count(store):
    exp = create(store, metrics=(CONVERSION, REVENUE, VIEWS))
    users = {}
    for i in range(6):
        users[f"u{i}"] = store.transaction(lambda c, u=f"u{i}": expose(c, exp, u, T0 + 100)).variant
    exp = lifecycle.get(store.read(), "exp")

    def ev(user, event, ts, value=None):
        store.transaction(lambda c: track(c, exp, user, event, ts, value))
    ev("u0", "purchase", T0 + 50, 100.0)    # before its exposure: ignored
    ev("u0", "purchase", T0 + 100, 7.0)     # at the exposure: counts
    ev("u1", "purchase", T0 + 150, 3.0)
    ev("u1", "purchase", T0 + 160, 4.0)     # two purchases: one conversion, revenue 7
    ev("u2", "purchase", T0 + 99, 9.0)      # before: u2 does not convert
    ev("u3", "view", T0 + 200)
    ev("u3", "view", T0 + 300)
    ev("stranger", "purchase", T0 + 200, 50.0)  # never exposed: ignored
    ev("u4", "purchase", T0 + 10_000, 5.0)  # after the analysis time below: ignored

    analysis = analyze(store.read(), exp, now=T0 + 5000)
    expected_conv = {"u0": 1, "u1": 1}
    expected_rev = {"u0": 7.0, "u1": 7.0}
    for arm in analysis.arms:
        members = [u for u, v in users.items() if v == arm.variant]
        assert arm.users == len(members)
        conv = arm.metrics["conversion"]
        assert conv.conversions == sum(expected_conv.get(u, 0) for u in members)
        rev = arm.metrics["revenue"]
        assert rev == stats.MeanStats.from_values([expected_rev.get(u, 0.0) for u in members])
        views = arm.metrics["views"]
        assert views == stats.MeanStats.from_values([2.0 if u == "u3" else 0.0 for u in members])
    assert sum(a.users for a in analysis.arms) == 6


def test_a_stopped_experiment_is_analysed_as_of_its_stop(store):
    exp = create(store)
    for i in range(4):
        store.transaction(lambda c, u=f"u{i}": expose(c, exp, u, T0 + 10))
    exp = store.transaction(lambda c: lifecycle.stop(c, "exp", "test", T0 + 1000))
    store.transaction(lambda c: track(c, exp, "u0", "purchase", T0 + 900))
    store.transaction(lambda c: c.execute(  # a row past the stop, written behind the API's back
        "INSERT INTO experiment_events(experiment_id, user_id, event, ts) VALUES (?, 'u1', 'purchase', ?)",
        (exp.id, T0 + 2000)))
    analysis = analyze(store.read(), exp, now=T0 + 99_999)
    assert analysis.as_of == T0 + 1000
    assert sum(a.metrics["conversion"].conversions for a in analysis.arms) == 1


# ---- the numbers equal stats on hand-computed aggregates ------------------------------------------
def synthetic(store, seed=3):
    """Three variants, exposures over a day, purchases (some before exposure), views, strangers."""
    rng = random.Random(seed)
    exp = create(store, variants=("control", "b", "c"), weights=(2, 1, 1), metrics=(CONVERSION, REVENUE, VIEWS))
    exposed, events = {}, []
    for i in range(900):
        user = f"user-{i}"
        at = T0 + rng.randrange(DAY)
        exposed[user] = (store.transaction(lambda c, u=user, t=at: expose(c, exp, u, t)).variant, at)
    lift = {"control": 0.0, "b": 0.04, "c": -0.02}
    for user, (variant, at) in exposed.items():
        for _ in range(rng.randrange(4)):
            ts = at + rng.randrange(-DAY // 4, DAY)
            if rng.random() < 0.12 + lift[variant]:
                events.append((user, "purchase", round(rng.uniform(1, 90), 2), ts))
            else:
                events.append((user, "view", None, ts))
    events += [(f"stranger-{i}", "purchase", 20.0, T0 + i) for i in range(30)]
    exp = lifecycle.get(store.read(), "exp")
    store.transaction(lambda c: [track(c, exp, u, e, ts, v) for u, e, v, ts in events])
    return exp, exposed, events


def hand_stats(exp, exposed, events, as_of):
    per_user: dict[str, dict] = {u: {"purchase": [], "view": 0} for u in exposed}
    for user, event, value, ts in events:
        if user in exposed and exposed[user][1] <= ts <= as_of:
            if event == "purchase":
                per_user[user]["purchase"].append(value)
            else:
                per_user[user]["view"] += 1
    out = {}
    for variant in exp.variants:
        members = [per_user[u] for u, (v, _) in exposed.items() if v == variant]
        out[variant] = {
            "conversion": stats.ProportionStats(len(members), sum(1 for m in members if m["purchase"])),
            "revenue": stats.MeanStats.from_values([sum(m["purchase"]) for m in members]),
            "views": stats.MeanStats.from_values([float(m["view"]) for m in members]),
        }
    return out


@pytest.mark.parametrize("as_of, method", [(T0 + 2 * DAY, "sequential"), (T0 + 15 * DAY, "frequentist")])
def test_analysis_equals_stats_on_hand_computed_aggregates(store, as_of, method):
    exp, exposed, events = synthetic(store)
    analysis = analyze(store.read(), exp, now=as_of)
    assert analysis.method == method and analysis.horizon_reached == (method == "frequentist")
    by_hand = hand_stats(exp, exposed, events, as_of)
    for arm in analysis.arms:
        for name, expected in by_hand[arm.variant].items():
            got = arm.metrics[name]
            assert got.n == expected.n
            if isinstance(expected, stats.ProportionStats):
                assert got.conversions == expected.conversions
            else:
                assert got.total == pytest.approx(expected.total, rel=1e-12)
                assert got.sum_squares == pytest.approx(expected.sum_squares, rel=1e-12)
    raw = []
    for name in ("conversion", "revenue", "views"):
        a = by_hand["control"][name]
        for variant in ("b", "c"):
            b = by_hand[variant][name]
            if method == "frequentist":
                test = stats.frequentist_test(a, b, relative=True, alpha=0.05)
            else:
                test = stats.sequential_test(a, b, relative=True, alpha=0.05, tuning=SEQUENTIAL_TUNING)
            raw.append((name, variant, test, stats.bayesian_test(a, b, relative=True)))
    adjusted = stats.holm_bonferroni([t.p_value for *_, t, _ in raw])
    assert len(analysis.comparisons) == len(raw) == 6
    for (name, variant, test, bayes), adj in zip(raw, adjusted):
        c = analysis.comparison(name, variant)
        assert c.method == method and c.ok
        assert c.lift == pytest.approx(test.lift, rel=1e-9)
        assert c.ci == pytest.approx(test.ci, rel=1e-9)
        assert c.p_value == pytest.approx(test.p_value, rel=1e-9, abs=1e-15)
        assert c.adjusted_p == pytest.approx(adj, rel=1e-9, abs=1e-15)
        assert c.chance_to_win == pytest.approx(bayes.chance_to_win, rel=1e-9)
    counts = [a.users for a in analysis.arms]
    assert analysis.srm_p == pytest.approx(stats.srm_p_value(counts, [2, 1, 1]))


def test_sequential_is_always_used_when_configured(store):
    exp = create(store, sequential=True)
    assert analyze(store.read(), exp, now=T0 + 30 * DAY).method == "sequential"
    no_horizon = store.transaction(lambda c: lifecycle.edit(c, "exp", "t", T0, duration_s=None, sequential=False))
    assert analyze(store.read(), no_horizon, now=T0 + 300 * DAY).method == "sequential"


# ---- the four verdicts --------------------------------------------------------------------------------
def test_ship_when_the_primary_metric_is_significantly_better(store):
    exp = create(store)
    load(store, exp, {"control": (2000, 200), "treatment": (2000, 300)})
    for now, method in ((T0 + 2 * DAY, "sequential"), (T0 + 15 * DAY, "frequentist")):
        analysis = analyze(store.read(), exp, now=now)
        verdict = decide(analysis)
        assert analysis.method == method
        assert (verdict.outcome, verdict.variant) == ("ship", "treatment"), verdict.reason
        assert verdict.headline == "ship treatment" and "+50.0 %" in verdict.reason


def test_keep_control_when_significantly_worse(store):
    exp = create(store)
    load(store, exp, {"control": (2000, 200), "treatment": (2000, 110)})
    verdict = decide(analyze(store.read(), exp, now=T0 + 15 * DAY))
    assert (verdict.outcome, verdict.variant) == ("keep_control", "control")
    assert "treatment is worse" in verdict.reason


def test_keep_control_when_the_interval_rules_out_the_minimum_effect(store):
    exp = create(store)
    load(store, exp, {"control": (20_000, 6000), "treatment": (20_000, 6000)})
    analysis = analyze(store.read(), exp, now=T0 + 15 * DAY)
    c = analysis.comparison("conversion", "treatment")
    assert not c.significant and c.ci[1] < exp.mde
    verdict = decide(analysis)
    assert verdict.outcome == "keep_control" and "cannot reach the minimum effect +5.0 %" in verdict.reason


def test_no_difference_yet_estimates_users_and_days(store):
    exp = create(store)
    load(store, exp, {"control": (300, 30), "treatment": (300, 36)})  # a higher raw rate, not a winner
    now = T0 + 2 * DAY
    analysis = analyze(store.read(), exp, now=now)
    verdict = decide(analysis)
    assert verdict.outcome == "no_difference_yet" and verdict.variant is None
    per_arm = stats.sample_size_per_arm(0.1, 0.1 * exp.mde, alpha=0.05 / 1, power=0.8)
    assert verdict.needed_users == 2 * per_arm
    assert verdict.users_still_needed == 2 * per_arm - 600
    assert analysis.exposures_per_day == pytest.approx(600 / 2)
    assert verdict.days_still_needed == pytest.approx((2 * per_arm - 600) / 300)
    assert verdict.progress == pytest.approx(600 / (2 * per_arm))
    assert f"about {2 * per_arm - 600} more users" in verdict.reason


def test_uneven_split_and_several_comparisons_raise_the_sample_needed(store):
    exp = create(store, weights=(90, 10), metrics=(CONVERSION, REVENUE))
    load(store, exp, {"control": (900, 90), "treatment": (100, 11)})
    verdict = decide(analyze(store.read(), exp, now=T0 + DAY))
    per_arm = stats.sample_size_per_arm(0.1, 0.1 * exp.mde, alpha=0.05 / 2, power=0.8)
    assert verdict.needed_users == math.ceil(per_arm * (1 / 0.9 + 1 / 0.1) / 2)


def test_below_the_minimum_sample_nothing_is_decided(store):
    exp = create(store, min_users=500)
    load(store, exp, {"control": (400, 40), "treatment": (400, 120)})
    analysis = analyze(store.read(), exp, now=T0 + 15 * DAY)
    assert analysis.comparison("conversion", "treatment").significant
    verdict = decide(analysis)
    assert verdict.outcome == "no_difference_yet" and "below the minimum of 500 users" in verdict.reason


def test_sample_ratio_mismatch_invalidates_even_a_clear_winner(store):
    exp = create(store)
    load(store, exp, {"control": (2000, 200), "treatment": (1700, 300)})
    analysis = analyze(store.read(), exp, now=T0 + 15 * DAY)
    assert analysis.srm_p == pytest.approx(stats.srm_p_value([2000, 1700], [50, 50]))
    assert analysis.srm and analysis.srm_p < 0.001
    verdict = decide(analysis)
    assert verdict.outcome == "invalid_srm" and verdict.headline == "invalid: sample ratio mismatch"
    assert "2000" in verdict.reason and "1700" in verdict.reason


def test_a_matching_uneven_split_is_no_mismatch(store):
    exp = create(store, weights=(90, 10))
    load(store, exp, {"control": (9000, 900), "treatment": (1000, 100)})
    analysis = analyze(store.read(), exp, now=T0 + DAY)
    assert not analysis.srm and analysis.srm_p == pytest.approx(1.0)
    assert decide(analysis).outcome != "invalid_srm"


def test_holm_adjusts_across_metrics_and_variants(store):
    exp = create(store, variants=("control", "b", "c"), weights=(1, 1, 1), metrics=(CONVERSION, REVENUE))
    load(store, exp, {"control": (1500, 150), "b": (1500, 215), "c": (1500, 160)})
    analysis = analyze(store.read(), exp, now=T0 + 15 * DAY)
    raw = [c.p_value for c in analysis.comparisons]
    assert [c.adjusted_p for c in analysis.comparisons] == stats.holm_bonferroni(raw)
    assert [(c.metric, c.variant) for c in analysis.comparisons] == [
        ("conversion", "b"), ("conversion", "c"), ("revenue", "b"), ("revenue", "c")]
    verdict = decide(analysis)
    assert (verdict.outcome, verdict.variant) == ("ship", "b")
    b = analysis.comparison("conversion", "b")
    assert b.adjusted_p > b.p_value  # the correction costs something
