"""Analysis of an experiment: per-variant aggregates in SQL, then the tests of :mod:`stats` vs the control.

Aggregates. For every variant: the exposed users, and for every event a
metric reads, the users with at least one such event, and the sums and sums
of squares of the per-user totals of ``value`` and of the per-user event
counts. Events count only at or after the user's first exposure and, for a
stopped experiment, at or before it stopped. This is one ``GROUP BY`` query
over the exposures joined to the covering index of the events (never a row
per event in Python): 1M events take about half a second on a 2-core VM
(``bench/experiments.py``, target <= 1 s).

Tests, for every metric and every treatment variant against the control,
with the relative lift:

* **Which p-value and interval.** The fixed-horizon Welch test
  (:func:`stats.frequentist_test`) is only valid when looked at once, at the
  planned horizon. So it is used only when the experiment has a duration and
  it has elapsed (running or stopped). Any earlier look, any experiment
  without a duration (every look is a peek), and every experiment configured
  ``sequential: true`` gets the always-valid sequential test
  (:func:`stats.sequential_test`): watching the console cannot inflate false
  positives.
* **Chance to win and risk** from the Bayesian test with a flat prior, always.
* **Multiple testing.** The p-values of all metrics x treatment variants are
  adjusted together by Holm–Bonferroni; ``significant`` means the adjusted
  p-value is below the experiment's alpha. Intervals are per comparison
  (unadjusted).
* **Sample ratio mismatch.** The chi-square test of the exposed users per
  variant against the configured split.
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from qbconsole.experiments import stats
from qbconsole.experiments.model import Experiment, Metric

SEQUENTIAL_TUNING = 5000  # gbstats' default: the total sample where the sequence is tightest
MIN_RATE_WINDOW_MS = 60_000  # below this much running time no exposure rate is estimated


@dataclass(frozen=True)
class Arm:
    """One variant: its configured share, exposed users, and per metric name its summary."""

    variant: str
    share: float
    users: int
    metrics: dict[str, stats.ArmStats]

    def value(self, metric: str) -> float:
        """The metric's per-user mean (for a conversion metric, the rate)."""
        return self.metrics[metric].mean


@dataclass(frozen=True)
class Comparison:
    """One metric, one treatment variant vs the control."""

    metric: str
    variant: str
    method: str  # frequentist | sequential
    lift: float  # relative: 0.08 = +8 %
    ci: tuple[float, float]
    p_value: float
    adjusted_p: float  # Holm–Bonferroni over all metrics x treatments
    chance_to_win: float
    risk: tuple[float, float]  # (control, treatment), from the Bayesian test
    alpha: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def significant(self) -> bool:
        return self.ok and self.adjusted_p < self.alpha


@dataclass(frozen=True)
class Analysis:
    """Everything the verdict and the displays need, computed at ``as_of`` (ms UTC)."""

    experiment: Experiment
    as_of: int
    arms: tuple[Arm, ...]
    comparisons: tuple[Comparison, ...]
    srm_p: float
    method: str
    horizon_reached: bool
    exposures_per_day: float | None
    query_s: float

    @property
    def users(self) -> int:
        return sum(a.users for a in self.arms)

    @property
    def srm(self) -> bool:
        """True when the users per variant do not fit the split (p below stats.SRM_ALARM_P)."""
        return self.srm_p < stats.SRM_ALARM_P

    @property
    def elapsed_s(self) -> float:
        started = self.experiment.started_at
        return 0.0 if started is None else max(0.0, (self.as_of - started) / 1000)

    def arm(self, variant: str) -> Arm:
        return next(a for a in self.arms if a.variant == variant)

    def comparison(self, metric: str, variant: str) -> Comparison:
        return next(c for c in self.comparisons if c.metric == metric and c.variant == variant)

    def as_dict(self) -> dict[str, Any]:
        exp = self.experiment
        return {
            "as_of": self.as_of, "method": self.method, "horizon_reached": self.horizon_reached,
            "users": self.users, "exposures_per_day": self.exposures_per_day,
            "srm": {"p_value": self.srm_p, "mismatch": self.srm, "threshold": stats.SRM_ALARM_P},
            "variants": [
                {"variant": a.variant, "share": a.share, "users": a.users, "metrics": {
                    m.name: _arm_metric(a.metrics[m.name]) for m in exp.metrics}}
                for a in self.arms],
            "comparisons": [
                {"metric": c.metric, "variant": c.variant, "method": c.method, "lift": c.lift,
                 "ci": list(c.ci), "p_value": c.p_value, "adjusted_p": c.adjusted_p,
                 "significant": c.significant, "chance_to_win": c.chance_to_win, "risk": list(c.risk),
                 "error": c.error}
                for c in self.comparisons],
            "query_s": self.query_s,
        }


def _arm_metric(s: stats.ArmStats) -> dict[str, Any]:
    if isinstance(s, stats.ProportionStats):
        return {"users": s.n, "conversions": s.conversions, "rate": s.mean}
    return {"users": s.n, "total": s.total, "mean": s.mean}


# ---- SQL ------------------------------------------------------------------------------
_EXPOSED = "SELECT variant, count(*), min(ts), max(ts) FROM exposures WHERE experiment_id = ? GROUP BY variant"
def _totals_sql(count: int) -> str:
    """One pass over the exposures, each user's events read from the covering index in one seek
    (``experiment_id, user_id, ts``: only events at or after the exposure and up to ``:until``),
    summed per user and event (``:e0``, ``:e1``, ... bound to the event names), then per variant.
    The events table itself is never read; the per-user groups come out in key order."""
    inner = ", ".join(f"total(CASE WHEN e.event = :e{k} THEN e.value END) AS t{k}, "
                      f"count(CASE WHEN e.event = :e{k} THEN 1 END) AS c{k}" for k in range(count))
    outer = ", ".join(f"total(c{k} > 0), total(t{k}), total(t{k} * t{k}), total(c{k}), total(c{k} * c{k})"
                      for k in range(count))
    return f"""
SELECT variant, {outer} FROM (
    SELECT x.variant AS variant, {inner}
    FROM exposures AS x CROSS JOIN experiment_events AS e INDEXED BY experiment_events_by_user
      ON e.experiment_id = x.experiment_id AND e.user_id = x.user_id AND e.ts >= x.ts AND e.ts <= :until
    WHERE x.experiment_id = :experiment
    GROUP BY x.user_id)
GROUP BY variant"""


def exposed_users(conn: sqlite3.Connection, experiment_id: int) -> dict[str, tuple[int, int, int]]:
    """variant -> (users, first exposure ts, last exposure ts)."""
    return {v: (n, first, last) for v, n, first, last in conn.execute(_EXPOSED, (experiment_id,))}


def event_totals(conn: sqlite3.Connection, experiment_id: int, events: list[str],
                 until: int) -> dict[str, dict[str, tuple]]:
    """event -> variant -> (users with the event, sum over users of their value total, sum of its
    squares, sum of their event counts, sum of its squares); events at or after each user's
    exposure and at or before ``until`` only."""
    if not events:
        return {}
    params: dict[str, object] = {f"e{k}": e for k, e in enumerate(events)}
    params.update(until=until, experiment=experiment_id)
    totals: dict[str, dict[str, tuple]] = {e: {} for e in events}
    for row in conn.execute(_totals_sql(len(events)), params):
        for k, event in enumerate(events):
            users, t, t2, c, c2 = row[1 + 5 * k: 6 + 5 * k]
            totals[event][row[0]] = (int(users), t, t2, int(c), c2)
    return totals


def arm_stats(metric: Metric, users: int, totals: tuple | None) -> stats.ArmStats:
    """The stats summary of one metric in one arm from the SQL totals."""
    converted, t, t2, c, c2 = totals or (0, 0.0, 0.0, 0, 0.0)
    if metric.kind == "conversion":
        return stats.ProportionStats(users, converted)
    if metric.kind == "value":
        return stats.MeanStats(users, t, max(t2, t * t / users) if users else 0.0)
    return stats.MeanStats(users, float(c), c2)


# ---- analysis ---------------------------------------------------------------------------
def method_for(experiment: Experiment, as_of: int) -> tuple[str, bool]:
    """(test method, horizon reached) — see the module docstring."""
    horizon = experiment.horizon_at
    reached = horizon is not None and as_of >= horizon
    if experiment.sequential or not reached:
        return "sequential", reached
    return "frequentist", reached


def analyze(conn: sqlite3.Connection, experiment: Experiment, now: int | None = None) -> Analysis:
    """Aggregate and test ``experiment`` as of ``now`` (default: the clock; a stopped one: when it stopped)."""
    started = time.perf_counter()
    now = int(time.time() * 1000) if now is None else now
    as_of = min(now, experiment.stopped_at) if experiment.stopped_at is not None else now
    exposed = exposed_users(conn, experiment.id)
    totals = event_totals(conn, experiment.id, sorted({m.event for m in experiment.metrics}), as_of)
    query_s = time.perf_counter() - started

    arms = tuple(
        Arm(v, share, exposed.get(v, (0, 0, 0))[0],
            {m.name: arm_stats(m, exposed.get(v, (0, 0, 0))[0], totals[m.event].get(v))
             for m in experiment.metrics})
        for v, share in zip(experiment.variants, experiment.shares))
    method, reached = method_for(experiment, as_of)
    comparisons = _compare(experiment, arms, method)
    srm_p = stats.srm_p_value([a.users for a in arms], list(experiment.weights))
    return Analysis(experiment, as_of, arms, comparisons, srm_p, method, reached,
                    _exposure_rate(experiment, exposed, as_of), query_s)


def _compare(experiment: Experiment, arms: tuple[Arm, ...], method: str) -> tuple[Comparison, ...]:
    control, alpha = arms[0], experiment.alpha
    raw = []
    for metric in experiment.metrics:
        a = control.metrics[metric.name]
        for arm in arms[1:]:
            b = arm.metrics[metric.name]
            if method == "frequentist":
                test = stats.frequentist_test(a, b, relative=True, alpha=alpha)
            else:
                test = stats.sequential_test(a, b, relative=True, alpha=alpha, tuning=SEQUENTIAL_TUNING)
            bayes = stats.bayesian_test(a, b, relative=True, alpha=alpha)
            raw.append((metric.name, arm.variant, test, bayes))
    adjusted = stats.holm_bonferroni([t.p_value for _, _, t, _ in raw]) if raw else []
    return tuple(
        Comparison(name, variant, method, t.lift, t.ci, t.p_value, adj, b.chance_to_win, b.risk, alpha, t.error)
        for (name, variant, t, b), adj in zip(raw, adjusted))


def _exposure_rate(experiment: Experiment, exposed: dict[str, tuple[int, int, int]], as_of: int) -> float | None:
    """Exposed users per day since the start, or None before there is a basis for it."""
    users = sum(n for n, _, _ in exposed.values())
    if experiment.started_at is None or users == 0:
        return None
    window = as_of - experiment.started_at
    if window < MIN_RATE_WINDOW_MS:
        return None
    rate = users / (window / 86_400_000)
    return rate if math.isfinite(rate) else None
