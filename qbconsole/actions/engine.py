"""The action engine: optimization rules propose; approved proposals run; results are verified.

``ActionEngine(store, config).tick(now_ms)`` does four steps, each safe to
repeat and to run in two processes at once (every state change is a
conditional UPDATE, see qbconsole.actions.proposals):

1. evaluate the optimization rules (every ``settings.evaluation_interval``):
   a condition that has held for ``for`` makes a proposal, unless one is
   open for the rule and target or the rule+target is in cooldown (after it
   ran, or after a rejection);
2. expire proposals nobody decided on in time;
3. run approved proposals: check them again (configured, not expired, within
   bounds, not in cooldown, condition still holds, environment set), refuse
   a stale one with the reasons, else claim it (approved -> executing; only
   one process wins) and execute its spec exactly;
4. after ``settle``, compare the verify metric with the baseline measured
   just before running (the proposal's evidence when there was none) and
   record improved / not_improved.

The ``for`` timers live in memory, as Prometheus keeps them: a restarted
engine waits ``for`` again. A proposal left ``executing`` by a process that
died is marked failed once well past its timeout.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time
from typing import Any, Callable, Mapping

from qbconsole.actions import checks, executors, proposals
from qbconsole.actions.executors import Outcome
from qbconsole.actions.executors.statement import sqlite_file
from qbconsole.actions.indexes import analyse, fetch_slow_queries
from qbconsole.actions.model import TOKEN_ENV, OptimizationRule, RuleError
from qbconsole.actions.params import ParamError, evaluate as evaluate_params
from qbconsole.actions.schema import parse_rule
from qbconsole.actions.specs import build, database, index_spec, platform_url, verify_value, weights
from qbconsole.rules.promql import Evaluator, PromQLEvalError, StoreQuerier
from qbconsole.rules.templates import TemplateError, render

log = logging.getLogger("qbconsole.actions")

STUCK_MARGIN_MS = 60_000
# What a rule's evaluation can meet (bad data, an unreachable platform or database): reported, not raised.
_RULE_ERRORS = (ParamError, PromQLEvalError, TemplateError, ValueError, ArithmeticError, sqlite3.Error, OSError)


class ActionEngine:
    """Proposals from optimization rules, and the approve -> run -> verify cycle."""

    def __init__(self, store, config, *, clock: Callable[[], float] = time.time,
                 env: Mapping[str, str] = os.environ, interval_s: float | None = None,
                 querier=None) -> None:
        self.store = store
        self.clock = clock
        self.env = env
        self.evaluator = Evaluator(querier if querier is not None else StoreQuerier(store))
        self.process = f"{socket.gethostname()}:{os.getpid()}"
        self.rules: dict[str, OptimizationRule] = {}
        self.interval_ms = 0
        self.last_errors: dict[str, str] = {}
        self._pending: dict[tuple[str, str], int] = {}
        self._next_eval = 0
        self.set_config(config, interval_s)

    def set_config(self, config, interval_s: float | None = None) -> None:
        """Take a (re)loaded config; ``for`` timers of rules that stay are kept."""
        rules = {}
        for raw in config.optimizations:
            try:
                rule = parse_rule(raw)
            except RuleError as err:  # the config loader reports these first
                log.error("optimization rule skipped: %s", err)
                continue
            rules[rule.name] = rule
        self.rules = rules
        self._pending = {k: v for k, v in self._pending.items() if k[0] in rules}
        seconds = config.settings.evaluation_interval if interval_s is None else interval_s
        self.interval_ms = int(seconds * 1000)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- the tick -----------------------------------------------------------------
    def tick(self, now_ms: int | None = None) -> None:
        now = self.now_ms() if now_ms is None else now_ms
        steps = [self.expire, self.run_approved, self.verify_due]
        if now >= self._next_eval:
            self._next_eval = now + self.interval_ms
            steps.insert(0, self.evaluate)
        for step in steps:
            try:
                step(now)
            except Exception:  # one failing step never stops the others
                log.exception("action step %s failed", step.__name__)

    def expire(self, now: int) -> list[int]:
        if not proposals.any_due_to_expire(self.store.read(), now):
            return []  # no write transaction on a quiet tick
        return self.store.transaction(lambda c: proposals.engine_expire_due(c, now))

    # ---- 1. proposals ---------------------------------------------------------------
    def evaluate(self, now: int) -> list[int]:
        """Evaluate every rule at ``now``; the ids of the proposals made."""
        made: list[int] = []
        self.evaluator.new_tick()
        conn = self.store.read()
        for rule in self.rules.values():
            problems: list[str] = []
            try:
                made += self._evaluate_rule(rule, conn, now, problems)
            except _RULE_ERRORS as err:
                problems.append(str(err))
            if problems:
                if self.last_errors.get(rule.name) != problems[0]:  # log a lasting problem once
                    log.warning("optimization rule %s: %s", rule.name, "; ".join(problems))
                self.last_errors[rule.name] = problems[0]
            else:
                self.last_errors.pop(rule.name, None)
        return made

    def _evaluate_rule(self, rule: OptimizationRule, conn, now: int, problems: list[str]) -> list[int]:
        found = checks.matches(rule, self.evaluator, conn, now)
        for key in [k for k in self._pending if k[0] == rule.name and k[1] not in found]:
            del self._pending[key]
        made = []
        for target, match in found.items():
            since = self._pending.setdefault((rule.name, target), now)
            if now - since < rule.for_ms:
                continue
            condition = {"expr": rule.expr, "alerts": list(rule.alerts), "value": _num(match.value),
                         "labels": match.labels, "held_since": since, "at": now}
            try:  # one target's problem (no value for a parameter, ...) does not stop the others
                if rule.kind == "missing_indexes":
                    made += self._propose_indexes(rule, conn, match, condition, now)
                elif self._may_propose(conn, rule, target, now):
                    pid = self._propose(rule, match, target, condition, now)
                    if pid is not None:
                        made.append(pid)
            except _RULE_ERRORS as err:
                problems.append(f"{target}: {err}" if len(found) > 1 else str(err))
        return made

    def _may_propose(self, conn, rule: OptimizationRule, target: str, now: int) -> bool:
        if proposals.open_for(conn, rule.name, target) is not None:
            return False
        last = proposals.last_ran_or_rejected(conn, rule.name, target)
        return last is None or now - last >= rule.cooldown_ms

    def _propose(self, rule: OptimizationRule, match: checks.Match, target: str, condition: dict, now: int,
                 *, spec: dict | None = None, extra: dict | None = None) -> int | None:
        evidence: dict[str, Any] = {"condition": condition, "labels": match.labels}
        if match.alerts:
            evidence["alerts"] = list(match.alerts)
        if spec is None:
            values, evidence["params"] = evaluate_params(rule, self.evaluator, now, match.labels, match.value)
            if rule.kind == "weights":
                values["weight"], evidence["params"]["weight"] = weights(rule, self.evaluator, now)
            spec = build(rule, values, self.env)
        evidence.update(extra or {})
        verify: dict[str, Any] = {}
        if rule.verify:
            verify = {"expr": rule.verify.expr, "better": rule.verify.better,
                      "min_change": rule.verify.min_change, "settle_ms": rule.settle_ms}
            evidence["verify"] = {"expr": rule.verify.expr,
                                  "baseline": verify_value(rule.verify.expr, self.evaluator, now, match.labels)}
        description = render(rule.description, match.labels, match.value) if rule.description else ""
        description = description or f"{rule.name}: {executors.summary(spec)}"
        bounds = {k: {"min": b.min, "max": b.max, "clamp": b.clamp} for k, b in rule.bounds.items()}
        pid = self.store.transaction(lambda c: proposals.engine_insert(
            c, rule=rule.name, target=target, action=rule.kind, description=description, spec=spec,
            evidence=evidence, bounds=bounds, verify=verify, priority=rule.priority, now=now,
            expires_at=now + rule.expiry_ms))
        if pid is not None:
            log.info("proposal %d: %s (%s)", pid, description, executors.summary(spec))
        return pid

    def _propose_indexes(self, rule: OptimizationRule, conn, match: checks.Match, condition: dict,
                         now: int) -> list[int]:
        url = platform_url(rule, self.env)
        token = self.env.get(rule.action.get("token_env", TOKEN_ENV))
        queries = fetch_slow_queries(url, token, limit=int(rule.action.get("limit", 10)), timeout_s=rule.timeout_s)
        min_avg = _seconds(rule.action.get("min_avg", 0))
        suggestions = analyse(sqlite_file(database(rule, self.env)), queries, min_avg, rule.timeout_s)
        made = []
        for s in suggestions:
            if not self._may_propose(conn, rule, s.target, now):
                continue
            spec = index_spec(rule, s, self.env)
            extra = {"query": s.query, "plan": s.plan, "statement": s.statement}
            text = (f"Add the missing index {s.statement}: {s.query.get('name', 'a query')} scans {s.table} "
                    f"(avg {float(s.query.get('avg_seconds') or 0) * 1000:.1f} ms)")
            pid = self._propose(rule, match._replace(target=s.target), s.target, condition, now, spec=spec,
                                extra={**extra, "summary": text})
            if pid is not None:
                made.append(pid)
        return made

    # ---- 3. running approved proposals -------------------------------------------------
    def run_approved(self, now: int) -> list[int]:
        """Check and run every approved proposal; the ids this process ran."""
        ran = []
        self._fail_stuck(now)
        for p in proposals.approved(self.store.read()):
            if self._run_one(p, now):
                ran.append(p.id)
        return ran

    def _run_one(self, p: proposals.Proposal, now: int) -> bool:
        rule = self.rules.get(p.rule)
        results = checks.run_checks(p, rule, self.evaluator, self.store.read(), now, self.env)
        reasons = checks.failures(results)
        if reasons:
            if self.store.transaction(lambda c: proposals.engine_refuse(c, p, now, "; ".join(reasons))):
                log.warning("proposal %d refused: %s", p.id, "; ".join(reasons))
            return False
        baseline = None
        if p.verify.get("expr"):
            baseline = verify_value(p.verify["expr"], self.evaluator, now, p.evidence.get("labels") or {})
            if baseline is None:
                baseline = (p.evidence.get("verify") or {}).get("baseline")
        if not self.store.transaction(lambda c: proposals.engine_claim(c, p, now, baseline, self.process)):
            return False  # another process took it
        log.info("proposal %d approved by %s: running %s", p.id, p.decided_by, p.summary)
        try:
            outcome = executors.execute(p.spec, self.env)
        except Exception as err:  # a bug in an executor must still finish the row
            log.exception("proposal %d: executor failed", p.id)
            outcome = Outcome(False, None, f"executor error: {type(err).__name__}", 0.0)
        done = max(self.now_ms(), now)
        settle = p.verify.get("settle_ms") if p.verify.get("expr") else None
        verify_at = done + int(settle) if settle is not None else None
        self.store.transaction(lambda c: proposals.engine_finish(c, p, done, outcome, verify_at))
        log.info("proposal %d %s (exit %s) in %.2f s", p.id, "succeeded" if outcome.ok else "failed",
                 outcome.exit_status, outcome.duration_s)
        return True

    def _fail_stuck(self, now: int) -> None:
        for p in proposals.running(self.store.read()):
            limit = float(p.spec.get("timeout_s", 30)) * 2000 + STUCK_MARGIN_MS
            if p.started_at is not None and now - p.started_at > limit:
                outcome = Outcome(False, None, "", 0.0)
                reason = "interrupted: the process running it stopped before it finished"
                self.store.transaction(lambda c, p=p: proposals.engine_finish(c, p, now, outcome, None, reason))

    # ---- 4. verification --------------------------------------------------------
    def verify_due(self, now: int) -> list[int]:
        done = []
        self.evaluator.new_tick()
        for p in proposals.due_for_verification(self.store.read(), now):
            verdict, after, detail = self._verdict(p, now)
            if self.store.transaction(lambda c: proposals.engine_verdict(c, p, now, verdict, after, detail)):
                log.info("proposal %d verified: %s (%s -> %s)", p.id, verdict, p.baseline, after)
                done.append(p.id)
        return done

    def _verdict(self, p: proposals.Proposal, now: int) -> tuple[str, float | None, dict]:
        cfg = p.verify
        detail: dict[str, Any] = {"expr": cfg.get("expr"), "better": cfg.get("better", "lower")}
        try:
            after = verify_value(cfg["expr"], self.evaluator, now, p.evidence.get("labels") or {})
        except (PromQLEvalError, ValueError, ArithmeticError) as err:
            return "not_improved", None, {**detail, "reason": f"verify expression failed: {err}"}
        baseline = p.baseline
        if after is None or baseline is None:
            missing = "after" if after is None else "baseline"
            return "not_improved", after, {**detail, "reason": f"no {missing} value to compare"}
        margin = abs(baseline) * float(cfg.get("min_change", 0.0))
        if cfg.get("better", "lower") == "lower":
            improved = after < baseline and after <= baseline - margin
        else:
            improved = after > baseline and after >= baseline + margin
        change = (after - baseline) / baseline if baseline else None
        return ("improved" if improved else "not_improved"), after, {**detail, "change": change}


def _num(value: float) -> float | None:
    return None if value != value else value


def _seconds(value) -> float:
    from qbconsole.config.durations import parse_duration

    return parse_duration(value)
