"""The verdict on an analysed experiment: exactly one of four outcomes, always with its reason.

The rules, in this order, all on the **primary** metric (the first listed):

1. ``invalid_srm`` — the sample-ratio test of users per variant against the
   split has p < 0.001 (``stats.SRM_ALARM_P``): assignment or tracking is
   broken, so no number of this experiment can be trusted.
2. Nothing is decided before every variant has ``min_users`` exposed users.
3. ``ship`` variant X — X's lift is positive and significant (Holm-adjusted
   p-value below alpha, from the test the analysis chose: sequential before
   the planned horizon, so early looks are safe). With several winners, the
   one with the largest lift.
4. ``keep_control`` — every treatment is either significantly worse, or its
   lift interval lies wholly below the minimum detectable effect (``ci`` high
   end < ``mde``): an improvement worth having is ruled out (futility).
5. ``no_difference_yet`` — otherwise, with the users and days still needed:
   the fixed-horizon sample size per arm for the MDE (``stats.sample_size_per_arm``
   for a conversion metric, the normal two-sample formula with the control's
   variance for value and count metrics) at alpha / m (m = the number of
   comparisons, Bonferroni's bound on Holm), scaled for unequal splits
   (``n (1/s_c + 1/s_t) / 2`` users in total), minus the users so far,
   divided by the observed exposures per day. (A sequential look needs
   somewhat more than this fixed-horizon figure: its interval is wider.)

A raw rate alone is never a winner: ship and keep need the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qbconsole.experiments import stats
from qbconsole.experiments.analyze import Analysis, Comparison
from qbconsole.experiments.model import POWER

OUTCOMES = ("ship", "keep_control", "no_difference_yet", "invalid_srm")


@dataclass(frozen=True)
class Verdict:
    outcome: str
    variant: str | None  # the variant to ship (ship) or the control (keep_control)
    reason: str
    needed_users: int | None = None  # total exposed users the primary comparison needs
    users_still_needed: int | None = None
    days_still_needed: float | None = None
    progress: float | None = None  # users so far / needed_users, capped at 1

    @property
    def headline(self) -> str:
        if self.outcome == "ship":
            return f"ship {self.variant}"
        if self.outcome == "keep_control":
            return f"keep control ({self.variant})"
        if self.outcome == "invalid_srm":
            return "invalid: sample ratio mismatch"
        return "no difference detected yet"

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "headline": self.headline, "variant": self.variant,
                "reason": self.reason, "needed_users": self.needed_users,
                "users_still_needed": self.users_still_needed, "days_still_needed": self.days_still_needed,
                "progress": self.progress}


def decide(analysis: Analysis) -> Verdict:
    """The verdict for ``analysis`` (see the module docstring)."""
    exp = analysis.experiment
    primary = exp.primary.name
    needed = needed_users(analysis)
    progress = None if needed is None else min(1.0, analysis.users / needed) if needed else 1.0
    plan = dict(needed_users=needed, progress=progress)
    if analysis.srm:
        counts = ", ".join(f"{a.variant} {a.users}" for a in analysis.arms)
        split = "/".join(f"{a.share * 100:g}" for a in analysis.arms)
        return Verdict("invalid_srm", None, f"users per variant ({counts}) do not fit the {split} split "
                       f"(SRM p = {analysis.srm_p:.2g} < {stats.SRM_ALARM_P:g}): assignment or tracking is "
                       "broken; fix it and start a new experiment", **plan)
    small = [a for a in analysis.arms if a.users < exp.min_users]
    treatments = [analysis.comparison(primary, a.variant) for a in analysis.arms[1:]]
    if not small:
        winners = [c for c in treatments if c.significant and c.lift > 0]
        if winners:
            best = max(winners, key=lambda c: c.lift)
            return Verdict("ship", best.variant, _ship_reason(analysis, best), **plan)
        if all(_worse_or_futile(c, exp.mde) for c in treatments):
            return Verdict("keep_control", exp.control, _keep_reason(treatments, exp.mde), **plan)
    return _not_yet(analysis, treatments, small, needed, progress)


def _worse_or_futile(c: Comparison, mde: float) -> bool:
    return c.ok and ((c.significant and c.lift < 0) or c.ci[1] < mde)


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


def _interval(c: Comparison) -> str:
    return f"[{_pct(c.ci[0])}, {_pct(c.ci[1])}]"


def _ship_reason(analysis: Analysis, best: Comparison) -> str:
    exp = analysis.experiment
    text = (f"{exp.primary.name} {_pct(best.lift)} {_interval(best)}, adjusted p = {best.adjusted_p:.3g} "
            f"< {exp.alpha:g} ({best.method}), chance to win {best.chance_to_win:.1%}")
    harmed = [c.metric for c in analysis.comparisons
              if c.variant == best.variant and c.metric != exp.primary.name and c.significant and c.lift < 0]
    if harmed:
        text += f"; but significantly worse on {', '.join(harmed)}: weigh that before shipping"
    return text


def _keep_reason(treatments: list[Comparison], mde: float) -> str:
    parts = []
    for c in treatments:
        if c.significant and c.lift < 0:
            parts.append(f"{c.variant} is worse: {_pct(c.lift)} {_interval(c)}, adjusted p = {c.adjusted_p:.3g}")
        else:
            parts.append(f"{c.variant} cannot reach the minimum effect {_pct(mde)}: "
                         f"its interval {_interval(c)} lies below it")
    return "; ".join(parts)


def _not_yet(analysis: Analysis, treatments: list[Comparison], small: list, needed: int | None,
             progress: float | None) -> Verdict:
    exp = analysis.experiment
    if small:
        why = ", ".join(f"{a.variant} has {a.users}" for a in small)
        reason = f"below the minimum of {exp.min_users} users per variant ({why})"
    elif any(not c.ok for c in treatments):
        reason = "; ".join(f"{c.variant}: {c.error}" for c in treatments if not c.ok)
    else:
        reason = "; ".join(f"{c.variant} {_pct(c.lift)} {_interval(c)}, adjusted p = {c.adjusted_p:.3g}"
                           for c in treatments)
    still = days = None
    if needed is not None:
        still = max(0, needed - analysis.users)
        if still == 0 and small:
            still = sum(exp.min_users - a.users for a in small)
        rate = analysis.exposures_per_day
        days = still / rate if rate else None
        if still:
            reason += f"; about {still} more users" + (f" (~{days:.1f} days at the current rate)" if days else "")
            if days and exp.duration_s and analysis.elapsed_s + days * 86400 > exp.duration_s:
                reason += (f", beyond the planned {exp.duration_s / 86400:g} days: more traffic or a larger "
                           "minimum effect would be needed")
        else:
            reason += "; the planned sample is reached without a detectable effect of that size"
    else:
        reason += "; the sample needed cannot be estimated until the control has data"
    return Verdict("no_difference_yet", None, reason, needed, still, days, progress)


def per_arm_sample(analysis: Analysis) -> int | None:
    """Users per arm (equal arms) to detect the MDE on the primary metric, or None without a basis."""
    exp = analysis.experiment
    m = max(1, len(analysis.comparisons))
    alpha = exp.alpha / m
    control = analysis.arms[0].metrics[exp.primary.name]
    if isinstance(control, stats.ProportionStats):
        p = control.mean
        if not 0 < p < 1 or not 0 < p * (1 + exp.mde) < 1:
            return None
        return stats.sample_size_per_arm(p, p * exp.mde, alpha=alpha, power=POWER)
    mean, variance = control.mean, control.variance
    if control.n < 2 or mean == 0 or variance <= 0:
        return None
    delta = abs(mean) * exp.mde
    z = stats.normal_quantile(1 - alpha / 2) + stats.normal_quantile(POWER)
    return max(1, math.ceil(z * z * 2 * variance / (delta * delta)))


def needed_users(analysis: Analysis) -> int | None:
    """Total exposed users for the primary comparison of every treatment, given the split."""
    per_arm = per_arm_sample(analysis)
    if per_arm is None:
        return None
    shares = [a.share for a in analysis.arms]
    factor = max((1 / shares[0] + 1 / s) / 2 for s in shares[1:])
    return math.ceil(per_arm * factor)
