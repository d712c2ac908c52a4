"""How experiment figures read, for ``qbconsole ab show|list`` and the console's Experiments section.

One place for the words and number formats, so the CLI and the console say the same thing:
spans, percentages, each variant's figures, a lift with its interval, the sample-ratio
check, progress toward the sample needed, and the plan of the test.
"""

from __future__ import annotations

import time

from qbconsole.experiments.analyze import Analysis, Comparison
from qbconsole.experiments.model import Experiment, Metric
from qbconsole.experiments.stats import ArmStats, ProportionStats
from qbconsole.experiments.verdict import Verdict


def when(ms: int | None) -> str:
    """Local date and time to the minute, "—" when unknown."""
    return "—" if ms is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000))


def span(seconds: float | None) -> str:
    """ "2d4h", "3h07m", "12m05s"; "—" when unknown."""
    if seconds is None:
        return "—"
    s = int(seconds)
    if s >= 86400:
        hours = (s % 86400) // 3600
        return f"{s // 86400}d{hours}h" if hours else f"{s // 86400}d"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s"


def pct(x: float, signed: bool = True) -> str:
    """A ratio as a percentage: "+8.1 %" (a lift) or "12.34 %" (a rate)."""
    return f"{x * 100:+.1f} %" if signed else f"{x * 100:.2f} %"


def arm_figures(metric: Metric, s: ArmStats) -> tuple[str, str]:
    """(conversions, rate) of a conversion metric, or (total, per user) of a value or count metric."""
    if metric.kind == "conversion" and isinstance(s, ProportionStats):
        return f"{s.conversions}", pct(s.mean, signed=False)
    return f"{getattr(s, 'total', 0.0):.2f}", f"{s.mean:.3f}"


def figure_heads(metric: Metric) -> tuple[str, str]:
    """Column heads for :func:`arm_figures`."""
    return ("CONVERSIONS", "RATE") if metric.kind == "conversion" else ("TOTAL", "PER USER")


def lift_text(c: Comparison) -> str:
    """ "+8.1 % [+1.2 %, +15.0 %]" (relative lift and its interval)."""
    return f"{pct(c.lift)} [{pct(c.ci[0])}, {pct(c.ci[1])}]"


def method_text(analysis: Analysis) -> str:
    """Which test and why it may be looked at now."""
    if analysis.method == "frequentist":
        return "frequentist (the planned horizon is reached)"
    return "sequential (always valid, however often you look)"


def plan_text(exp: Experiment, analysis: Analysis) -> str:
    """ "running 3h07m of 14d; test: sequential (...); alpha 0.05, minimum effect +5.0 %, min 100 users per variant"
    (a stopped experiment "ran", a draft is "not started")."""
    plan = f"of {span(exp.duration_s)}" if exp.duration_s else "(no planned duration)"
    if exp.started_at is None:
        state = "not started " + (f"(planned {span(exp.duration_s)})" if exp.duration_s else "(no planned duration)")
    else:
        state = f"{'ran' if exp.status == 'stopped' else 'running'} {span(analysis.elapsed_s)} {plan}"
    return (f"{state}; test: {method_text(analysis)}"
            f"; alpha {exp.alpha:g}, minimum effect {pct(exp.mde)}, min {exp.min_users} users per variant")


def srm_text(analysis: Analysis) -> str:
    """ "ok (p = 0.62; alarm below 0.001)" or "MISMATCH (p = ...)" """
    return f"{'MISMATCH' if analysis.srm else 'ok'} (p = {analysis.srm_p:.3g}; alarm below 0.001)"


def progress_text(analysis: Analysis, verdict: Verdict, *, remaining: bool = True) -> str:
    """ "4120 of ~9800 users needed (42%); about 5680 more (~0.8 days)", or why it is not known;
    without the users and days still needed when ``remaining`` is false (the verdict says them)."""
    if verdict.needed_users is None:
        return f"{analysis.users} users; the sample needed is not known until the control has data"
    more = f"; about {verdict.users_still_needed} more" if verdict.users_still_needed and remaining else ""
    days = f" (~{verdict.days_still_needed:.1f} days)" if verdict.days_still_needed and more else ""
    return (f"{analysis.users} of ~{verdict.needed_users} users needed "
            f"({verdict.progress or 0:.0%}){more}{days}")
