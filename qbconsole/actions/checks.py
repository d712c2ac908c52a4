"""Conditions and the checks made just before an approved action runs (and by a dry run).

A rule's condition holds for a target when:

- ``expr`` only: the expression returns a series; its labels (without
  ``__name__``) are the target, or the rendered ``target`` template;
- ``alert`` (one name or several): an alert of one of those rules is firing
  (rows in the alerts table); its labels, without alertname and severity,
  are the target. With ``expr`` as well, the expression must also return
  something (a guard such as ``quickbid_workers < 20``).

Matches that land on the same target are one proposal (the evidence lists
every alert). Before running, every check below must pass; the failures are
the refusal's reason.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from qbconsole.actions import executors, proposals
from qbconsole.actions.indexes import analyse
from qbconsole.actions.model import Bound, OptimizationRule
from qbconsole.actions.params import effective_bound, number_text, out_of_bounds
from qbconsole.actions.proposals import Proposal
from qbconsole.actions.executors.statement import sqlite_file
from qbconsole.actions.specs import database
from qbconsole.rules.templates import render
from qbconsole.store import alerts as alert_rows


class Match(NamedTuple):
    target: str
    labels: dict[str, str]
    value: float
    alerts: tuple[dict[str, Any], ...] = ()


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str


class _Scalar(NamedTuple):
    value: float
    labels: Mapping[str, str] = {}


def default_target(labels: Mapping[str, str]) -> str:
    shown = [f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("__name__", "alertname", "severity")]
    return ",".join(shown) or "all"


def target_for(rule: OptimizationRule, labels: Mapping[str, str], value: float) -> str:
    if rule.target:
        return render(rule.target, labels, value).strip() or "all"
    return default_target(labels)


def matches(rule: OptimizationRule, evaluator, conn, t: int) -> dict[str, Match]:
    """target -> Match for every target the rule's condition holds for at ``t`` (``for`` aside)."""
    vector = evaluator.evaluate(rule.expr, t) if rule.expr else None
    if vector is not None and hasattr(vector, "value") and not isinstance(vector, list):
        vector = [] if vector.value != vector.value else [_Scalar(vector.value)]
    out: dict[str, Match] = {}
    if rule.alerts:
        if vector is not None and not vector:
            return {}
        for row in alert_rows.current_alerts(conn, t):
            if row.rule not in rule.alerts or row.state != "firing":
                continue
            value = row.value if row.value is not None else float("nan")
            target = target_for(rule, row.labels, value)
            evidence = {"id": row.id, "alert": row.rule, "state": row.state, "value": row.value,
                        "fired_at": row.fired_at, "labels": row.labels}
            old = out.get(target)
            out[target] = (old._replace(alerts=(*old.alerts, evidence)) if old else
                           Match(target, dict(row.labels), value, (evidence,)))
        return out
    for sample in vector or []:
        labels = {k: v for k, v in sample.labels.items() if k != "__name__"}
        target = target_for(rule, labels, sample.value)
        out.setdefault(target, Match(target, labels, float(sample.value)))
    return out


def run_checks(p: Proposal, rule: OptimizationRule | None, evaluator, conn, now: int,
               env: Mapping[str, str]) -> list[Check]:
    """Every check an approved proposal must pass to run now, in order."""
    out = [Check("configured", rule is not None,
                 "the rule is configured" if rule else f"rule {p.rule!r} is no longer configured")]
    expired = now >= p.expires_at
    out.append(Check("not expired", not expired,
                     f"expired {(now - p.expires_at) // 1000} s ago" if expired else
                     f"expires in {(p.expires_at - now) // 1000} s"))
    out.append(_bounds(p, rule))
    if rule is None:
        return out
    last = proposals.last_started(conn, p.rule, p.target, excluding=p.id)
    cooling = last is not None and now - last < rule.cooldown_ms
    out.append(Check("not in cooldown", not cooling,
                     f"rule {p.rule} ran for {p.target} {(now - last) // 1000} s ago; cooldown is "
                     f"{rule.cooldown_ms // 1000} s" if cooling else "no recent run of this rule and target"))
    out.append(_condition(p, rule, evaluator, conn, now, env))
    problems = executors.problems(p.spec, env)
    out.append(Check("environment", not problems, "; ".join(problems) or "everything it needs is set"))
    return out


def failures(checks: list[Check]) -> list[str]:
    return [c.detail for c in checks if not c.ok]


def _bounds(p: Proposal, rule: OptimizationRule | None) -> Check:
    values = {k: v.get("value") for k, v in (p.evidence.get("params") or {}).items() if isinstance(v, Mapping)}
    stored = {k: v for k, v in p.bounds.items() if isinstance(v, Mapping)}
    for name, value in values.items():
        checks = []
        if name in stored:
            checks.append(Bound(stored[name].get("min"), stored[name].get("max"), False))
        if rule is not None:
            checks.append(effective_bound(rule, rule.bounds, name))
        for bound in checks:
            problem = out_of_bounds(name, value, bound)
            if problem:
                return Check("within bounds", False, problem)
    shown = ", ".join(f"{k}={v if isinstance(v, Mapping) else number_text(v)}" for k, v in values.items()
                      if isinstance(v, (Mapping, int, float)))
    return Check("within bounds", True, f"{shown} within bounds" if shown else "no bounded parameters")


def _condition(p: Proposal, rule: OptimizationRule, evaluator, conn, now: int, env: Mapping[str, str]) -> Check:
    evaluator.new_tick()
    try:
        found = matches(rule, evaluator, conn, now)
    except (ValueError, ArithmeticError) as err:
        return Check("condition holds", False, f"the condition cannot be evaluated: {err}")
    if rule.kind == "missing_indexes":
        if not found:
            return Check("condition holds", False, f"{rule.expr} no longer holds")
        query = p.evidence.get("query") or {}
        try:
            still = analyse(sqlite_file(database(rule, env)), [query], timeout_s=rule.timeout_s)
        except Exception as err:  # the database may be gone or locked: refuse rather than guess
            return Check("condition holds", False, f"cannot re-check the query plan: {type(err).__name__}: {err}")
        if not any(s.target == p.target for s in still):
            return Check("condition holds", False,
                         f"{query.get('name', 'the query')} no longer scans {p.target.split('(')[0]} "
                         "(the index exists now)")
        return Check("condition holds", True, f"{query.get('name')} still scans the whole table")
    if p.target not in found:
        what = " or ".join(rule.alerts) + " firing" if rule.alerts else rule.expr
        return Check("condition holds", False, f"the condition no longer holds for {p.target}: {what}")
    return Check("condition holds", True, f"holds for {p.target} (value {found[p.target].value:g})")
