"""SLO compliance: every ``slos`` entry of the rules file over the report window.

actual: the SLO's expression with ``[W]`` = the window (see windowql); when it
gives several series (e.g. one per page) the worst one counts.

Error budget used:

* ratio objectives (unit ``ratio``): for "above" targets such as availability
  > 0.999 the budget is 1 − target and the use is (1 − actual) ÷ (1 − target);
  for "below" targets such as error rate < 0.01 the budget is the target and the
  use is actual ÷ target.
* threshold objectives (everything else, e.g. CPU < 70 %, p95 < 0.5 s): the
  expression is evaluated over 5-minute spans of the window (longer spans for
  windows over a day: at most 288); the budget allows 1 % of the time in spans
  that broke the target; use = time in broken spans ÷ (1 % of the time with data).

Capacity SLOs are met when, in some span, the expression reached the target while
every SLO in ``requires`` met its own target in that same span.
"""

from __future__ import annotations

import operator
from typing import Any

from qbconsole.report.figures import Figure, figure, missing
from qbconsole.report.window import Window
from qbconsole.report.windowql import Result, WindowQL, selector_names

ALLOWED_BREACH_SHARE = 0.01
SPAN_MINUTES = 5
MAX_SPANS = 288
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
UNITS = {"per_second": "count/s"}


def unit_of(slo: dict) -> str:
    unit = slo.get("unit", "")
    return UNITS.get(unit, unit) or "number"


def _worst(result: Result, op: str) -> tuple[float | None, dict[str, str] | None]:
    """The element furthest on the wrong side of the target (NaN elements skipped)."""
    if not result.vector:
        return None, None
    values = [(v, labels) for labels, v in result.vector if v == v]
    if not values:
        return None, None
    pick = max if op in ("<", "<=") else min
    v, labels = pick(values, key=lambda x: x[0])
    return v, labels


class SLOs:
    """Evaluates the SLOs of a config over a window; spans are evaluated when needed."""

    def __init__(self, w: Window, config) -> None:
        self.w = w
        self.ql = WindowQL(w)
        self.slos = {s["name"]: s for s in (getattr(config, "slos", None) or [])}
        self.spans = w.spans(min_minutes=SPAN_MINUTES, max_spans=MAX_SPANS)
        self._span_values: dict[str, list[float | None]] = {}

    def span_values(self, name: str) -> list[float | None]:
        found = self._span_values.get(name)
        if found is None:
            slo = self.slos[name]
            results = self.ql.evaluate(slo["expr"], self.spans)
            found = self._span_values[name] = [_worst(r, slo["op"])[0] for r in results]
        return found

    def span_met(self, name: str) -> list[bool | None]:
        slo = self.slos[name]
        cmp = OPS[slo["op"]]
        return [None if v is None else cmp(v, slo["target"]) for v in self.span_values(name)]

    def row(self, slo: dict, detail: bool) -> dict[str, Any]:
        unit, op, target = unit_of(slo), slo["op"], float(slo["target"])
        kind = slo.get("kind", "objective")
        result = self.ql.evaluate(slo["expr"])[0]
        value, labels = _worst(result, op)
        row: dict[str, Any] = {"name": slo["name"], "description": slo.get("description", ""), "kind": kind,
                               "op": op, "expr": slo["expr"], "target": figure(target, unit, f"{slo['name']} target")}
        if value is None:
            if result.error:
                why = f"cannot evaluate: {result.error}"
            elif result.vector:
                why = "the expression gave NaN (nothing to divide by, e.g. no requests)"
            else:
                names = ", ".join(selector_names(self.ql.parse(slo["expr"])))
                why = f"no samples of {names} in the window"
            row["actual"] = missing(unit, f"{slo['name']} actual", why)
            row["status"] = "no data"
        else:
            method = "the SLO expression over the report window"
            if labels and len(result.vector) > 1:
                method += f"; the worst of {len(result.vector)} series ({_labels(labels)})"
            if result.notes:
                method += "; " + "; ".join(result.notes)
            row["actual"] = figure(value, unit, f"{slo['name']} actual", method)
            row["status"] = "met" if OPS[op](value, target) else "missed"
        if kind == "capacity":
            self._capacity(slo, row)
        else:
            row["error_budget_used"], row["budget_definition"] = self._budget(slo, row["actual"])
        if detail and result.vector and len(result.vector) > 1:
            row["series"] = [{"labels": lb, "actual": figure(v, unit, _labels(lb))} for lb, v in result.vector]
        return row

    def _budget(self, slo: dict, actual: Figure) -> tuple[Figure, str]:
        op, target = slo["op"], float(slo["target"])
        label = "error budget used"
        if slo.get("unit") == "ratio":
            above = op in (">", ">=")
            allowed = 1 - target if above else target
            definition = ("(1 − actual) ÷ (1 − target)" if above else "actual ÷ target") + \
                f": the budget is {allowed:.6g} of the {'good' if above else 'bad'} share"
            if actual.value is None:
                return missing("ratio", label, actual.reason or "no actual value"), definition
            if allowed <= 0:
                return missing("ratio", label, "the target leaves no error budget"), definition
            bad = 1 - actual.value if above else actual.value
            return figure(max(0.0, bad) / allowed, "ratio", label, definition), definition
        minutes = self.w.span_minutes(SPAN_MINUTES, MAX_SPANS)
        definition = (f"time in {minutes}-minute spans that broke the target ÷ the allowed "
                      f"{ALLOWED_BREACH_SHARE:.0%} of the time with data")
        broken = covered = 0
        for (a, b), ok in zip(self.spans, self.span_met(slo["name"])):
            if ok is None:
                continue
            covered += b - a
            broken += 0 if ok else b - a
        if not covered:
            return missing("ratio", label, actual.reason or "no span with data"), definition
        share = broken / covered
        method = f"{share:.2%} of the time with data was in broken spans; {definition}"
        return figure(share / ALLOWED_BREACH_SHARE, "ratio", label, method), definition

    def _capacity(self, slo: dict, row: dict[str, Any]) -> None:
        requires = [r for r in slo.get("requires", []) if r in self.slos]
        row["requires"] = requires
        row["error_budget_used"] = missing("ratio", "error budget used", "a capacity target has no error budget")
        row["budget_definition"] = "not applicable (capacity target)"
        if row["actual"].value is None:
            return
        cmp, target = OPS[slo["op"]], float(slo["target"])
        values = self.span_values(slo["name"])
        met = {r: self.span_met(r) for r in requires}
        held = [all(met[r][i] for r in requires) for i in range(len(self.spans))]
        qualifying = [v for v, h in zip(values, held) if v is not None and h]
        best = (max if slo["op"] in (">", ">=") else min)(qualifying) if qualifying else None
        row["peak_within_requirements"] = figure(
            best, unit_of(slo), "best value while the required SLOs held",
            f"over {len(self.spans)} spans; requires {', '.join(requires) or 'nothing'}",
            reason=None if best is not None else "the required SLOs did not hold in any span with data")
        reached = [i for i, v in enumerate(values) if v is not None and cmp(v, target)]
        if best is not None and cmp(best, target):
            row["status"] = "met"
        else:
            row["status"] = "missed"
            if reached:
                broken = sorted({r for i in reached for r in requires if not met[r][i]})
                row["why"] = f"the target was reached only while {', '.join(broken)} did not hold"
            elif cmp(row["actual"].value, target):
                row["why"] = "the target was reached only in spans without data for the required SLOs"
            else:
                row["why"] = "the peak stayed below the target"

    def build(self, *, detail: bool = True) -> dict[str, Any]:
        rows = [self.row(s, detail) for s in self.slos.values()]
        counts = {k: sum(1 for r in rows if r["status"] == k) for k in ("met", "missed", "no data")}
        return {"summary": {k.replace(" ", "_"): figure(v, "count", f"SLOs {k}") for k, v in counts.items()},
                "objectives": rows}


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) or "{}"
