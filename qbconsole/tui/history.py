"""A figure's history over a chosen window, for its chart screen (read in a thread worker).

Windows up to ``RAW_UP_TO_MS`` read raw samples; longer ones read the store's
per-minute rollups (count, sum, min, max), with the raw samples of the minutes
not rolled up yet appended so the right edge is current. Either way a chart
gets at most ``MAX_POINTS`` points per line: longer histories are averaged
into wider bins. The source is the store or, with a Prometheus datasource, a
``PrometheusReader`` (whose rollups Prometheus computes per minute).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from qbconsole.store import SeriesInfo
from qbconsole.tui.groups import BY_LABEL, BYTES_RATE, RATE, WORST, MetricSpec
from qbconsole.tui.metricdata import (
    COUNTER_LOOKBACK_MS, LOOPBACK_NICS, MINUTE_MS, Points, SeriesSource, finite, per_minute, summed_rate,
)

HOUR_MS = 60 * MINUTE_MS
WINDOWS: tuple[tuple[str, int], ...] = (
    ("15m", 15 * MINUTE_MS), ("1h", HOUR_MS), ("6h", 6 * HOUR_MS), ("24h", 24 * HOUR_MS), ("7d", 7 * 24 * HOUR_MS),
)
"""The window picker's choices: label and length."""
RAW_UP_TO_MS = HOUR_MS
"""Windows up to this long read raw samples; longer ones read per-minute rollups."""
MAX_POINTS = 360
MAX_LINES = 6
"""At most this many series are drawn (the worst first); the rest are counted in the summary."""

Minute = tuple[int, int, float, float, float]
"""(minute start ms, count, sum, min, max), as ``Store.rollups`` returns."""


@dataclass(frozen=True)
class Line:
    label: str
    points: Points


@dataclass(frozen=True)
class History:
    """What the chart screen draws: lines over ``[end_ms - window_ms, end_ms]``."""

    key: str
    window_ms: int
    end_ms: int
    source: str
    """"raw samples" or "per-minute rollups"."""
    lines: tuple[Line, ...]
    hidden: int = 0
    """Series left out beyond MAX_LINES."""

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)


def bin_width(span_ms: int, step_ms: int, max_points: int = MAX_POINTS) -> int:
    """The bin (a multiple of ``step_ms``) that leaves at most ``max_points`` over ``span_ms``."""
    steps = max(1, -(-span_ms // step_ms))
    return step_ms * max(1, -(-steps // max_points))


def downsample(points: Points, width_ms: int) -> Points:
    """Average the points per ``width_ms`` bin (stamped at the bin's last point); unchanged if already sparse."""
    if len(points) < 2 or width_ms <= 0:
        return points
    out: list[tuple[int, float]] = []
    key = None
    total = 0.0
    count = 0
    last_ts = 0
    for ts, value in points:
        k = ts // width_ms
        if key is not None and k != key:
            out.append((last_ts, total / count))
            total, count = 0.0, 0
        key, last_ts = k, ts
        total += value
        count += 1
    out.append((last_ts, total / count))
    return tuple(out)


def minutes_of_raw(points: Iterable[tuple[int, float]]) -> list[Minute]:
    """Raw samples folded into per-minute (minute, count, sum, min, max), as the store's rollups are."""
    out: dict[int, list[float]] = {}
    for ts, value in finite(points):
        out.setdefault(ts // MINUTE_MS * MINUTE_MS, []).append(value)
    return [(m, len(v), sum(v), min(v), max(v)) for m, v in sorted(out.items())]


def gauge_minutes(minutes: Sequence[Minute]) -> Points:
    """Per-minute averages, stamped at the minute's start (the current minute's is then not in the future)."""
    return tuple((m, total / count) for m, count, total, _lo, _hi in minutes if count)


def counter_minutes(minutes: Sequence[Minute]) -> Points:
    """A counter's increase per minute from per-minute maxima (a lower maximum is a reset),
    spread evenly over minutes without samples; stamped at the minute's end."""
    out = []
    for (m0, *_rest0, hi0), (m1, *_rest1, hi1) in zip(minutes, minutes[1:]):
        gap = max(1, (m1 - m0) // MINUTE_MS)
        out.append((m1 + MINUTE_MS, (hi1 - hi0 if hi1 >= hi0 else hi1) / gap))
    return tuple(out)


def _minutes(store: SeriesSource, series: SeriesInfo, start: int, end: int) -> list[Minute]:
    """Rollups of the series in [start, end], then its raw samples after the last rolled-up minute."""
    rolled = store.rollups(series.id, start, end)
    tail_from = rolled[-1][0] + MINUTE_MS if rolled else start
    raw = store.range(series.id, tail_from, end) if tail_from <= end else []
    return [*rolled, *minutes_of_raw(raw)]


def _sum_lines(lines: Iterable[Points]) -> Points:
    total: dict[int, float] = {}
    for points in lines:
        for ts, value in points:
            total[ts] = total.get(ts, 0.0) + value
    return tuple(sorted(total.items()))


def _ranked(lines: list[Line], hidden: int = 0) -> tuple[tuple[Line, ...], int]:
    """The lines with the highest latest values first, at most MAX_LINES (and how many were left out)."""
    lines.sort(key=lambda line: -(line.points[-1][1] if line.points else float("-inf")))
    return tuple(lines[:MAX_LINES]), hidden + max(0, len(lines) - MAX_LINES)


def _raw_lines(store: SeriesSource, spec: MetricSpec, start: int, end: int) -> tuple[tuple[Line, ...], int]:
    if spec.how == BYTES_RATE:
        lines = [Line("↓ recv", summed_rate(store, spec.name, start, end).points)]
        if spec.pair:
            lines.append(Line("↑ sent", summed_rate(store, spec.pair, start, end).points))
        return tuple(lines), 0
    if spec.how in (RATE, BY_LABEL):
        selected = store.select(spec.name, start - COUNTER_LOOKBACK_MS, end)
        if spec.how == RATE:
            return (Line(spec.title, per_minute((p for _, p in selected), start, end)),), 0
        values = sorted({s.labels.get(spec.label, "") for s, _ in selected})
        return _ranked([Line(v or "(none)", per_minute((p for s, p in selected if s.labels.get(spec.label, "") == v),
                                                       start, end)) for v in values])
    selected = store.select(spec.name, start, end)
    if spec.how == WORST:
        return _ranked([Line(s.labels.get(spec.label, "") or "(none)", finite(p)) for s, p in selected])
    return tuple(Line(spec.title, finite(p)) for _, p in selected[:1]), 0


def _rollup_lines(store: SeriesSource, spec: MetricSpec, start: int, end: int) -> tuple[tuple[Line, ...], int]:
    if spec.how == BYTES_RATE:
        lines = []
        for label, name in (("↓ recv", spec.name), ("↑ sent", spec.pair)):
            if not name:
                continue
            per_nic = [counter_minutes(_minutes(store, s, start - MINUTE_MS, end)) for s in store.series(name)
                       if s.labels.get("nic") not in LOOPBACK_NICS]
            lines.append(Line(label, tuple((ts, v / 60.0) for ts, v in _sum_lines(per_nic) if start < ts <= end)))
        return tuple(lines), 0
    series = store.series(spec.name)
    if spec.how in (RATE, BY_LABEL):
        # whole minutes only: the current one's increase so far is not a rate per minute
        counted = [(s, tuple(p for p in counter_minutes(_minutes(store, s, start - MINUTE_MS, end))
                             if start < p[0] <= end)) for s in series]
        if spec.how == RATE:
            return (Line(spec.title, _sum_lines(p for _, p in counted)),), 0
        by_value: dict[str, list[Points]] = {}
        for s, points in counted:
            by_value.setdefault(s.labels.get(spec.label, ""), []).append(points)
        return _ranked([Line(v or "(none)", _sum_lines(p)) for v, p in by_value.items()])
    if spec.how == WORST:
        return _ranked([Line(s.labels.get(spec.label, "") or "(none)", gauge_minutes(_minutes(store, s, start, end)))
                        for s in series])
    return tuple(Line(spec.title, gauge_minutes(_minutes(store, s, start, end))) for s in series[:1]), 0


def read_history(store: SeriesSource, spec: MetricSpec, window_ms: int, now_ms: int) -> History:
    """The figure's lines over the last ``window_ms`` (raw or rollups, see the module docstring)."""
    start = now_ms - window_ms
    if window_ms <= RAW_UP_TO_MS:
        lines, hidden = _raw_lines(store, spec, start, now_ms)
        source = "raw samples"
    else:
        lines, hidden = _rollup_lines(store, spec, start, now_ms)
        source = "per-minute rollups"
    width = bin_width(window_ms, MINUTE_MS if window_ms > RAW_UP_TO_MS else 1_000)
    lines = tuple(Line(line.label, downsample(line.points, width)) for line in lines)
    return History(spec.key, window_ms, now_ms, source, lines, hidden)
