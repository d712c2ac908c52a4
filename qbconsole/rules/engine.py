"""The rules engine: evaluates rule groups against a querier at a time, and persists the result.

For each group, in file order: a recording rule writes its result vector to
the store (so later rules of the group see it); an alert rule's result goes
through :func:`qbconsole.rules.alerts.step`, and the alerts it moves are
written as rows with one event per transition. (Unlike Prometheus it writes
no ``ALERTS`` series: the alerts table is the record, and an alert storm
would otherwise cost a sample per alert per evaluation.)

It keeps the current alerts in memory and reloads them from the store when it
starts, so a restarted agent carries on where the last one stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from qbconsole.model import Sample
from qbconsole.rules import alerts as sm
from qbconsole.rules.exprs import selectors
from qbconsole.rules.promql import Evaluator, PromQLEvalError, PromQLSyntaxError, StoreQuerier, parse
from qbconsole.rules.promql.queriers import CachedStoreQuerier
from qbconsole.rules.ruleset import RecordingRule, RuleGroup
from qbconsole.rules.templates import TemplateError, render
from qbconsole.store import Store
from qbconsole.store import alerts as rows

log = logging.getLogger("qbconsole.rules")

# An active alert's value is written back at most this often (transitions are
# written at once): the feed shows it, the live figure is on the Overview.
VALUE_REFRESH_MS = 10_000


@dataclass
class GroupResult:
    group: str
    t: int
    duration_s: float
    samples: int = 0
    transitions: list[tuple[str, sm.Transition]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # rule name -> last error


class RulesEngine:
    """Evaluate rule groups and persist recording results and alert states."""

    def __init__(self, store: Store, groups: Iterable[RuleGroup], *, querier=None,
                 write: Callable[[list[Sample]], object] | None = None,
                 lookback_ms: int = 300_000, external_labels: Mapping[str, str] | None = None,
                 evaluator=None, record: bool = True) -> None:
        """``evaluator`` replaces the local one with any object that has ``evaluate(expr,
        t_ms)`` and ``new_tick()`` (a Prometheus backend); ``record=False`` skips the
        recording rules (the backend owns those series)."""
        self.store = store
        if querier is None:  # our own evaluation keeps its windows; a backend needs none
            querier = CachedStoreQuerier(store) if evaluator is None else StoreQuerier(store)
        self.querier = querier
        self.evaluator = evaluator if evaluator is not None else Evaluator(self.querier, lookback_ms=lookback_ms)
        self.record = record
        self.write = write or store.write
        self.external_labels = dict(external_labels or {})
        self.groups: list[RuleGroup] = []
        self._next_due: dict[str, int] = {}
        self._alerts: dict[str, dict[str, sm.Alert]] = {}
        self._ids: dict[str, dict[str, int]] = {}  # rule -> fingerprint -> open alert row
        self._written: dict[tuple[str, str], tuple] = {}  # what the row holds now
        self.last_errors: dict[str, str] = {}
        self.set_groups(groups)
        self._load_alerts()

    # ---- configuration -----------------------------------------------------
    def set_groups(self, groups: Iterable[RuleGroup]) -> None:
        """Replace the rules (config reload); alerts of rules that stay are kept."""
        self.groups = list(groups)
        for group in self.groups:
            for rule in group.rules:
                parse(rule.expr)  # fail early on a bad expression (config validation reports it first)
        names = {g.name for g in self.groups}
        self._next_due = {k: v for k, v in self._next_due.items() if k in names}

    def _load_alerts(self) -> None:
        conn = self.store.read()
        for row in rows.current_alerts(conn, int(time.time() * 1000)):
            if row.source != "local" or row.state not in (sm.PENDING, sm.FIRING):
                continue
            alert = sm.Alert(row.rule, row.labels, row.state, row.value if row.value is not None else float("nan"),
                             row.active_at, row.fired_at, row.resolved_at, row.keep_firing_since, row.last_eval)
            self._alerts.setdefault(row.rule, {})[row.fingerprint] = alert

    # ---- scheduling ------------------------------------------------------------
    def due(self, now_ms: int) -> list[RuleGroup]:
        """Groups whose interval has come round (all of them on the first call)."""
        out = []
        for group in self.groups:
            if self._next_due.get(group.name, 0) <= now_ms:
                out.append(group)
                # Align to the interval, as Prometheus does, so evaluation times are regular.
                self._next_due[group.name] = (now_ms // group.interval_ms + 1) * group.interval_ms
        return out

    def tick(self, now_ms: int) -> list[GroupResult]:
        return [self.evaluate_group(g, now_ms) for g in self.due(now_ms)]

    # ---- evaluation --------------------------------------------------------------
    def evaluate_group(self, group: RuleGroup, t: int) -> GroupResult:
        started = time.perf_counter()
        result = GroupResult(group.name, t, 0.0)
        self._new_tick()
        alert_updates: list[tuple[sm.AlertRule, dict[str, sm.Alert], dict[str, sm.Alert], list[sm.Transition]]] = []
        for rule in group.rules:
            name = rule.record if isinstance(rule, RecordingRule) else rule.name
            if isinstance(rule, RecordingRule) and not self.record:
                continue
            try:
                if isinstance(rule, RecordingRule):
                    samples = self._record(rule, t)
                    if samples:
                        self.write(samples)
                        self._new_tick()  # later rules must see what was just recorded
                    result.samples += len(samples)
                else:
                    old = self._alerts.get(rule.name, {})
                    new, transitions = self._alert(rule, old, t)
                    self._alerts[rule.name] = new
                    alert_updates.append((rule, old, new, transitions))
                    result.transitions.extend((rule.name, tr) for tr in transitions)
                self.last_errors.pop(name, None)
            except (PromQLSyntaxError, PromQLEvalError, TemplateError, ValueError, ArithmeticError) as err:
                result.errors[name] = self.last_errors[name] = f"{type(err).__name__}: {err}"
                log.warning("rule %s failed at %d: %s", name, t, err)
        if alert_updates:
            self.store.transaction(lambda conn: self._persist(conn, alert_updates, t))
        result.duration_s = time.perf_counter() - started
        return result

    def close(self) -> None:
        """Release what the querier holds (the sample cache's watch on the store's writer)."""
        close = getattr(self.querier, "close", None)
        if close is not None:
            close()

    def _new_tick(self) -> None:
        self.evaluator.new_tick()
        sync = getattr(self.querier, "new_tick", None)
        if sync is not None:
            sync()

    def _record(self, rule: RecordingRule, t: int) -> list[Sample]:
        value = self.evaluator.evaluate(rule.expr, t)
        out = []
        for labels, v in _as_vector(value):
            labels = {k: val for k, val in labels.items() if k != "__name__"}
            labels.update(rule.labels)
            out.append(Sample(rule.record, labels, t, v))
        return out

    def _alert(self, rule: sm.AlertRule, old: dict[str, sm.Alert], t: int):
        vector = _as_vector(self.evaluator.evaluate(rule.expr, t))
        results = {}
        for labels, value in vector:
            full = self._labels(rule, labels, value)  # rule labels may be templates
            results[sm.fingerprint(full)] = (full, value)
        still = None
        if rule.keep_firing_while:
            still = {sm.fingerprint(self._labels(rule, labels, value))
                     for labels, value in _as_vector(self.evaluator.evaluate(rule.keep_firing_while, t))}
        no_data = not vector and rule.no_data != "ok" and self._no_data(rule.expr, t)
        return sm.step(rule, old, results, t, still_while=still, no_data=no_data)

    def _labels(self, rule: sm.AlertRule, labels: Mapping[str, str], value: float) -> dict[str, str]:
        rendered = {k: render(v, labels, value, self.external_labels) if "{{" in v else v
                    for k, v in rule.labels.items()}
        out = {k: v for k, v in labels.items() if k != "__name__"}
        out.update(rendered)
        out["alertname"] = rule.name
        return out

    def _no_data(self, expr: str, t: int) -> bool:
        """True when none of the expression's selectors returns any series at ``t``."""
        for selector in selectors(parse(expr)):
            if _as_vector(self.evaluator.evaluate(selector, t)):
                return False
        return True

    def _annotations(self, rule: sm.AlertRule, alert: sm.Alert) -> dict[str, str]:
        # Prometheus renders annotations with the alert's labels and its current value.
        return {k: render(v, alert.labels, alert.value, self.external_labels)
                for k, v in rule.annotations.items()}

    # ---- persistence -------------------------------------------------------------
    def _persist(self, conn, updates, t: int) -> None:
        """Write what changed: new alerts, transitions, and (at most every
        VALUE_REFRESH_MS per alert) a changed value with its re-rendered annotations."""
        changed: list[tuple] = []
        for rule, old, new, transitions in updates:
            ids = self._ids.get(rule.name)
            if ids is None:
                ids = self._ids[rule.name] = rows.open_alert_ids(conn, rule.name)
            moved = {tr.fingerprint for tr in transitions}
            for fp, alert in new.items():
                if fp not in moved and not self._due(rule.name, fp, alert, t):
                    continue
                annotations = self._annotations(rule, alert)
                if alert.is_active and fp not in ids:
                    ids[fp] = rows.insert_alert(conn, rule.name, fp, alert.labels, annotations, rule.severity,
                                                alert.state, alert.value, alert.active_at, alert.fired_at, t)
                elif fp in ids:
                    changed.append((alert.state, rows.number(alert.value), rows.dumps(annotations), alert.fired_at,
                                    alert.resolved_at, alert.keep_firing_since, t, ids[fp]))
                self._written[(rule.name, fp)] = (alert.state, alert.value, alert.keep_firing_since, t)
            for tr in transitions:
                alert_id = ids.get(tr.fingerprint)
                if alert_id is None:
                    continue
                if tr.new == "inactive":
                    rows.deactivate_pending(conn, alert_id, t)
                rows.add_event(conn, alert_id, tr.ts, tr.new, rows.ENGINE,
                               {"from": tr.old, "value": None if tr.value != tr.value else tr.value})
                if tr.new in (sm.RESOLVED, "inactive"):
                    ids.pop(tr.fingerprint, None)
                    self._written.pop((rule.name, tr.fingerprint), None)
        rows.update_alerts(conn, changed)

    def _due(self, rule: str, fp: str, alert: sm.Alert, t: int) -> bool:
        last = self._written.get((rule, fp))
        if last is None or last[0] != alert.state or last[2] != alert.keep_firing_since:
            return True
        same = last[1] == alert.value or (last[1] != last[1] and alert.value != alert.value)
        return not same and t - last[3] >= VALUE_REFRESH_MS

    # ---- views --------------------------------------------------------------------
    def alerts(self, rule: str | None = None) -> list[sm.Alert]:
        """The engine's current alerts (active and recently resolved)."""
        names = [rule] if rule else list(self._alerts)
        return [a for n in names for a in self._alerts.get(n, {}).values()]


def _as_vector(value) -> list[tuple[Mapping[str, str], float]]:
    """A query result as (labels, value) pairs; a scalar is one unlabelled sample."""
    if hasattr(value, "value") and not isinstance(value, list):
        return [({}, float(value.value))] if isinstance(value.value, (int, float)) else []
    return [(s.labels, s.value) for s in value]
