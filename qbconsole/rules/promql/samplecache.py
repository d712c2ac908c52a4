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
"""

from __future__ import annotations

import itertools
import threading
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from operator import itemgetter
from typing import Callable

from qbconsole.store import queries
from qbconsole.store.records import SeriesInfo
from qbconsole.store.writer import StoreClosed

KEEP_MS = 10 * 60_000  # evaluation time a window (or a name) is kept without being asked for
FORGET_MS = 30 * 60_000  # wall time after which the store drops a watcher that stopped syncing
REBUILD_OVER = 32  # more changed samples than this in one series: rebuild its list in one go
MAX_DEPTHS = 32  # window depths remembered per name (the deepest ones count)

_watchers = itertools.count(1)
_ts = itemgetter(0)

Points = list[tuple[int, float]]


class _Series:
    __slots__ = ("info", "labels", "times", "points")

    def __init__(self, info: SeriesInfo) -> None:
        self.info = info
        self.labels = {k: v for k, v in info.labels.items() if v != ""}
        self.labels["__name__"] = info.name
        self.times: list[int] = []
        self.points: Points = []

    def window(self, start: int, end: int) -> Points:
        times = self.times
        return self.points[bisect_right(times, start):bisect_right(times, end)]

    def put(self, ts: int, value: float | None) -> None:
        """Set (or with None remove) the sample at ts."""
        i = bisect_left(self.times, ts)
        if i < len(self.times) and self.times[i] == ts:
            if value is None:
                del self.times[i], self.points[i]
            else:
                self.points[i] = (ts, value)
        elif value is not None:
            self.times.insert(i, ts)
            self.points.insert(i, (ts, value))


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
                merged = dict(s.points)
                for ts in stamps:
                    value = values.get((sid, ts))
                    if value is None:
                        merged.pop(ts, None)
                    else:
                        merged[ts] = value
                s.points = sorted(merged.items())
                s.times = [t for t, _ in s.points]
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
                    k = bisect_right(s.times, lo)
                    del s.times[:k], s.points[:k]
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
            s = self._series(span, self._info[sid])
            s.points[:0] = points
            s.times[:0] = [t for t, _ in points]
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
                s = self._series(span, self._info[sid])
                s.points.extend(points)
                s.times.extend(t for t, _ in points)
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
