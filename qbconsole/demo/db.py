"""The demo platform's SQLite database: schema, a connection pool and timed, named queries.

Every statement the platform runs is a named entry of ``QUERIES`` so that its
duration lands in ``db_query_duration_seconds{query=...}`` and in the slow-query
log the optimizer reads. The table ``bids`` deliberately has no index on
``auction_id``: the bid lookup scans the whole table until an operator adds one.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS auctions (
    id INTEGER PRIMARY KEY, seller_id INTEGER NOT NULL REFERENCES users(id),
    title TEXT NOT NULL, category TEXT NOT NULL,
    starting_price REAL NOT NULL, current_price REAL NOT NULL, buy_now_price REAL,
    bid_count INTEGER NOT NULL DEFAULT 0, leader_id INTEGER,
    status TEXT NOT NULL DEFAULT 'open', created_at INTEGER NOT NULL, ends_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS auctions_by_end ON auctions(status, ends_at);
CREATE TABLE IF NOT EXISTS bids (
    id INTEGER PRIMARY KEY, auction_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
    amount REAL NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, auction_id INTEGER NOT NULL UNIQUE,
    amount REAL NOT NULL, kind TEXT NOT NULL, created_at INTEGER NOT NULL);
"""

TABLES = ("users", "sessions", "auctions", "bids", "orders")
ADMIN_INDEX_PREFIX = "admin_idx_"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

AUCTION_COLUMNS = ("id, seller_id, title, category, starting_price, current_price, buy_now_price, "
                   "bid_count, leader_id, status, created_at, ends_at")

QUERIES: dict[str, str] = {
    "user_insert": "INSERT INTO users (email, name, password_hash, created_at) VALUES (?, ?, ?, ?)",
    "user_by_email": "SELECT id, password_hash FROM users WHERE email = ?",
    "session_insert": "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
    "session_get": "SELECT user_id, expires_at FROM sessions WHERE token_hash = ?",
    "session_purge": "DELETE FROM sessions WHERE expires_at <= ?",
    "auction_count": "SELECT count(*) FROM auctions WHERE status = 'open' AND ends_at > ?",
    "auction_list": (f"SELECT {AUCTION_COLUMNS} FROM auctions WHERE status = 'open' AND ends_at > ? "
                     "ORDER BY ends_at, id LIMIT ? OFFSET ?"),
    "auction_get": f"SELECT {AUCTION_COLUMNS} FROM auctions WHERE id = ?",
    "auction_insert": ("INSERT INTO auctions (seller_id, title, category, starting_price, current_price, "
                       "buy_now_price, created_at, ends_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
    "bid_lookup": ("SELECT id, user_id, amount, created_at FROM bids WHERE auction_id = ? "
                   "ORDER BY amount DESC LIMIT 10"),
    "bid_insert": "INSERT INTO bids (auction_id, user_id, amount, created_at) VALUES (?, ?, ?, ?)",
    "auction_bid_update": ("UPDATE auctions SET current_price = ?, bid_count = bid_count + 1, leader_id = ?, "
                           "buy_now_price = CASE WHEN buy_now_price <= ? THEN NULL ELSE buy_now_price END "
                           "WHERE id = ?"),
    "auction_mark_sold": "UPDATE auctions SET status = 'sold' WHERE id = ?",
    "order_insert": "INSERT INTO orders (user_id, auction_id, amount, kind, created_at) VALUES (?, ?, ?, ?, ?)",
    "order_by_auction": "SELECT id FROM orders WHERE auction_id = ?",
}


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (explicit BEGIN for writes), WAL, usable from any one thread."""
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def params_shape(params: Sequence[Any]) -> list[str]:
    """The types of a statement's parameters, never their values (they may be secrets)."""
    names = {int: "int", float: "float", str: "text", bytes: "blob", type(None): "null"}
    return [names.get(type(p), type(p).__name__) for p in params]


class QueryLog:
    """Recent durations per named query: the source of ``GET /admin/slow_queries``."""

    def __init__(self, window_seconds: float = 300.0, keep: int = 512) -> None:
        self.window = window_seconds
        self._keep = keep
        self._lock = threading.Lock()
        self._recent: dict[str, deque[tuple[float, float]]] = {}
        self._shapes: dict[str, list[str]] = {}
        self._calls: dict[str, int] = {}

    def record(self, name: str, seconds: float, shape: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            ring = self._recent.get(name)
            if ring is None:
                ring = self._recent[name] = deque(maxlen=self._keep)
            ring.append((now, seconds))
            self._shapes[name] = shape
            self._calls[name] = self._calls.get(name, 0) + 1

    def slowest(self, limit: int = 10, now: float | None = None) -> list[dict[str, Any]]:
        """The ``limit`` named queries with the highest average duration in the window."""
        now = time.monotonic() if now is None else now
        rows = []
        with self._lock:
            for name, ring in self._recent.items():
                durations = [d for t, d in ring if now - t <= self.window]
                if not durations:
                    continue
                rows.append({
                    "name": name,
                    "sql": QUERIES.get(name, name),
                    "params": list(self._shapes.get(name, [])),
                    "count": len(durations),
                    "calls_total": self._calls[name],
                    "avg_seconds": sum(durations) / len(durations),
                    "max_seconds": max(durations),
                })
        rows.sort(key=lambda r: r["avg_seconds"], reverse=True)
        return rows[:limit]


class Database:
    """A pool of SQLite connections plus timed execution of the named queries.

    ``observe(name, seconds)`` is called after each statement (metrics);
    ``extra_delay()`` returns seconds to stall each statement (fault injection).
    """

    def __init__(self, path: str, observe: Callable[[str, float], None] | None = None,
                 extra_delay: Callable[[], float] | None = None, max_idle: int = 24) -> None:
        self.path = path
        self.log = QueryLog()
        self._observe = observe
        self._extra_delay = extra_delay
        self._max_idle = max_idle
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._in_use = 0
        self._closed = False

    @property
    def connections_in_use(self) -> int:
        return self._in_use

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise RuntimeError("database is closed")
            conn = self._idle.pop() if self._idle else None
            self._in_use += 1
        try:
            if conn is None:
                conn = connect(self.path)
            yield conn
        finally:
            with self._lock:
                self._in_use -= 1
                if conn is not None:
                    if conn.in_transaction:
                        conn.rollback()
                    if self._closed or len(self._idle) >= self._max_idle:
                        conn.close()
                    else:
                        self._idle.append(conn)

    @contextmanager
    def transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.execute("COMMIT")

    def _execute(self, conn: sqlite3.Connection, name: str,
                 params: Sequence[Any]) -> tuple[list[sqlite3.Row], int | None]:
        sql = QUERIES[name]
        started = time.perf_counter()
        delay = self._extra_delay() if self._extra_delay else 0.0
        if delay > 0:
            time.sleep(delay)
        cursor = conn.execute(sql, tuple(params))
        rows = cursor.fetchall()
        seconds = time.perf_counter() - started
        self.log.record(name, seconds, params_shape(params))
        if self._observe:
            self._observe(name, seconds)
        return rows, cursor.lastrowid

    def run(self, conn: sqlite3.Connection, name: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run the named query on ``conn``, timed (including any injected delay); all rows."""
        return self._execute(conn, name, params)[0]

    def insert(self, conn: sqlite3.Connection, name: str, params: Sequence[Any]) -> int:
        """Run a named INSERT and return the new row id."""
        return int(self._execute(conn, name, params)[1] or 0)

    def query(self, name: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a named read on a pooled connection."""
        with self.connection() as conn:
            return self.run(conn, name, params)

    # -- schema administration (the optimizer's "add missing index") --------------

    def create_index(self, table: Any, columns: Any) -> dict[str, Any]:
        """Create an index on existing columns of an existing table; ValueError on bad input.

        The identifiers written into SQL are the schema's own names, matched
        exactly against the request, never the request text itself.
        """
        if not isinstance(table, str) or table not in TABLES:
            raise ValueError(f"table must be one of {', '.join(TABLES)}")
        if (not isinstance(columns, list) or not 1 <= len(columns) <= 4
                or not all(isinstance(c, str) for c in columns)):
            raise ValueError("columns must be a list of 1 to 4 column names")
        if len(set(columns)) != len(columns):
            raise ValueError("columns must not repeat")
        with self.connection() as conn:
            schema_table = next(r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)))
            known = {r["name"]: r["name"] for r in conn.execute(f'PRAGMA table_info("{schema_table}")')}
            unknown = [c for c in columns if c not in known]
            if unknown:
                raise ValueError(f"unknown column(s) of {table}: {', '.join(unknown)}; "
                                 f"columns are {', '.join(known)}")
            names = [known[c] for c in columns]
            if not all(_IDENT.match(n) for n in [schema_table, *names]):
                raise ValueError("unsupported identifier")
            index = ADMIN_INDEX_PREFIX + schema_table + "_" + "_".join(names)
            exists = bool(conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)).fetchone())
            started = time.perf_counter()
            column_sql = ", ".join(f'"{n}"' for n in names)
            conn.execute(f'CREATE INDEX IF NOT EXISTS "{index}" ON "{schema_table}" ({column_sql})')
            seconds = time.perf_counter() - started
        return {"index": index, "table": schema_table, "columns": names, "created": not exists,
                "seconds": round(seconds, 6)}

    def indexes(self) -> list[dict[str, Any]]:
        with self.connection() as conn:
            rows = conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' "
                                "AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name").fetchall()
        return [{"name": r["name"], "table": r["tbl_name"]} for r in rows]

    def drop_admin_indexes(self) -> list[str]:
        """Drop indexes an operator added earlier, restoring the shipped weaknesses."""
        dropped = []
        with self.connection() as conn:
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall():
                name = row["name"]
                if name.startswith(ADMIN_INDEX_PREFIX) and _IDENT.match(name):
                    conn.execute(f'DROP INDEX IF EXISTS "{name}"')
                    dropped.append(name)
        return dropped

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
