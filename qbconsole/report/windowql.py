"""Evaluate PromQL with the report-window placeholder ``[W]`` (the ``slos`` of rules.yaml).

Range functions over ``[W]`` (``avg/sum/count/min/max/last/present_over_time``,
``quantile_over_time`` with a number, ``increase``, ``rate``) are computed exactly by
:class:`~qbconsole.report.window.Window` over ``(start, end]`` — from rollups where
exact — and the rest of the expression (aggregations, arithmetic, comparisons,
``histogram_quantile``) by the rules engine's evaluator on those results. So the
value of an SLO is the same figure the report's sections show.

Unlike Prometheus, ``increase`` is not extrapolated to the window's edges (the
samples in the window are all there is), and ``rate`` is that increase divided by
the window's length. Anything else over ``[W]`` is evaluated by the evaluator on
the raw samples (Prometheus 3 windows, left-open like the report's).

An expression can also be evaluated over consecutive spans of the window (e.g.
5-minute slices for error budgets), reusing what was read for the whole window.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from operator import itemgetter
from typing import NamedTuple

from qbconsole.report.window import MINUTE, Window
from qbconsole.rules.promql import (
    Aggregate, Binary, Call, Evaluator, MatrixSelector, NumberLiteral, Paren, PromQLEvalError,
    PromQLSyntaxError, StoreQuerier, Unary, VectorSelector, parse, to_promql,
)
from qbconsole.store.queries import quantile_of_sorted

WINDOW = "[W]"
_SENTINEL_MS = 9_876_543_210  # stands for [W] in the parsed tree
_PREFIX = "__report_window_"
GAUGE_FUNCS = frozenset({"avg_over_time", "sum_over_time", "count_over_time", "min_over_time",
                         "max_over_time", "present_over_time"})
FUNCS = GAUGE_FUNCS | {"increase", "rate", "quantile_over_time", "last_over_time"}

Span = tuple[int, int]  # (a, b]: samples with a < ts <= b


class Result(NamedTuple):
    """The instant vector an expression gave over one span, or why it gave none; ``notes``
    say where an absent labelled counter was counted as 0."""

    vector: list[tuple[dict[str, str], float]] | None
    error: str | None = None
    notes: tuple[str, ...] = ()


class _Job(NamedTuple):
    name: str
    func: str
    selector: VectorSelector
    q: float | None


def _unparen(node):
    while isinstance(node, Paren):
        node = node.expr
    return node


def selector_names(node) -> list[str]:
    """Metric names an expression reads (for "no samples of X" reasons)."""
    found: list[str] = []

    def visit(n) -> None:
        if isinstance(n, VectorSelector) and n.name and not n.name.startswith(_PREFIX):
            if n.name not in found:
                found.append(n.name)
        for f in dataclasses.fields(n) if dataclasses.is_dataclass(n) else ():
            child = getattr(n, f.name)
            for c in child if isinstance(child, tuple) else (child,):
                if dataclasses.is_dataclass(c) and not isinstance(c, type):
                    visit(c)
    visit(node)
    return found


class _Querier:
    """Synthetic series (the precomputed window functions) first, then the store."""

    def __init__(self, synthetic: dict[str, list], t: int, store_querier: StoreQuerier) -> None:
        self.synthetic, self.t, self.store_querier = synthetic, t, store_querier

    def select(self, name, matchers, start_ms, end_ms):
        if name in self.synthetic:
            return [(labels, [(self.t, value)]) for labels, value in self.synthetic[name]]
        return self.store_querier.select(name, matchers, start_ms, end_ms)


class WindowQL:
    """Evaluates ``[W]`` expressions over one :class:`Window` and spans of it."""

    def __init__(self, window: Window) -> None:
        self.w = window
        self._selected: dict[VectorSelector, list] = {}
        self._store_querier = StoreQuerier(window.store)

    # ---- evaluation -----------------------------------------------------------------
    def parse(self, expr: str):
        """The parsed expression; raises PromQLSyntaxError."""
        return parse(expr.replace(WINDOW, f"[{_SENTINEL_MS}ms]"))

    def evaluate(self, expr: str, spans: list[Span] | None = None) -> list[Result]:
        """The expression's vector over each span (default: the whole window, one result)."""
        spans = spans or [(self.w.start, self.w.end)]
        try:
            tree = self.parse(expr)
        except PromQLSyntaxError as err:
            return [Result(None, f"syntax error: {err}")] * len(spans)
        jobs: list[_Job] = []
        rewritten = self._rewrite(tree, jobs)
        bare = _unparen(rewritten)
        notes: list[str] = []
        per_job = {job.name: self._job_values(job, spans, notes) for job in jobs}
        out = []
        for i, (a, b) in enumerate(spans):
            synthetic = {name: [(labels, values[i]) for labels, values in series if values[i] is not None]
                         for name, series in per_job.items()}
            if isinstance(bare, VectorSelector) and bare.name in synthetic:
                out.append(Result(synthetic[bare.name], notes=tuple(notes)))
                continue
            node = self._with_range(rewritten, b - a)
            try:
                value = Evaluator(_Querier(synthetic, b, self._store_querier),
                                  prometheus_major=3).evaluate(node, b)
            except PromQLEvalError as err:
                out.append(Result(None, str(err)))
                continue
            if isinstance(value, list):
                out.append(Result([(dict(s.labels), s.value) for s in value], notes=tuple(notes)))
            elif isinstance(value.value, (int, float)):
                out.append(Result([({}, float(value.value))], notes=tuple(notes)))
            else:
                out.append(Result(None, "the expression gives a string"))
        return out

    def _rewrite(self, node, jobs: list[_Job]):
        if isinstance(node, Call):
            last = _unparen(node.args[-1]) if node.args else None
            if (node.func in FUNCS and isinstance(last, MatrixSelector) and last.range_ms == _SENTINEL_MS
                    and last.vector.offset_ms == 0):
                q = None
                if node.func == "quantile_over_time":
                    first = _unparen(node.args[0])
                    q = first.value if isinstance(first, NumberLiteral) else None
                if node.func != "quantile_over_time" or q is not None:
                    job = _Job(f"{_PREFIX}{len(jobs)}", node.func, last.vector, q)
                    jobs.append(job)
                    return VectorSelector(job.name)
            return dataclasses.replace(node, args=tuple(self._rewrite(a, jobs) for a in node.args))
        if isinstance(node, Aggregate):
            return dataclasses.replace(node, expr=self._rewrite(node.expr, jobs),
                                       param=None if node.param is None else self._rewrite(node.param, jobs))
        if isinstance(node, Binary):
            return dataclasses.replace(node, lhs=self._rewrite(node.lhs, jobs), rhs=self._rewrite(node.rhs, jobs))
        if isinstance(node, (Unary, Paren)):
            return dataclasses.replace(node, expr=self._rewrite(node.expr, jobs))
        return node

    def _with_range(self, node, range_ms: int):
        """Give the [W] selectors left to the evaluator the span's length."""
        if isinstance(node, MatrixSelector):
            return dataclasses.replace(node, range_ms=range_ms) if node.range_ms == _SENTINEL_MS else node
        if isinstance(node, Call):
            return dataclasses.replace(node, args=tuple(self._with_range(a, range_ms) for a in node.args))
        if isinstance(node, Aggregate):
            return dataclasses.replace(node, expr=self._with_range(node.expr, range_ms),
                                       param=None if node.param is None else self._with_range(node.param, range_ms))
        if isinstance(node, Binary):
            return dataclasses.replace(node, lhs=self._with_range(node.lhs, range_ms),
                                       rhs=self._with_range(node.rhs, range_ms))
        if isinstance(node, (Unary, Paren)):
            return dataclasses.replace(node, expr=self._with_range(node.expr, range_ms))
        return node

    # ---- the window functions -----------------------------------------------------------
    def select(self, vs: VectorSelector) -> list:
        """Series (SeriesInfo) the selector matches, with their labels for the result."""
        found = self._selected.get(vs)
        if found is None:
            by_name = [m for m in vs.matchers if m.name == "__name__"]
            names = [vs.name] if vs.name else [n for n in self.w.names()
                                               if all(m.matches(n) for m in by_name)]
            found = []
            for name in names:
                for info in self.w.series(name):
                    labels = {k: v for k, v in info.labels.items() if v != ""}
                    full = {**labels, "__name__": name}
                    if all(m.matches_labels(full) for m in vs.matchers):
                        found.append((info, labels))
            self._selected[vs] = found
        return found

    def _job_values(self, job: _Job, spans: list[Span],
                    notes: list[str]) -> list[tuple[dict[str, str], list[float | None]]]:
        """For each series the job selects: its labels and its value in each span (None: no data).

        A labelled counter appears on its first increment, so where ``increase``/``rate`` of
        ``name{matchers}`` finds no series but ``name`` has samples in a span, the span gets
        one unlabelled 0 (no 5xx responses is an error rate of 0, not "no data")."""
        out = []
        for info, labels in self.select(job.selector):
            if job.func == "last_over_time":
                labels = {**labels, "__name__": info.name}
            if spans == [(self.w.start, self.w.end)]:
                values = [self._whole(job, info.id)]
            else:
                values = self._by_span(job, info.id, spans)
            out.append((labels, values))
        vs = job.selector
        if job.func in ("increase", "rate") and vs.name and vs.matchers:
            empty = [i for i in range(len(spans)) if all(values[i] is None for _, values in out)]
            if empty:
                everything = self._job_values(job._replace(selector=VectorSelector(vs.name)), spans, [])
                zeros: list[float | None] = [None] * len(spans)
                for i in empty:
                    if any(values[i] is not None for _, values in everything):
                        zeros[i] = 0.0
                if any(z is not None for z in zeros):
                    out.append(({}, zeros))
                    notes.append(f"no {to_promql(vs)} series: counted as 0 (a labelled counter appears "
                                 "on its first increment)")
        return out

    def _whole(self, job: _Job, sid: int) -> float | None:
        func, w = job.func, self.w
        if func in GAUGE_FUNCS:
            st = w.stats(sid)
            return None if st is None else _gauge(func, st.count, st.sum, st.min, st.max)
        if func in ("increase", "rate"):
            inc = w.increase(sid)
            return inc if inc is None or func == "increase" else inc / w.seconds
        if func == "quantile_over_time":
            values = w.sorted_values(sid)
            return quantile_of_sorted(values, job.q) if values else None
        row = w.last_value(sid, w.start, w.end)
        return None if row is None else row[1]

    def _by_span(self, job: _Job, sid: int, spans: list[Span]) -> list[float | None]:
        func, w = job.func, self.w
        if func == "last_over_time":
            return [None if (row := w.last_value(sid, a, b)) is None else row[1] for a, b in spans]
        if func == "quantile_over_time":
            points = w.points(sid)
            keys, values = list(map(itemgetter(0), points)), list(map(itemgetter(1), points))
            parts = [slice(bisect.bisect_right(keys, a), bisect.bisect_right(keys, b)) for a, b in spans]
            return [quantile_of_sorted(sorted(values[p]), job.q) if p.start < p.stop else None for p in parts]
        if func in GAUGE_FUNCS:
            mm = w.minutes(sid)
            out = []
            for p in _minute_slices(mm.minutes, spans):
                out.append(_gauge(func, sum(mm.counts[p]), math.fsum(mm.sums[p]), min(mm.mins[p]),
                                  max(mm.maxs[p])) if p.start < p.stop else None)
            return out
        incs = w.increments(sid)
        out = []
        for (a, b), p in zip(spans, _minute_slices(incs.minutes, spans)):
            if p.start >= p.stop:
                out.append(None)
            else:
                inc = math.fsum(incs.values[p])
                out.append(inc if func == "increase" else inc / ((b - a) / 1000))
        return out


def _minute_slices(minutes: list[int], spans: list[Span]) -> list[slice]:
    """For each span (a, b], the slice of ascending minute starts whose samples fall in it."""
    return [slice(bisect.bisect_left(minutes, (a + 1) // MINUTE * MINUTE), bisect.bisect_right(minutes, b))
            for a, b in spans]


def _gauge(func: str, count: int, total: float, low: float, high: float) -> float:
    if func == "avg_over_time":
        return total / count
    if func == "sum_over_time":
        return total
    if func == "count_over_time":
        return float(count)
    if func == "min_over_time":
        return low
    if func == "max_over_time":
        return high
    return 1.0  # present_over_time
