"""Chart series for the report: a value per span of the window (at most ~120 points).

A chart is ``{"label", "unit", "method", "points": [[span_end_ms, value or None], ...]}``;
the exports draw them (inline SVG) and the console can plot them.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from qbconsole.report import measures as m
from qbconsole.report.window import MINUTE, Window
from qbconsole.rules.promql.literals import parse_go_float
from qbconsole.store.queries import quantile_of_sorted

MAX_POINTS = 120


def _spans(w: Window) -> list[tuple[int, int]]:
    return w.spans(min_minutes=1, max_spans=MAX_POINTS)


def _chart(label: str, unit: str, method: str, points: list[list]) -> dict[str, Any]:
    """Points are stamped with their span's end (a span (a, b] cut at b = minute - 1 ends at the minute)."""
    stamped = [[ts + 1 if (ts + 1) % MINUTE == 0 else ts, v] for ts, v in points]
    return {"label": label, "unit": unit, "method": method, "points": stamped}


def _by_span(rows: list[tuple], spans: list[tuple[int, int]]) -> list[list[tuple]]:
    """Minute-keyed rows grouped by the span their minute falls in."""
    keys = [r[0] for r in rows]
    out = []
    for a, b in spans:
        lo = (a + 1) // MINUTE * MINUTE
        out.append(rows[bisect.bisect_left(keys, lo):bisect.bisect_right(keys, b)])
    return out


def gauge_chart(w: Window, name: str, unit: str, label: str, keep: m.Filter | None = None) -> dict[str, Any]:
    """Mean of the (pooled) samples in each span."""
    spans = _spans(w)
    count = [0] * len(spans)
    total = [0.0] * len(spans)
    for s in m.select(w, name, keep):
        for i, rows in enumerate(_by_span(w.minutes(s.id), spans)):
            count[i] += sum(r[1] for r in rows)
            total[i] += sum(r[2] for r in rows)
    points = [[b, total[i] / count[i] if count[i] else None] for i, (_, b) in enumerate(spans)]
    return _chart(label, unit, f"mean of {name} per span", points)


def rate_chart(w: Window, name: str, unit: str, label: str, keep: m.Filter | None = None) -> dict[str, Any]:
    """Summed counter increase in each span ÷ the span's length."""
    spans = _spans(w)
    per_minute = sorted(m.minute_increments(w, m.select(w, name, keep)).items())
    points = []
    for (a, b), rows in zip(spans, _by_span(per_minute, spans)):
        points.append([b, sum(v for _, v in rows) / ((b - a) / 1000) if rows else None])
    return _chart(label, unit, f"increase of {name} per span ÷ span length", points)


def quantile_chart(w: Window, base: str, q: float, unit: str, label: str,
                   keep: m.Filter | None = None) -> dict[str, Any]:
    """The q-quantile per span: exact from raw per-event samples, else by the histogram."""
    spans = _spans(w)
    raw = m.select(w, base, keep)
    values = sorted((p for s in raw for p in w.points(s.id)))
    if values:
        keys = [t for t, _ in values]
        points = []
        for a, b in spans:
            chunk = sorted(v for _, v in values[bisect.bisect_right(keys, a):bisect.bisect_right(keys, b)])
            points.append([b, quantile_of_sorted(chunk, q) if chunk else None])
        return _chart(label, unit, f"exact from raw samples of {base} per span", points)
    per_span: list[dict[float, float]] = [{} for _ in spans]
    for s in m.select(w, base + "_bucket", keep):
        le = parse_go_float(s.labels.get("le", ""))
        if le is None:
            continue
        for i, rows in enumerate(_by_span(w.increments(s.id), spans)):
            if rows:
                per_span[i][le] = per_span[i].get(le, 0.0) + sum(v for _, v in rows)
    points = []
    for (_, b), buckets in zip(spans, per_span):
        value = m.histogram_quantile(buckets, q) if buckets.get(math.inf) else math.nan
        points.append([b, value if math.isfinite(value) else None])
    return _chart(label, unit, f"{m.HISTOGRAM_METHOD} per span", points)
