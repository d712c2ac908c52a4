"""Reports on a Prometheus datasource: the same report code, over a scratch store filled from Prometheus.

With ``datasource: {kind: prometheus}`` the local store holds only qbconsole's own state
(alerts, acks, proposals...), not metrics. :func:`build_remote_report` opens a temporary
:class:`~qbconsole.store.Store` (deleted afterwards), copies the window's alerts and
acknowledgements into it, and runs the unchanged :func:`~qbconsole.report.build.build_report`
on it. The store fills itself one metric name at a time, the first time the report asks for
that name (:class:`ScratchStore`): Prometheus's raw samples of the name over the window, the
previous period and the counter look-back before it, then the per-minute rollups of those
samples, written the way ``store/maintenance.py`` writes them. So both backends compute every
figure with the same code (rollups where exact, raw samples where needed) and agree, and only
the names the report reads are fetched.

A minute is final once Prometheus has taken its last scrape: minutes that end ``SETTLE_MS``
before now (and before the window's end) are rolled up; the rest is read raw, as the local
store does with its unfinished minutes.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Mapping

from qbconsole.model import Sample
from qbconsole.report.build import Report, build_report
from qbconsole.report.window import COUNTER_LOOKBACK_MS, MINUTE
from qbconsole.store import SeriesInfo, Store, maintenance

SETTLE_MS = 30_000  # a scrape lands within its timeout (10 s by default); after this a minute is final
_DONE_KEY = "rollup_done_until"  # maintenance's high-water mark: Window reads what is final from it
_ALERT_TABLES = ("alerts", "alert_events")


def fetch_range(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The samples a report over ``(start, end]`` reads: ``[lo, hi]`` (both inclusive) — the
    window, the previous period of equal length and a counter's baseline look-back before it."""
    return start_ms - (end_ms - start_ms) - COUNTER_LOOKBACK_MS, end_ms


def final_until(end_ms: int, now_ms: int) -> int:
    """Minutes starting before this are complete on Prometheus (rolled up); later ones are read raw."""
    return min(end_ms + 1, now_ms - SETTLE_MS) // MINUTE * MINUTE


class ScratchStore:
    """A temporary store over ``[lo, hi]`` that fetches a metric name from Prometheus the first
    time it is asked for (``series``/``select``); the report's reads (``read``, ``names``,
    ``series``, ``select``, ``raw_retention_ms``) are the :class:`Store`'s.

    ``reader`` is a :class:`qbconsole.datasource.reader.PrometheusReader` (``names()``,
    ``select(name, start_ms, end_ms)``). Use from one thread; close to delete the files."""

    def __init__(self, reader, lo: int, hi: int, now_ms: int, directory: str | None = None) -> None:
        self.reader, self.lo, self.hi = reader, int(lo), int(hi)
        self.final_until = final_until(self.hi, now_ms)
        self._names: list[str] | None = None
        self._fetched: set[str] = set()
        self._absent: set[str] = set()  # asked for, but Prometheus has no such name
        self._lock = threading.RLock()
        self.samples_fetched = 0
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
    def read(self):
        return self.store.read()

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
        return self.store.select(name, start, end, labels)

    @property
    def fetched(self) -> list[str]:
        """The names whose samples were fetched so far (names Prometheus lacks are not asked for), sorted."""
        return sorted(self._fetched)

    # ---- materialisation ---------------------------------------------------------------------
    def fetch(self, name: str) -> int:
        """Copy ``name``'s samples in ``[lo, hi]`` from Prometheus and roll up its final minutes
        (once per name); returns the samples written."""
        with self._lock:
            if name in self._fetched or name in self._absent:
                return 0
            if name not in self.names():  # one request for every name instead of one per unknown name
                self._absent.add(name)
                return 0
            batch = [Sample(name, labels, ts, value)
                     for labels, points in self._remote(name) for ts, value in points]
            if batch:
                self.store.write(batch)
                self.store.transaction(lambda conn: roll_up(conn, name, self.lo, self.final_until))
            self._fetched.add(name)
            self.samples_fetched += len(batch)
            return len(batch)

    def _remote(self, name: str) -> list[tuple[dict[str, str], list[tuple[int, float]]]]:
        out = []
        for info, points in self.reader.select(name, self.lo, self.hi):
            labels = getattr(info, "labels", info)
            out.append(({k: v for k, v in labels.items() if k != "__name__"}, points))
        return out


def roll_up(conn, name: str, lo: int, until: int) -> int:
    """Per-minute count/sum/min/max of ``name``'s series for the whole minutes in ``[lo, until)``
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


def copy_alerts(source: Store, target: Store, lo: int, hi: int) -> int:
    """Copy the alerts that fired before ``hi`` and were not resolved before ``lo``, with their
    events, from ``source`` (the local store) to ``target``; returns the alerts copied."""
    conn = source.read()
    alerts = conn.execute("SELECT * FROM alerts WHERE fired_at IS NOT NULL AND fired_at <= ?"
                          " AND (resolved_at IS NULL OR resolved_at > ?)", (hi, lo))
    alert_cols = [d[0] for d in alerts.description]
    alert_rows = alerts.fetchall()
    ids = [row[0] for row in alert_rows]
    event_rows, event_cols = [], []
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        cur = conn.execute(f"SELECT * FROM alert_events WHERE alert_id IN ({','.join('?' * len(part))})", part)
        event_cols = [d[0] for d in cur.description]
        event_rows += cur.fetchall()

    def insert(tx) -> None:
        for table, cols, rows in (("alerts", alert_cols, alert_rows), ("alert_events", event_cols, event_rows)):
            if rows:
                tx.executemany(f"INSERT INTO {table}({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", rows)

    target.transaction(insert)
    return len(alert_rows)


def build_remote_report(reader, local: Store | None, config, start_ms: int, end_ms: int, *,
                        now_ms: int | None = None, directory: str | None = None) -> Report:
    """The report for ``(start, end]`` with metrics from Prometheus (``reader``) and incidents
    from the local store (``local``; None: no incidents). The same :func:`build_report` computes
    it, over a :class:`ScratchStore` that is deleted before this returns."""
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    lo, hi = fetch_range(int(start_ms), int(end_ms))
    with ScratchStore(reader, lo, hi, now, directory) as scratch:
        if local is not None:
            copy_alerts(local, scratch.store, lo, hi)
        return build_report(scratch, config, start_ms, end_ms, now_ms=now)
