"""Dry run: exactly what a proposal would run, and whether it would run now. Nothing runs.

The console's confirmation dialog and ``qbconsole actions approve ID
--dry-run`` show this: the spec with environment references resolved
(secret values masked), and each check the engine makes just before
running, with its result. It writes nothing, not even an audit row.
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping, NamedTuple

from qbconsole.actions import executors, proposals
from qbconsole.actions.checks import Check, run_checks
from qbconsole.actions.model import RuleError
from qbconsole.actions.schema import parse_rule
from qbconsole.actions.proposals import Proposal
from qbconsole.rules.promql import Evaluator, StoreQuerier


class DryRun(NamedTuple):
    proposal: Proposal
    summary: str  # the exact action on one line
    would_run: dict[str, Any]  # argv / request / statement, resolved, secrets masked
    checks: list[Check]
    runnable: bool  # every check passes now

    def to_json(self) -> dict[str, Any]:
        return {"proposal": self.proposal.to_json(), "summary": self.summary, "would_run": self.would_run,
                "checks": [c._asdict() for c in self.checks], "runnable": self.runnable, "ran": False}


def dry_run(store, proposal_id: int, config=None, *, env: Mapping[str, str] | None = None,
            now: int | None = None) -> DryRun:
    """What proposal ``proposal_id`` would run and the result of every pre-run check.

    ``config`` (a loaded rules file) gives the current rule for the checks;
    without it the rule counts as not configured. Raises ValueError for an
    unknown id.
    """
    env = os.environ if env is None else env
    now = int(time.time() * 1000) if now is None else now
    conn = store.read()
    p = proposals.get(conn, proposal_id)
    if p is None:
        raise ValueError(f"no proposal with id {proposal_id}")
    rule = None
    for raw in getattr(config, "optimizations", None) or []:
        if isinstance(raw, Mapping) and raw.get("name") == p.rule:
            try:
                rule = parse_rule(raw)
            except RuleError:
                rule = None
    runnable_state = p.state in ("proposed", "approved")
    results = [Check("state", runnable_state, f"{p.state}" + ("" if runnable_state else "; it will not run"))]
    results += run_checks(p, rule, Evaluator(StoreQuerier(store)), conn, now, env)
    return DryRun(p, executors.summary(p.spec), executors.resolved(p.spec, env), results,
                  all(c.ok for c in results))
