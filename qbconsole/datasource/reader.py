"""The store's read API over a Prometheus server, so charts and reports read either backend.

    reader = PrometheusReader(build_backend(config.datasource, url))
    read_windows(reader, now_ms)              # the Overview, unchanged
    read_history(reader, spec, window, now)   # the chart screen, unchanged

:class:`PrometheusReader` answers ``names()``, ``series(name)``, ``select(name, start,
end)``, ``range(series_id, start, end)``, ``rollups(series_id, start, end)`` and
``quantile(...)`` with the return types of :class:`qbconsole.store.Store`; for reports also
``samples(name, ...)`` (raw, never cached) and ``name_rollups(name, ...)`` (every series of a
name in one query). Raw samples
come from an instant query of a range selector (``{__name__="x"}[Nms]`` at ``end``:
Prometheus 2.x ranges are closed, so that is exactly ``[start, end]``); per-minute
rollups from one range query per series (or name) whose evaluation times are minute ends
(``[m, m+59999]`` is the store's bucket ``[m, m+60000)``). Series ids are given
by the reader, stable per name and label set for its lifetime.

The console polls every second, so ``select`` without labels is cached per metric
name: a later window fetches only the tail (with ``overlap_ms`` for late scrapes),
and at most once per ``refresh_ms`` of the requested windows' end (the console asks for windows
ending now, so: of wall time). Every failure is the backend's
PromQLEvalError.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from qbconsole.datasource import results
from qbconsole.rules.promql.errors import PromQLEvalError
from qbconsole.rules.promql.format import quote
from qbconsole.store.queries import quantile_of_sorted
from qbconsole.store.records import SeriesInfo

MINUTE_MS = 60_000
CHUNK_MS = 60 * MINUTE_MS
"""Raw samples are fetched at most this much at a time (one request per chunk)."""
CACHE_SPAN_MS = 2 * CHUNK_MS
"""Windows reaching further back than this are not cached."""
KEEP_WIDE_MS = MINUTE_MS
"""A wide window stays cached this long (request time) after it was last asked for."""
MAX_STEPS = 10_000
"""Rollup range queries are split to stay under Prometheus's 11,000 points per series."""

Points = list[tuple[int, float]]
_Key = tuple[str, frozenset]


def selector(name: str | None, labels: Mapping[str, str] | None = None) -> str:
    """``{__name__="name",k="v"}`` (any name when None), values quoted as PromQL strings."""
    matchers = [f"__name__={quote(name)}" if name is not None else '__name__=~".+"']
    matchers += [f"{k}={quote(v)}" for k, v in sorted((labels or {}).items())]
    return "{" + ",".join(matchers) + "}"


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


@dataclass
class _Cached:
    """One metric name's recent samples: every series' points within [lo, hi]."""

    lo: int
    hi: int
    points: dict[_Key, Points] = field(default_factory=dict)
    keep_span: int = 0
    keep_until: int = 0


class PrometheusReader:
    """The store's read methods answered by Prometheus (see the module docstring)."""

    def __init__(self, backend, *, refresh_ms: int = 5_000, overlap_ms: int = 30_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.client = backend.client
        self.refresh_ms = int(refresh_ms)
        self.overlap_ms = int(overlap_ms)
        self.clock = clock
        self._ids: dict[_Key, int] = {}
        self._infos: dict[int, SeriesInfo] = {}
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.backend.close()

    # ---- series identity -------------------------------------------------------------------
    def _info(self, labels: Mapping[str, str]) -> SeriesInfo:
        """The SeriesInfo of a Prometheus label set (``__name__`` included), given an id once."""
        own = {k: v for k, v in labels.items() if k != "__name__"}
        key = (labels.get("__name__", ""), frozenset(own.items()))
        with self._lock:
            sid = self._ids.get(key)
            if sid is None:
                sid = self._ids[key] = len(self._ids) + 1
                self._infos[sid] = SeriesInfo(sid, key[0], dict(sorted(own.items())))
            return self._infos[sid]

    def _known(self, series_id: int) -> SeriesInfo:
        with self._lock:
            info = self._infos.get(series_id)
        if info is None:
            raise KeyError(f"series id {series_id} was not given by this reader")
        return info

    # ---- the store's read API ----------------------------------------------------------------
    def names(self) -> list[str]:
        """Metric names Prometheus knows, sorted."""
        body = self.client.get("/api/v1/label/__name__/values", {})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise PromQLEvalError("prometheus answered label values that are not a list")
        return sorted(str(name) for name in data)

    def series(self, name: str | None = None, labels: Mapping[str, str] | None = None) -> list[SeriesInfo]:
        """Series with this name (any if None) whose labels include ``labels``, by id."""
        body = self.client.get("/api/v1/series", {"match[]": selector(name, labels)})
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise PromQLEvalError("prometheus answered a series list that is not a list")
        found = {info.id: info for info in (self._info(dict(item)) for item in data if isinstance(item, dict))}
        return [found[sid] for sid in sorted(found)]

    def select(self, name: str, start: int, end: int,
               labels: Mapping[str, str] | None = None) -> list[tuple[SeriesInfo, Points]]:
        """Every matching series with its raw samples in [start, end], ascending, by series id.

        Series without samples in the window are left out (Prometheus does not list them).
        """
        if end < start:
            return []
        if labels or end - start > CACHE_SPAN_MS:
            fetched = self._fetch(selector(name, labels), start, end)
        else:
            fetched = self._cached(name, start, end)
        out = [(self._info(dict(key[1], __name__=key[0])), pts) for key, pts in fetched.items() if pts]
        return sorted(out, key=lambda pair: pair[0].id)

    def range(self, series_id: int, start: int, end: int) -> Points:
        """(ts, value) of one series with start <= ts <= end, ascending."""
        info = self._known(series_id)
        want = (info.name, frozenset(info.labels.items()))
        return self._fetch(selector(info.name, info.labels), start, end).get(want, [])

    def quantile(self, series_id: int, start: int, end: int, q: float) -> float | None:
        """Exact q-quantile of the raw values in [start, end] (NaN skipped); None when there are none."""
        values = sorted(v for _, v in self.range(series_id, start, end) if v == v)
        return quantile_of_sorted(values, q) if values else None

    def rollups(self, series_id: int, start: int, end: int) -> list[tuple[int, int, float, float, float]]:
        """(minute, count, sum, min, max) for minutes with start <= minute <= end, ascending: whole
        minutes only (ended by ``end`` and by now), as the store rolls up only complete minutes."""
        info = self._known(series_id)
        return self._rollups(selector(info.name, info.labels), start, end).get(frozenset(info.labels.items()), [])

    def name_rollups(self, name: str, start: int, end: int) -> list[tuple[SeriesInfo, list[tuple]]]:
        """:meth:`rollups` of every series of ``name`` at once (one range query per 10,000 minutes,
        not one per series), by series id; series without a whole minute in the range are left out."""
        out = [(self._info(dict(labels, __name__=name)), rows)
               for labels, rows in self._rollups(selector(name), start, end).items() if rows]
        return sorted(out, key=lambda pair: pair[0].id)

    def samples(self, name: str, start: int, end: int) -> list[tuple[SeriesInfo, Points]]:
        """Like :meth:`select` of a whole name, but never through (or into) the cache."""
        fetched = self._fetch(selector(name), start, end) if end >= start else {}
        out = [(self._info(dict(key[1], __name__=key[0])), pts) for key, pts in fetched.items() if pts]
        return sorted(out, key=lambda pair: pair[0].id)

    def _rollups(self, sel: str, start: int, end: int) -> dict[frozenset, list[tuple[int, int, float, float, float]]]:
        """Per-minute (minute, count, sum, min, max) of every series ``sel`` matches, by label set
        (``__name__`` left out): count/sum/min/max_over_time over ``[59999ms]`` at minute ends."""
        first = -(-start // MINUTE_MS) * MINUTE_MS
        last = min(end + 1, int(self.clock() * 1000)) // MINUTE_MS * MINUTE_MS - MINUTE_MS  # ends by then
        sel = f"{sel}[{MINUTE_MS - 1}ms]"
        expr = " or ".join(f'label_replace({fn}_over_time({sel}), "__qb_part", "{fn}", "", "")'
                           for fn in ("count", "sum", "min", "max"))
        rows: dict[frozenset, dict[int, dict[str, float]]] = {}
        for lo in range(first, last + 1, MAX_STEPS * MINUTE_MS):
            hi = min(last, lo + (MAX_STEPS - 1) * MINUTE_MS)
            for series in self.backend.query_range(expr, lo + MINUTE_MS - 1, hi + MINUTE_MS - 1, MINUTE_MS):
                labels = dict(series.labels)
                part = labels.pop("__qb_part", "")
                labels.pop("__name__", None)
                per_minute = rows.setdefault(frozenset(labels.items()), {})
                for ts, value in series.points:
                    per_minute.setdefault(ts - (MINUTE_MS - 1), {})[part] = value
        return {key: [(m, int(r["count"]), r["sum"], r["min"], r["max"]) for m, r in sorted(found.items())
                      if {"count", "sum", "min", "max"} <= r.keys() and r["count"] > 0]
                for key, found in rows.items()}

    # ---- fetching ------------------------------------------------------------------------------
    def _fetch(self, sel: str, start: int, end: int) -> dict[_Key, Points]:
        """Raw samples of ``sel`` in [start, end], in chunks of CHUNK_MS, by (name, labels)."""
        out: dict[_Key, Points] = {}
        lo = start
        while lo <= end:
            hi = min(end, lo + CHUNK_MS - 1)
            body = self.client.get("/api/v1/query", {"query": f"{sel}[{max(1, hi - lo)}ms]", "time": _seconds(hi),
                                                     "timeout": f"{self.client.timeout_s:g}s"})
            kind, value = results.instant_value(body)
            if kind != "matrix":
                raise PromQLEvalError(f"prometheus answered {kind!r} to a range selector")
            for series in value:
                labels = dict(series.labels)
                key = (labels.pop("__name__", ""), frozenset(labels.items()))
                out.setdefault(key, []).extend((ts, v) for ts, v in series.points if lo <= ts <= hi)
            lo = hi + 1
        return out

    def _cached(self, name: str, start: int, end: int) -> dict[_Key, Points]:
        """``select`` of a whole metric name through its cache (see the module docstring)."""
        with self._lock:
            cached = self._cache.get(name)
        if cached is None or start < cached.lo:
            cached = _Cached(start, end, self._fetch(selector(name), start, end))
        elif end > cached.hi and end - cached.hi >= self.refresh_ms:
            since = max(cached.lo, cached.hi - self.overlap_ms)
            tail = self._fetch(selector(name), since, end)
            points = {key: pts[:_first_at(pts, since)] for key, pts in cached.points.items()}
            for key, pts in tail.items():
                points.setdefault(key, []).extend(pts)
            cached = _Cached(cached.lo, end, points, cached.keep_span, cached.keep_until)
        with self._lock:
            span = end - start
            if span >= cached.keep_span or end > cached.keep_until:
                cached.keep_span, cached.keep_until = span, end + KEEP_WIDE_MS
            floor = cached.hi - cached.keep_span
            if floor > cached.lo:  # forget what no recent request reached back to
                cut = {key: pts[_first_at(pts, floor):] for key, pts in cached.points.items()}
                cached.points = {key: pts for key, pts in cut.items() if pts}
                cached.lo = floor
            self._cache[name] = cached
            points = cached.points
        return {key: pts[_first_at(pts, start):_first_at(pts, end + 1)] for key, pts in points.items()}


def _first_at(points: Points, ts: int) -> int:
    """The index of the first point at or after ``ts`` (points ascending by time)."""
    return bisect.bisect_left(points, ts, key=lambda point: point[0])
