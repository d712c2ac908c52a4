"""A/B test statistics: pure functions over per-arm summaries, matching GrowthBook's gbstats.

Every test here reproduces GrowthBook's open stats engine, gbstats 0.8.0
(https://github.com/growthbook/growthbook/tree/main/packages/stats), to 4
decimal places on the same inputs; ``tests/test_stats.py`` checks that against
``tests/data/gbstats_reference.json``. Distributions come from scipy.

Inputs are :class:`MeanStats` (a numeric metric: n, total, sum of squares) or
:class:`ProportionStats` (a conversion metric: n, conversions). The lift is
treatment − control (``relative=False``) or that divided by the control mean
(``relative=True``, variance by the delta method).

The tests, and when to use which:

* :func:`frequentist_test` — Welch's t-test (unequal variances,
  Welch–Satterthwaite degrees of freedom), two-sided or one-sided. Valid only
  for a **fixed horizon**: decide the sample size up front
  (:func:`sample_size_per_arm`), look once when it is reached. Looking every
  day and stopping at the first p < 0.05 inflates false positives many times.
* :func:`sequential_test` — the same estimate with an asymptotic confidence
  sequence (Waudby-Smith et al.). Its interval and p-value stay valid however
  often people look, at the price of wider intervals. Use it for a live
  console that is watched continuously and may stop early.
* :func:`bayesian_test` — a Gaussian posterior for the lift (flat prior, or a
  proper normal prior). Reports chance to win and risk (expected loss of
  choosing each arm), which read naturally for business decisions. A
  probability is not a guarantee against peeking either; pair it with a
  minimum sample size.
* :func:`srm_p_value` — sample ratio mismatch: a chi-square goodness-of-fit of
  the users per arm against the configured split. Below :data:`SRM_ALARM_P`
  the assignment or tracking is broken and no result should be trusted.
* :func:`holm_bonferroni` (family-wise error) and :func:`benjamini_hochberg`
  (false discovery rate) adjust p-values when several metrics or variants are
  judged at once.

Degenerate data (an arm with fewer than 2 units, a zero control mean, zero
variance) never raises: the result has ``error`` set and neutral values
(lift 0, interval (0, 0), p-value 1, chance to win 0.5), as gbstats does.
Invalid inputs (negative counts, inconsistent sums, alpha outside (0, 1)) raise
``ValueError``.

Known differences from gbstats 0.8.0: its one-sided "treatment lesser" test puts
the upper bound at ``estimate − width``, an interval that excludes its own
estimate; ours is ``estimate + width``, the correct bound (p-values agree).
gbstats has no multiple-testing corrections or sample-size function; those
follow Holm (1979), Benjamini & Hochberg (1995) and the textbook
two-proportion power formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Literal, Sequence


class _LazyDistributions:
    """``scipy.stats``, imported on first use: it costs about 70 MB and over a second to import,
    and the console and the agent load this module long before (or without) analysing anything."""

    def __getattr__(self, name: str):
        from scipy import stats

        return getattr(stats, name)


_dist = _LazyDistributions()


def normal_quantile(q: float) -> float:
    """The standard normal distribution's quantile function (inverse CDF)."""
    return float(_dist.norm.ppf(q))

from qbconsole.experiments.stats_arms import (
    ArmStats,
    Difference,
    MeanStats,
    ProportionStats,
    difference,
)
from qbconsole.experiments.stats_sequential import SequentialResult, sequential_test

__all__ = [
    "SRM_ALARM_P",
    "ArmStats",
    "BayesianResult",
    "FrequentistResult",
    "MeanStats",
    "ProportionStats",
    "SequentialResult",
    "bayesian_test",
    "benjamini_hochberg",
    "frequentist_test",
    "holm_bonferroni",
    "normal_quantile",
    "sample_size_per_arm",
    "sequential_test",
    "srm_p_value",
]

SRM_ALARM_P = 0.001
"""Below this SRM p-value the experiment's split is broken (GrowthBook's default threshold)."""

Alternative = Literal["two-sided", "greater", "less"]


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not (isinstance(alpha, Real) and 0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


@dataclass(frozen=True)
class FrequentistResult:
    """Outcome of :func:`frequentist_test`. ``df`` is NaN and ``error`` set when degenerate."""

    lift: float
    ci: tuple[float, float]
    stderr: float
    p_value: float
    df: float
    relative: bool
    alpha: float
    alternative: Alternative
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def significant(self) -> bool:
        """p-value below alpha (only meaningful at the planned horizon)."""
        return self.ok and self.p_value < self.alpha


def frequentist_test(
    control: ArmStats,
    treatment: ArmStats,
    relative: bool = True,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> FrequentistResult:
    """Welch's t-test of treatment vs control (gbstats ``TwoSidedTTest`` and the one-sided ones).

    ``alternative="greater"`` tests lift > 0, ``"less"`` lift < 0; their interval
    is one-sided (an infinite bound). As in gbstats, a zero control mean is
    refused even for the absolute lift.
    """
    _check_alpha(alpha)
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    diff = difference(control, treatment, relative, zero_baseline_is_error=True)
    if diff.error is not None:
        return FrequentistResult(0.0, (0.0, 0.0), 0.0, 1.0, math.nan, relative, alpha, alternative, diff.error)
    se, est, df = diff.stderr, diff.estimate, diff.dof
    t_stat = est / se
    if alternative == "two-sided":
        p_value = 2 * _dist.t.sf(abs(t_stat), df)
        width = _dist.t.ppf(1 - alpha / 2, df) * se
        ci = (est - width, est + width)
    elif alternative == "greater":
        p_value = _dist.t.sf(t_stat, df)
        ci = (est - _dist.t.ppf(1 - alpha, df) * se, math.inf)
    else:
        p_value = _dist.t.cdf(t_stat, df)
        ci = (-math.inf, est + _dist.t.ppf(1 - alpha, df) * se)
    return FrequentistResult(
        est, (float(ci[0]), float(ci[1])), se, min(1.0, float(p_value)), float(df), relative, alpha, alternative
    )


@dataclass(frozen=True)
class BayesianResult:
    """Outcome of :func:`bayesian_test`: posterior mean ``lift``, sd ``stderr``, credible ``ci``.

    ``chance_to_win`` is P(lift > 0). ``risk`` is (control, treatment): the
    expected loss of shipping that arm, E[max(lift, 0)] and E[max(−lift, 0)],
    in the units of the lift.
    """

    lift: float
    ci: tuple[float, float]
    stderr: float
    chance_to_win: float
    risk: tuple[float, float]
    relative: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _expected_positive_part(mu: float, sigma: float) -> float:
    """E[max(X, 0)] for X ~ N(mu, sigma^2) (the truncated-normal mean times its mass)."""
    z = mu / sigma
    return float(mu * _dist.norm.cdf(z) + sigma * _dist.norm.pdf(z))


def bayesian_test(
    control: ArmStats,
    treatment: ArmStats,
    relative: bool = True,
    prior_mean: float | None = None,
    prior_variance: float | None = None,
    alpha: float = 0.05,
) -> BayesianResult:
    """Gaussian posterior for the lift (gbstats ``EffectBayesianABTest``).

    The likelihood is N(estimate, stderr²) from the same estimate as the
    t-test. With no prior it is the posterior (flat prior). With
    ``prior_variance`` the prior N(prior_mean or 0, prior_variance) on the lift,
    in the lift's own units (relative or absolute), is combined by precision
    weighting. ``ci`` is the central 1 − alpha credible interval.
    """
    _check_alpha(alpha)
    proper = prior_variance is not None
    if prior_mean is not None and not proper:
        raise ValueError("prior_mean needs prior_variance: a prior mean alone is no prior")
    if proper and not (math.isfinite(prior_variance) and prior_variance > 0):
        raise ValueError(f"prior_variance must be a positive number, got {prior_variance!r}")
    if prior_mean is not None and not math.isfinite(prior_mean):
        raise ValueError(f"prior_mean must be finite, got {prior_mean!r}")
    diff: Difference = difference(control, treatment, relative, zero_baseline_is_error=False)
    if diff.error is not None:
        return BayesianResult(0.0, (0.0, 0.0), 0.0, 0.5, (0.0, 0.0), relative, diff.error)
    precision = 1 / diff.variance
    mean = diff.estimate
    if proper:
        prior_precision = 1 / prior_variance
        mean = (diff.estimate * precision + (prior_mean or 0.0) * prior_precision) / (precision + prior_precision)
        precision += prior_precision
    sd = math.sqrt(1 / precision)
    low, high = _dist.norm.ppf([alpha / 2, 1 - alpha / 2], loc=mean, scale=sd)
    chance_to_win = float(_dist.norm.sf(0, loc=mean, scale=sd))
    risk = (_expected_positive_part(mean, sd), _expected_positive_part(-mean, sd))
    return BayesianResult(mean, (float(low), float(high)), sd, chance_to_win, risk, relative)


def srm_p_value(counts: Sequence[int], weights: Sequence[float]) -> float:
    """Sample-ratio-mismatch p-value: chi-square goodness of fit of ``counts`` to ``weights``.

    Expected count of arm i is ``weights[i] / sum(weights) * sum(counts)``;
    ``len(counts) - 1`` degrees of freedom. Arms with weight 0 add nothing to
    the statistic (gbstats ``check_srm``). No users at all gives 1. Alarm when
    the result is below :data:`SRM_ALARM_P`.
    """
    if len(counts) != len(weights):
        raise ValueError(f"{len(counts)} counts but {len(weights)} weights")
    if len(counts) < 2:
        raise ValueError("a sample ratio check needs at least 2 arms")
    for c in counts:
        if isinstance(c, bool) or not isinstance(c, Integral) or c < 0:
            raise ValueError(f"counts must be whole numbers >= 0, got {c!r}")
    for w in weights:
        if isinstance(w, bool) or not (isinstance(w, Real) and math.isfinite(w) and w >= 0):
            raise ValueError(f"weights must be finite numbers >= 0, got {w!r}")
    total_weight = float(sum(weights))
    if total_weight <= 0:
        raise ValueError("weights must not all be zero")
    total = int(sum(counts))
    if total == 0:
        return 1.0
    statistic = 0.0
    for observed, weight in zip(counts, weights):
        if weight > 0:
            expected = weight / total_weight * total
            statistic += (observed - expected) ** 2 / expected
    return float(_dist.chi2.sf(statistic, len(counts) - 1))


def _check_p_values(p_values: Sequence[float]) -> list[float]:
    values = [float(p) for p in p_values]
    for p in values:
        if not 0 <= p <= 1:  # also refuses NaN
            raise ValueError(f"p-values must be in [0, 1], got {p!r}")
    return values


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error rate), in input order.

    Sorted ascending, the k-th smallest (k from 0) becomes
    ``max over j <= k of min(1, (m - j) * p_(j))``. Reject where adjusted < alpha.
    """
    values = _check_p_values(p_values)
    m = len(values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=values.__getitem__)):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg step-up adjusted p-values (false discovery rate), in input order.

    Sorted ascending with ranks k = 1..m, the adjusted value is
    ``min over j >= k of min(1, p_(j) * m / j)``.
    """
    values = _check_p_values(p_values)
    m = len(values)
    adjusted = [0.0] * m
    running = 1.0
    order = sorted(range(m), key=values.__getitem__)
    for rank in range(m, 0, -1):
        index = order[rank - 1]
        running = min(running, values[index] * (m / rank))
        adjusted[index] = running
    return adjusted


def sample_size_per_arm(
    baseline_rate: float, mde_absolute: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Users needed in each of two equal arms to detect ``mde_absolute`` on a conversion rate.

    Two-sided test of two proportions, normal approximation (Fleiss; R's
    ``power.prop.test``): with p1 = baseline, p2 = p1 + mde, p̄ = (p1 + p2) / 2,

        n = (z_{1-α/2} √(2 p̄ (1 − p̄)) + z_{power} √(p1 (1 − p1) + p2 (1 − p2)))² / mde²

    rounded up. The first term is the spread under "no difference", the
    second under the difference we want to detect.
    """
    _check_alpha(alpha)
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power!r}")
    if not 0 < baseline_rate < 1:
        raise ValueError(f"baseline_rate must be in (0, 1), got {baseline_rate!r}")
    p2 = baseline_rate + mde_absolute
    if mde_absolute == 0 or not math.isfinite(mde_absolute):
        raise ValueError(f"mde_absolute must be a non-zero effect, got {mde_absolute!r}")
    if not 0 < p2 < 1:
        raise ValueError(f"baseline_rate + mde_absolute = {p2} is not a rate in (0, 1)")
    p1 = baseline_rate
    p_bar = (p1 + p2) / 2
    z_alpha = _dist.norm.ppf(1 - alpha / 2)
    z_power = _dist.norm.ppf(power)
    root_n = (
        z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_power * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ) / abs(mde_absolute)
    # Guard against float noise turning an exact integer into the next one up.
    return max(1, math.ceil(root_n * root_n - 1e-9))
