"""Per-minute rollups and the retention purge; both run as writer transactions.

Rollups cover every complete minute up to ``now``. The high-water mark lives in
``meta('rollup_done_until')``; each run re-does the last ``REDO_MINUTES`` before it so
samples that arrive a little late are counted. A run is idempotent (INSERT OR REPLACE).
Samples later than that window are not rolled up.
"""

from __future__ import annotations

import sqlite3

MINUTE_MS = 60_000
REDO_MINUTES = 5
_DONE_KEY = "rollup_done_until"


def rollup_window(conn: sqlite3.Connection, now: int) -> tuple[int, int] | None:
    """The [start, end) ms range the next rollup covers, or None when there is nothing to do."""
    end = now // MINUTE_MS * MINUTE_MS
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_DONE_KEY,)).fetchone()
    if row is not None:
        start = int(row[0]) - REDO_MINUTES * MINUTE_MS
    else:
        # Oldest sample, found per series through the primary key instead of a table scan.
        oldest = conn.execute("SELECT min((SELECT min(ts) FROM samples WHERE series_id = s.id))"
                              " FROM series s").fetchone()[0]
        if oldest is None:
            return None
        start = oldest // MINUTE_MS * MINUTE_MS
    return (start, end) if start < end else None


def rollup(conn: sqlite3.Connection, now: int) -> int:
    """Write rollups for complete minutes not yet done (plus the redo window); return rows written."""
    window = rollup_window(conn, now)
    if window is None:
        return 0
    start, end = window
    # CROSS JOIN keeps series as the outer loop, so samples are searched by primary key
    # range per series instead of scanned whole.
    cur = conn.execute(
        """INSERT OR REPLACE INTO rollups(series_id, minute, count, sum, min, max)
           SELECT x.series_id, (x.ts / ?1) * ?1 AS minute,
                  count(*), sum(x.value), min(x.value), max(x.value)
           FROM series s CROSS JOIN samples x
             ON x.series_id = s.id AND x.ts >= ?2 AND x.ts < ?3
           WHERE typeof(x.value) = 'real'
           GROUP BY x.series_id, minute""", (MINUTE_MS, start, end))
    written = cur.rowcount
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_DONE_KEY, str(end)))
    return written


def rollups(conn: sqlite3.Connection, series_id: int, start: int, end: int) -> list[tuple[int, int, float, float, float]]:
    """(minute_ts, count, sum, min, max) for minutes with start <= minute_ts <= end, ascending."""
    return conn.execute("SELECT minute, count, sum, min, max FROM rollups"
                        " WHERE series_id = ? AND minute BETWEEN ? AND ? ORDER BY minute",
                        (series_id, start, end)).fetchall()


def purge(conn: sqlite3.Connection, now: int, raw_retention_ms: int, rollup_retention_ms: int) -> tuple[int, int]:
    """Delete raw samples older than now - raw retention and rollups older than now - rollup
    retention (minute start before the cutoff); return (raw_deleted, rollups_deleted)."""
    raw = conn.execute("DELETE FROM samples WHERE series_id IN (SELECT id FROM series) AND ts < ?",
                       (now - raw_retention_ms,)).rowcount
    rolled = conn.execute("DELETE FROM rollups WHERE series_id IN (SELECT id FROM series)"
                          " AND minute < ?", (now - rollup_retention_ms,)).rowcount
    return raw, rolled
