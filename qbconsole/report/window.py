"""Exact per-series figures over a report window ``(start, end]``, read from the store.

Whole minutes that the store has finished rolling up are read from its per-minute
rollups (count/sum/min/max); the partial minutes at both edges and the minutes
not yet final are read from raw samples. Averages, sums, counts, minima and maxima
are therefore exact (the same as over the raw samples) at a small fraction of the
cost. Staleness markers and NaN are skipped, as the rollups skip them. Counter
increases (resets handled) are computed the same way, see ``counters.py``. A sample
written more than a few minutes after its time (the store re-rolls the last five
minutes) is in the raw samples only: event series that may arrive late (real-user
monitoring, accepted up to 24 h late) are read raw (:meth:`Window.raw_stats`).

Windows older than the raw retention lose their partial first minute (rollups
only hold whole minutes): ``trimmed_start`` then says where the figures begin.
"""

from __future__ import annotations

import math
from operator import itemgetter
from typing import NamedTuple

from qbconsole.report import counters
from qbconsole.store import SeriesInfo, Store, maintenance

MINUTE = maintenance.MINUTE_MS
COUNTER_LOOKBACK_MS = 300_000  # the baseline sample of a counter: Prometheus's staleness period
_NUM = "typeof(value) = 'real'"


class Increments(NamedTuple):
    """A counter's increase per minute: parallel lists, minutes ascending."""

    minutes: list[int]
    values: list[float]


class Minutes(NamedTuple):
    """Per-minute count, sum, min and max of a series: parallel lists, minutes ascending."""

    minutes: list[int]
    counts: list[int]
    sums: list[float]
    mins: list[float]
    maxs: list[float]


class Stats(NamedTuple):
    count: int
    sum: float
    min: float
    max: float

    @property
    def mean(self) -> float:
        return self.sum / self.count


def merge(stats: list[Stats | None]) -> Stats | None:
    """Stats of several series (or minutes) pooled; None when none has samples."""
    have = [s for s in stats if s is not None and s.count]
    if not have:
        return None
    return Stats(sum(s.count for s in have), sum(s.sum for s in have),
                 min(s.min for s in have), max(s.max for s in have))


class Window:
    """One report window over a store; caches what it has read (one thread only)."""

    def __init__(self, store: Store, start_ms: int, end_ms: int, now_ms: int) -> None:
        if end_ms <= start_ms:
            raise ValueError("the window must end after it starts")
        self.store = store
        self.minute, self.counter_lookback_ms = MINUTE, COUNTER_LOOKBACK_MS
        self.start, self.end, self.now = int(start_ms), int(end_ms), int(now_ms)
        self.seconds = (self.end - self.start) / 1000
        self.conn = store.read()
        # Minutes before the next rollup's start are never rolled up again: final.
        plan = maintenance.rollup_window(self.conn, 1 << 62)
        final_until = plan[0] if plan else None
        self.raw_from = self.now - store.raw_retention_ms  # raw samples may be purged before this
        lo = (self.start // MINUTE + 1) * MINUTE  # first whole minute inside the window
        hi = (self.end + 1) // MINUTE * MINUTE  # whole minutes end here (exclusive)
        if lo >= hi or final_until is None or final_until <= lo:
            self.roll = (lo, lo)
        else:
            self.roll = (lo, min(hi, final_until))
        self.head = (self.start + 1, self.roll[0] - 1) if self.roll[1] > lo else None
        self.tail = (self.roll[1] if self.roll[1] > lo else self.start + 1, self.end)
        self.trimmed_start: int | None = None
        if self.head is not None and self.head[0] < self.raw_from:
            self.head = None  # purged: the figures start at the first whole minute
            self.trimmed_start = lo
        self._series: dict[str, list[SeriesInfo]] = {}
        self._minutes: dict[int, Minutes] = {}
        self._stats: dict[int, Stats | None] = {}
        self._incs: dict[int, Increments] = {}
        self._totals: dict[int, float | None] = {}
        self._points: dict[int, list[tuple[int, float]]] = {}
        self._sorted: dict[int, list[float]] = {}
        self.approximate: set[int] = set()  # counters read where raw samples were gone

    # ---- series -------------------------------------------------------------------
    def series(self, name: str) -> list[SeriesInfo]:
        found = self._series.get(name)
        if found is None:
            found = self._series[name] = self.store.series(name)
        return found

    def names(self) -> list[str]:
        return self.store.names()

    def span_minutes(self, min_minutes: int = 5, max_spans: int = 288) -> int:
        """The length of :meth:`spans`: ``min_minutes``, longer when more than ``max_spans``
        spans would be needed."""
        return max(min_minutes, math.ceil(math.ceil(self.seconds / 60) / max_spans))

    def spans(self, min_minutes: int = 5, max_spans: int = 288) -> list[tuple[int, int]]:
        """Consecutive spans ``(a, b]`` covering the window, cut at multiples of their length
        (see :meth:`span_minutes`); the first and last may be shorter."""
        length = self.span_minutes(min_minutes, max_spans) * MINUTE
        cuts = [self.start]
        edge = (self.start // length + 1) * length - 1
        while edge < self.end - MINUTE // 2:  # no sliver of a span at either end
            if edge > self.start + MINUTE // 2:
                cuts.append(edge)
            edge += length
        cuts.append(self.end)
        return list(zip(cuts, cuts[1:]))

    @property
    def raw_incomplete(self) -> bool:
        """Whether raw samples at the start of the window may have been purged."""
        return self.start + 1 < self.raw_from

    # ---- gauges -------------------------------------------------------------------
    def _raw_minutes(self, sid: int, lo: int, hi: int) -> list[tuple]:
        if hi < lo:
            return []
        return self.conn.execute(
            f"SELECT ts / {MINUTE} * {MINUTE} AS m, count(*), sum(value), min(value), max(value)"
            f" FROM samples WHERE series_id = ? AND ts BETWEEN ? AND ? AND {_NUM} GROUP BY m ORDER BY m",
            (sid, lo, hi)).fetchall()

    def _rollups(self, sid: int) -> list[tuple]:
        lo, hi = self.roll
        if hi <= lo:
            return []
        return self.conn.execute(
            "SELECT minute, count, sum, min, max FROM rollups WHERE series_id = ? AND minute >= ?"
            " AND minute < ? ORDER BY minute", (sid, lo, hi)).fetchall()

    def minutes(self, sid: int) -> Minutes:
        """count, sum, min and max per minute with samples, ascending."""
        found = self._minutes.get(sid)
        if found is None:
            rows = []
            if self.head is not None:
                rows += self._raw_minutes(sid, *self.head)
            rows += self._rollups(sid)
            rows += self._raw_minutes(sid, *self.tail)
            found = self._minutes[sid] = Minutes(*(list(map(itemgetter(i), rows)) for i in range(5)))
        return found

    def stats(self, sid: int) -> Stats | None:
        """count, sum, min and max of the samples in the window; None when there are none."""
        if sid in self._stats:
            return self._stats[sid]
        if sid in self._minutes:
            mm = self._minutes[sid]
            parts = [Stats(sum(mm.counts), math.fsum(mm.sums), min(mm.mins), max(mm.maxs))] if mm.minutes else []
        else:
            parts = []
            ranges = ([self.head] if self.head else []) + [self.tail]
            for lo, hi in ranges:
                if hi >= lo:
                    parts.append(Stats(*self.conn.execute(
                        f"SELECT count(*), sum(value), min(value), max(value) FROM samples"
                        f" WHERE series_id = ? AND ts BETWEEN ? AND ? AND {_NUM}", (sid, lo, hi)).fetchone()))
            if self.roll[1] > self.roll[0]:
                parts.append(Stats(*self.conn.execute(
                    "SELECT sum(count), sum(sum), min(min), max(max) FROM rollups WHERE series_id = ?"
                    " AND minute >= ? AND minute < ?", (sid, *self.roll)).fetchone()))
        result = merge([p for p in parts if p.count])
        self._stats[sid] = result
        return result

    def raw_stats(self, sid: int) -> Stats | None:
        """Like :meth:`stats`, from raw samples only: for event series (real-user
        monitoring) whose samples may arrive after their minute was rolled up."""
        row = self.conn.execute(
            f"SELECT count(*), sum(value), min(value), max(value) FROM samples WHERE series_id = ?"
            f" AND ts BETWEEN ? AND ? AND {_NUM}", (sid, self.start + 1, self.end)).fetchone()
        return Stats(*row) if row[0] else None

    def count_above(self, sid: int, threshold: float) -> tuple[int, int]:
        """(samples above threshold, samples) among the raw samples of the window."""
        above, total = self.conn.execute(
            f"SELECT sum(value > ?), count(*) FROM samples WHERE series_id = ? AND ts BETWEEN ? AND ?"
            f" AND {_NUM}", (threshold, sid, self.start + 1, self.end)).fetchone()
        return int(above or 0), int(total)

    # ---- raw ------------------------------------------------------------------------
    def points(self, sid: int) -> list[tuple[int, float]]:
        """The raw (ts, value) samples in the window, ascending (NaN and stale skipped)."""
        pts = self._points.get(sid)
        if pts is None:
            pts = self._points[sid] = self._raw(sid, self.start + 1, self.end)
        return pts

    def sorted_values(self, sid: int) -> list[float]:
        """The raw values in the window, ascending (cached: exact quantiles read them often).
        Sorting several of these lists concatenated is fast: timsort merges the runs."""
        found = self._sorted.get(sid)
        if found is None:  # from the points: SLOs over spans of the window need them too
            found = self._sorted[sid] = sorted(map(itemgetter(1), self.points(sid)))
        return found

    def _raw(self, sid: int, lo: int, hi: int) -> list[tuple[int, float]]:
        return self.conn.execute(
            f"SELECT ts, value FROM samples WHERE series_id = ? AND ts BETWEEN ? AND ? AND {_NUM}"
            " ORDER BY ts", (sid, lo, hi)).fetchall()

    def last_value(self, sid: int, lo: int, hi: int) -> tuple[int, float] | None:
        """The newest raw sample with lo < ts <= hi."""
        return self.conn.execute(
            f"SELECT ts, value FROM samples WHERE series_id = ? AND ts > ? AND ts <= ? AND {_NUM}"
            " ORDER BY ts DESC LIMIT 1", (sid, lo, hi)).fetchone()

    def recent_spacing(self, sid: int, limit: int = 1000) -> list[int]:
        """Gaps (ms) between the newest ``limit`` raw samples of the window."""
        ts = [r[0] for r in self.conn.execute(
            "SELECT ts FROM samples WHERE series_id = ? AND ts BETWEEN ? AND ? ORDER BY ts DESC LIMIT ?",
            (sid, max(self.start + 1, self.raw_from), self.end, limit))]
        return [a - b for a, b in zip(ts, ts[1:])]

    # ---- counters (see counters.py) ---------------------------------------------------
    def raw_range(self, sid: int, lo: int, hi: int) -> list[tuple[int, float]]:
        return self._raw(sid, lo, hi)

    def increments(self, sid: int) -> Increments:
        """The counter's increase per minute (only minutes with samples), ascending."""
        cached = self._incs.get(sid)
        if cached is None:
            minutes, incs, approximate = counters.increments(self, sid)
            cached = self._incs[sid] = Increments(minutes, incs)
            if approximate:
                self.approximate.add(sid)
        return cached

    def increase(self, sid: int) -> float | None:
        """The counter's increase over the window; None when it has no sample in it."""
        if sid in self._totals:
            return self._totals[sid]
        if sid in self._incs:
            incs = self._incs[sid].values
            total = math.fsum(incs) if incs else None
        else:
            total, approximate = counters.increase(self, sid)
            if approximate:
                self.approximate.add(sid)
        self._totals[sid] = total
        return total
