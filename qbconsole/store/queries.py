"""Read queries over a connection: series lookup, latest values, ranges, exact quantiles.

Every function takes the caller's own read connection (never shared across threads).
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Mapping

from qbconsole.store.records import Point, SeriesInfo, decode_points, decode_value

# typeof(value) = 'real' keeps ordinary values and drops NULL (stale) and 'NaN' text.
_IS_NUMBER = "typeof(value) = 'real'"


def _matches(labels: dict[str, str], wanted: Mapping[str, str] | None) -> bool:
    return not wanted or all(labels.get(k) == v for k, v in wanted.items())


def names(conn: sqlite3.Connection) -> list[str]:
    """Distinct metric names, sorted."""
    return [r[0] for r in conn.execute("SELECT DISTINCT name FROM series ORDER BY name")]


def series(conn: sqlite3.Connection, name: str | None = None,
           labels: Mapping[str, str] | None = None) -> list[SeriesInfo]:
    """Series with this name (any if None) whose labels include ``labels``; ordered by id."""
    if name is None:
        rows = conn.execute("SELECT id, name, labels FROM series ORDER BY id")
    else:
        rows = conn.execute("SELECT id, name, labels FROM series WHERE name = ? ORDER BY id",
                            (name,))
    found = []
    for sid, sname, text in rows:
        parsed = json.loads(text)
        if _matches(parsed, labels):
            found.append(SeriesInfo(sid, sname, parsed))
    return found


def latest(conn: sqlite3.Connection, name: str | None = None,
           labels: Mapping[str, str] | None = None) -> list[Point]:
    """The newest sample of each matching series (a staleness marker comes back as STALE_NAN)."""
    where, params = ("", ()) if name is None else ("WHERE s.name = ?", (name,))
    rows = conn.execute(
        f"""SELECT s.id, s.name, s.labels, x.ts, x.value
            FROM series s
            JOIN samples x ON x.series_id = s.id
             AND x.ts = (SELECT max(ts) FROM samples WHERE series_id = s.id)
            {where} ORDER BY s.id""", params)
    points = []
    for sid, sname, text, ts, value in rows:
        parsed = json.loads(text)
        if _matches(parsed, labels):
            points.append(Point(SeriesInfo(sid, sname, parsed), ts, decode_value(value)))
    return points


def range_(conn: sqlite3.Connection, series_id: int, start: int, end: int) -> list[tuple[int, float]]:
    """(ts, value) with start <= ts <= end, ascending."""
    rows = conn.execute("SELECT ts, value FROM samples WHERE series_id = ? AND ts BETWEEN ? AND ?"
                        " ORDER BY ts", (series_id, start, end)).fetchall()
    return decode_points(rows)


def select(conn: sqlite3.Connection, name: str, start: int, end: int,
           labels: Mapping[str, str] | None = None) -> list[tuple[SeriesInfo, list[tuple[int, float]]]]:
    """Every matching series with its points in [start, end] (ascending), in one query.

    The join walks the primary key (series_id, ts) once per series, so one statement
    does what a query per series would, without the per-query overhead.
    """
    wanted = {s.id: s for s in series(conn, name, labels)}
    if not wanted:
        return []
    points: dict[int, list] = {sid: [] for sid in wanted}
    rows = conn.execute(
        "SELECT x.series_id, x.ts, x.value FROM series s JOIN samples x ON x.series_id = s.id"
        " AND x.ts BETWEEN ? AND ? WHERE s.name = ? ORDER BY x.series_id, x.ts", (start, end, name))
    for sid, ts, value in rows:
        bucket = points.get(sid)
        if bucket is not None:
            bucket.append((ts, value))
    return [(info, decode_points(points[sid])) for sid, info in wanted.items()]


def quantile_of_sorted(values: list[float], q: float) -> float:
    """Prometheus ``quantile_over_time`` of ascending values: rank q*(n-1), linear interpolation.

    q < 0 gives -Inf, q > 1 gives +Inf, NaN q gives NaN (as Prometheus does).
    """
    if not values or q != q:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    n = len(values)
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return values[lower] * (1 - weight) + values[upper] * weight


def quantile(conn: sqlite3.Connection, series_id: int, start: int, end: int, q: float) -> float | None:
    """Exact q-quantile of the raw values in [start, end]; None when there are none.

    Staleness markers and NaN are skipped. Fetching through the primary key and sorting
    in Python is faster here than ``ORDER BY value`` in SQLite (see bench/store.py).
    """
    values = [r[0] for r in conn.execute(
        f"SELECT value FROM samples WHERE series_id = ? AND ts BETWEEN ? AND ? AND {_IS_NUMBER}",
        (series_id, start, end))]
    if not values:
        return None
    values.sort()
    return quantile_of_sorted(values, q)


# ---- incremental readers --------------------------------------------------------------
# A reader that keeps windows of samples it has read (the rules engine's sample cache)
# asks the store what changed inside them instead of reading them again. The samples
# table has no rowid to say "rows inserted since", so the writer connection keeps a log
# in TEMP tables (they live on that connection only, cost nothing on disk and vanish with
# it): the key of every sample written with ts <= the highest edge a watcher has read up
# to, and of every sample deleted above the lowest edge. Appends beyond every watcher's
# edge, the common case, are not logged. Writes by other connections (another process)
# are not logged either; a change of ``PRAGMA data_version`` tells the watcher.
#
# Inserts are logged by :func:`log_inserts`, which the writer calls with every batch
# (one query and a list filter a batch; a row trigger cost about 1 us a row, more than the
# insert itself). Updates and deletes, rare (retention purges), are logged by triggers.

_WATCH_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS qb_window_watch (id INTEGER PRIMARY KEY,"
    " lo INTEGER NOT NULL, hi INTEGER NOT NULL, seen INTEGER NOT NULL, touched INTEGER NOT NULL)",
    "CREATE TEMP TABLE IF NOT EXISTS qb_window_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " series_id INTEGER NOT NULL, ts INTEGER NOT NULL)",
    "CREATE TEMP TRIGGER IF NOT EXISTS qb_window_update AFTER UPDATE ON main.samples"
    " WHEN (SELECT max(hi) FROM temp.qb_window_watch) IS NOT NULL"
    " BEGIN INSERT INTO qb_window_changes(series_id, ts) VALUES (OLD.series_id, OLD.ts), (NEW.series_id, NEW.ts); END",
    "CREATE TEMP TRIGGER IF NOT EXISTS qb_window_delete AFTER DELETE ON main.samples"
    " WHEN OLD.ts > (SELECT min(lo) FROM temp.qb_window_watch)"
    " AND OLD.ts <= (SELECT max(hi) FROM temp.qb_window_watch)"
    " BEGIN INSERT INTO qb_window_changes(series_id, ts) VALUES (OLD.series_id, OLD.ts); END",
)


def prepare_watch(conn: sqlite3.Connection) -> None:
    """Create the (empty) watch log on the writer connection, so :func:`log_inserts` can ask it."""
    for statement in _WATCH_DDL:
        conn.execute(statement)


def log_inserts(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Log the keys of ``rows`` ((series_id, ts, value), being inserted or replaced in this
    transaction) that fall at or below a watcher's edge. Writer connection only."""
    try:
        hi = conn.execute("SELECT max(hi) FROM temp.qb_window_watch").fetchone()[0]
    except sqlite3.OperationalError:  # no log on this connection (prepare_watch failed): no watcher either
        return
    if hi is not None:
        late = [(sid, ts) for sid, ts, _ in rows if ts <= hi]
        if late:
            conn.executemany("INSERT INTO temp.qb_window_changes(series_id, ts) VALUES (?, ?)", late)


def watch_windows(conn: sqlite3.Connection, watcher: int, lo: int, hi: int, now: int,
                  forget_after_ms: int) -> tuple[bool, list[tuple[int, int]], int]:
    """Run on the WRITER connection, in a writer transaction (``Store.transaction``).

    Registers ``watcher``'s edges: from now on, samples written with ts <= ``hi`` or
    deleted with ``lo`` < ts <= ``hi`` are logged. Returns (known, changes, data_version):
    ``known`` False when the watcher was not registered (first call, or forgotten after
    ``forget_after_ms`` without a call), in which case nothing it read before can be
    trusted; ``changes`` the (series_id, ts) keys logged since its previous call;
    ``data_version`` the connection's ``PRAGMA data_version``, which changes when another
    connection commits (those writes are not logged).
    """
    prepare_watch(conn)
    row = conn.execute("SELECT seen FROM temp.qb_window_watch WHERE id = ?", (watcher,)).fetchone()
    top = conn.execute("SELECT seq FROM temp.sqlite_sequence WHERE name = 'qb_window_changes'").fetchone()
    top = top[0] if top else 0
    changes = [] if row is None else conn.execute(
        "SELECT series_id, ts FROM temp.qb_window_changes WHERE seq > ? AND seq <= ? ORDER BY seq",
        (row[0], top)).fetchall()
    conn.execute("INSERT OR REPLACE INTO temp.qb_window_watch(id, lo, hi, seen, touched) VALUES (?, ?, ?, ?, ?)",
                 (watcher, lo, hi, top, now))
    conn.execute("DELETE FROM temp.qb_window_watch WHERE touched < ?", (now - forget_after_ms,))
    conn.execute("DELETE FROM temp.qb_window_changes WHERE seq <= coalesce("
                 "(SELECT min(seen) FROM temp.qb_window_watch), ?)", (top,))
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    return row is not None, changes, version


def unwatch_windows(conn: sqlite3.Connection, watcher: int) -> None:
    """Forget a watcher (writer connection); its edges no longer cause logging."""
    if conn.execute("SELECT 1 FROM temp.sqlite_master WHERE name = 'qb_window_watch'").fetchone():
        conn.execute("DELETE FROM temp.qb_window_watch WHERE id = ?", (watcher,))


def name_samples(conn: sqlite3.Connection, name: str, start: int,
                 end: int) -> dict[int, list[tuple[int, float]]]:
    """series id -> its points in [start, end] (ascending, decoded), for every series of
    ``name`` with at least one; the same rows :func:`select` reads, without the label lookup."""
    out: dict[int, list] = {}
    rows = conn.execute(
        "SELECT x.series_id, x.ts, x.value FROM series s JOIN samples x ON x.series_id = s.id"
        " AND x.ts BETWEEN ? AND ? WHERE s.name = ? ORDER BY x.series_id, x.ts", (start, end, name))
    bucket: list = []
    current = None
    for sid, ts, value in rows:
        if sid != current:
            current, bucket = sid, []
            out[sid] = bucket
        bucket.append((ts, value))
    return {sid: decode_points(points) for sid, points in out.items()}


def series_by_id(conn: sqlite3.Connection, ids: list[int]) -> dict[int, SeriesInfo]:
    """The series with these ids (ids that do not exist are left out)."""
    found: dict[int, SeriesInfo] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ",".join("?" * len(chunk))
        for sid, name, text in conn.execute(f"SELECT id, name, labels FROM series WHERE id IN ({marks})", chunk):
            found[sid] = SeriesInfo(sid, name, json.loads(text))
    return found


def values_at(conn: sqlite3.Connection, keys: list[tuple[int, int]]) -> dict[tuple[int, int], float]:
    """(series_id, ts) -> the decoded value stored there now; keys with no sample are left out."""
    found: dict[tuple[int, int], float] = {}
    for i in range(0, len(keys), 400):
        chunk = keys[i:i + 400]
        marks = ",".join(["(?, ?)"] * len(chunk))
        params = [v for key in chunk for v in key]
        for sid, ts, value in conn.execute(
                f"WITH k(sid, ts) AS (VALUES {marks}) SELECT x.series_id, x.ts, x.value"
                " FROM k JOIN samples x ON x.series_id = k.sid AND x.ts = k.ts", params):
            found[(sid, ts)] = decode_value(value)
    return found
