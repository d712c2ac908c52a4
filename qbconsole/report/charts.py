"""Chart series for the report: a value per span of the window (at most ~120 points).

A chart is ``{"label", "unit", "method", "from", "to", "points": [[span_end_ms, value or None], ...]}``;
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


def _chart(w: Window, label: str, unit: str, method: str, points: list[list]) -> dict[str, Any]:
    """Points are stamped with their span's end (a span (a, b] cut at b = minute - 1 ends at the minute)."""
    stamped = [[ts + 1 if (ts + 1) % MINUTE == 0 else ts, v] for ts, v in points]
    return {"label": label, "unit": unit, "method": method, "from": w.start, "to": w.end, "points": stamped}


def _by_span(minutes: list[int], spans: list[tuple[int, int]]) -> list[slice]:
    """For each span, the slice of ``minutes`` (ascending minute starts) that falls in it."""
    return [slice(bisect.bisect_left(minutes, (a + 1) // MINUTE * MINUTE), bisect.bisect_right(minutes, b))
            for a, b in spans]


def gauge_chart(w: Window, name: str, unit: str, label: str, keep: m.Filter | None = None) -> dict[str, Any]:
    """Mean of the (pooled) samples in each span."""
    spans = _spans(w)
    count = [0] * len(spans)
    total = [0.0] * len(spans)
    for s in m.select(w, name, keep):
        mm = w.minutes(s.id)
        for i, part in enumerate(_by_span(mm.minutes, spans)):
            count[i] += sum(mm.counts[part])
            total[i] += math.fsum(mm.sums[part])
    points = [[b, total[i] / count[i] if count[i] else None] for i, (_, b) in enumerate(spans)]
    return _chart(w, label, unit, f"mean of {name} per span", points)


def rate_chart(w: Window, name: str, unit: str, label: str, keep: m.Filter | None = None) -> dict[str, Any]:
    """Summed counter increase in each span ÷ the span's length."""
    spans = _spans(w)
    per_minute = sorted(m.minute_increments(w, m.select(w, name, keep)).items())
    minutes = [t for t, _ in per_minute]
    values = [v for _, v in per_minute]
    points = []
    for (a, b), part in zip(spans, _by_span(minutes, spans)):
        chunk = values[part]
        points.append([b, math.fsum(chunk) / ((b - a) / 1000) if chunk else None])
    return _chart(w, label, unit, f"increase of {name} per span ÷ span length", points)


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
        return _chart(w, label, unit, f"exact from raw samples of {base} per span", points)
    per_span: list[dict[float, float]] = [{} for _ in spans]
    for s in m.select(w, base + "_bucket", keep):
        le = parse_go_float(s.labels.get("le", ""))
        if le is None:
            continue
        incs = w.increments(s.id)
        for i, part in enumerate(_by_span(incs.minutes, spans)):
            chunk = incs.values[part]
            if chunk:
                per_span[i][le] = per_span[i].get(le, 0.0) + math.fsum(chunk)
    points = []
    for (_, b), buckets in zip(spans, per_span):
        value = m.histogram_quantile(buckets, q) if buckets.get(math.inf) else math.nan
        points.append([b, value if math.isfinite(value) else None])
    return _chart(w, label, unit, f"{m.HISTOGRAM_METHOD} per span", points)
