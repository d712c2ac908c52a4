"""The Overview poll's memo: each poll derives its figures only from the points new since the last.

``metricdata.read_windows`` given a :class:`WindowMemo` (one per poll worker) returns the same
windows as without it, but per series it keeps what the previous poll derived (finite points,
counter increases or rates, byte-rate buckets, per-minute totals) and derives only the new
points, so a poll's work does not grow with how much of the window is filled.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from functools import reduce
from operator import add, itemgetter, lt
from typing import Callable, Sequence

from qbconsole.store import SeriesInfo
from qbconsole.tui.groups import BY_LABEL, MetricSpec, part_key
from qbconsole.tui.metricdata import (
    LOOPBACK_NICS, MINUTE_MS, RATE_BUCKET_MS, MetricWindow, Points, counter_rates, finite, increases, per_minute,
    summed_rates,
)

_ts, _value = itemgetter(0), itemgetter(1)

Derive = Callable[[Sequence[tuple[int, float]]], Points]
"""``increases`` or ``counter_rates``. On points whose times strictly increase, each gives one
point per consecutive pair, stamped at the later one: a window's result is then that of the
part kept from the previous window plus that of the new points, with the last kept point as
the context of the first new one."""


def _ascending_ints(points: Sequence[tuple[int, float]]) -> bool:
    """Whether the times are ints, strictly increasing (C-level passes): then a time's position is
    found by bisect, and a derived point depends only on its pair."""
    times = list(map(_ts, points))
    return set(map(type, times)) <= {int} and all(map(lt, times, times[1:]))


@dataclass(eq=False)
class _Series:
    """One series as the memo last saw it, and what was derived from it. The lists are the memo's
    own: a change that only drops points at the start and appends later ones is made in place
    (a C-level move), instead of copying the window."""

    points: list[tuple[int, float]]
    """The points the source gave (a copy: a source may reuse its lists)."""
    fin: list[tuple[int, float]]
    """``finite(points)``."""
    ascending: bool
    """``points``' times are ints, strictly increasing; if not, every change is derived afresh.
    Also False while a change is being made in place (a failure then leaves it to be derived afresh)."""
    derive: Derive | None
    derived: list[tuple[int, float]] = field(default_factory=list)
    """``derive(fin)`` (when ``derive`` is set)."""
    out: Points | None = None
    """``fin`` as a tuple, once asked for (a gauge's window); None after a change."""
    version: int = 0
    """Bumped at every change of ``points``."""
    delta: tuple[int, int] | None = None
    """What the last change did to ``derived``: (points dropped at its start, points appended);
    None when it was derived afresh."""
    buckets: tuple[int, list[int], list[float], list[int]] | None = None
    """``summed_rate``'s buckets of ``derived``: (``version`` they are of, keys, averages, latest stamps)."""
    seen: int = 0
    """The last poll that used it."""


def _derive_afresh(entry: _Series, points: list[tuple[int, float]]) -> None:
    """Make ``entry`` hold ``points``, everything derived in full."""
    entry.ascending = False
    out = finite(points)
    entry.points, entry.fin, entry.out = list(points), list(out), out
    entry.derived = list(entry.derive(out)) if entry.derive is not None else []
    entry.delta = None
    entry.ascending = _ascending_ints(points)


def _advance(entry: _Series, new: list[tuple[int, float]]) -> bool:
    """Make ``entry`` hold ``new`` by dropping its points before ``new``'s first time and appending
    ``new``'s later ones, deriving only those; False when that is not sound (``entry`` must then be
    derived afresh): the times are not ascending ints, or what ``new`` holds over the time ``entry``
    covers is not the same points (a late or replaced sample, one gone, a re-read with other data).
    The overlap is checked with one C-level list comparison (points that are the same objects as
    last time match at once); a NaN value matches only itself (the same object: the same NaN)."""
    old = entry.points
    if not entry.ascending or (new and type(new[0][0]) is not int):
        return False
    k = bisect_left(old, new[0][0], key=_ts) if new else len(old)  # old points before the new window
    kept = len(old) - k
    tail = new[kept:]
    if len(new) < kept or (tail and (not _ascending_ints(tail) or (kept and tail[0][0] <= old[-1][0]))):
        return False
    entry.ascending = False  # until done
    del old[:k]
    old.extend(tail)
    if old != new:
        return False
    old[:] = new  # the same points, as the source's objects: next time they match by identity (fast)
    fin = entry.fin
    a = bisect_left(fin, new[0][0], key=_ts) if new else len(fin)  # finite points dropped
    fresh = finite(tail) if tail else ()
    if entry.derive is not None:  # derived[i] is of the pair (fin[i], fin[i + 1])
        derived = entry.derived
        added = entry.derive(((fin[-1],) if a < len(fin) else ()) + fresh) if fresh else ()
        dropped = min(a, len(derived))
        del derived[:dropped]
        derived.extend(added)
        entry.delta = (dropped, len(added))
    if a or fresh:
        del fin[:a]
        fin.extend(fresh)
        entry.out = None
    entry.ascending = True
    return True


class WindowMemo:
    """What the last poll derived from each series (finite points, counter increases or rates,
    byte-rate buckets, per-minute totals), so that the next poll derives only what is new.

    Made once per poll worker and passed to every ``read_windows`` call (for one thread). Each
    series is checked against what it was at the previous poll: when the points it had over the
    new window's time are the same and the rest are later ones, their results are kept and only
    the new points derived; anything else is derived afresh. Results are those ``read_windows``
    gives without a memo. The check compares values with ``==``, so the one change it cannot see
    is 0.0 replaced by -0.0 (or back) at the same time: the store cannot hold -0.0 (SQLite keeps
    it as 0.0). The memo keeps its own copies of the points (a source may reuse its lists).
    """

    def __init__(self) -> None:
        self._series: dict[tuple, _Series] = {}
        self._minutes: dict[str, tuple[tuple[tuple[_Series, int], ...], dict[int, float], int]] = {}
        self._poll = 0
        self.fresh = 0
        """Series derived afresh so far (first sight, or a change that is not an extension)."""
        self.advanced = 0
        """Series extended with their new points so far."""

    def begin(self) -> None:
        """A new poll starts."""
        self._poll += 1

    def end(self) -> None:
        """The poll is done: forget series and figures it did not read (gone, or not asked for)."""
        if any(e.seen != self._poll for e in self._series.values()):
            self._series = {k: e for k, e in self._series.items() if e.seen == self._poll}
        if any(m[2] != self._poll for m in self._minutes.values()):
            self._minutes = {k: m for k, m in self._minutes.items() if m[2] == self._poll}

    def series(self, key: tuple, points: Sequence[tuple[int, float]], derive: Derive | None = None) -> _Series:
        """The memo of one series (``key``: what it is read for, and its id) brought to ``points``."""
        pts = points if type(points) is list else list(points)
        entry = self._series.get(key)
        if entry is None or entry.derive is not derive:
            entry = self._series[key] = _Series([], [], False, derive)
        if _advance(entry, pts):
            self.advanced += 1
        else:
            _derive_afresh(entry, pts)
            self.fresh += 1
        entry.version += 1
        entry.seen = self._poll
        return entry

    def finite(self, key: tuple, points: Sequence[tuple[int, float]]) -> Points:
        """``finite(points)``."""
        entry = self.series(key, points)
        if entry.out is None:
            entry.out = tuple(entry.fin)
        return entry.out

    def summed_rate(self, tag: tuple, selected: Sequence[tuple[SeriesInfo, Sequence[tuple[int, float]]]]) -> Points:
        """``summed_rates(selected)``: per NIC, its rates and buckets are extended with its new points."""
        nics = [(s, p) for s, p in selected if s.labels.get("nic") not in LOOPBACK_NICS]
        entries = [self.series((tag, s.id), p, counter_rates) for s, p in nics]
        if not all(e.ascending for e in entries):
            return summed_rates(nics)
        return _merge_buckets([_nic_buckets(e) for e in entries])

    def per_minute(self, key: str, entries: Sequence[_Series], start: int, now_ms: int) -> Points:
        """``per_minute`` of the series of ``entries`` (memos with ``increases``) for the figure
        ``key``: a minute is summed again only when one of its increases may have changed."""
        if not all(e.ascending for e in entries):
            self._minutes.pop(key, None)
            return per_minute((e.fin for e in entries), start, now_ms)
        span = _minute_span(entries, start, now_ms)
        state = tuple((e, e.version) for e in entries)
        clean_lo, clean_hi, kept = _clean_minutes(self._minutes.get(key), entries)
        totals: dict[int, float] = {}
        for k in range(span[0], span[1] + 1) if span else ():
            total = kept.get(k) if clean_lo < k < clean_hi else None
            totals[k] = _minute_total(entries, k) if total is None else total
        self._minutes[key] = (state, totals, self._poll)
        return tuple(((k + 1) * MINUTE_MS, total) for k, total in totals.items())

    def counted(self, spec: MetricSpec, selected: list[tuple[SeriesInfo, list[tuple[int, float]]]],
                start: int, now_ms: int) -> dict[str, MetricWindow]:
        """``read_spec`` of a RATE or BY_LABEL figure with the poll's memo (the same windows)."""
        entries = [self.series(("count", spec.key, s.id), p, increases) for s, p in selected]
        out = {spec.key: MetricWindow(spec.name, self.per_minute(spec.key, entries, start, now_ms))}
        if spec.how == BY_LABEL:
            labelled = [(s.labels.get(spec.label, ""), e) for (s, _), e in zip(selected, entries)]
            for value in sorted({v for v, _ in labelled}):
                mine = [e for v, e in labelled if v == value]
                key = part_key(spec.key, value)
                out[key] = MetricWindow(spec.name, self.per_minute(key, mine, start, now_ms), value)
        return out


def _minute_span(entries: Sequence[_Series], start: int, now_ms: int) -> tuple[int, int] | None:
    """The minutes ``per_minute`` gives (first, last), or None when it gives none."""
    first = last = None
    for e in entries:
        if len(e.fin) < 2:
            continue
        lo, hi = (e.fin[1][0] - 1) // MINUTE_MS, (e.fin[-1][0] - 1) // MINUTE_MS
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
    if first is None:
        return None
    return max(first, start // MINUTE_MS), min(last, now_ms // MINUTE_MS - 1)


def _clean_minutes(previous: tuple | None, entries: Sequence[_Series]) -> tuple[float, float, dict[int, float]]:
    """(lo, hi, totals): the minutes strictly between lo and hi have the same increases as when
    ``previous`` (the figure's last memo) summed them to ``totals``. A series changed at most
    once since (its ``delta``) lost increases at its start and gained some at its end only."""
    nothing = (math.inf, -math.inf, {})
    if previous is None:
        return nothing
    state, totals, _ = previous
    if len(state) != len(entries):
        return nothing
    lo, hi = -math.inf, math.inf
    for (was, version), e in zip(state, entries):
        if was is not e:
            return nothing
        if e.version == version:
            continue
        if e.version != version + 1 or e.delta is None:
            return nothing
        dropped, added = e.delta
        if dropped:
            if not e.derived:
                return nothing
            lo = max(lo, (e.derived[0][0] - 1) // MINUTE_MS)  # dropped ones were at or before this minute
        if added:
            hi = min(hi, (e.derived[-added][0] - 1) // MINUTE_MS)
    return lo, hi, totals


def _minute_total(entries: Sequence[_Series], minute: int) -> float:
    """The increases of ``minute`` (times in (minute, minute + 1] minutes) summed over the series in
    ``per_minute``'s order: one running float from 0.0, series after series, oldest first."""
    lo, hi = minute * MINUTE_MS + 1, (minute + 1) * MINUTE_MS + 1
    total = 0.0
    for e in entries:
        incs = e.derived
        a = bisect_left(incs, lo, key=_ts)
        b = bisect_left(incs, hi, a, key=_ts)
        if b > a:
            total = reduce(add, map(_value, incs[a:b]), total)
    return total


def _rate_buckets(rates: Points, lo: int, hi: int) -> tuple[list[int], list[float], list[int]]:
    """(keys, averages, latest stamps) of the ``RATE_BUCKET_MS`` buckets of ``rates[lo:hi]`` (ascending
    int times): a bucket's slice is found by bisect and averaged with one ``sum`` (as in ``summed_rates``)."""
    keys: list[int] = []
    averages: list[float] = []
    stamps: list[int] = []
    i = lo
    while i < hi:
        key = rates[i][0] // RATE_BUCKET_MS
        j = bisect_left(rates, (key + 1) * RATE_BUCKET_MS, i + 1, hi, key=_ts)
        keys.append(key)
        averages.append(sum(map(_value, rates[i:j])) / (j - i))
        stamps.append(rates[j - 1][0])
        i = j
    return keys, averages, stamps


def _nic_buckets(entry: _Series) -> tuple[list[int], list[float], list[int]]:
    """The buckets of one NIC's rates: those its last change did not touch are kept, the first
    (when rates were dropped at the start) and those the new rates fall in are averaged again."""
    rates, kept = entry.derived, entry.buckets
    if kept is not None and kept[0] == entry.version:
        return kept[1], kept[2], kept[3]
    if kept is not None and kept[0] == entry.version - 1 and entry.delta is not None:
        parts = _advance_buckets(kept[1:], rates, *entry.delta)
    else:
        parts = _rate_buckets(rates, 0, len(rates))
    entry.buckets = (entry.version, *parts)
    return parts


def _advance_buckets(old: tuple[list[int], list[float], list[int]], rates: Points, dropped: int,
                     added: int) -> tuple[list[int], list[float], list[int]]:
    """``_rate_buckets(rates)`` from the buckets ``old`` of the rates before ``dropped`` were dropped at
    the start and ``added`` appended: buckets strictly between the first one and the first new rate's
    hold the same rates."""
    keys, averages, stamps = old
    n = len(rates)
    if not n:
        return [], [], []
    head, first = 0, 0  # rates[:head] are averaged again; old buckets from ``first`` kept
    if dropped:
        key = rates[0][0] // RATE_BUCKET_MS
        head = bisect_left(rates, (key + 1) * RATE_BUCKET_MS, key=_ts)
        first = bisect_right(keys, key)
    tail, last = n, len(keys)  # rates[tail:] averaged again; old buckets before ``last`` kept
    if added:
        key = rates[n - added][0] // RATE_BUCKET_MS
        tail = bisect_left(rates, key * RATE_BUCKET_MS, key=_ts)
        last = bisect_left(keys, key)
    if head > tail or first > last:
        return _rate_buckets(rates, 0, n)
    h, t = _rate_buckets(rates, 0, head), _rate_buckets(rates, tail, n)
    return (h[0] + keys[first:last] + t[0], h[1] + averages[first:last] + t[1],
            h[2] + stamps[first:last] + t[2])


def _merge_buckets(nics: Sequence[tuple[list[int], list[float], list[int]]]) -> Points:
    """The NICs' buckets summed as ``summed_rates`` sums them: per bucket 0.0 plus each NIC's average in
    NIC order, stamped at the latest rate. NICs with the same buckets (the usual case) are added
    column by column with C-level passes."""
    if not nics:
        return ()
    keys = nics[0][0]
    if all(n[0] == keys for n in nics):
        totals = [0.0] * len(keys)
        for _, averages, _ in nics:
            totals = list(map(add, totals, averages))
        stamps = nics[0][2] if len(nics) == 1 else list(map(max, *(n[2] for n in nics)))
        return tuple(zip(stamps, totals))
    buckets: dict[int, float] = {}
    latest: dict[int, int] = {}
    for keys, averages, stamps in nics:
        for key, average, stamp in zip(keys, averages, stamps):
            buckets[key] = buckets.get(key, 0.0) + average
            latest[key] = max(latest.get(key, stamp), stamp)
    return tuple((latest[k], buckets[k]) for k in sorted(buckets))
