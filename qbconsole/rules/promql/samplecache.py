"""An incremental, bounded cache of recent samples for rule evaluation (what Prometheus's
head block gives its rule evaluation): a tick reads only what is new.

Per metric name the cache holds every series' samples in a trusted span (lo, hi]. A
request for (start, end] is answered from the span after extending it:

* forward: (hi, end] is read in one query; samples up to the *edge* join the span,
  newer ones are returned but not kept (a sample written later may still land before
  them, e.g. a recording rule's result at the evaluation time);
* backward (a window wider than before): (start, lo] is read and prepended.

Every span lies within (floor, edge], and both are registered with the store's writer
connection (``queries.watch_windows``), which from then on logs the key of any sample
written at or below the edge, or deleted above the floor: late and out-of-order
samples, replacements, purges. A sync (the first request after :meth:`SampleCache.new_tick`,
and any request ending beyond the edge) reads that log and re-reads just those keys.
A commit by another connection (another process writing to the store) changes
``PRAGMA data_version`` and empties the cache, as does a watcher the store forgot:
correctness never rests on the order in which samples arrive.

Bounded: a name keeps only as much history as the widest window asked of it during the
last ``keep_ms`` of evaluation time; names not asked for in that time are dropped, and
so are series with no sample left in their span.

Compact: a series' samples are held as two parallel arrays, times (int64) and values
(float64), 16 bytes a sample instead of ~130 for a list of (ts, value) tuples (the demo's
1-hour windows keep an hour of every series they read). Only its newest ``TAIL_MS`` are
also kept as the (ts, value) tuples answers are made of, so that the usual short windows
cost a list slice as before; older parts of a window are built from the arrays when
asked for. What the tail holds is bounded in time, so wide windows grow the cache by the
arrays alone. Values are the decoded floats the store's queries give, NaN and the
staleness marker included; a float64 array keeps their bit patterns unchanged.
"""

from __future__ import annotations

import itertools
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from operator import itemgetter
from typing import Callable

from qbconsole.store import queries
from qbconsole.store.records import SeriesInfo
from qbconsole.store.writer import StoreClosed

KEEP_MS = 10 * 60_000  # evaluation time a window (or a name) is kept without being asked for
FORGET_MS = 30 * 60_000  # wall time after which the store drops a watcher that stopped syncing
REBUILD_OVER = 32  # more changed samples than this in one series: rebuild its arrays in one go
MAX_DEPTHS = 32  # window depths remembered per name (the deepest ones count)
TAIL_MS = 5 * 60_000  # a series' newest samples kept as ready tuples too (rate(x[5m]), lookback)

_watchers = itertools.count(1)
_ts = itemgetter(0)

Points = list[tuple[int, float]]


class _Series:
    """One series' cached samples: ``times`` ascending (int64 array) and their ``values``
    (float64 array) side by side, 16 bytes a sample; and ``tail``, the same as (ts, value)
    tuples for the last len(tail) samples (those within TAIL_MS of the newest, or fewer)."""

    __slots__ = ("info", "labels", "times", "values", "tail")

    def __init__(self, info: SeriesInfo) -> None:
        self.info = info
        self.labels = {k: v for k, v in info.labels.items() if v != ""}
        self.labels["__name__"] = info.name
        self.times: array[int] = array("q")
        self.values: array[float] = array("d")
        self.tail: Points = []

    def window(self, start: int, end: int) -> Points:
        """(ts, value) for start < ts <= end, as a new list: a slice of the tail, and tuples
        built from the arrays for what lies before it."""
        times = self.times
        i, j = bisect_right(times, start), bisect_right(times, end)
        if i >= j:
            return []
        first = len(times) - len(self.tail)  # index of the tail's first sample
        if i >= first:
            return self.tail[i - first:j - first]
        built = list(zip(times[i:min(j, first)], self.values[i:min(j, first)]))
        return built + self.tail[:j - first] if j > first else built

    def put(self, ts: int, value: float | None) -> None:
        """Set (or with None remove) the sample at ts."""
        times, tail = self.times, self.tail
        i = bisect_left(times, ts)
        first = len(times) - len(tail)
        if i < len(times) and times[i] == ts:
            if value is None:
                del times[i], self.values[i]
                if i >= first:
                    del tail[i - first]
            else:
                self.values[i] = value
                if i >= first:
                    tail[i - first] = (ts, value)
        elif value is not None:
            times.insert(i, ts)
            self.values.insert(i, value)
            if i >= first:  # the samples from `first` on are still the last ones
                tail.insert(i - first, (ts, value))
                self._cut_tail()

    def merge(self, changes: dict[int, float | None]) -> None:
        """Apply many puts at once (ts -> value, None removes): one rebuild of both arrays
        (and of the tail) instead of an insertion each."""
        merged = dict(zip(self.times.tolist(), self.values.tolist()))
        for ts, value in changes.items():
            if value is None:
                merged.pop(ts, None)
            else:
                merged[ts] = value
        stamps = sorted(merged)
        self.times = array("q", stamps)
        self.values = array("d", [merged[ts] for ts in stamps])
        self._rebuild_tail()

    def extend(self, points: Points) -> None:
        """Append points that are all newer than the last one held."""
        self.times.extend([t for t, _ in points])
        self.values.extend([v for _, v in points])
        self.tail.extend(points)
        self._cut_tail()

    def prepend(self, points: Points) -> None:
        """Put points that are all older than the first one held in front."""
        self.times[:0] = array("q", [t for t, _ in points])
        self.values[:0] = array("d", [v for _, v in points])
        if not self.tail:  # the series was empty (or its tail was): start one
            self._rebuild_tail()

    def drop_upto(self, lo: int) -> None:
        """Forget the samples at or before lo."""
        k = bisect_right(self.times, lo)
        if k:
            del self.times[:k], self.values[:k]
            surplus = len(self.tail) - len(self.times)
            if surplus > 0:
                del self.tail[:surplus]

    def _cut_tail(self) -> None:
        """Keep in the tail only the samples within TAIL_MS of the newest."""
        tail = self.tail
        if tail and tail[0][0] <= tail[-1][0] - TAIL_MS:
            del tail[:bisect_right(tail, tail[-1][0] - TAIL_MS, key=_ts)]

    def _rebuild_tail(self) -> None:
        times = self.times
        k = bisect_right(times, times[-1] - TAIL_MS) if times else 0
        self.tail = list(zip(times[k:], self.values[k:]))


class _Span:
    """One name's cached samples: every series' points with lo < ts <= hi."""

    __slots__ = ("lo", "hi", "series", "order", "depths")

    def __init__(self, lo: int) -> None:
        self.lo = self.hi = lo
        self.series: dict[int, _Series] = {}
        self.order: list[int] | None = None  # series ids ascending, None when stale
        self.depths: dict[int, int] = {}  # edge - start of a request -> edge when last asked

    def drop_empty(self) -> None:
        empty = [sid for sid, s in self.series.items() if not s.times]
        for sid in empty:
            del self.series[sid]
        if empty:
            self.order = None


class SampleCache:
    """Recent samples per metric name, kept up to date incrementally (see the module doc).

    Used by one querier; a lock makes concurrent use safe but serial. ``stats`` counts
    syncs, resets (cache emptied), rows read and samples patched, for tests and benchmarks.
    """

    def __init__(self, store, *, keep_ms: int = KEEP_MS, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.keep_ms = keep_ms
        self.clock = clock
        self.watcher = next(_watchers)
        self.stats: Counter = Counter()
        self._lock = threading.Lock()
        self._spans: dict[str, _Span] = {}
        self._info: dict[int, SeriesInfo] = {}
        self._edge: int | None = None  # every span's hi is <= edge; None before the first sync
        self._floor = 0
        self._version: int | None = None
        self._dirty = True

    def new_tick(self) -> None:
        """Look for changes at the next request (call once per evaluation round, and after
        writing samples at or before an evaluation time already asked for)."""
        self._dirty = True

    def close(self) -> None:
        """Unregister from the store (its writer stops logging for this cache)."""
        with self._lock:
            self._spans.clear()
            if self._edge is None:
                return
            self._edge = None
            try:
                self.store.transaction(lambda conn: queries.unwatch_windows(conn, self.watcher))
            except StoreClosed:
                pass

    def names(self) -> list[str]:
        """The names held now."""
        return sorted(self._spans)

    def select(self, name: str, start: int, end: int) -> list[tuple[SeriesInfo, dict[str, str], Points]]:
        """(series, its output labels (a fresh dict), points with start < ts <= end) for every
        series of ``name`` with a sample in the window, ordered by series id."""
        if end <= start:
            return []
        with self._lock:
            if self._dirty or self._edge is None or end - 1 > self._edge:
                self._sync(end - 1 if self._edge is None else max(self._edge, end - 1), start, trim=True)
            if start < self._floor:  # spans never reach below the floor: lower it first
                self._sync(self._edge, start, trim=False)
            span = self._spans.get(name)
            if span is None:
                span = self._spans[name] = _Span(start)
            elif start < span.lo:
                self._prepend(name, span, start)
            fresh = self._extend(name, span, end) if end > span.hi else {}
            self._remember(span, self._edge - start)
            return self._answer(span, start, min(end, span.hi), fresh)

    # ---- keeping in step with the store -------------------------------------------

    def _sync(self, edge: int, want_lo: int, *, trim: bool) -> None:
        if trim:
            self._trim(edge)
        floor = min([s.lo for s in self._spans.values()] + [want_lo])
        now = int(self.clock() * 1000)
        known, changes, version = self.store.transaction(
            lambda conn: queries.watch_windows(conn, self.watcher, floor, edge, now, FORGET_MS))
        self.stats["syncs"] += 1
        if not known or (self._version is not None and version != self._version):
            if self._spans:
                self.stats["resets"] += 1
            self._spans.clear()
        elif changes:
            try:
                self._apply(changes)
            except BaseException:  # the log is consumed: nothing cached can be trusted now
                self._spans.clear()
                self._version = None
                raise
        self._version, self._edge, self._floor, self._dirty = version, edge, floor, False

    def _apply(self, changes: list[tuple[int, int]]) -> None:
        """Re-read the samples at the logged keys that fall inside a span."""
        conn = self.store.read()
        by_series: dict[int, set[int]] = {}
        for sid, ts in changes:
            by_series.setdefault(sid, set()).add(ts)
        self._learn(conn, by_series)
        inside: dict[int, list[int]] = {}
        for sid, stamps in by_series.items():
            info = self._info.get(sid)
            span = self._spans.get(info.name) if info is not None else None
            if span is not None:
                kept = [ts for ts in stamps if span.lo < ts <= span.hi]
                if kept:
                    inside[sid] = kept
        values = queries.values_at(conn, [(sid, ts) for sid, stamps in inside.items() for ts in stamps])
        for sid, stamps in inside.items():
            info = self._info[sid]
            span = self._spans[info.name]
            s = self._series(span, info)
            if len(stamps) > REBUILD_OVER:  # many: merge once instead of inserting one by one
                s.merge({ts: values.get((sid, ts)) for ts in stamps})
            else:
                for ts in stamps:
                    s.put(ts, values.get((sid, ts)))
            if not s.times:
                del span.series[sid]
                span.order = None
            self.stats["patched"] += len(stamps)

    def _trim(self, edge: int) -> None:
        """Drop names not asked for lately, and samples older than any recent window needs."""
        horizon = edge - self.keep_ms
        for name, span in list(self._spans.items()):
            span.depths = {d: used for d, used in span.depths.items() if used >= horizon}
            if not span.depths:
                del self._spans[name]
                continue
            lo = edge - max(span.depths)
            if lo > span.lo:
                for s in span.series.values():
                    s.drop_upto(lo)
                span.drop_empty()
                span.lo = lo
                span.hi = max(span.hi, lo)

    # ---- reading ----------------------------------------------------------------------

    def _learn(self, conn, ids) -> None:
        unknown = [sid for sid in ids if sid not in self._info]
        if unknown:
            self._info.update(queries.series_by_id(conn, unknown))

    def _series(self, span: _Span, info: SeriesInfo) -> _Series:
        s = span.series.get(info.id)
        if s is None:
            s = span.series[info.id] = _Series(info)
            span.order = None
        return s

    def _prepend(self, name: str, span: _Span, start: int) -> None:
        conn = self.store.read()
        rows = queries.name_samples(conn, name, start + 1, span.lo)
        self._learn(conn, rows)
        for sid, points in rows.items():
            self._series(span, self._info[sid]).prepend(points)
        self.stats["rows"] += sum(map(len, rows.values()))
        span.lo = start

    def _extend(self, name: str, span: _Span, end: int) -> dict[int, Points]:
        """Read (hi, end]: what is at or before the edge joins the span; the rest is returned."""
        conn = self.store.read()
        rows = queries.name_samples(conn, name, span.hi + 1, end)
        self._learn(conn, rows)
        edge = self._edge
        fresh = {}
        for sid, points in rows.items():
            if points[-1][0] > edge:
                k = bisect_right(points, edge, key=_ts)
                fresh[sid] = points[k:]
                points = points[:k]
            if points:
                self._series(span, self._info[sid]).extend(points)
        self.stats["rows"] += sum(map(len, rows.values()))
        span.hi = min(end, edge)
        return fresh

    def _remember(self, span: _Span, depth: int) -> None:
        span.depths[depth] = self._edge
        if len(span.depths) > MAX_DEPTHS:
            for d in sorted(span.depths)[:len(span.depths) - MAX_DEPTHS]:
                del span.depths[d]

    def _answer(self, span: _Span, start: int, upto: int, fresh: dict[int, Points]):
        if span.order is None:
            span.order = sorted(span.series)
        ids = span.order if not fresh else sorted(set(span.order).union(fresh))
        out = []
        for sid in ids:
            s = span.series.get(sid)
            points = s.window(start, upto) if s is not None else []
            extra = fresh.get(sid)
            if extra:
                points = points + extra
            if points:
                if s is None:
                    s = _Series(self._info[sid])
                out.append((s.info, dict(s.labels), points))
        return out
