"""Write tests/data/gbstats_reference.json: GrowthBook gbstats outputs for our stats tests.

Not run by pytest, and not a project dependency. Run it with a throw-away
virtualenv that has gbstats 0.8.0 (which pulls in numpy, pandas, pydantic)::

    python3 -m venv /tmp/gbvenv && /tmp/gbvenv/bin/pip install gbstats==0.8.0
    /tmp/gbvenv/bin/python tests/gen_gbstats_reference.py

Each case records its inputs in the vocabulary of ``qbconsole.experiments.stats``
(``MeanStats(n, total, sum_squares)``, ``ProportionStats(n, conversions)``) and
the gbstats result. gbstats 0.8.0 has no multiple-testing corrections; those
cases come from scipy's ``false_discovery_control`` (Benjamini–Hochberg) and
the textbook definition of Holm's step-down adjustment, and say so in ``source``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import scipy
from scipy.stats import false_discovery_control

import gbstats
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    OneSidedTreatmentGreaterTTest,
    OneSidedTreatmentLesserTTest,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic
from gbstats.utils import check_srm

OUT = Path(__file__).parent / "data" / "gbstats_reference.json"
FREQUENTIST = {
    "two-sided": TwoSidedTTest,
    "greater": OneSidedTreatmentGreaterTTest,
    "less": OneSidedTreatmentLesserTTest,
}


def prop(n: int, conversions: int) -> dict:
    return {"kind": "proportion", "n": n, "conversions": conversions}


def mean_from(rng: np.random.Generator, n: int, shape: float, scale: float, shift: float = 0.0) -> dict:
    """Sufficient statistics of n gamma-distributed values (revenue-like, right-skewed)."""
    values = rng.gamma(shape, scale, size=n) + shift
    return {
        "kind": "mean",
        "n": n,
        "total": float(values.sum()),
        "sum_squares": float((values**2).sum()),
    }


def to_gbstats(arm: dict):
    if arm["kind"] == "proportion":
        return ProportionStatistic(n=arm["n"], sum=arm["conversions"])
    return SampleMeanStatistic(n=arm["n"], sum=arm["total"], sum_squares=arm["sum_squares"])


def finite(x: float) -> float | str:
    """JSON has no infinities: one-sided intervals store them as strings."""
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def frequentist_case(name, control, treatment, relative=True, alpha=0.05, alternative="two-sided"):
    config = FrequentistConfig(alpha=alpha, difference_type="relative" if relative else "absolute")
    res = FREQUENTIST[alternative](to_gbstats(control), to_gbstats(treatment), config).compute_result()
    return {
        "test": "frequentist",
        "name": name,
        "control": control,
        "treatment": treatment,
        "params": {"relative": relative, "alpha": alpha, "alternative": alternative},
        "expected": {
            "lift": float(res.expected),
            "ci": [finite(res.ci[0]), finite(res.ci[1])],
            "stderr": float(res.uplift.stddev),
            "p_value": float(res.p_value),
            "error": res.error_message,
        },
    }


def bayesian_case(name, control, treatment, relative=True, prior_mean=None, prior_variance=None):
    scale = "relative" if relative else "absolute"
    prior = GaussianPrior()  # gbstats' default: improper (flat)
    if prior_variance is not None:
        prior = GaussianPrior(mean=prior_mean or 0.0, variance=prior_variance, proper=True)
    # Our API states the prior on the same scale as the lift, so prior_type follows relative.
    config = EffectBayesianConfig(difference_type=scale, prior_type=scale, prior_effect=prior)
    res = EffectBayesianABTest(to_gbstats(control), to_gbstats(treatment), config).compute_result()
    return {
        "test": "bayesian",
        "name": name,
        "control": control,
        "treatment": treatment,
        "params": {"relative": relative, "prior_mean": prior_mean, "prior_variance": prior_variance},
        "expected": {
            "lift": float(res.expected),
            "ci": [float(res.ci[0]), float(res.ci[1])],
            "stderr": float(res.uplift.stddev),
            "chance_to_win": float(res.chance_to_win),
            "risk": [float(res.risk[0]), float(res.risk[1])],
            "error": res.error_message,
        },
    }


def sequential_case(name, control, treatment, relative=True, alpha=0.05, tuning=5000):
    config = SequentialConfig(
        alpha=alpha,
        difference_type="relative" if relative else "absolute",
        sequential_tuning_parameter=tuning,
    )
    res = SequentialTwoSidedTTest(to_gbstats(control), to_gbstats(treatment), config).compute_result()
    return {
        "test": "sequential",
        "name": name,
        "control": control,
        "treatment": treatment,
        "params": {"relative": relative, "alpha": alpha, "tuning": tuning},
        "expected": {
            "lift": float(res.expected),
            "ci": [float(res.ci[0]), float(res.ci[1])],
            "stderr": float(res.uplift.stddev),
            "p_value": float(res.p_value),
            "error": res.error_message,
        },
    }


def srm_case(name, counts, weights):
    return {
        "test": "srm",
        "name": name,
        "params": {"counts": counts, "weights": weights},
        "expected": {"p_value": float(check_srm(counts, weights))},
    }


def holm_textbook(p_values: list[float]) -> list[float]:
    """Holm's adjusted p: max over j <= rank of min(1, (m - j + 1) * p_(j))."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [0.0] * m
    for rank, i in enumerate(order):
        out[i] = max(min(1.0, (m - j) * p_values[order[j]]) for j in range(rank + 1))
    return out


def correction_cases(name, p_values):
    return [
        {
            "test": "holm_bonferroni",
            "name": name,
            "source": "Holm (1979) step-down, textbook definition",
            "params": {"p_values": p_values},
            "expected": {"adjusted": holm_textbook(p_values)},
        },
        {
            "test": "benjamini_hochberg",
            "name": name,
            "source": f"scipy {scipy.__version__} false_discovery_control(method='bh')",
            "params": {"p_values": p_values},
            "expected": {"adjusted": [float(x) for x in false_discovery_control(p_values, method="bh")]},
        },
    ]


def build_cases() -> list[dict]:
    rng = np.random.default_rng(20240607)
    revenue_a = mean_from(rng, 2000, 2.0, 25.0)
    revenue_b = mean_from(rng, 2050, 2.0, 27.0)
    small_a = mean_from(rng, 12, 1.5, 10.0)
    small_b = mean_from(rng, 9, 1.5, 8.0)
    session_a = mean_from(rng, 40000, 4.0, 30.0)
    session_b = mean_from(rng, 39800, 4.0, 29.7)
    signed_a = mean_from(rng, 800, 3.0, 1.0, shift=-2.5)
    signed_b = mean_from(rng, 820, 3.0, 1.0, shift=-2.3)
    cases = [
        frequentist_case("prop large n positive relative", prop(10000, 1000), prop(10000, 1080)),
        frequentist_case("prop small n relative", prop(50, 5), prop(48, 9)),
        frequentist_case("prop negative absolute", prop(5000, 600), prop(5100, 540), relative=False),
        frequentist_case("prop greater one-sided", prop(20000, 1200), prop(20100, 1290), alternative="greater"),
        frequentist_case("prop less one-sided absolute", prop(3000, 450), prop(3100, 420),
                         relative=False, alternative="less"),
        frequentist_case("mean revenue relative", revenue_a, revenue_b),
        frequentist_case("mean revenue absolute alpha 0.1", revenue_a, revenue_b, relative=False, alpha=0.1),
        frequentist_case("mean small n unequal", small_a, small_b),
        frequentist_case("mean large n negative absolute", session_a, session_b, relative=False),
        frequentist_case("mean less one-sided relative", session_a, session_b, alternative="less"),
        frequentist_case("mean signed values relative", signed_a, signed_b),
        frequentist_case("zero control conversions", prop(1000, 0), prop(1000, 7)),
        frequentist_case("single unit arms", mean_from(rng, 1, 2.0, 1.0), mean_from(rng, 1, 2.0, 1.0)),
        bayesian_case("prop flat prior relative", prop(10000, 1000), prop(10000, 1080)),
        bayesian_case("prop flat prior absolute negative", prop(5000, 600), prop(5100, 540), relative=False),
        bayesian_case("prop proper prior relative", prop(800, 80), prop(790, 101), prior_mean=0.0, prior_variance=0.09),
        bayesian_case("prop informative prior small n", prop(60, 6), prop(61, 12), prior_mean=0.05, prior_variance=0.01),
        bayesian_case("mean flat prior relative", revenue_a, revenue_b),
        bayesian_case("mean proper prior absolute", revenue_a, revenue_b, relative=False,
                      prior_mean=0.5, prior_variance=4.0),
        bayesian_case("mean large n negative", session_a, session_b),
        bayesian_case("zero baseline relative", prop(400, 0), prop(400, 3)),
        sequential_case("prop default tuning", prop(10000, 1000), prop(10000, 1080)),
        sequential_case("prop small tuning absolute", prop(5000, 600), prop(5100, 540), relative=False, tuning=500),
        sequential_case("prop large tuning large n", prop(200000, 20000), prop(200000, 20900), tuning=50000),
        sequential_case("mean alpha 0.1", revenue_a, revenue_b, alpha=0.1),
        sequential_case("mean negative absolute tuning 2000", session_a, session_b, relative=False, tuning=2000),
        sequential_case("zero control conversions", prop(1000, 0), prop(1000, 7)),
        srm_case("balanced 50/50", [10013, 9987], [0.5, 0.5]),
        srm_case("mismatch 50/50", [10000, 10420], [0.5, 0.5]),
        srm_case("three arms 34/33/33", [3460, 3290, 3250], [34, 33, 33]),
        srm_case("unequal 90/10", [9120, 880], [0.9, 0.1]),
        srm_case("no users", [0, 0], [0.5, 0.5]),
        srm_case("zero-weight arm skipped", [5000, 5100, 40], [0.5, 0.5, 0.0]),
    ]
    cases += correction_cases("five metrics", [0.01, 0.04, 0.03, 0.005, 0.2])
    cases += correction_cases("ties and ones", [0.02, 0.02, 1.0, 0.5, 0.001, 0.02])
    cases += correction_cases("single", [0.037])
    return cases


def main() -> None:
    document = {
        "generator": "tests/gen_gbstats_reference.py",
        "gbstats_version": gbstats.__version__,
        "scipy_version": scipy.__version__,
        "numpy_version": np.__version__,
        "cases": build_cases(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {len(document['cases'])} cases to {OUT}")


if __name__ == "__main__":
    main()
