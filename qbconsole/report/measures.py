"""Measurements several sections share: pooled gauges, counter totals, percentiles, charts.

Each returns :class:`Figure` objects (value, unit, method) or ``missing`` ones
whose reason names the metric that had no samples.
"""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from typing import Callable, Iterable

from qbconsole.report.figures import Figure, figure, missing
from qbconsole.report.window import MINUTE, Stats, Window, merge
from qbconsole.rules.promql.functions import bucket_quantile
from qbconsole.rules.promql.literals import parse_go_float
from qbconsole.store import SeriesInfo
from qbconsole.store.queries import quantile_of_sorted

HISTOGRAM_METHOD = "histogram_quantile over bucket increases (Prometheus method)"
Filter = Callable[[dict[str, str]], bool]


def no_samples(name: str) -> str:
    return f"no samples of {name} in the window"


def no_raw_samples(w: Window, name: str) -> str:
    """Why a figure needing raw samples is missing (they may be purged in old windows)."""
    if w.raw_incomplete:
        return f"no raw samples of {name} kept for the window (raw retention: older ones are purged)"
    return no_samples(name)


def count_text(n: float) -> str:
    return f"{n:,.0f}"


def select(w: Window, name: str, keep: Filter | None = None) -> list[SeriesInfo]:
    return [s for s in w.series(name) if keep is None or keep(s.labels)]


# ---- gauges ---------------------------------------------------------------------------
def pooled(w: Window, name: str, keep: Filter | None = None) -> Stats | None:
    """All samples of every matching series taken together."""
    return merge([w.stats(s.id) for s in select(w, name, keep)])


def gauge_figures(w: Window, name: str, unit: str, what: str, keep: Filter | None = None) -> dict[str, Figure]:
    """average and peak of a gauge over the window (samples of all its series pooled)."""
    st = pooled(w, name, keep)
    if st is None:
        why = no_samples(name)
        return {"average": missing(unit, f"{what} average", why), "peak": missing(unit, f"{what} peak", why)}
    n = f"{count_text(st.count)} samples of {name}"
    return {"average": figure(st.mean, unit, f"{what} average", f"mean of {n}"),
            "peak": figure(st.max, unit, f"{what} peak", f"highest of {n}")}


def share_above(w: Window, name: str, threshold: float, what: str, unit_text: str) -> Figure:
    """Share of samples above ``threshold`` (samples are evenly spaced: the share of time)."""
    above = total = 0
    for s in w.series(name):
        a, n = w.count_above(s.id, threshold)
        above, total = above + a, total + n
    label = f"{what}: share of time above {unit_text}"
    if not total:
        return missing("ratio", label, no_raw_samples(w, name))
    method = (f"{count_text(above)} of {count_text(total)} raw samples above {unit_text}"
              " (evenly spaced samples, so the share of time)")
    return figure(above / total, "ratio", label, method)


# ---- counters --------------------------------------------------------------------------
def counter_total(w: Window, name: str, keep: Filter | None = None) -> tuple[float | None, int]:
    """(sum of the increases of the matching series, series with samples)."""
    total, n = 0.0, 0
    for s in select(w, name, keep):
        inc = w.increase(s.id)
        if inc is not None:
            total += inc
            n += 1
    return (total if n else None), n


def counter_figure(w: Window, name: str, unit: str, label: str, keep: Filter | None = None) -> Figure:
    total, n = counter_total(w, name, keep)
    if total is None:
        return missing(unit, label, no_samples(name))
    method = f"increase of {name} over the window ({n} series, counter resets handled)"
    if any(s.id in w.approximate for s in select(w, name, keep)):
        method += "; resets in minutes older than the raw retention are approximated from rollups"
    return figure(total, unit, label, method)


def rate_figure(total: Figure, w: Window, unit: str, label: str) -> Figure:
    if total.value is None:
        return missing(unit, label, total.reason or "no data")
    return figure(total.value / w.seconds, unit, label, f"{total.label} ÷ {w.seconds:,.0f} s")


def minute_increments(w: Window, series: Iterable[SeriesInfo]) -> dict[int, float]:
    """minute -> summed increase of the series in that minute."""
    same: tuple[list[int], list[float]] | None = None  # series sharing the same minutes add up as columns
    out: dict[int, float] = defaultdict(float)
    for s in series:
        incs = w.increments(s.id)
        if same is None:
            same = (incs.minutes, list(incs.values))
        elif incs.minutes == same[0]:
            same = (same[0], list(map(operator.add, same[1], incs.values)))
        else:
            for minute, inc in zip(incs.minutes, incs.values):
                out[minute] += inc
    if same is not None:
        for minute, inc in zip(*same):
            out[minute] += inc
    return dict(out)


def peak_rate(w: Window, name: str, unit: str, label: str, keep: Filter | None = None) -> Figure:
    """The highest per-minute rate (increase in a minute ÷ 60 s) of the summed series."""
    per_minute = minute_increments(w, select(w, name, keep))
    whole = {m: v for m, v in per_minute.items() if m > w.start and m + MINUTE - 1 <= w.end}
    if not whole:
        return missing(unit, label, no_samples(name) if not per_minute else "no whole minute in the window")
    minute = max(whole, key=lambda m: whole[m])
    return figure(whole[minute] / 60, unit, label,
                  f"highest per-minute rate of {name} (minute starting {_hhmm(minute)} UTC)")


def _hhmm(ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms // 1000))


# ---- percentiles ----------------------------------------------------------------------------
def exact_quantiles(w: Window, name: str, qs: dict[str, float], unit: str, what: str,
                    keep: Filter | None = None) -> dict[str, Figure] | None:
    """Exact quantiles of every raw sample of the matching series; None when there are none."""
    values: list[float] = []
    for s in select(w, name, keep):
        values.extend(w.sorted_values(s.id))
    if not values:
        return None
    values.sort()  # sorted runs: a merge
    method = f"exact from {count_text(len(values))} raw samples of {name}"
    if w.raw_incomplete:
        method += " (raw samples older than the raw retention are purged)"
    return {key: figure(quantile_of_sorted(values, q), unit, f"{what} {key}", method) for key, q in qs.items()}


def bucket_increases(w: Window, base: str, keep: Filter | None = None) -> dict[float, float]:
    """le -> summed increase of the ``base_bucket`` series over the window."""
    out: dict[float, float] = defaultdict(float)
    for s in select(w, base + "_bucket", keep):
        le = parse_go_float(s.labels.get("le", ""))
        if le is None:
            continue
        inc = w.increase(s.id)
        if inc is not None:
            out[le] += inc
    return dict(out)


def histogram_quantile(buckets: dict[float, float], q: float) -> float:
    if not buckets:
        return math.nan
    return bucket_quantile(q, list(buckets.items()))


def histogram_figures(w: Window, base: str, qs: dict[str, float], unit: str, what: str,
                      keep: Filter | None = None) -> dict[str, Figure]:
    buckets = bucket_increases(w, base, keep)
    name = base + "_bucket"
    if not buckets:
        return {k: missing(unit, f"{what} {k}", no_samples(name)) for k in qs}
    if math.inf not in buckets:
        return {k: missing(unit, f"{what} {k}", f"{name} has no le=\"+Inf\" bucket") for k in qs}
    observations = buckets[math.inf]
    if observations <= 0:
        return {k: missing(unit, f"{what} {k}", f"no observations of {base} in the window") for k in qs}
    method = f"{HISTOGRAM_METHOD}, {count_text(observations)} observations"
    return {k: figure(histogram_quantile(buckets, q), unit, f"{what} {k}", method) for k, q in qs.items()}


def quantiles(w: Window, base: str, qs: dict[str, float], unit: str, what: str,
              keep: Filter | None = None) -> dict[str, Figure]:
    """Exact from raw per-event samples of ``base`` when there are any, else by its histogram."""
    return exact_quantiles(w, base, qs, unit, what, keep) or histogram_figures(w, base, qs, unit, what, keep)


def histogram_average(w: Window, base: str, unit: str, label: str, keep: Filter | None = None) -> Figure:
    """increase(_sum) ÷ increase(_count): the mean observation over the window."""
    total, _ = counter_total(w, base + "_sum", keep)
    count, _ = counter_total(w, base + "_count", keep)
    if total is None or count is None:
        return missing(unit, label, no_samples(base + ("_sum" if total is None else "_count")))
    if count == 0:
        return missing(unit, label, f"no observations of {base} in the window")
    return figure(total / count, unit, label,
                  f"increase of {base}_sum ÷ increase of {base}_count ({count_text(count)} observations)")
