"""The recent window of every Overview figure, read from the store (in the poll worker's thread).

``read_windows`` reads each figure of ``groups.GROUPS`` over the last minutes in one
query per metric name (``select``) and reduces it as its spec says: one gauge, the
worst of several, or counters turned into events per minute. The source is a
:class:`SeriesSource`: the store, or with a Prometheus datasource a
``qbconsole.datasource.PrometheusReader`` (the same read methods), so the figures
are the same on both backends.

The console polls every second; given a ``tui.windowmemo.WindowMemo`` (one per poll worker),
``read_windows`` derives each series only from its new points and reuses what it
derived from the rest at the previous poll, so a poll's work does not grow with how
much of the window is filled. The figures are the same as without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import TYPE_CHECKING, Iterable, Mapping, Protocol, Sequence

from qbconsole.store import SeriesInfo
from qbconsole.tui.groups import BY_LABEL, BYTES_RATE, GAUGE, GROUPS, RATE, WORST, MetricSpec, part_key

if TYPE_CHECKING:  # the memo builds on this module's functions; it is only passed in here
    from qbconsole.tui.windowmemo import WindowMemo

WINDOW_MS = 15 * 60 * 1000
"""How much history the Overview shows."""

MINUTE_MS = 60_000
COUNTER_LOOKBACK_MS = 5 * MINUTE_MS
"""Counters are read from this much earlier, so the first minute of the window has a base value."""

RATE_BUCKET_MS = 10_000
"""Byte counter rates are summed across NICs in buckets this wide (a collector tick's spread)."""

LOOPBACK_NICS = frozenset({"lo", "lo0"})
"""Loopback traffic is local chatter, not what leaves the machine; it is left out of the network figure."""

PAIR = "pair"
"""``part_key(key, PAIR)`` holds the second metric of a paired figure (network: bytes sent)."""

Points = tuple[tuple[int, float], ...]


class SeriesSource(Protocol):
    """Where figures are read from: the Store's read methods (a Store or a PrometheusReader)."""

    def select(self, name: str, start: int, end: int, labels: Mapping[str, str] | None = None
               ) -> list[tuple[SeriesInfo, list[tuple[int, float]]]]: ...

    def series(self, name: str | None = None, labels: Mapping[str, str] | None = None) -> list[SeriesInfo]: ...

    def range(self, series_id: int, start: int, end: int) -> list[tuple[int, float]]: ...

    def rollups(self, series_id: int, start: int, end: int) -> list[tuple[int, int, float, float, float]]: ...


@dataclass(frozen=True)
class MetricWindow:
    """The recent history of one figure: ``points`` are (ts ms, value), oldest first."""

    name: str
    points: Points = ()
    label: str = ""
    """Which series, when the metric has several (e.g. the mount of the disk figure)."""

    @property
    def latest(self) -> tuple[int, float] | None:
        return self.points[-1] if self.points else None

    @cached_property
    def average(self) -> float | None:
        """The mean of the values (the status judgement and the tile's detail line both ask;
        computed once per window, with a C-level pass)."""
        points = self.points
        return sum(map(_value, points)) / len(points) if points else None


_ts, _value = itemgetter(0), itemgetter(1)


def finite(points: Iterable[tuple[int, float]]) -> Points:
    """Drop NaNs (staleness markers and NaN samples): they are gaps, not values; times as int,
    values as float. Every poll passes whole windows through here, so the usual case (no NaN,
    already int and float, as the store gives them) is checked and kept with C-level passes
    instead of a tuple rebuilt per point."""
    pts = points if isinstance(points, (list, tuple)) else list(points)
    if any(map(math.isnan, map(_value, pts))):
        pts = [p for p in pts if not math.isnan(p[1])]
    if set(map(type, map(_ts, pts))) <= {int} and set(map(type, map(_value, pts))) <= {float}:
        return tuple(pts)
    return tuple((int(ts), float(v)) for ts, v in pts)


def increases(points: Sequence[tuple[int, float]]) -> Points:
    """Counter increases between consecutive samples, stamped at the later one.

    A decrease is a counter reset: the new value is the increase since the reset,
    as Prometheus's ``rate`` assumes.
    """
    out = []
    for (t0, v0), (t1, v1) in zip(points, points[1:]):
        if t1 > t0:
            out.append((t1, v1 - v0 if v1 >= v0 else v1))
    return tuple(out)


def counter_rates(points: Sequence[tuple[int, float]]) -> Points:
    """Per-second rates between consecutive counter samples, stamped at the later sample (resets as above)."""
    rates = []
    for (t0, _), (t1, increase) in zip(points, increases(points)):
        rates.append((t1, increase * 1000.0 / (t1 - t0)))
    return tuple(rates)


def per_minute(series_points: Iterable[Sequence[tuple[int, float]]], start: int, now_ms: int) -> Points:
    """Counter increases of all the series summed per whole minute (events per minute).

    Each point is stamped at the end of its minute; only complete minutes after ``start``
    are kept, and a minute with samples but no increase is 0 (not a gap).
    """
    buckets: dict[int, float] = {}
    first = last = None
    for points in series_points:
        points = finite(points)
        if len(points) < 2:
            continue
        for ts, inc in increases(points):
            key = (ts - 1) // MINUTE_MS  # a sample on a minute mark closes the minute before it
            buckets[key] = buckets.get(key, 0.0) + inc
        lo, hi = (points[1][0] - 1) // MINUTE_MS, (points[-1][0] - 1) // MINUTE_MS
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
    if first is None:
        return ()
    first = max(first, start // MINUTE_MS)
    last = min(last, now_ms // MINUTE_MS - 1)
    return tuple(((k + 1) * MINUTE_MS, buckets.get(k, 0.0)) for k in range(first, last + 1))


def summed_rate(store: SeriesSource, name: str, start: int, end: int,
                memo: WindowMemo | None = None) -> MetricWindow:
    """The total per-second rate of a byte counter over all non-loopback NICs.

    NICs are sampled at slightly different instants, so per-NIC rates are put in
    ``RATE_BUCKET_MS`` buckets (averaged per NIC) and the buckets summed. With ``memo``
    (the poll's), each NIC's rates and buckets are derived only where they changed.
    """
    selected = store.select(name, start, end)
    if memo is not None:
        return MetricWindow(name, memo.summed_rate(("bytes", name), selected))
    return MetricWindow(name, summed_rates(selected))


def summed_rates(selected: Iterable[tuple[SeriesInfo, Sequence[tuple[int, float]]]]) -> Points:
    """``summed_rate``'s points from the selected series, each derived afresh (also the memo's
    fallback for input it cannot extend)."""
    buckets: dict[int, float] = {}
    stamps: dict[int, int] = {}
    for series, points in selected:
        if series.labels.get("nic") in LOOPBACK_NICS:
            continue
        per_bucket: dict[int, list[float]] = {}
        for ts, rate in counter_rates(finite(points)):
            key = ts // RATE_BUCKET_MS
            per_bucket.setdefault(key, []).append(rate)
            stamps[key] = max(stamps.get(key, ts), ts)
        for key, rates in per_bucket.items():
            buckets[key] = buckets.get(key, 0.0) + sum(rates) / len(rates)
    return tuple((stamps[k], buckets[k]) for k in sorted(buckets))


def worst(candidates: Iterable[MetricWindow], low_is_bad: bool = False) -> MetricWindow | None:
    """The window whose latest value is the worst (highest, or lowest when ``low_is_bad``)."""
    best: MetricWindow | None = None
    for window in candidates:
        if window.latest is None:
            continue
        if best is None or (window.latest[1] < best.latest[1] if low_is_bad  # type: ignore[index]
                            else window.latest[1] > best.latest[1]):  # type: ignore[index]
            best = window
    return best


def read_spec(store: SeriesSource, spec: MetricSpec, now_ms: int, window_ms: int = WINDOW_MS,
              memo: WindowMemo | None = None) -> dict[str, MetricWindow]:
    """The windows of one figure: ``{spec.key: ...}`` plus its parts (BY_LABEL values, a pair)."""
    start = now_ms - window_ms
    if spec.how == BYTES_RATE:
        out = {spec.key: summed_rate(store, spec.name, start, now_ms, memo)}
        if spec.pair:
            out[part_key(spec.key, PAIR)] = summed_rate(store, spec.pair, start, now_ms, memo)
        return out
    if spec.how in (RATE, BY_LABEL):
        selected = store.select(spec.name, start - COUNTER_LOOKBACK_MS, now_ms)
        if memo is not None:
            return memo.counted(spec, selected, start, now_ms)
        out = {spec.key: MetricWindow(spec.name, per_minute((p for _, p in selected), start, now_ms))}
        if spec.how == BY_LABEL:
            values = sorted({s.labels.get(spec.label, "") for s, _ in selected})
            for value in values:
                mine = (p for s, p in selected if s.labels.get(spec.label, "") == value)
                out[part_key(spec.key, value)] = MetricWindow(spec.name, per_minute(mine, start, now_ms), value)
        return out
    selected = store.select(spec.name, start, now_ms)

    def fin(series: SeriesInfo, points: list[tuple[int, float]]) -> Points:
        return finite(points) if memo is None else memo.finite(("gauge", spec.key, series.id), points)

    if spec.how == WORST:
        windows = (MetricWindow(spec.name, fin(s, p), s.labels.get(spec.label, "")) for s, p in selected)
        return {spec.key: worst(windows) or MetricWindow(spec.name)}
    assert spec.how == GAUGE, spec.how
    for series, points in selected:
        return {spec.key: MetricWindow(spec.name, fin(series, points))}
    return {spec.key: MetricWindow(spec.name)}


def read_windows(store: SeriesSource, now_ms: int, window_ms: int = WINDOW_MS,
                 specs: Iterable[MetricSpec] | None = None,
                 memo: WindowMemo | None = None) -> dict[str, MetricWindow]:
    """The windows of every Overview figure (or of ``specs``), keyed by spec key and part key.

    ``memo`` (the poll worker's ``WindowMemo``) makes a poll derive only the points new since the
    previous one; the windows are the same. It then keeps only the figures read here."""
    out: dict[str, MetricWindow] = {}
    if memo is not None:
        memo.begin()
    for spec in specs if specs is not None else (m for g in GROUPS for m in g.metrics):
        out.update(read_spec(store, spec, now_ms, window_ms, memo))
    if memo is not None:
        memo.end()
    return out
