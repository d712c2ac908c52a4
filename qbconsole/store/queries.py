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
