"""Per-arm sufficient statistics and the difference between two arms.

An arm is summarised by counts, never by raw rows, so an experiment with
millions of events is analysed from a handful of numbers. The definitions are
GrowthBook gbstats 0.8.0's (``SampleMeanStatistic``, ``ProportionStatistic``,
``frequentist_diff``/``frequentist_variance``, the Welch–Satterthwaite ``dof``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Iterable, Union

# Why an analysis could not be done. The wording is ours; the cases are gbstats'.
ERROR_TOO_FEW_UNITS = "each arm needs at least 2 units"
ERROR_ZERO_BASELINE = "control mean is zero, so the lift is undefined"
ERROR_ZERO_VARIANCE = "an arm has zero variance, so the test has no spread to work with"
ERROR_NOT_FINITE = "the lift or its variance overflows (control mean too close to zero?)"


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class MeanStats:
    """A numeric metric in one arm: ``n`` units, the ``total`` of their values, the sum of squares.

    ``variance`` is the sample variance with ``n - 1`` (0 when ``n < 2``, as gbstats).
    """

    n: int
    total: float
    sum_squares: float

    def __post_init__(self) -> None:
        n = _check_count("n", self.n)
        total = _check_real("total", self.total)
        sum_squares = _check_real("sum_squares", self.sum_squares)
        if sum_squares < 0:
            raise ValueError(f"sum_squares must be >= 0, got {sum_squares}")
        if n == 0 and (total != 0 or sum_squares != 0):
            raise ValueError("an arm with n=0 must have total=0 and sum_squares=0")
        # Cauchy–Schwarz: sum(x^2) >= sum(x)^2 / n; allow for float rounding.
        if n and sum_squares < total * total / n * (1 - 1e-9) - 1e-12:
            raise ValueError(
                f"sum_squares={sum_squares} is below total^2/n={total * total / n}: "
                "no set of values has these sums"
            )

    @classmethod
    def from_values(cls, values: Iterable[float]) -> "MeanStats":
        """Summarise raw per-unit values (one value per user)."""
        n, total, sum_squares = 0, 0.0, 0.0
        for value in values:
            n += 1
            total += value
            sum_squares += value * value
        return cls(n, total, sum_squares)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        return (self.sum_squares - self.total * self.total / self.n) / (self.n - 1)


@dataclass(frozen=True)
class ProportionStats:
    """A conversion metric in one arm: ``conversions`` of ``n`` units converted.

    ``variance`` is the Bernoulli ``p(1 - p)`` (no ``n - 1`` correction, as gbstats).
    """

    n: int
    conversions: int

    def __post_init__(self) -> None:
        n = _check_count("n", self.n)
        conversions = _check_count("conversions", self.conversions)
        if conversions > n:
            raise ValueError(f"conversions ({conversions}) cannot exceed n ({n})")

    @property
    def mean(self) -> float:
        return self.conversions / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        p = self.mean
        return p * (1.0 - p)


ArmStats = Union[MeanStats, ProportionStats]


@dataclass(frozen=True)
class Difference:
    """Treatment minus control (absolute) or that over the control mean (relative).

    ``variance`` is the variance of the estimate: ``vb/nb + va/na`` when absolute,
    the delta method ``vb/(ma^2 nb) + va mb^2/(ma^4 na)`` when relative.
    ``dof`` is Welch–Satterthwaite's. ``error`` says why there is no estimate.
    """

    estimate: float
    variance: float
    dof: float
    n_total: int
    error: str | None

    @property
    def stderr(self) -> float:
        return math.sqrt(self.variance) if self.variance > 0 else 0.0


def check_pair(control: object, treatment: object) -> None:
    """Refuse arms that are not stats objects, or of two different kinds."""
    for name, arm in (("control", control), ("treatment", treatment)):
        if not isinstance(arm, (MeanStats, ProportionStats)):
            raise TypeError(f"{name} must be MeanStats or ProportionStats, got {type(arm).__name__}")
    if type(control) is not type(treatment):
        raise TypeError(
            f"control and treatment must be the same kind of metric, got "
            f"{type(control).__name__} and {type(treatment).__name__}"
        )


def difference(
    control: ArmStats, treatment: ArmStats, relative: bool, zero_baseline_is_error: bool = True
) -> Difference:
    """The lift estimate and its variance, or the reason it cannot be computed.

    gbstats 0.8.0's frequentist tests refuse a zero control mean even for the
    absolute lift; its Bayesian test only in relative mode. Callers choose with
    ``zero_baseline_is_error`` (``relative`` always refuses it).
    """
    check_pair(control, treatment)
    ma, mb = control.mean, treatment.mean
    va, vb = control.variance, treatment.variance
    na, nb = control.n, treatment.n
    error = None
    if na < 2 or nb < 2:
        error = ERROR_TOO_FEW_UNITS
    elif ma == 0 and (relative or zero_baseline_is_error):
        error = ERROR_ZERO_BASELINE
    elif va <= 0 or vb <= 0:
        error = ERROR_ZERO_VARIANCE
    if error is not None:
        return Difference(0.0, 0.0, math.nan, na + nb, error)
    try:
        if relative:
            estimate = (mb - ma) / ma
            variance = vb / (ma * ma * nb) + va * mb * mb / (ma * ma * ma * ma * na)
        else:
            estimate = mb - ma
            variance = vb / nb + va / na
        dof = (vb / nb + va / na) ** 2 / (vb * vb / (nb * nb * (nb - 1)) + va * va / (na * na * (na - 1)))
        finite = all(map(math.isfinite, (estimate, variance, 1 / variance, dof)))
    except (ZeroDivisionError, OverflowError):
        finite = False
    if not finite:
        return Difference(0.0, 0.0, math.nan, na + nb, ERROR_NOT_FINITE)
    return Difference(estimate, variance, dof, na + nb, None)
