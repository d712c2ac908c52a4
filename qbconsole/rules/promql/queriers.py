"""Where evaluation gets its samples: the Querier protocol, an in-memory querier for
tests and rule unit tests, and adapters over the metric store (one that reads every
window afresh, one that keeps them and reads only what is new)."""

from __future__ import annotations

import bisect
from typing import Iterable, Mapping, Protocol

from qbconsole.rules.promql.nodes import Matcher
from qbconsole.rules.promql.samplecache import KEEP_MS, SampleCache

SeriesData = list[tuple[dict[str, str], list[tuple[int, float]]]]


class Querier(Protocol):
    def select(self, name: str | None, matchers: list[Matcher], start_ms: int,
               end_ms: int) -> SeriesData:
        """Every series whose name is ``name`` (any name if None) and that all matchers
        accept (matchers may test ``__name__``), with its samples start_ms < ts <= end_ms
        ascending. Labels include ``"__name__": name``. Series with no sample in the
        window may be left out."""
        ...


def _accepts(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels.get(m.name, "")) for m in matchers)


def _window(points: list[tuple[int, float]], times: list[int], start_ms: int, end_ms: int):
    lo = bisect.bisect_right(times, start_ms)
    hi = bisect.bisect_right(times, end_ms)
    return points[lo:hi]


class MemoryQuerier:
    """Series held in memory: ``MemoryQuerier({("up", frozenset({("job", "a")})): [(ts, v), ...]})``
    or built up with :meth:`add`. Samples are kept sorted by time."""

    def __init__(self, series: Mapping[tuple[str, frozenset], Iterable[tuple[int, float]]] | None = None) -> None:
        self._by_name: dict[str, list[tuple[dict[str, str], list, list[int]]]] = {}
        for (name, labels), points in (series or {}).items():
            self.add(name, dict(labels), points)

    def add(self, name: str, labels: Mapping[str, str], points: Iterable[tuple[int, float]]) -> None:
        """Add samples to the series ``name{labels}`` (created when new)."""
        full = {k: v for k, v in labels.items() if v != "" and k != "__name__"}
        full["__name__"] = name
        entries = self._by_name.setdefault(name, [])
        for existing, pts, times in entries:
            if existing == full:
                break
        else:
            pts, times = [], []
            entries.append((full, pts, times))
        merged = dict(pts)
        merged.update((int(t), float(v)) for t, v in points)
        pts[:] = sorted(merged.items())
        times[:] = [t for t, _ in pts]

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def select(self, name, matchers, start_ms, end_ms) -> SeriesData:
        names = [name] if name is not None else list(self._by_name)
        out: SeriesData = []
        for n in names:
            for labels, pts, times in self._by_name.get(n, ()):
                if _accepts(matchers, labels):
                    window = _window(pts, times, start_ms, end_ms)
                    if window:
                        out.append((labels, window))
        return out


def _split(matchers: list[Matcher]) -> tuple[dict[str, str], list[Matcher], list[Matcher]]:
    """(equality matchers the store can apply, the other label matchers, ``__name__`` matchers)."""
    equal = {m.name: m.value for m in matchers
             if m.op == "=" and m.value != "" and m.name != "__name__"}
    rest = [m for m in matchers if m.name == "__name__" or m.op != "=" or m.value == ""]
    return equal, rest, [m for m in matchers if m.name == "__name__"]


class StoreQuerier:
    """Reads from the metric store (``qbconsole.store.Store``): equality matchers are
    pushed down to ``store.select``; the others are applied here."""

    def __init__(self, store) -> None:
        self.store = store

    def _names(self, name: str | None, by_name: list[Matcher]) -> list[str]:
        names = [name] if name is not None else self.store.names()
        return [n for n in names if all(m.matches(n) for m in by_name)]

    def select(self, name, matchers, start_ms, end_ms) -> SeriesData:
        equal, rest, by_name = _split(matchers)
        out: SeriesData = []
        for n in self._names(name, by_name):
            # The store's window is closed, [start, end]; ours excludes start.
            for info, points in self.store.select(n, start_ms + 1, end_ms, labels=equal or None):
                labels = {k: v for k, v in info.labels.items() if v != ""}
                labels["__name__"] = info.name
                if points and _accepts(rest, labels):
                    out.append((labels, points))
        return out


class CachedStoreQuerier(StoreQuerier):
    """A StoreQuerier that keeps the windows it has read (:class:`SampleCache`) and then
    reads only what is new, with exactly the same answers. For one thread (the rules
    engine's); call :meth:`new_tick` once per evaluation round, and after writing samples
    at or before a time already evaluated, so that changes are looked for."""

    def __init__(self, store, *, keep_ms: int = KEEP_MS) -> None:
        super().__init__(store)
        self.cache = SampleCache(store, keep_ms=keep_ms)

    def new_tick(self) -> None:
        self.cache.new_tick()

    def close(self) -> None:
        self.cache.close()

    def select(self, name, matchers, start_ms, end_ms) -> SeriesData:
        equal, rest, by_name = _split(matchers)
        out: SeriesData = []
        for n in self._names(name, by_name):
            for info, labels, points in self.cache.select(n, start_ms, end_ms):
                if equal and not all(info.labels.get(k) == v for k, v in equal.items()):
                    continue
                if _accepts(rest, labels):
                    out.append((labels, points))
        return out
