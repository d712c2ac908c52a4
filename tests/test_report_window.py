"""Window figures from rollups equal the same figures computed from raw samples.

Property tests: random counters (with restarts, gaps and flat stretches) and gauges,
random windows and random rollup progress. Counter increases — total, per minute and per
span, read through both code paths — and gauge statistics must equal a direct computation
over the raw samples.

The one case rollups cannot show (a counter going down inside one minute to a non-zero
value at or above the one it had before that minute) is kept out by the generator:
a restart goes to 0, as real ones do.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbconsole.model import Sample
from qbconsole.report.window import MINUTE, Window
from qbconsole.report.windowql import WindowQL
from qbconsole.store import Store

T0 = 1_767_225_600_000
LOOKBACK = 300_000


@st.composite
def counter_points(draw):
    n = draw(st.integers(2, 120))
    t = T0 + draw(st.integers(0, 59_999))
    value = float(draw(st.integers(1, 1000)))
    points = []
    for _ in range(n):
        points.append((t, value))
        t += draw(st.sampled_from([1_000, 5_000, 10_000, 15_000, 30_000, 61_000, 400_000]))
        if draw(st.integers(0, 9)) == 0:
            value = 0.0  # a restart
        else:
            value += draw(st.sampled_from([0.0, 1.0, 2.5, 40.0])) if value > 0 else draw(st.sampled_from([1.0, 3.0]))
    return points


@st.composite
def scenario(draw):
    points = draw(counter_points())
    first, last = points[0][0], points[-1][0]
    start = draw(st.integers(first - 2 * MINUTE, last))
    end = draw(st.integers(start + 1, last + 2 * MINUTE))
    rollup_at = draw(st.one_of(st.none(), st.integers(first, last + 10 * MINUTE)))
    gauge = [(t + 7, float(draw(st.integers(-50, 50)))) for t, _ in points]
    return points, gauge, start, end, rollup_at


def direct_pairs(points, start, end):
    """(ts, increase) for every pair whose later sample is in (start, end]."""
    prev = None
    out = []
    for t, v in points:
        if t <= start:
            prev = (t, v) if t >= start - LOOKBACK else None
            continue
        if t > end:
            break
        if prev is not None:
            out.append((t, v - prev[1] if v >= prev[1] else v))
        else:
            out.append((t, 0.0))
        prev = (t, v)
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_counter_and_gauge_figures_equal_the_raw_computation(case):
    points, gauge, start, end, rollup_at = case
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "w.db", raw_retention_s=1e9)
        try:
            store.write([Sample("c_total", {}, t, v) for t, v in points] +
                        [Sample("g", {}, t, v) for t, v in gauge])
            if rollup_at is not None:
                store.rollup(rollup_at)
            [c] = store.series("c_total")
            [g] = store.series("g")
            pairs = direct_pairs(points, start, end)
            expected = math.fsum(v for _, v in pairs) if pairs else None

            total = Window(store, start, end, end).increase(c.id)  # the SQL path
            assert total == (None if expected is None else _approx(expected))

            w = Window(store, start, end, end)
            incs = w.increments(c.id)  # the per-minute path
            per_minute: dict[int, float] = {}
            for t, v in pairs:
                per_minute[t // MINUTE * MINUTE] = per_minute.get(t // MINUTE * MINUTE, 0.0) + v
            assert incs.minutes == sorted(per_minute)
            for minute, value in zip(incs.minutes, incs.values):
                assert value == _approx(per_minute[minute])
            assert w.increase(c.id) == (None if expected is None else _approx(expected))

            spans = w.spans()
            ql = WindowQL(w)
            results = ql.evaluate("increase(c_total[W])", spans)
            for (a, b), result in zip(spans, results):
                inside = [v for t, v in pairs if a < t <= b]
                if inside:
                    [(_, value)] = result.vector
                    assert value == _approx(math.fsum(inside))
                else:
                    assert result.vector == []

            values = [v for t, v in gauge if start < t <= end]
            st_ = Window(store, start, end, end).stats(g.id)
            if not values:
                assert st_ is None
            else:
                assert (st_.count, st_.min, st_.max) == (len(values), min(values), max(values))
                assert st_.sum == _approx(math.fsum(values))
                [(_, avg)] = ql.evaluate("avg_over_time(g[W])")[0].vector
                assert avg == _approx(math.fsum(values) / len(values))
        finally:
            store.close()


def _approx(x: float):
    import pytest

    return pytest.approx(x, rel=1e-9, abs=1e-9)


def test_spans_cover_the_window_without_slivers():
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "s.db")
        try:
            for start, end in ((T0, T0 + 3_600_000), (T0 + 12_345, T0 + 86_400_000 - 999), (T0, T0 + 7 * 86_400_000)):
                spans = Window(store, start, end, end).spans()
                assert spans[0][0] == start and spans[-1][1] == end
                assert all(a < b for a, b in spans) and all(x[1] == y[0] for x, y in zip(spans, spans[1:]))
                assert len(spans) <= 288 + 1
                assert all(b - a >= MINUTE // 2 for a, b in spans)
                assert all((b + 1) % (5 * MINUTE) == 0 for _, b in spans[:-1])
        finally:
            store.close()
