"""The scratch store of a report on Prometheus: rollups for whole final minutes, raw samples on read.

:class:`ScratchStore` is a temporary :class:`~qbconsole.store.Store` over ``[lo, hi]`` (the
window, the previous period and the counter look-back) that fills itself one metric name at a
time, the first time the report asks for the name:

* the per-minute count/sum/min/max of every whole minute in ``[lo, final_until)`` come from
  Prometheus's ``*_over_time`` over ``[59999ms]`` at minute ends (:meth:`PrometheusReader.name_rollups`)
  — the store's own buckets, so the report's rollup reads are exact without the raw samples;
* the raw samples of the partial minute at ``lo`` and of the unfinished minutes from
  ``final_until`` on are fetched with them (the report reads those raw, as the local store does);
* any other raw samples only when a query reads them: the report's connection
  (:meth:`ScratchStore.read`) fetches, before a statement that reads the ``samples`` table,
  the raw samples of the names of the series ids among its parameters, over the span its
  timestamp parameters bound (the whole range when it has fewer than two), unless already fetched.
  Percentiles, share-above-threshold and late-arriving event series read the whole window raw;
  the edges of each window a few minutes. A name whose rollups hold a NaN (Prometheus counts
  NaN, the store skips it) is read raw and rolled up here instead, and so is a name with fewer
  than ``RAW_BELOW`` samples a minute in its last ``PROBE_MINUTES`` final minutes: a rollup row
  (four values) costs Prometheus and the wire about as much as four raw samples.

The contract this puts on report code: a statement that reads ``samples`` passes its series
ids and its time bounds as parameters (not computed in SQL, e.g. ``ts > ? - 300000``), or
reads a name's whole range. A query that breaks it would read samples that were never
fetched; ``tests/test_prometheus_reports.py`` compares whole reports on both backends, figure
for figure, to catch that.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Mapping

from qbconsole.model import Sample
from qbconsole.report.window import MINUTE
from qbconsole.store import SeriesInfo, Store, maintenance
from qbconsole.store.writer import canonical_labels

SETTLE_MS = 30_000  # a scrape lands within its timeout (10 s by default); after this a minute is final
_DONE_KEY = "rollup_done_until"  # maintenance's high-water mark: Window reads what is final from it
PROBE_MINUTES = 10  # the final minutes whose samples per minute decide: rollups or raw samples
RAW_BELOW = 4.0  # samples per minute below which a name's raw samples are fetched and rolled up here
_READS_SAMPLES = re.compile(r"\b(?:from|join)\s+samples\b", re.IGNORECASE)


def final_until(end_ms: int, now_ms: int) -> int:
    """Minutes starting before this are complete on Prometheus (rolled up); later ones are read raw."""
    return min(end_ms + 1, now_ms - SETTLE_MS) // MINUTE * MINUTE


def roll_up(conn, name: str, lo: int, until: int) -> int:
    """Per-minute count/sum/min/max of ``name``'s raw samples for the whole minutes in ``[lo, until)``
    (as ``maintenance.rollup`` writes them, limited to one name); returns rows written."""
    first = -(-lo // MINUTE) * MINUTE  # a minute cut by ``lo`` is not complete here
    if first >= until:
        return 0
    return conn.execute(
        """INSERT OR REPLACE INTO rollups(series_id, minute, count, sum, min, max)
           SELECT x.series_id, (x.ts / ?1) * ?1 AS minute, count(*), sum(x.value), min(x.value), max(x.value)
           FROM series s CROSS JOIN samples x ON x.series_id = s.id AND x.ts >= ?2 AND x.ts < ?3
           WHERE s.name = ?4 AND typeof(x.value) = 'real'
           GROUP BY x.series_id, minute""", (MINUTE, first, until, name)).rowcount


class Spans:
    """Disjoint inclusive integer spans ``[a, b]``, ascending: what was fetched of one name."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int]] = []

    def missing(self, a: int, b: int) -> list[tuple[int, int]]:
        """The parts of ``[a, b]`` not covered yet, ascending."""
        out = []
        for lo, hi in self.spans:
            if hi < a or lo > b:
                continue
            if lo > a:
                out.append((a, lo - 1))
            a = max(a, hi + 1)
        if a <= b:
            out.append((a, b))
        return out

    def add(self, a: int, b: int) -> None:
        merged = []
        for lo, hi in sorted(self.spans + [(a, b)]):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self.spans = merged


class RawOnRead:
    """A read connection that has the scratch store fetch the raw samples a statement reads first."""

    def __init__(self, conn, scratch: "ScratchStore") -> None:
        self._conn, self._scratch = conn, scratch

    def execute(self, sql: str, params=()):
        if _READS_SAMPLES.search(sql):
            self._scratch.before_raw_read(params.values() if isinstance(params, Mapping) else params)
        return self._conn.execute(sql, params)

    def __getattr__(self, attr: str):
        return getattr(self._conn, attr)


class ScratchStore:
    """A temporary store over ``[lo, hi]`` filled from Prometheus on demand (see the module
    docstring); the report's reads (``read``, ``names``, ``series``, ``select``,
    ``raw_retention_ms``) are the :class:`Store`'s.

    ``reader`` is a :class:`qbconsole.datasource.reader.PrometheusReader` (``names()``,
    ``samples(name, start, end)``, ``name_rollups(name, start, end)``). ``samples_fetched`` and
    ``rollup_rows_fetched`` count what was read from it. Use from one thread; close to delete the files."""

    def __init__(self, reader, lo: int, hi: int, now_ms: int, directory: str | None = None) -> None:
        self.reader, self.lo, self.hi = reader, int(lo), int(hi)
        self.final_until = final_until(self.hi, now_ms)
        self._names: list[str] | None = None
        self._fetched: set[str] = set()
        self._absent: set[str] = set()  # asked for, but Prometheus has no such name
        self._raw: dict[str, Spans] = {}  # per name: the spans whose raw samples are here
        self._sid_names: dict[int, str] = {}
        self._lock = threading.RLock()
        self.samples_fetched = self.rollup_rows_fetched = 0
        self._dir = tempfile.mkdtemp(prefix="qbconsole-report-", dir=directory)
        try:
            self.store = self._open_store(now_ms)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)  # no caller holds it to close
            raise
        self.raw_retention_ms = self.store.raw_retention_ms

    def _open_store(self, now_ms: int) -> Store:
        # Prometheus keeps raw samples for its whole retention: nothing in the window is purged.
        store = Store.open(Path(self._dir) / "scratch.db", raw_retention_s=(now_ms - self.lo) / 1000 + 86400)
        done = self.final_until + maintenance.REDO_MINUTES * MINUTE  # Window: final = done - redo
        try:
            store.transaction(lambda conn: conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_DONE_KEY, str(done))))
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "ScratchStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the Store's read API, filled on demand ---------------------------------------------
    def read(self) -> RawOnRead:
        return RawOnRead(self.store.read(), self)

    def names(self) -> list[str]:
        """Every metric name Prometheus has (fetched once; their samples only when asked for)."""
        if self._names is None:
            self._names = sorted(self.reader.names())
        return list(self._names)

    def series(self, name: str | None = None, labels: Mapping[str, str] | None = None) -> list[SeriesInfo]:
        for n in ([name] if name is not None else self.names()):
            self.fetch(n)
        return self.store.series(name, labels)

    def select(self, name: str, start: int, end: int, labels: Mapping[str, str] | None = None):
        self.fetch(name)
        self.raw(name, start, end)
        return self.store.select(name, start, end, labels)

    @property
    def fetched(self) -> list[str]:
        """The names fetched so far (names Prometheus lacks are not asked for), sorted."""
        return sorted(self._fetched)

    # ---- materialisation ---------------------------------------------------------------------
    def fetch(self, name: str) -> int:
        """Fill ``name`` (once): the rollups of its whole final minutes and the raw samples of
        the edges (see the module docstring); returns the rollup rows and samples written."""
        with self._lock:
            if name in self._fetched or name in self._absent:
                return 0
            if name not in self.names():  # one request for every name instead of one per unknown name
                self._absent.add(name)
                return 0
            first = -(-self.lo // MINUTE) * MINUTE
            written = self.raw(name, self.lo, min(first, self.final_until) - 1)
            written += self.raw(name, max(first, self.final_until), self.hi)
            if first < self.final_until:
                written += self._rollups(name, first)
            self._fetched.add(name)  # only when complete: a failed fetch is tried again (idempotent)
            return written

    def _rollups(self, name: str, first: int) -> int:
        # A rollup row costs about RAW_BELOW raw samples to fetch: at fewer samples a minute
        # (scrapes 15 s apart or more) the raw samples are cheaper. The last minutes tell.
        probe_lo = max(first, self.final_until - PROBE_MINUTES * MINUTE)
        probe = self.reader.name_rollups(name, probe_lo, self.final_until - 1)
        rows_seen = sum(len(rows) for _, rows in probe)
        if rows_seen and sum(r[1] for _, rows in probe for r in rows) < RAW_BELOW * rows_seen:
            self.rollup_rows_fetched += rows_seen
            return self._roll_up_here(name)
        found: dict[int, tuple[SeriesInfo, list[tuple]]] = {}  # by the reader's series id
        for info, rows in (self.reader.name_rollups(name, first, probe_lo - 1) if probe_lo > first else []) + probe:
            found[info.id] = (info, found.get(info.id, (info, []))[1] + rows)
        if any(r[2] != r[2] or r[3] != r[3] or r[4] != r[4] for _, rows in found.values() for r in rows):
            return self._roll_up_here(name)  # NaN: Prometheus counted it, the store skips it

        def insert(conn) -> int:
            n = 0
            for info, rows in found.values():
                conn.execute("INSERT OR IGNORE INTO series(name, labels) VALUES (?, ?)",
                             (name, canonical_labels(info.labels)))
                sid = conn.execute("SELECT id FROM series WHERE name = ? AND labels = ?",
                                   (name, canonical_labels(info.labels))).fetchone()[0]
                conn.executemany("INSERT OR REPLACE INTO rollups(series_id, minute, count, sum, min, max)"
                                 " VALUES (?, ?, ?, ?, ?, ?)", [(sid, *row) for row in rows])
                n += len(rows)
            return n

        written = self.store.transaction(insert)
        self.rollup_rows_fetched += written
        self._know(name)
        return written

    def _roll_up_here(self, name: str) -> int:
        written = self.raw(name, self.lo, self.hi)

        def redo(conn) -> int:
            conn.execute("DELETE FROM rollups WHERE series_id IN (SELECT id FROM series WHERE name = ?)", (name,))
            return roll_up(conn, name, self.lo, self.final_until)

        self.store.transaction(redo)
        return written

    def raw(self, name: str, start: int, end: int) -> int:
        """Fetch ``name``'s raw samples in ``[start, end]`` (clipped to the store's range) that
        are not here yet; returns the samples written."""
        with self._lock:
            spans = self._raw.setdefault(name, Spans())
            written = 0
            for a, b in spans.missing(max(start, self.lo), min(end, self.hi)):
                batch = [Sample(name, {k: v for k, v in info.labels.items() if k != "__name__"}, ts, value)
                         for info, points in self.reader.samples(name, a, b) for ts, value in points]
                if batch:
                    self.store.write(batch)
                spans.add(a, b)
                written += len(batch)
            if written:
                self.samples_fetched += written
                self._know(name)
            return written

    def _know(self, name: str) -> None:
        for info in self.store.series(name):
            self._sid_names[info.id] = name

    def before_raw_read(self, params) -> None:
        """A statement reads raw samples with these parameters: fetch them first. Its series
        are the parameters that are series ids here (none: every fetched name), its span the
        parameters within a minute of the store's range (fewer than two: all of it)."""
        ints = [p for p in params if isinstance(p, int) and not isinstance(p, bool)]
        times = [p for p in ints if self.lo - MINUTE <= p <= self.hi + MINUTE]
        names = {self._sid_names[p] for p in ints if p in self._sid_names} or set(self._fetched)
        start, end = (min(times), max(times)) if len(times) >= 2 else (self.lo, self.hi)
        for name in sorted(names):
            self.raw(name, start, end)
