"""``qbconsole ab ...``: create, start, stop, edit, list and show experiments; assign users and track events.

Every change is recorded in the audit log with the operator (``--operator``,
else the OS/SSH user). ``show`` prints per variant the users, conversions,
rates and means, each treatment's lift with its interval, p-value and chance
to win, the sample-ratio check, the progress toward the sample needed, and
the verdict; ``--json`` prints the same as data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from qbconsole.cli_alerts import operator
from qbconsole.experiments import lifecycle
from qbconsole.experiments.assign import exposure_of, expose, track
from qbconsole.experiments.model import (
    Experiment,
    ExperimentError,
    Spec,
    describe,
    parse_metric_arg,
    parse_mde,
    parse_split,
    parse_variants,
)

if TYPE_CHECKING:
    from qbconsole.experiments.analyze import Analysis
    from qbconsole.experiments.verdict import Verdict

# The analysis, its statistics and the display (imported by the commands that read results):
# every ``qbconsole`` start builds this parser, the console's too.


def _now_ms() -> int:
    return int(time.time() * 1000)


def _run(args, work):
    """Run ``work(conn)`` in one store transaction; the model's refusals become one-line errors."""
    from qbconsole.cli import UserError, open_store

    store = open_store(args)
    try:
        return store.transaction(work)
    except ExperimentError as err:
        raise UserError(str(err)) from None
    finally:
        store.close()


def _read(args, work):
    from qbconsole.cli import UserError, open_store

    store = open_store(args)
    try:
        return work(store.read())
    except ExperimentError as err:
        raise UserError(str(err)) from None
    finally:
        store.close()


def _duration(text: str | None) -> float | None:
    from qbconsole.cli import parse_since

    return None if text is None else parse_since(text)


# ---- changes ------------------------------------------------------------------------------
def cmd_create(args) -> int:
    from qbconsole.cli import UserError

    try:
        variants = parse_variants(args.variants)
        weights = parse_split(args.split, len(variants)) if args.split else (1.0,) * len(variants)
        spec = Spec(args.name, variants, weights, tuple(parse_metric_arg(m) for m in args.metric or ()),
                    duration_s=_duration(args.duration), sequential=args.sequential,
                    mde=parse_mde(args.mde), alpha=args.alpha, min_users=args.min_users,
                    description=args.description or "", seed=args.seed)
    except ExperimentError as err:
        raise UserError(str(err)) from None
    who = operator(args)
    exp = _run(args, lambda c: lifecycle.create(c, spec, who, _now_ms(), start=args.start))
    print(f"created experiment {exp.name} ({exp.status}) as {who}: "
          f"{' / '.join(f'{v} {share:.0%}' for v, share in zip(exp.variants, exp.shares))}; "
          f"metrics {', '.join(map(str, exp.metrics))}")
    return 0


def cmd_start(args) -> int:
    who = operator(args)
    exp = _run(args, lambda c: lifecycle.start(c, args.name, who, _now_ms()))
    print(f"started experiment {exp.name} as {who}")
    return 0


def cmd_stop(args) -> int:
    who = operator(args)
    exp = _run(args, lambda c: lifecycle.stop(c, args.name, who, _now_ms(), args.reason or ""))
    print(f"stopped experiment {exp.name} as {who}")
    return 0


def cmd_edit(args) -> int:
    who = operator(args)

    def work(conn):
        exp = lifecycle.get(conn, args.name)
        changes: dict[str, Any] = {}
        if args.variants:
            changes["variants"] = parse_variants(args.variants)
        if args.split:
            changes["weights"] = parse_split(args.split, len(changes.get("variants", exp.variants)))
        if args.metric:
            changes["metrics"] = tuple(parse_metric_arg(m) for m in args.metric)
        for key, value in (("duration_s", _duration(args.duration)), ("mde", args.mde and parse_mde(args.mde)),
                           ("alpha", args.alpha), ("min_users", args.min_users), ("description", args.description)):
            if value is not None:
                changes[key] = value
        if args.sequential is not None:
            changes["sequential"] = args.sequential
        if not changes:
            raise ExperimentError("nothing to change: give --split, --variants, --metric, --duration, ...")
        return lifecycle.edit(conn, args.name, who, _now_ms(), **changes)

    exp = _run(args, work)
    print(f"edited experiment {exp.name} as {who}")
    return 0


# ---- assignment and tracking --------------------------------------------------------------------
def cmd_assign(args) -> int:
    def work(conn):
        exp = lifecycle.get(conn, args.name)
        return expose(conn, exp, args.user, _now_ms())

    from qbconsole.experiments.display import when

    exposure = _run(args, work)
    print(exposure.variant)
    if not exposure.first:
        print(f"(exposed before, at {when(exposure.ts)})", file=sys.stderr)
    return 0


def cmd_track(args) -> int:
    def work(conn):
        exp = lifecycle.get(conn, args.name)
        track(conn, exp, args.user, args.event, _now_ms(), args.value)
        return exposure_of(conn, exp, args.user)

    exposed = _run(args, work)
    value = "" if args.value is None else f" (value {args.value:g})"
    print(f"recorded {args.event}{value} for {args.user} in {args.name}")
    if exposed is None:
        print(f"note: {args.user} has no exposure in {args.name}, so this event does not count "
              f"(`qbconsole ab assign {args.name} {args.user}` first)", file=sys.stderr)
    return 0


# ---- reading ------------------------------------------------------------------------------
def report(exp: Experiment, analysis: Analysis, verdict: Verdict) -> dict[str, Any]:
    """One experiment as data: its definition and state, the analysis, the verdict."""
    return {"name": exp.name, "status": exp.status, "origin": exp.origin, "seed": exp.seed,
            **describe(exp), "created_by": exp.created_by, "created_at": exp.created_at,
            "started_at": exp.started_at, "stopped_at": exp.stopped_at, "stopped_by": exp.stopped_by,
            "analysis": analysis.as_dict(), "verdict": verdict.as_dict()}


def cmd_list(args) -> int:
    from qbconsole.experiments.analyze import analyze
    from qbconsole.experiments.display import span
    from qbconsole.experiments.verdict import decide

    now = _now_ms()

    def work(conn):
        out = []
        for exp in lifecycle.list_all(conn):
            analysis = analyze(conn, exp, now)
            out.append((exp, analysis, decide(analysis)))
        return out

    rows = _read(args, work)
    if args.json:
        print(json.dumps([report(*r) for r in rows], indent=2))
        return 0
    if not rows:
        print("no experiments (create one with `qbconsole ab create NAME --metric conversion=purchase`)")
        return 0
    width = max(10, *(len(e.name) for e, _, _ in rows))
    print(f"{'NAME':<{width}}  {'STATUS':<8}  {'USERS':>8}  {'RUNNING':>8}  VERDICT")
    for exp, analysis, verdict in rows:
        running = span(analysis.elapsed_s) if exp.started_at else "—"
        print(f"{exp.name:<{width}}  {exp.status:<8}  {analysis.users:>8}  {running:>8}  {verdict.headline}")
    return 0


def cmd_show(args) -> int:
    from qbconsole.experiments.analyze import analyze
    from qbconsole.experiments.verdict import decide

    def work(conn):
        exp = lifecycle.get(conn, args.name)
        analysis = analyze(conn, exp, _now_ms())
        return exp, analysis, decide(analysis)

    exp, analysis, verdict = _read(args, work)
    if args.json:
        print(json.dumps(report(exp, analysis, verdict), indent=2))
        return 0
    print("\n".join(show_lines(exp, analysis, verdict)))
    return 0


def show_lines(exp: Experiment, analysis: Analysis, verdict: Verdict) -> list[str]:
    """The text of ``ab show`` (its words and formats are :mod:`qbconsole.experiments.display`'s)."""
    from qbconsole.experiments.display import (
        arm_figures, figure_heads, lift_text, plan_text, progress_text, srm_text, when,
    )

    lines = [f"{exp.name}: {exp.status}" + (f" — {exp.description}" if exp.description else ""),
             f"  created {when(exp.created_at)} by {exp.created_by} ({exp.origin}); started {when(exp.started_at)}"
             + (f"; stopped {when(exp.stopped_at)} by {exp.stopped_by}" if exp.stopped_at else ""),
             f"  {plan_text(exp, analysis)}",
             ""]
    for i, metric in enumerate(exp.metrics):
        lines.append(f"{metric.name} = {metric.spec}" + ("  (primary)" if i == 0 else ""))
        count_head, value_head = figure_heads(metric)
        lines.append(f"  {'VARIANT':<14} {'SPLIT':>6} {'USERS':>8}  {count_head:>11}  {value_head:>8}  "
                     f"{'LIFT [95% CI]':<26} {'P':>7} {'P ADJ':>7}  WIN")
        for arm in analysis.arms:
            count, value = arm_figures(metric, arm.metrics[metric.name])
            if arm.variant == exp.control:
                tail = "(control)"
            else:
                c = analysis.comparison(metric.name, arm.variant)
                if c.ok:
                    tail = f"{lift_text(c):<26} {c.p_value:>7.3g} {c.adjusted_p:>7.3g}  {c.chance_to_win:.0%}"
                else:
                    tail = f"— ({c.error})"
            lines.append(f"  {arm.variant:<14} {arm.share * 100:>5.3g}% {arm.users:>8}  {count:>11}  {value:>8}  {tail}")
        lines.append("")
    lines.append(f"sample ratio: {srm_text(analysis)}")
    lines.append(f"progress: {progress_text(analysis, verdict)}")
    lines.append(f"verdict: {verdict.headline} — {verdict.reason}")
    return lines


# ---- parser ---------------------------------------------------------------------------------
def register(sub) -> None:
    """Add ``qbconsole ab ...`` to the top-level parser."""
    op = argparse.ArgumentParser(add_help=False)
    op.add_argument("--operator", help="name recorded as who acted (default: the OS/SSH user)")
    ab = sub.add_parser("ab", help="A/B experiments: create, start, stop, list, show, assign, track")
    absub = ab.add_subparsers(title="ab commands", metavar="COMMAND", required=True)

    def plan_options(p, creating: bool) -> None:
        p.add_argument("--variants", default="control,treatment" if creating else None,
                       help="comma-separated; the first is the control (default control,treatment)")
        p.add_argument("--split", help="weights, e.g. 50,50 or 90,10 (default equal)")
        p.add_argument("--metric", action="append", metavar="NAME=EVENT[.value|.count]",
                       help="repeatable; the first is the primary metric, e.g. conversion=purchase")
        p.add_argument("--duration", help="planned duration, e.g. 14d (before it ends, the always-valid "
                                          "sequential test is used)")
        p.add_argument("--mde", default="5%" if creating else None,
                       help="minimum detectable effect, relative (default 5%%)")
        p.add_argument("--alpha", type=float, default=0.05 if creating else None, help="default 0.05")
        p.add_argument("--min-users", type=int, default=100 if creating else None,
                       help="users per variant before any decision (default 100)")
        p.add_argument("--description")

    create = absub.add_parser("create", parents=[op], help="define an experiment (a draft unless --start)")
    create.add_argument("name")
    plan_options(create, True)
    create.add_argument("--sequential", action="store_true",
                        help="always use the sequential test, even at the planned horizon")
    create.add_argument("--seed", help="assignment seed (default: the name and a random salt)")
    create.add_argument("--start", action="store_true", help="start it now")
    create.set_defaults(func=cmd_create)

    edit = absub.add_parser("edit", parents=[op], help="change a draft, or the analysis plan of a running "
                                                      "experiment (never the split of a running one)")
    edit.add_argument("name")
    plan_options(edit, False)
    edit.add_argument("--sequential", action=argparse.BooleanOptionalAction, default=None)
    edit.set_defaults(func=cmd_edit)

    for verb, fn, text in (("start", cmd_start, "start a draft experiment"),
                           ("stop", cmd_stop, "stop a running experiment (it never runs again)")):
        p = absub.add_parser(verb, parents=[op], help=text)
        p.add_argument("name")
        if verb == "stop":
            p.add_argument("--reason", help="recorded in the audit log")
        p.set_defaults(func=fn)

    ls = absub.add_parser("list", help="experiments with status, users and verdict")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    show = absub.add_parser("show", help="per-variant results, lift, p-value, chance to win, SRM, verdict")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    assign = absub.add_parser("assign", help="print a user's variant and record their first exposure")
    assign.add_argument("name")
    assign.add_argument("user")
    assign.set_defaults(func=cmd_assign)
    tr = absub.add_parser("track", help="record an event of a user (counts only after their exposure)")
    tr.add_argument("name")
    tr.add_argument("user")
    tr.add_argument("event")
    tr.add_argument("--value", type=float, help="e.g. the purchase amount")
    tr.set_defaults(func=cmd_track)
