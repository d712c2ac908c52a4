"""The SQLite metric store (DESIGN.md section 4): one file, WAL, one writer thread per Store.

Writes go through a queue to the writer thread, one transaction per call. Reads use a
connection per calling thread (``threading.local``), so any thread may read at any time,
and readers in other processes see each commit as it lands.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from concurrent.futures import Future
from pathlib import Path
from typing import Callable, Iterable, Mapping, TypeVar

from qbconsole.model import Sample
from qbconsole.store import lease, maintenance, queries, schema
from qbconsole.store.records import LeaseInfo, Point, SeriesInfo, SourceStatus
from qbconsole.store.writer import StoreClosed, Writer

__all__ = ["Store", "SeriesInfo", "Point", "LeaseInfo", "SourceStatus", "StoreClosed"]

T = TypeVar("T")


class _ReadSlot:
    """Holds one thread's read connection; weakly tracked so a finished thread's slot
    (and with it the connection) is freed, while close() can still reach live ones."""

    __slots__ = ("conn", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Store:
    """A metric store on one SQLite file. Open with :meth:`Store.open`; close when done."""

    def __init__(self, path: Path, writer: Writer, raw_retention_s: float,
                 rollup_retention_s: float) -> None:
        self.path = path
        self.raw_retention_ms = int(raw_retention_s * 1000)
        self.rollup_retention_ms = int(rollup_retention_s * 1000)
        self._writer = writer
        self._local = threading.local()
        self._readers: weakref.WeakSet[_ReadSlot] = weakref.WeakSet()
        self._readers_lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, path: str | os.PathLike, *, raw_retention_s: float = 7 * 86400,
             rollup_retention_s: float = 90 * 86400) -> "Store":
        """Open (creating with mode 0600) and migrate the store at ``path``."""
        path = Path(path)
        schema.create_private_file(path)
        conn = schema.connect(path)
        try:
            schema.migrate(conn)
            schema.restrict_side_files(path)
        except BaseException:
            conn.close()
            raise
        return cls(path, Writer(conn), raw_retention_s, rollup_retention_s)

    def close(self) -> None:
        """Finish queued writes, stop the writer and close every read connection."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with self._readers_lock:
            readers = list(self._readers)
            self._readers.clear()
        for slot in readers:
            slot.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- writes (all through the one writer thread)

    def write(self, samples: Iterable[Sample]) -> int:
        """Write a batch in one transaction; blocks until committed. Returns the sample count.

        ``ts`` must be an int (ms UTC) and ``value`` a number; a later sample with the same
        series and ts replaces the earlier one.
        """
        return self._writer.submit_samples(samples).result()

    def write_nowait(self, samples: Iterable[Sample]) -> Future[int]:
        """Queue a batch (materialised now) and return a future of its sample count."""
        return self._writer.submit_samples(samples)

    def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in the writer thread in one transaction; return its result.

        An exception in ``fn`` rolls the transaction back and is re-raised here.
        """
        return self._writer.submit(fn).result()

    # ---- reads (this thread's own connection)

    def read(self) -> sqlite3.Connection:
        """This thread's read-only connection (autocommit; each statement sees the latest commit)."""
        slot = getattr(self._local, "slot", None)
        if slot is None:
            if self._closed:
                raise StoreClosed("the store is closed")
            slot = _ReadSlot(schema.connect(self.path, query_only=True))
            with self._readers_lock:
                self._readers.add(slot)
            self._local.slot = slot
        return slot.conn

    def names(self) -> list[str]:
        return queries.names(self.read())

    def series(self, name: str | None = None, labels: Mapping[str, str] | None = None) -> list[SeriesInfo]:
        return queries.series(self.read(), name, labels)

    def latest(self, name: str | None = None, labels: Mapping[str, str] | None = None) -> list[Point]:
        return queries.latest(self.read(), name, labels)

    def range(self, series_id: int, start: int, end: int) -> list[tuple[int, float]]:
        return queries.range_(self.read(), series_id, start, end)

    def select(self, name: str, start: int, end: int,
               labels: Mapping[str, str] | None = None) -> list[tuple[SeriesInfo, list[tuple[int, float]]]]:
        return queries.select(self.read(), name, start, end, labels)

    def quantile(self, series_id: int, start: int, end: int, q: float) -> float | None:
        return queries.quantile(self.read(), series_id, start, end, q)

    def rollups(self, series_id: int, start: int, end: int) -> list[tuple[int, int, float, float, float]]:
        return maintenance.rollups(self.read(), series_id, start, end)

    # ---- maintenance

    def rollup(self, now: int) -> int:
        """Roll up complete minutes not yet done (re-doing the last few); returns rows written."""
        return self.transaction(lambda conn: maintenance.rollup(conn, now))

    def purge(self, now: int) -> tuple[int, int]:
        """Apply both retentions; returns (raw_deleted, rollups_deleted). Run rollup() first."""
        return self.transaction(lambda conn: maintenance.purge(
            conn, now, self.raw_retention_ms, self.rollup_retention_ms))

    # ---- lease and source status

    def lease_acquire(self, holder: str, ttl_ms: int, now: int | None = None) -> bool:
        t = _now_ms() if now is None else now
        return self.transaction(lambda conn: lease.acquire(conn, holder, ttl_ms, t))

    def lease_renew(self, holder: str, ttl_ms: int, now: int | None = None) -> bool:
        t = _now_ms() if now is None else now
        return self.transaction(lambda conn: lease.renew(conn, holder, ttl_ms, t))

    def lease_release(self, holder: str) -> None:
        self.transaction(lambda conn: lease.release(conn, holder))

    def lease_info(self) -> LeaseInfo | None:
        return lease.info(self.read())

    def set_source_status(self, st: SourceStatus) -> None:
        self.transaction(lambda conn: lease.set_source_status(conn, st))

    def write_run(self, samples: Iterable[Sample], status: SourceStatus) -> int:
        """A source run's samples and its status, in one transaction (one commit a run
        instead of two); blocks until committed. Returns the sample count."""
        return self._writer.submit_samples(samples, lambda conn: lease.set_source_status(conn, status)).result()

    def source_statuses(self) -> list[SourceStatus]:
        return lease.source_statuses(self.read())
