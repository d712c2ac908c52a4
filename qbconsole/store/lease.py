"""The agent lease (one row, id = 1) and the per-source scrape status.

Lease functions run inside a writer transaction (BEGIN IMMEDIATE), so the read and the
update they make are atomic across processes. Times are integer ms UTC.
"""

from __future__ import annotations

import sqlite3

from qbconsole.store.records import LeaseInfo, SourceStatus


def _current(conn: sqlite3.Connection) -> LeaseInfo | None:
    row = conn.execute("SELECT holder, acquired, heartbeat, expires FROM lease WHERE id = 1").fetchone()
    return LeaseInfo(*row) if row else None


def acquire(conn: sqlite3.Connection, holder: str, ttl_ms: int, now: int) -> bool:
    """Take the lease if it is free, expired or already ours (then it is renewed)."""
    cur = _current(conn)
    if cur is not None and cur.holder != holder and cur.expires > now:
        return False
    keep_since = cur is not None and cur.holder == holder and cur.expires > now
    acquired = cur.acquired if keep_since else now
    conn.execute("INSERT OR REPLACE INTO lease(id, holder, acquired, heartbeat, expires)"
                 " VALUES (1, ?, ?, ?, ?)", (holder, acquired, now, now + ttl_ms))
    return True


def renew(conn: sqlite3.Connection, holder: str, ttl_ms: int, now: int) -> bool:
    """Push our lease's expiry to now + ttl. False when the row is not ours (taken or released)."""
    cur = conn.execute("UPDATE lease SET heartbeat = ?, expires = ? WHERE id = 1 AND holder = ?",
                       (now, now + ttl_ms, holder))
    return cur.rowcount == 1


def release(conn: sqlite3.Connection, holder: str) -> None:
    """Give the lease up if we hold it; a lease held by someone else is left alone."""
    conn.execute("DELETE FROM lease WHERE id = 1 AND holder = ?", (holder,))


def info(conn: sqlite3.Connection) -> LeaseInfo | None:
    """The lease row as it stands (it may be expired: compare ``expires`` with the clock)."""
    return _current(conn)


def set_source_status(conn: sqlite3.Connection, st: SourceStatus) -> None:
    conn.execute("INSERT OR REPLACE INTO source_status(name, up, last_ts, duration_s, last_error)"
                 " VALUES (?, ?, ?, ?, ?)",
                 (st.name, int(bool(st.up)), st.last_ts, st.duration_s, st.last_error))


def source_statuses(conn: sqlite3.Connection) -> list[SourceStatus]:
    rows = conn.execute("SELECT name, up, last_ts, duration_s, last_error FROM source_status"
                        " ORDER BY name")
    return [SourceStatus(name, bool(up), last_ts, duration_s, err)
            for name, up, last_ts, duration_s, err in rows]

