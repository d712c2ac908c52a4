"""The Experiments section as text: status and verdict marks, the interval bar, the detail lines.

The words and number formats are :mod:`qbconsole.experiments.display`'s (the same as
``qbconsole ab show``); this module lays them out for a terminal of a given width.
"""

from __future__ import annotations

from typing import NamedTuple

from textual.content import Content

from qbconsole.experiments.analyze import Analysis, Comparison
from qbconsole.experiments.display import (
    arm_figures, figure_heads, lift_text, pct, plan_text, progress_text, span, srm_text, when,
)
from qbconsole.experiments.model import Experiment
from qbconsole.experiments.verdict import Verdict


class Mark(NamedTuple):
    text: str
    colour: str  # a theme variable without the "$"


STATUS_MARKS = {
    "running": Mark("● running", "success"),
    "draft": Mark("○ draft", "text-muted"),
    "stopped": Mark("■ stopped", "text-muted"),
}
OUTCOME_MARKS = {
    "ship": Mark("✔", "success"),
    "keep_control": Mark("■", "warning"),
    "no_difference_yet": Mark("…", "text-muted"),
    "invalid_srm": Mark("✖", "error"),
}
"""A symbol before each verdict, so the outcome does not rest on colour alone."""

NARROW_TAIL, WIDE_TAIL = 44, 47
"""Characters after the fixed columns besides the bar: lift with interval, p, win (and adjusted p)."""
MIN_BAR, WIDE_BAR = 11, 21
"""The interval bar's narrowest width; wider than WIDE_BAR leaves room for the adjusted p-value."""


def status_mark(status: str) -> Mark:
    return STATUS_MARKS.get(status, Mark(status, "foreground"))


SHORT_HEADLINES = {"keep_control": "keep control", "no_difference_yet": "no difference yet",
                   "invalid_srm": "invalid: SRM"}
"""The list's shorter words for a verdict (the detail gives the full headline and its reason)."""


def verdict_mark(verdict: Verdict | None, short: bool = False) -> Mark:
    """``✔ ship treatment``, ``… no difference detected yet``, ...; ``— not analysed yet`` before the first read."""
    if verdict is None:
        return Mark("— not analysed yet", "text-muted")
    mark = OUTCOME_MARKS.get(verdict.outcome, Mark("?", "foreground"))
    headline = SHORT_HEADLINES.get(verdict.outcome, verdict.headline) if short else verdict.headline
    return Mark(f"{mark.text} {headline}", mark.colour)


def interval_scale(comparisons: list[Comparison], mde: float) -> float:
    """Half the width of a shared, symmetric lift scale: every interval (and the MDE) fits."""
    reach = max([abs(x) for c in comparisons if c.ok for x in c.ci] + [abs(mde)], default=abs(mde))
    return max(0.01, reach * 1.1)


def ci_bar(low: float, high: float, estimate: float, half: float, width: int) -> str:
    """The interval drawn over a zero line: ``   │  ━━━●━━━  `` on a scale of [-half, +half].

    ``│`` is zero, ``━`` the interval, ``●`` the estimate; an interval beyond the scale ends
    in ``◂``/``▸``. Whether the bar is left of, right of or across the zero line is the
    signal, colour only repeats it.
    """
    width = max(5, width)
    if width % 2 == 0:
        width -= 1  # an odd width puts zero on a cell of its own

    def col(x: float) -> int:
        return max(0, min(width - 1, round((x + half) / (2 * half) * (width - 1))))

    cells = [" "] * width
    lo, hi = col(low), col(high)
    for i in range(lo, hi + 1):
        cells[i] = "━"
    cells[col(0.0)] = "┼" if lo <= col(0.0) <= hi else "│"
    cells[col(estimate)] = "●"
    if low < -half:
        cells[0] = "◂"
    if high > half:
        cells[-1] = "▸"
    return "".join(cells)


def scale_header(half: float, width: int) -> str:
    """The bar's scale under its head: ``-20 %      0      +20 %`` lined up with :func:`ci_bar`."""
    width = max(5, width)
    if width % 2 == 0:
        width -= 1
    left, right = f"{-half * 100:.0f}%", f"+{half * 100:.0f}%"
    cells = [" "] * width
    centre = width // 2
    cells[centre] = "0"
    for i, ch in enumerate(left):
        if i < centre - 1:
            cells[i] = ch
    for i, ch in enumerate(reversed(right)):
        if width - 1 - i > centre + 1:
            cells[width - 1 - i] = ch
    return "".join(cells)


def progress_bar(fraction: float | None, width: int) -> str:
    """``█████░░░░░`` for a fraction in [0, 1]; blanks when unknown."""
    if fraction is None:
        return "░" * width
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


def comparison_colour(c: Comparison) -> str:
    if not c.ok:
        return "text-muted"
    if c.significant:
        return "success" if c.lift > 0 else "error"
    return "foreground"


def detail_content(exp: Experiment, analysis: Analysis | None, verdict: Verdict | None, width: int,
                   error: str | None = None) -> Content:
    """Everything about one experiment: plan, verdict, SRM, progress, and per metric each variant's
    users, figures, lift with its interval bar, p-value and chance to win."""
    status = status_mark(exp.status)
    parts: list[tuple[str, str] | str] = [
        (exp.name, "bold"), "  ", (status.text, f"bold ${status.colour}"),
        ((f" — {exp.description}", "$text-muted") if exp.description else ""), "\n",
    ]
    history = (f"created {when(exp.created_at)} by {exp.created_by} ({exp.origin}); started {when(exp.started_at)}"
               + (f"; stopped {when(exp.stopped_at)} by {exp.stopped_by}" if exp.stopped_at else ""))
    if error:
        parts += [("✖ analysis failed: ", "bold $error"), (error, "$error"), "\n", (history, "$text-muted")]
        return Content.assemble(*parts)
    if analysis is None or verdict is None:
        parts += [("analysing…", "$text-muted"), "\n", (history, "$text-muted")]
        return Content.assemble(*parts)
    mark = verdict_mark(verdict)
    srm = srm_text(analysis)
    parts += [("Verdict  ", "bold"), (mark.text, f"bold ${mark.colour}"), "\n",
              (verdict.reason, ""), "\n",
              ("Sample ratio  ", "bold"),
              ("✖ " + srm, "bold $error") if analysis.srm else ("✔ " + srm, "$success"), "\n",
              ("Progress  ", "bold"), (progress_bar(verdict.progress, 20), "$primary"), " ",
              (progress_text(analysis, verdict, remaining=False), ""), "\n"]
    for i, metric in enumerate(exp.metrics):
        parts.append("\n")
        parts += _metric_lines(exp, analysis, metric, i == 0, list(analysis.comparisons), width)
    parts += ["\n", (plan_text(exp, analysis), "$text-muted"), "\n", (history, "$text-muted")]
    return Content.assemble(*parts)


def _metric_lines(exp: Experiment, analysis: Analysis, metric, primary: bool, comparisons: list[Comparison],
                  width: int) -> list[tuple[str, str] | str]:
    """One metric's table. Wide: the lift and its interval, p, adjusted p, chance to win and the bar on
    one line; medium: without the adjusted p; narrow: the lift, p, win and bar, the interval on a
    line of its own."""
    mine = [c for c in comparisons if c.metric == metric.name]
    half = interval_scale(mine, exp.mde)
    count_head, value_head = figure_heads(metric)
    count_head = {"CONVERSIONS": "Conv.", "TOTAL": "Total"}[count_head]
    value_head = {"RATE": "Rate", "PER USER": "Per user"}[value_head]
    name_w = max(8, min(16, max(len(a.variant) for a in analysis.arms)))
    fixed = f"{'':<{name_w}} {'Users':>7} {count_head:>9} {value_head:>8}"
    narrow = width < len(fixed) + NARROW_TAIL + MIN_BAR
    wide = not narrow and width >= len(fixed) + WIDE_TAIL + WIDE_BAR
    lift_w = 8 if narrow else 26
    tail_head = (f"  {'Lift' if narrow else 'Lift [95% CI]':<{lift_w}} {'p':>6}"
                 + (f" {'p adj':>6}" if wide else "") + f" {'win':>4}  ")
    bar_w = max(MIN_BAR, width - len(fixed) - len(tail_head) - 1)
    out: list[tuple[str, str] | str] = [
        (f"{metric.name} = {metric.spec}", "bold underline $primary"),
        ("  (primary: the verdict is about this one)" if primary else "", "$text-muted"), "\n",
        (fixed + tail_head + scale_header(half, bar_w), "bold $text-muted"), "\n",
    ]
    for arm in analysis.arms:
        count, value = arm_figures(metric, arm.metrics[metric.name])
        row = f"{arm.variant[:name_w]:<{name_w}} {arm.users:>7} {count:>9} {value:>8}"
        if arm.variant == exp.control:
            out += [(row, ""), ("  (control)", "$text-muted"), "\n"]
            continue
        c = next(c for c in mine if c.variant == arm.variant)
        if not c.ok:
            out += [(row, ""), (f"  — ({c.error})", "$text-muted"), "\n"]
            continue
        colour = comparison_colour(c)
        lift = pct(c.lift) if narrow else lift_text(c)
        tail = (f"  {lift:<{lift_w}} {c.p_value:>6.3g}" + (f" {c.adjusted_p:>6.3g}" if wide else "")
                + f" {c.chance_to_win:>4.0%}  ")
        out += [(row, ""), (tail, f"${colour}"),
                (ci_bar(c.ci[0], c.ci[1], c.lift, half, bar_w), f"bold ${colour}"), "\n"]
        if narrow:
            out += [(f"{'':<{name_w}}   95% CI [{pct(c.ci[0])}, {pct(c.ci[1])}], adjusted p {c.adjusted_p:.3g}",
                     "$text-muted"), "\n"]
    return out


class ListRow(NamedTuple):
    """One experiment in the list; ``analysis``/``verdict`` are None until first analysed."""

    experiment: Experiment
    analysis: Analysis | None
    verdict: Verdict | None
    error: str | None = None


def running_text(row: ListRow) -> str:
    if row.experiment.started_at is None:
        return "—"
    if row.analysis is None:
        return "…"
    plan = f" of {span(row.experiment.duration_s)}" if row.experiment.duration_s else ""
    return span(row.analysis.elapsed_s) + plan
