"""Sequential test: asymptotic confidence sequences, valid however often you look.

Same estimate and variance as the fixed-horizon t-test, but the interval is
Waudby-Smith et al.'s asymptotic confidence sequence (eq. 9 of
https://arxiv.org/abs/2103.06476v7) and the p-value is the reciprocal of the
matching e-value (eq. 155), capped at 1. ``tuning`` is the total sample size
at which the sequence is tightest (rho from eq. 161). This is gbstats 0.8.0's
``SequentialTwoSidedTTest``; there is no one-sided variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qbconsole.experiments.stats_arms import ArmStats, difference


@dataclass(frozen=True)
class SequentialResult:
    """``lift`` with its always-valid ``ci`` and ``p_value``; ``error`` says why not."""

    lift: float
    ci: tuple[float, float]
    stderr: float
    p_value: float
    relative: bool
    alpha: float
    tuning: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def mixing_rho(alpha: float, tuning: float) -> float:
    """The mixture parameter rho that makes the sequence tightest at ``tuning`` units."""
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / tuning)


def sequential_test(
    control: ArmStats,
    treatment: ArmStats,
    relative: bool = True,
    alpha: float = 0.05,
    tuning: float = 5000,
) -> SequentialResult:
    """Two-sided sequential test of treatment vs control (gbstats ``SequentialTwoSidedTTest``).

    Degenerate data (too few units, zero control mean, zero variance) gives
    ``lift=0, ci=(0, 0), p_value=1`` with ``error`` set, as gbstats does.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not (math.isfinite(tuning) and tuning > 0):
        raise ValueError(f"tuning must be a positive number of units, got {tuning}")
    diff = difference(control, treatment, relative)
    if diff.error is not None:
        return SequentialResult(0.0, (0.0, 0.0), 0.0, 1.0, relative, alpha, tuning, diff.error)
    n = diff.n_total
    rho = mixing_rho(alpha, tuning)
    nrho2_1 = n * rho * rho + 1
    s2 = diff.variance * n
    width = math.sqrt(s2) * math.sqrt(
        2 * nrho2_1 * math.log(math.sqrt(nrho2_1) / alpha) / (n * rho) ** 2
    )
    st2 = diff.estimate**2 * n / diff.variance
    # p = 1 / e-value, computed in logs so a huge e-value gives 0 rather than overflow
    log_evalue = rho * rho * st2 / (2 * nrho2_1) - 0.5 * math.log(nrho2_1)
    p_value = 1.0 if log_evalue <= 0 else math.exp(-log_evalue)
    ci = (diff.estimate - width, diff.estimate + width)
    return SequentialResult(diff.estimate, ci, diff.stderr, p_value, relative, alpha, tuning)
