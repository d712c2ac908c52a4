"""The store's single writer: one thread per Store, fed by a queue, one transaction per job.

Jobs are callables taking the write connection; the writer wraps each in
``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` and re-raise through the future on error).
Sample batches go through :class:`SeriesIds`, which maps (name, labels) to series ids.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from concurrent.futures import Future
from typing import Any, Callable, Iterable, Mapping

from qbconsole.model import Sample, canonical_labels
from qbconsole.store.queries import log_inserts, prepare_watch
from qbconsole.store.records import encode_nan

_STOP = object()
log = logging.getLogger(__name__)


class StoreClosed(RuntimeError):
    """The store was closed; no more writes are accepted."""


class SeriesIds:
    """Cache of (name, label items) -> series id, owned by the writer thread.

    The key is ``(name, tuple(labels.items()))``: cheap to build, and although it depends
    on the labels' insertion order, every order of one label set resolves (through the
    canonical JSON) to the same id, so the worst case is a few extra cache entries.
    Unknown series are inserted inside the caller's transaction; ids added during a
    transaction that rolls back are forgotten again (see :meth:`rollback`).
    """

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}
        self._added: list[tuple] = []

    def resolve(self, conn: sqlite3.Connection, name: str, labels: Mapping[str, str]) -> int:
        """Return the id of ``name{labels}``, inserting the series when it is new."""
        key = (name, tuple(labels.items()))
        sid = self._ids.get(key)
        if sid is None:
            text = canonical_labels(labels)
            conn.execute("INSERT OR IGNORE INTO series(name, labels) VALUES (?, ?)", (name, text))
            sid = conn.execute("SELECT id FROM series WHERE name = ? AND labels = ?",
                               (name, text)).fetchone()[0]
            self._ids[key] = sid
            self._added.append(key)
        return sid

    def commit(self) -> None:
        self._added.clear()

    def rollback(self) -> None:
        for key in self._added:
            self._ids.pop(key, None)
        self._added.clear()

    def rows(self, conn: sqlite3.Connection, batch: list[Sample]) -> list[tuple]:
        """(series_id, ts, stored value) per sample: the hot path of every write.

        One list comprehension, no per-sample function call on the common path: a cache
        miss falls through ``or`` to :meth:`resolve` (ids are >= 1), a NaN to ``encode_nan``.
        """
        get = self._ids.get
        resolve = self.resolve
        return [(get((n, tuple(lab.items()))) or resolve(conn, n, lab), t,
                 v if v == v else encode_nan(v))
                for n, lab, t, v in batch]


def insert_samples(conn: sqlite3.Connection, ids: SeriesIds, batch: list[Sample]) -> int:
    """Insert a batch (last write wins on duplicate (series, ts)); return how many samples.

    On the writer connection, where incremental readers' watch log lives (``queries.log_inserts``)."""
    rows = ids.rows(conn, batch)
    conn.executemany("INSERT OR REPLACE INTO samples(series_id, ts, value) VALUES (?, ?, ?)", rows)
    log_inserts(conn, rows)
    return len(batch)


class Writer:
    """Owns the write connection and the thread that uses it."""

    def __init__(self, conn: sqlite3.Connection, name: str = "qbconsole-store-writer") -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self.series_ids = SeriesIds()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[sqlite3.Connection], Any]) -> Future:
        """Queue ``fn(conn)`` to run in one transaction in the writer thread."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("store write from inside a store transaction would deadlock;"
                               " use the connection you were given")
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise StoreClosed("the store is closed")
            self._queue.put((fn, future))
        return future

    def submit_samples(self, samples: Iterable[Sample],
                       also: Callable[[sqlite3.Connection], Any] | None = None) -> Future:
        """Queue a sample batch, and ``also(conn)`` in the same transaction if given; the
        future's result is the number of samples written."""
        batch = samples if isinstance(samples, list) else list(samples)
        ids = self.series_ids
        if also is None:
            return self.submit(lambda conn: insert_samples(conn, ids, batch))

        def job(conn: sqlite3.Connection) -> int:
            written = insert_samples(conn, ids, batch)
            also(conn)
            return written
        return self.submit(job)

    def close(self) -> None:
        """Finish the queued jobs, stop the thread and close the write connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        conn = self._conn
        try:
            try:
                prepare_watch(conn)
            except sqlite3.Error as exc:  # only incremental readers need it; they create it again
                log.warning("store: cannot create the watch log on the writer connection: %s", exc)
            while True:
                job = self._queue.get()
                if job is _STOP:
                    return
                fn, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        result = fn(conn)
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        self.series_ids.rollback()
                        raise
                    self.series_ids.commit()
                except BaseException as exc:  # handed to the caller through the future
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        finally:
            conn.close()
