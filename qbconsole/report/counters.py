"""Counter increases over a report window, counter resets handled, from rollups where exact.

The increase is the sum over consecutive samples of ``v - prev``, or ``v`` when the
counter went down (a reset). A rolled-up minute whose lowest value is not below the
value before it adds ``max - prev`` (its samples only grew); any other minute — a reset
at or inside it — is read raw, and so is a minute that leaves 0 (it may have restarted
to 0 again). Not visible in rollups: a counter that goes down inside one minute to a
value still at or above (and not 0) the one it had before that minute — a restart
starts from 0, so a real one is always seen. Where raw samples are already purged, a
reset minute is taken as a reset at its start (adds its ``max``) and marked approximate.

Two ways to read, with identical results:

* :func:`increments` — per minute (charts, peaks, spans): one row per rolled-up minute;
* :func:`increase` — the total only: SQLite finds the few minutes that may hold a reset
  (a join of each minute with the one before), and whole runs of growing minutes are
  added as ``last max - first prev`` without reading them into Python.
"""

from __future__ import annotations

import math
import operator
from itertools import compress
from operator import itemgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qbconsole.report.window import Window

MAX_RESET_QUERIES = 64  # beyond this many suspect minutes a series is read in full


class _Reader:
    """Walks one series through the window in time order, keeping the last value."""

    def __init__(self, w: "Window", sid: int, minute_ms: int) -> None:
        self.w, self.sid, self.minute = w, sid, minute_ms
        self.prev = baseline(w, sid)
        self.minutes: list[int] = []  # per minute: the minutes with samples...
        self.incs: list[float] = []  # ...and the increase attributed to each
        self.total = 0.0
        self.seen = False
        self.approximate = False
        self.queries = 0

    def raw(self, lo: int, hi: int, per_minute: bool) -> int:
        """Add the raw samples with lo <= ts <= hi; returns how many there were."""
        points = self.w.raw_range(self.sid, lo, hi)
        prev, minute_ms = self.prev, self.minute
        cur, acc = None, 0.0
        for ts, v in points:
            inc = 0.0 if prev is None else (v - prev if v >= prev else v)
            prev = v
            if per_minute:
                m = ts - ts % minute_ms
                if m != cur:
                    if cur is not None:
                        self.minutes.append(cur)
                        self.incs.append(acc)
                    cur, acc = m, inc
                else:
                    acc += inc
            else:
                self.total += inc
        if cur is not None:
            self.minutes.append(cur)
            self.incs.append(acc)
        if points:
            self.prev = prev
            self.seen = True
        return len(points)

    def suspect(self, minute: int, low: float, high: float, per_minute: bool) -> None:
        """A minute that may hold a reset: read it raw (or approximate it when purged)."""
        if minute >= self.w.raw_from and self.raw(minute, minute + self.minute - 1, per_minute):
            return
        self.approximate = True
        inc = high - low if self.prev is None else high
        if per_minute:
            self.minutes.append(minute)
            self.incs.append(inc)
        else:
            self.total += inc
        self.prev, self.seen = high, True

    def grow(self, high: float) -> float:
        """A run of growing minutes ending at ``high``: its increase; prev moves to ``high``."""
        inc = high - self.prev
        self.prev, self.seen = high, True
        return inc


def suspect(low: float, high: float, prev: float | None) -> bool:
    """Whether a rolled-up minute may hold a reset: its predecessor is unknown, it went below
    it, or it left 0 and may have restarted to 0 again."""
    return prev is None or low < prev or low == prev == 0 < high


def baseline(w: "Window", sid: int) -> float | None:
    """The counter's value just before the window (the last sample within 5 minutes)."""
    if w.head is None and w.trimmed_start is not None:
        row = w.conn.execute("SELECT max FROM rollups WHERE series_id = ? AND minute = ?",
                             (sid, w.trimmed_start - w.minute)).fetchone()
        return row[0] if row else None
    row = w.last_value(sid, w.start - w.counter_lookback_ms - 1, w.start)
    return row[1] if row else None


def increments(w: "Window", sid: int) -> tuple[list[int], list[float], bool]:
    """(minutes with samples ascending, the increase in each, approximate?) — a pair of
    samples counts in the minute of its later sample; a first sample without predecessor
    adds 0."""
    r = _Reader(w, sid, w.minute)
    if w.head is not None:
        r.raw(*w.head, per_minute=True)
    lo, hi = w.roll
    rows = w.conn.execute("SELECT minute, min, max FROM rollups WHERE series_id = ? AND minute >= ?"
                          " AND minute < ? ORDER BY minute", (sid, lo, hi)).fetchall() if hi > lo else []
    if rows:
        minutes, lows, highs = (list(map(itemgetter(i), rows)) for i in range(3))
        n = len(rows)
        marked = set(compress(range(1, n), map(operator.lt, lows[1:], highs)))  # below the minute before
        marked.update(i for i in compress(range(1, n), map(operator.not_, highs))  # after a minute at 0
                      if lows[i] == 0 < highs[i])
        if suspect(lows[0], highs[0], r.prev):
            marked.add(0)
        pos = 0
        for f in sorted(marked) + [n]:
            if f > pos:
                r.minutes.extend(minutes[pos:f])
                r.incs.append(r.grow(highs[pos]))
                r.incs.extend(map(operator.sub, highs[pos + 1:f], highs[pos:f - 1]))
                r.prev = highs[f - 1]
            if f == n:
                break
            r.queries += 1
            if r.queries > MAX_RESET_QUERIES and minutes[f] >= w.raw_from:  # not like a counter: rest raw
                r.raw(minutes[f], hi - 1, per_minute=True)
                break
            r.suspect(minutes[f], lows[f], highs[f], per_minute=True)
            pos = f + 1
    r.raw(*w.tail, per_minute=True)
    return r.minutes, r.incs, r.approximate


def increase(w: "Window", sid: int) -> tuple[float | None, bool]:
    """(total increase or None when the series has no sample in the window, approximate?)."""
    r = _Reader(w, sid, w.minute)
    if w.head is not None:
        r.raw(*w.head, per_minute=False)
    lo, hi = w.roll
    if hi > lo and not _rolled(w, r, lo, hi):
        _, incs, approximate = increments(w, sid)
        return (math.fsum(incs) if incs else None), approximate
    r.raw(*w.tail, per_minute=False)
    return (r.total if r.seen else None), r.approximate


def _rolled(w: "Window", r: _Reader, lo: int, hi: int) -> bool:
    """Add the rolled-up minutes of [lo, hi) to ``r``; False when there are too many suspects."""
    conn, sid, step = w.conn, r.sid, w.minute
    ends = conn.execute(
        "SELECT * FROM (SELECT minute, min, max FROM rollups WHERE series_id = ?1 AND minute >= ?2 AND minute < ?3"
        " ORDER BY minute LIMIT 1) UNION ALL SELECT * FROM (SELECT minute, min, max FROM rollups"
        " WHERE series_id = ?1 AND minute >= ?2 AND minute < ?3 ORDER BY minute DESC LIMIT 1)",
        (sid, lo, hi)).fetchall()
    if not ends:
        return True
    (first, first_low, first_high), (last, _, last_high) = ends[0], ends[-1]
    candidates = conn.execute(
        "SELECT r.minute, r.min, r.max, p.max FROM rollups r LEFT JOIN rollups p"
        " ON p.series_id = r.series_id AND p.minute = r.minute - ?4"
        " WHERE r.series_id = ?1 AND r.minute > ?2 AND r.minute < ?3"
        " AND (p.max IS NULL OR r.min < p.max OR (p.max = 0 AND r.min = 0 AND r.max > 0))"
        " ORDER BY r.minute", (sid, first, hi, step)).fetchall()
    if len(candidates) > MAX_RESET_QUERIES:
        return False
    suspects = []  # (minute, low, high, the minute and max of the row before it)
    for minute, low, high, before in candidates:
        if before is None:  # a gap: compare with the last minute that has samples
            row = conn.execute("SELECT minute, max FROM rollups WHERE series_id = ? AND minute >= ? AND minute < ?"
                               " ORDER BY minute DESC LIMIT 1", (sid, first, minute)).fetchone()
            if not suspect(low, high, row[1]):
                continue
            suspects.append((minute, low, high, row[0], row[1]))
        else:
            suspects.append((minute, low, high, minute - step, before))
    done = first - step  # the last minute accounted for
    if suspect(first_low, first_high, r.prev):
        r.suspect(first, first_low, first_high, per_minute=False)
        done = first
    for minute, low, high, before_minute, before_high in suspects:
        if before_minute > done:
            r.total += r.grow(before_high)
        r.suspect(minute, low, high, per_minute=False)
        done = minute
    if last > done:
        r.total += r.grow(last_high)
    return True
