"""Rule unit tests in promtool's format (``qbconsole rules test FILE...``).

The same files run under ``promtool test rules``: ``rule_files``,
``evaluation_interval``, ``group_eval_order``, ``tests[]`` with ``interval``,
``input_series`` (expanding notation ``a+bxN``, ``a-bxN``, ``axN``, ``_``,
``_xN``, ``stale``), ``alert_rule_test`` (``eval_time``, ``alertname``,
``exp_alerts`` with ``exp_labels`` and ``exp_annotations``) and
``promql_expr_test`` (``expr``, ``eval_time``, ``exp_samples``).

Each test runs the real engine over a throw-away store: input series are
written to it, every group is evaluated at each evaluation interval from 0 to
the last ``eval_time``, and alerts and expressions are compared at their
``eval_time`` (only firing alerts count, as in promtool).
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qbconsole.config import parse_duration
from qbconsole.model import STALE_NAN, Sample
from qbconsole.rules import alerts as sm
from qbconsole.rules.exprs import parse_series as parse_series_selector
from qbconsole.rules.promql import Evaluator, PromQLEvalError, PromQLSyntaxError, StoreQuerier, parse
from qbconsole.rules.ruleset import groups_from_prometheus_file
from qbconsole.store import Store


class RuleTestError(Exception):
    """The test file itself is wrong (not a failing test)."""


@dataclass
class Failure:
    test: str
    what: str
    expected: Any
    got: Any

    def __str__(self) -> str:
        return f"  FAILED {self.test}: {self.what}\n    expected: {self.expected}\n    got:      {self.got}"


@dataclass
class FileResult:
    path: str
    tests: int = 0
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None


# ---- input series notation ---------------------------------------------------
_ITEM = re.compile(r"^(?P<a>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN)"
                   r"(?:(?P<op>[-+])(?P<b>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+))?x(?P<n>\d+)$")


def expand_values(text: str) -> list[float | None]:
    """Expand promtool's notation: ``1+2x3`` -> 1 3 5 7; ``_x2`` -> two gaps (None)."""
    out: list[float | None] = []
    for item in str(text).split():
        if item == "_":
            out.append(None)
        elif item == "stale":
            out.append(STALE_NAN)
        elif m := re.fullmatch(r"_x(\d+)", item):
            out.extend([None] * int(m.group(1)))
        elif m := _ITEM.match(item):
            a = float(m.group("a"))
            b = float(m.group("b") or 0) * (-1 if m.group("op") == "-" else 1)
            out.extend(a + b * i for i in range(int(m.group("n")) + 1))
        else:
            try:
                out.append(float(item))
            except ValueError:
                raise RuleTestError(f"bad value {item!r} in input series {text!r}") from None
    return out


def _load_rule_file(path: Path):
    """A Prometheus rule file (only ``groups``) or a qbconsole rules.yaml (validated)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if isinstance(data, dict) and set(data) <= {"groups"}:
        return groups_from_prometheus_file(data)
    from qbconsole.config import ConfigError, load_config
    from qbconsole.rules.ruleset import rule_groups

    try:
        return rule_groups(load_config(path))
    except ConfigError as err:
        raise RuleTestError(f"{path} has errors:\n{err}") from None


def _ms(value: Any, default: str = "1m") -> int:
    return int(parse_duration(value if value is not None else default) * 1000)


# ---- running ---------------------------------------------------------------------
def run_file(path: str | Path) -> FileResult:
    path = Path(path)
    result = FileResult(str(path))
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        groups = []
        for rule_file in spec.get("rule_files") or []:
            groups.extend(_load_rule_file(path.parent / rule_file))
        order = spec.get("group_eval_order")
        if order:
            by_name = {g.name: g for g in groups}
            groups = [by_name[n] for n in order] + [g for g in groups if g.name not in order]
        eval_ms = _ms(spec.get("evaluation_interval"))
        for i, test in enumerate(spec.get("tests") or []):
            result.tests += 1
            name = test.get("name") or f"test #{i + 1}"
            result.failures.extend(_run_test(name, test, groups, eval_ms))
    except (OSError, yaml.YAMLError, RuleTestError, PromQLSyntaxError, PromQLEvalError, ValueError, KeyError) as err:
        result.error = f"{type(err).__name__}: {err}"
    return result


def _run_test(name: str, test: dict, groups, eval_ms: int) -> list[Failure]:
    from qbconsole.rules.engine import RulesEngine

    interval = _ms(test.get("interval"))
    with tempfile.TemporaryDirectory(prefix="qbconsole-ruletest-") as tmp:
        store = Store.open(Path(tmp) / "test.db")
        try:
            samples = []
            for series in test.get("input_series") or []:
                metric, labels = parse_series_selector(series["series"])
                for k, v in enumerate(expand_values(series.get("values", ""))):
                    if v is not None:
                        samples.append(Sample(metric, labels, k * interval, v))
            if samples:
                store.write(samples)
            engine = RulesEngine(store, groups, external_labels=test.get("external_labels"))
            alert_tests = sorted(test.get("alert_rule_test") or [], key=lambda a: _ms(a["eval_time"]))
            expr_tests = test.get("promql_expr_test") or []
            last = max([_ms(a["eval_time"]) for a in alert_tests] + [_ms(e["eval_time"]) for e in expr_tests] + [0])
            failures: list[Failure] = []
            pending = list(alert_tests)
            t = 0
            while t <= last:
                for group in groups:
                    engine.evaluate_group(group, t)
                while pending and _ms(pending[0]["eval_time"]) < t + eval_ms:
                    failures.extend(_check_alerts(name, pending.pop(0), engine))
                t += eval_ms
            for expr_test in expr_tests:
                failures.extend(_check_expr(name, expr_test, store))
            return failures
        finally:
            store.close()


def _check_alerts(name: str, spec: dict, engine) -> list[Failure]:
    alertname = spec["alertname"]
    firing = [a for a in engine.alerts(alertname) if a.state == sm.FIRING]
    rule = next((r for g in engine.groups for r in g.alerting if r.name == alertname), None)
    got = sorted((_without(a.labels, "alertname"), engine._annotations(rule, a) if rule else {}) for a in firing)
    got = [{"exp_labels": lab, "exp_annotations": ann} for lab, ann in sorted(got, key=repr)]
    expected = [{"exp_labels": {str(k): str(v) for k, v in (e.get("exp_labels") or {}).items()},
                 "exp_annotations": {str(k): str(v) for k, v in (e.get("exp_annotations") or {}).items()}}
                for e in spec.get("exp_alerts") or []]
    expected = sorted(expected, key=repr)
    if expected != got:
        return [Failure(name, f"alertname: {alertname}, time: {spec['eval_time']}", expected, got)]
    return []


def _check_expr(name: str, spec: dict, store: Store) -> list[Failure]:
    t = _ms(spec["eval_time"])
    value = Evaluator(StoreQuerier(store)).evaluate(parse(spec["expr"]), t)
    items = [(getattr(value, "value", None),)] if not isinstance(value, list) else None
    got = sorted(((dict(s.labels), s.value) for s in value), key=repr) if items is None else [({}, value.value)]
    expected = []
    for e in spec.get("exp_samples") or []:
        text = e.get("labels") or "{}"
        metric, labels = parse_series_selector(text)
        if metric:
            labels = {"__name__": metric, **labels}
        expected.append((labels, float(e["value"])))
    expected.sort(key=repr)
    if not _same_samples(expected, got):
        return [Failure(name, f"expr: {spec['expr']!r}, time: {spec['eval_time']}",
                        [_fmt(*s) for s in expected], [_fmt(*s) for s in got])]
    return []


def _same_samples(a, b) -> bool:
    if len(a) != len(b):
        return False
    for (la, va), (lb, vb) in zip(a, b):
        if la != lb:
            return False
        if not (va == vb or (math.isnan(va) and math.isnan(vb)) or math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-12)):
            return False
    return True


def _fmt(labels: dict, value: float) -> str:
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}} {value:g}"


def _without(labels, key):
    return {k: v for k, v in labels.items() if k != key}


def run(paths: list[str]) -> tuple[bool, str]:
    """Run every file; returns (all passed, report text)."""
    lines, ok = [], True
    for path in paths:
        res = run_file(path)
        if res.error:
            ok = False
            lines.append(f"{path}: ERROR {res.error}")
            continue
        if res.failures:
            ok = False
            failed = len({f.test for f in res.failures})
            lines.append(f"{path}: FAILED ({failed} of {res.tests} test(s) failed, {len(res.failures)} failure(s))")
            lines.extend(str(f) for f in res.failures)
        else:
            lines.append(f"{path}: SUCCESS ({res.tests} test(s))")
    return ok, "\n".join(lines)
