"""A/B statistics: against gbstats 0.8.0 reference outputs, against plain scipy, and by properties.

The reference file is written by tests/gen_gbstats_reference.py in a separate
virtualenv with gbstats installed; nothing here imports gbstats.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize
from scipy import stats as sps

from qbconsole.experiments.stats import (
    SRM_ALARM_P,
    MeanStats,
    ProportionStats,
    bayesian_test,
    benjamini_hochberg,
    frequentist_test,
    holm_bonferroni,
    sample_size_per_arm,
    sequential_test,
    srm_p_value,
)

REFERENCE = json.loads((Path(__file__).parent / "data" / "gbstats_reference.json").read_text())
CASES = REFERENCE["cases"]
FOUR_DP = 5e-5  # "agree to 4 decimal places"
FAST = settings(max_examples=80, deadline=None)


def arm(spec: dict):
    if spec["kind"] == "proportion":
        return ProportionStats(spec["n"], spec["conversions"])
    return MeanStats(spec["n"], spec["total"], spec["sum_squares"])


def number(value) -> float:
    return float(value)  # "inf" / "-inf" strings become infinities


def cases_of(test: str) -> list:
    return [pytest.param(c, id=c["name"]) for c in CASES if c["test"] == test]


# --- against gbstats 0.8.0 ---------------------------------------------------------------


def test_reference_file_is_from_gbstats_and_varied():
    assert REFERENCE["gbstats_version"] == "0.8.0"
    kinds = {c["test"] for c in CASES}
    assert {"frequentist", "bayesian", "sequential", "srm", "holm_bonferroni", "benjamini_hochberg"} <= kinds
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", cases_of("frequentist"))
def test_frequentist_matches_gbstats(case):
    exp = case["expected"]
    res = frequentist_test(arm(case["control"]), arm(case["treatment"]), **case["params"])
    assert (res.error is None) == (exp["error"] is None)
    assert res.lift == pytest.approx(exp["lift"], abs=FOUR_DP)
    assert res.stderr == pytest.approx(exp["stderr"], abs=FOUR_DP)
    assert res.p_value == pytest.approx(exp["p_value"], abs=FOUR_DP)
    low, high = number(exp["ci"][0]), number(exp["ci"][1])
    if case["params"]["alternative"] == "less":
        # gbstats 0.8.0 puts this bound at estimate - width (excluding its own estimate);
        # ours is estimate + width: the mirror image around the estimate.
        assert low == res.ci[0] == -math.inf
        assert high < exp["lift"]
        assert res.ci[1] == pytest.approx(2 * exp["lift"] - high, abs=FOUR_DP)
    else:
        assert res.ci[0] == pytest.approx(low, abs=FOUR_DP)
        assert res.ci[1] == pytest.approx(high, abs=FOUR_DP)


@pytest.mark.parametrize("case", cases_of("bayesian"))
def test_bayesian_matches_gbstats(case):
    exp = case["expected"]
    res = bayesian_test(arm(case["control"]), arm(case["treatment"]), **case["params"])
    assert (res.error is None) == (exp["error"] is None)
    assert res.lift == pytest.approx(exp["lift"], abs=FOUR_DP)
    assert res.stderr == pytest.approx(exp["stderr"], abs=FOUR_DP)
    assert res.chance_to_win == pytest.approx(exp["chance_to_win"], abs=FOUR_DP)
    assert res.ci == pytest.approx(tuple(exp["ci"]), abs=FOUR_DP)
    assert res.risk == pytest.approx(tuple(exp["risk"]), abs=FOUR_DP)


@pytest.mark.parametrize("case", cases_of("sequential"))
def test_sequential_matches_gbstats(case):
    exp = case["expected"]
    res = sequential_test(arm(case["control"]), arm(case["treatment"]), **case["params"])
    assert (res.error is None) == (exp["error"] is None)
    assert res.lift == pytest.approx(exp["lift"], abs=FOUR_DP)
    assert res.stderr == pytest.approx(exp["stderr"], abs=FOUR_DP)
    assert res.p_value == pytest.approx(exp["p_value"], abs=FOUR_DP)
    assert res.ci == pytest.approx(tuple(exp["ci"]), abs=FOUR_DP)


@pytest.mark.parametrize("case", cases_of("srm"))
def test_srm_matches_gbstats(case):
    assert srm_p_value(**case["params"]) == pytest.approx(case["expected"]["p_value"], abs=FOUR_DP)


@pytest.mark.parametrize("case", cases_of("holm_bonferroni"))
def test_holm_matches_reference(case):
    assert holm_bonferroni(**case["params"]) == pytest.approx(case["expected"]["adjusted"], abs=1e-12)


@pytest.mark.parametrize("case", cases_of("benjamini_hochberg"))
def test_bh_matches_reference(case):
    assert benjamini_hochberg(**case["params"]) == pytest.approx(case["expected"]["adjusted"], abs=1e-12)


# --- independently, with plain scipy -----------------------------------------------------


def raw_arms(seed: int, n_a: int, n_b: int, shift: float):
    rng = np.random.default_rng(seed)
    a = rng.gamma(2.0, 10.0, size=n_a)
    b = rng.gamma(2.0, 10.0, size=n_b) + shift
    return a, b


@pytest.mark.parametrize("seed,n_a,n_b,shift", [(1, 30, 25, 3.0), (2, 500, 520, -1.0), (3, 5, 8, 0.0), (4, 4000, 3900, 0.6)])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_absolute_welch_matches_scipy_on_raw_data(seed, n_a, n_b, shift, alternative):
    a, b = raw_arms(seed, n_a, n_b, shift)
    res = frequentist_test(MeanStats.from_values(a), MeanStats.from_values(b), relative=False, alternative=alternative)
    ref = sps.ttest_ind(b, a, equal_var=False, alternative=alternative)
    ci = ref.confidence_interval(0.95)
    assert res.lift == pytest.approx(b.mean() - a.mean(), rel=1e-9)
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert res.df == pytest.approx(ref.df, rel=1e-9)
    assert res.lift / res.stderr == pytest.approx(ref.statistic, rel=1e-9)
    assert res.ci[0] == pytest.approx(ci.low, rel=1e-9) if math.isfinite(ci.low) else res.ci[0] == -math.inf
    assert res.ci[1] == pytest.approx(ci.high, rel=1e-9) if math.isfinite(ci.high) else res.ci[1] == math.inf


@pytest.mark.parametrize("na,ca,nb,cb", [(10000, 1000, 10000, 1080), (50, 5, 48, 9), (5000, 600, 5100, 540), (200, 190, 210, 205)])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_absolute_proportions_match_scipy_from_stats(na, ca, nb, cb, alternative):
    control, treatment = ProportionStats(na, ca), ProportionStats(nb, cb)
    res = frequentist_test(control, treatment, relative=False, alternative=alternative)
    pa, pb = ca / na, cb / nb
    ref = sps.ttest_ind_from_stats(
        pb, math.sqrt(pb * (1 - pb)), nb, pa, math.sqrt(pa * (1 - pa)), na, equal_var=False, alternative=alternative
    )
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert res.lift / res.stderr == pytest.approx(ref.statistic, rel=1e-9)


def delta_method_stderr(control, treatment) -> float:
    """Var of g(ma, mb) = mb/ma - 1 from a numerical gradient (not the closed form)."""
    ma, mb, h = control.mean, treatment.mean, 1e-6
    g = lambda x, y: y / x - 1  # noqa: E731
    da = (g(ma + h * ma, mb) - g(ma - h * ma, mb)) / (2 * h * ma)
    db = (g(ma, mb + h * mb) - g(ma, mb - h * mb)) / (2 * h * mb)
    return math.sqrt(da**2 * control.variance / control.n + db**2 * treatment.variance / treatment.n)


@pytest.mark.parametrize("seed,n_a,n_b,shift", [(5, 40, 35, 2.0), (6, 900, 880, -1.5), (7, 20000, 20000, 0.3)])
def test_relative_lift_is_delta_method_with_welch_df(seed, n_a, n_b, shift):
    a, b = raw_arms(seed, n_a, n_b, shift)
    control, treatment = MeanStats.from_values(a), MeanStats.from_values(b)
    res = frequentist_test(control, treatment)
    se = delta_method_stderr(control, treatment)
    df = sps.ttest_ind(b, a, equal_var=False).df
    assert res.lift == pytest.approx(b.mean() / a.mean() - 1, rel=1e-9)
    assert res.stderr == pytest.approx(se, rel=1e-6)
    assert res.p_value == pytest.approx(2 * sps.t.sf(abs(res.lift) / se, df), abs=1e-6)
    assert res.ci[1] - res.lift == pytest.approx(sps.t.ppf(0.975, df) * se, rel=1e-6)


@pytest.mark.parametrize("na,ca,nb,cb", [(10000, 1000, 10000, 1080), (300, 30, 310, 22), (2000, 150, 2000, 150)])
def test_bayesian_flat_prior_is_normal_posterior(na, ca, nb, cb):
    pa, pb = ca / na, cb / nb
    ref = sps.ttest_ind_from_stats(pb, math.sqrt(pb * (1 - pb)), nb, pa, math.sqrt(pa * (1 - pa)), na, equal_var=False)
    res = bayesian_test(ProportionStats(na, ca), ProportionStats(nb, cb), relative=False)
    assert res.chance_to_win == pytest.approx(sps.norm.cdf(ref.statistic), abs=1e-9)
    assert res.ci == pytest.approx(sps.norm.interval(0.95, loc=pb - pa, scale=res.stderr), abs=1e-12)


def posterior_by_quadrature(estimate, stderr, prior_mean, prior_variance):
    """Posterior mean, P(lift > 0) and the two risks, integrating prior x likelihood numerically."""
    prior_sd = math.sqrt(prior_variance)
    dens = lambda x: sps.norm.pdf(x, estimate, stderr) * sps.norm.pdf(x, prior_mean, prior_sd)  # noqa: E731
    lo, hi = estimate - 12 * stderr, estimate + 12 * stderr
    points = [0.0] if lo < 0 < hi else None
    quad = lambda f: integrate.quad(f, lo, hi, points=points, limit=200)[0]  # noqa: E731
    z = quad(dens)
    return (
        quad(lambda x: x * dens(x)) / z,
        quad(lambda x: dens(x) * (x > 0)) / z,
        quad(lambda x: max(x, 0.0) * dens(x)) / z,
        quad(lambda x: max(-x, 0.0) * dens(x)) / z,
    )


@pytest.mark.parametrize(
    "control,treatment,relative,prior_mean,prior_variance",
    [
        (ProportionStats(800, 80), ProportionStats(790, 101), True, 0.0, 0.09),
        (ProportionStats(60, 6), ProportionStats(61, 12), True, 0.05, 0.01),
        (MeanStats(300, 3300.0, 3300.0 * 11 + 299 * 25.0), MeanStats(310, 3300.0, 3300.0**2 / 310 + 309 * 30.0), False, 0.5, 4.0),
    ],
)
def test_bayesian_proper_prior_matches_numerical_posterior(control, treatment, relative, prior_mean, prior_variance):
    flat = bayesian_test(control, treatment, relative=relative)
    res = bayesian_test(control, treatment, relative=relative, prior_mean=prior_mean, prior_variance=prior_variance)
    mean, ctw, risk_ctrl, risk_trt = posterior_by_quadrature(flat.lift, flat.stderr, prior_mean, prior_variance)
    assert res.lift == pytest.approx(mean, abs=1e-7)
    assert res.chance_to_win == pytest.approx(ctw, abs=1e-7)
    assert res.risk == pytest.approx((risk_ctrl, risk_trt), abs=1e-7)
    assert res.stderr < flat.stderr  # a proper prior adds information


def test_bayesian_risk_by_quadrature_with_flat_prior():
    res = bayesian_test(ProportionStats(4000, 400), ProportionStats(4000, 430))
    density = lambda x: sps.norm.pdf(x, res.lift, res.stderr)  # noqa: E731
    lo, hi = res.lift - 12 * res.stderr, res.lift + 12 * res.stderr
    risk_ctrl = integrate.quad(lambda x: max(x, 0.0) * density(x), lo, hi, points=[0.0])[0]
    risk_trt = integrate.quad(lambda x: max(-x, 0.0) * density(x), lo, hi, points=[0.0])[0]
    assert res.risk == pytest.approx((risk_ctrl, risk_trt), abs=1e-8)


@pytest.mark.parametrize(
    "counts,weights",
    [([10013, 9987], [0.5, 0.5]), ([10000, 10420], [1, 1]), ([3460, 3290, 3250], [34, 33, 33]), ([9120, 880], [0.9, 0.1]), ([7, 3], [0.5, 0.5])],
)
def test_srm_is_scipy_chisquare(counts, weights):
    expected = [w / sum(weights) * sum(counts) for w in weights]
    assert srm_p_value(counts, weights) == pytest.approx(sps.chisquare(counts, f_exp=expected).pvalue, abs=1e-12)


def test_srm_alarm_threshold():
    assert SRM_ALARM_P == 0.001
    assert srm_p_value([10000, 10420], [0.5, 0.5]) > SRM_ALARM_P  # suspicious, not yet an alarm
    assert srm_p_value([10000, 10700], [0.5, 0.5]) < SRM_ALARM_P
    assert srm_p_value(list(np.array([10000, 10700])), [0.5, 0.5]) < SRM_ALARM_P  # numpy counts too


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
@FAST
def test_bh_equals_scipy_false_discovery_control(p_values):
    expected = sps.false_discovery_control(p_values, method="bh")
    assert benjamini_hochberg(p_values) == pytest.approx(list(expected), abs=1e-12)


def holm_rejections(p_values, alpha):
    """Holm's procedure itself: step down through sorted p-values until one fails."""
    m, rejected = len(p_values), set()
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        if p_values[index] > alpha / (m - rank):
            break
        rejected.add(index)
    return rejected


def bh_rejections(p_values, alpha):
    """BH's procedure itself: reject the k smallest for the largest k with p_(k) <= k alpha / m."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    k = max((r for r in range(1, m + 1) if p_values[order[r - 1]] <= r * alpha / m), default=0)
    return set(order[:k])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=20), st.sampled_from([0.01, 0.05, 0.1, 0.2]))
@FAST
def test_adjusted_p_values_reproduce_the_procedures(p_values, alpha):
    holm, bh = holm_bonferroni(p_values), benjamini_hochberg(p_values)
    # Adjusted p-values exactly on the threshold are float-noise-sensitive; skip those draws.
    if any(math.isclose(v, alpha, rel_tol=1e-9) for v in holm + bh):
        return
    assert {i for i, v in enumerate(holm) if v <= alpha} == holm_rejections(p_values, alpha)
    assert {i for i, v in enumerate(bh) if v <= alpha} == bh_rejections(p_values, alpha)


def power_two_proportions(n, p1, p2, alpha):
    """R's power.prop.test (strict=FALSE) power at n per arm."""
    q1, q2 = 1 - p1, 1 - p2
    z = sps.norm.ppf(1 - alpha / 2)
    return sps.norm.cdf((math.sqrt(n) * abs(p1 - p2) - z * math.sqrt((p1 + p2) * (q1 + q2) / 2)) / math.sqrt(p1 * q1 + p2 * q2))


@pytest.mark.parametrize(
    "baseline,mde,alpha,power",
    [(0.10, 0.02, 0.05, 0.8), (0.05, 0.004, 0.05, 0.8), (0.30, -0.03, 0.01, 0.9), (0.5, 0.1, 0.1, 0.5), (0.02, 0.0016, 0.05, 0.95)],
)
def test_sample_size_solves_the_power_equation(baseline, mde, alpha, power):
    n = sample_size_per_arm(baseline, mde, alpha=alpha, power=power)
    p2 = baseline + mde
    exact = optimize.brentq(lambda x: power_two_proportions(x, baseline, p2, alpha) - power, 1, 1e9, xtol=1e-9)
    assert n == math.ceil(exact)
    assert power_two_proportions(n, baseline, p2, alpha) >= power
    assert power_two_proportions(n - 1, baseline, p2, alpha) < power


def test_sample_size_textbook_value_and_monotonicity():
    assert sample_size_per_arm(0.10, 0.02) == 3841  # R: power.prop.test(p1=.10, p2=.12, power=.8) -> 3840.85
    assert sample_size_per_arm(0.10, 0.01) > sample_size_per_arm(0.10, 0.02)
    assert sample_size_per_arm(0.10, 0.02, power=0.9) > sample_size_per_arm(0.10, 0.02)
    assert sample_size_per_arm(0.10, 0.02, alpha=0.01) > sample_size_per_arm(0.10, 0.02)


# --- properties --------------------------------------------------------------------------


@st.composite
def proportion_pairs(draw):
    na, nb = draw(st.integers(2, 200_000)), draw(st.integers(2, 200_000))
    return ProportionStats(na, draw(st.integers(0, na))), ProportionStats(nb, draw(st.integers(0, nb)))


@st.composite
def mean_pairs(draw):
    arms = []
    for _ in range(2):
        n = draw(st.integers(2, 100_000))
        mean = draw(st.floats(-50, 200))
        var = draw(st.floats(0.01, 1e4))
        arms.append(MeanStats(n, mean * n, mean * mean * n + var * (n - 1)))
    return tuple(arms)


pairs = st.one_of(proportion_pairs(), mean_pairs())


@given(pairs, st.booleans(), st.sampled_from(["two-sided", "greater", "less"]))
@FAST
def test_frequentist_p_in_unit_interval_and_ci_contains_lift(pair, relative, alternative):
    res = frequentist_test(*pair, relative=relative, alternative=alternative)
    assert 0.0 <= res.p_value <= 1.0
    assert res.ci[0] <= res.lift <= res.ci[1]
    if res.ok and alternative == "two-sided":
        assert (res.p_value < 0.05) == (not res.ci[0] <= 0 <= res.ci[1]) or math.isclose(res.p_value, 0.05, rel_tol=1e-6)


@given(pairs, st.booleans())
@FAST
def test_sequential_is_wider_and_its_p_agrees_with_its_interval(pair, relative):
    res = sequential_test(*pair, relative=relative)
    fixed = frequentist_test(*pair, relative=relative)
    assert 0.0 <= res.p_value <= 1.0
    assert res.ci[0] <= res.lift <= res.ci[1]
    if res.ok and fixed.df >= 10:  # with very few units the t quantile itself is wider
        assert res.ci[0] <= fixed.ci[0] + 1e-12 and res.ci[1] >= fixed.ci[1] - 1e-12
    if res.ok:
        excludes_zero = not res.ci[0] <= 0 <= res.ci[1]
        assert (res.p_value < 0.05) == excludes_zero or math.isclose(res.p_value, 0.05, rel_tol=1e-6)


def test_sequential_interval_is_tightest_near_the_tuning_sample_size():
    control, treatment = ProportionStats(10000, 1000), ProportionStats(10000, 1080)
    width = lambda tuning: (lambda r: r.ci[1] - r.ci[0])(sequential_test(control, treatment, tuning=tuning))  # noqa: E731
    assert width(20000) < width(5000) and width(20000) < width(80000)


@given(pairs)
@FAST
def test_chance_to_win_and_risk_swap_with_the_arms(pair):
    control, treatment = pair
    forward, backward = bayesian_test(control, treatment, relative=False), bayesian_test(treatment, control, relative=False)
    assert 0.0 <= forward.chance_to_win <= 1.0
    assert forward.ci[0] <= forward.lift <= forward.ci[1]
    assert forward.chance_to_win + backward.chance_to_win == pytest.approx(1.0, abs=1e-9)
    assert forward.risk == pytest.approx(backward.risk[::-1], rel=1e-9, abs=1e-12)
    rel_forward, rel_backward = bayesian_test(control, treatment), bayesian_test(treatment, control)
    if rel_forward.ok and rel_backward.ok and forward.lift != 0 and control.mean > 0 and treatment.mean > 0:
        # the relative lifts differ in size but not in sign, so the two sit on opposite sides of 0.5
        assert (rel_forward.chance_to_win - 0.5) * (rel_backward.chance_to_win - 0.5) <= 0


@given(st.lists(st.floats(0, 1), min_size=0, max_size=25))
@FAST
def test_corrections_are_monotone_capped_and_ordered(p_values):
    for adjust in (holm_bonferroni, benjamini_hochberg):
        adjusted = adjust(p_values)
        assert len(adjusted) == len(p_values)
        for i, (p, a) in enumerate(zip(p_values, adjusted)):
            assert p <= a <= 1.0
            for q, b in zip(p_values[i + 1 :], adjusted[i + 1 :]):
                if p < q:
                    assert a <= b
    assert all(h >= b - 1e-15 for h, b in zip(holm_bonferroni(p_values), benjamini_hochberg(p_values)))


# --- degenerate data and invalid input -----------------------------------------------------


@pytest.mark.parametrize(
    "control,treatment,relative,fragment",
    [
        (ProportionStats(0, 0), ProportionStats(100, 10), True, "at least 2"),
        (MeanStats(1, 3.0, 9.0), MeanStats(50, 100.0, 400.0), False, "at least 2"),
        (ProportionStats(1000, 0), ProportionStats(1000, 7), True, "zero"),
        (ProportionStats(1000, 1000), ProportionStats(1000, 990), False, "variance"),
        (MeanStats(10, 50.0, 250.0), MeanStats(10, 60.0, 400.0), True, "variance"),
    ],
)
def test_degenerate_data_gives_a_reason_not_an_exception(control, treatment, relative, fragment):
    freq = frequentist_test(control, treatment, relative=relative)
    seq = sequential_test(control, treatment, relative=relative)
    bayes = bayesian_test(control, treatment, relative=relative)
    for res in (freq, seq):
        assert not res.ok and fragment in res.error
        assert (res.lift, res.ci, res.p_value) == (0.0, (0.0, 0.0), 1.0)
    assert bayes.error is not None or (not relative and fragment == "zero")
    if bayes.error:
        assert (bayes.chance_to_win, bayes.risk) == (0.5, (0.0, 0.0))


def test_zero_control_mean_is_refused_by_frequentist_but_not_bayesian_in_absolute_mode():
    control = MeanStats(4, 0.0, 8.0)  # values like -2, 2, -... : mean 0, variance > 0
    treatment = MeanStats(4, 4.0, 12.0)
    assert frequentist_test(control, treatment, relative=False).error is not None  # as gbstats 0.8.0
    assert bayesian_test(control, treatment, relative=False).ok
    assert bayesian_test(control, treatment, relative=True).error is not None


@pytest.mark.parametrize(
    "build",
    [
        lambda: ProportionStats(10, 11),
        lambda: ProportionStats(-1, 0),
        lambda: ProportionStats(10.5, 1),
        lambda: ProportionStats(True, 0),
        lambda: MeanStats(3, 30.0, 100.0),  # sum of squares below total^2/n
        lambda: MeanStats(0, 1.0, 1.0),
        lambda: MeanStats(5, float("nan"), 10.0),
        lambda: MeanStats(5, 1.0, -1.0),
    ],
)
def test_impossible_arms_are_rejected(build):
    with pytest.raises(ValueError):
        build()


def test_invalid_arguments_are_rejected():
    a, b = ProportionStats(100, 10), ProportionStats(100, 12)
    with pytest.raises(ValueError):
        frequentist_test(a, b, alpha=1.5)
    with pytest.raises(ValueError):
        frequentist_test(a, b, alternative="bigger")
    with pytest.raises(ValueError):
        bayesian_test(a, b, prior_mean=0.1)
    with pytest.raises(ValueError):
        bayesian_test(a, b, prior_variance=0.0)
    with pytest.raises(ValueError):
        sequential_test(a, b, tuning=0)
    with pytest.raises(TypeError):
        frequentist_test(a, MeanStats(100, 12.0, 20.0))
    with pytest.raises(ValueError):
        srm_p_value([10, 20], [1.0])
    with pytest.raises(ValueError):
        srm_p_value([10, -1], [1.0, 1.0])
    with pytest.raises(ValueError):
        holm_bonferroni([0.5, 1.2])
    with pytest.raises(ValueError):
        benjamini_hochberg([float("nan")])
    for args in [(0.0, 0.01), (0.1, 0.0), (0.95, 0.1), (0.1, 0.02, 0.05, 1.0)]:
        with pytest.raises(ValueError):
            sample_size_per_arm(*args)


def test_mean_stats_from_values_matches_numpy():
    values = np.random.default_rng(9).normal(5, 2, size=1000)
    stats = MeanStats.from_values(values.tolist())
    assert stats.n == 1000
    assert stats.mean == pytest.approx(values.mean(), rel=1e-12)
    assert stats.variance == pytest.approx(values.var(ddof=1), rel=1e-9)
    assert ProportionStats(200, 50).variance == pytest.approx(0.25 * 0.75)
