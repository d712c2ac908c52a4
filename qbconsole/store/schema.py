"""Store schema: the migration list, private file creation and connection set-up.

To add a migration, append one SQL script to ``MIGRATIONS``; ``PRAGMA user_version``
records how many have been applied. Never edit a script that has shipped.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 5000

# Migration 1: metric samples, per-minute rollups, the agent lease, source status, meta.
# samples.value is nullable: NULL is the Prometheus staleness marker; an ordinary NaN
# is stored as the text 'NaN' (SQLite turns every bound NaN into NULL), see records.py.
_M1_METRICS = """
CREATE TABLE series (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL,
    labels TEXT NOT NULL,
    UNIQUE (name, labels)
);
CREATE TABLE samples (
    series_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    value     REAL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE rollups (
    series_id INTEGER NOT NULL,
    minute    INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL NOT NULL,
    max       REAL NOT NULL,
    PRIMARY KEY (series_id, minute)
) WITHOUT ROWID;
CREATE TABLE lease (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    holder    TEXT NOT NULL,
    acquired  INTEGER NOT NULL,
    heartbeat INTEGER NOT NULL,
    expires   INTEGER NOT NULL
);
CREATE TABLE source_status (
    name       TEXT PRIMARY KEY,
    up         INTEGER NOT NULL,
    last_ts    INTEGER,
    duration_s REAL,
    last_error TEXT
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT
);
"""

# Later migrations keep their DDL beside the code that uses it:
# 2 alerts, alert events, silences and the append-only audit log;
# 3 the notification outbox and per-group notification timing;
# 4 optimization proposals; 5 A/B experiments, exposures and their events.
from qbconsole.store.alerts import MIGRATION as _M2_ALERTS  # noqa: E402
from qbconsole.store.experiments_schema import MIGRATION as _M5_EXPERIMENTS  # noqa: E402
from qbconsole.store.outbox_schema import MIGRATION as _M3_NOTIFY  # noqa: E402
from qbconsole.store.proposals_schema import MIGRATION as _M4_PROPOSALS  # noqa: E402

MIGRATIONS: list[str] = [_M1_METRICS, _M2_ALERTS, _M3_NOTIFY, _M4_PROPOSALS, _M5_EXPERIMENTS]


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer qbconsole than this one."""


def create_private_file(path: Path) -> None:
    """Create ``path`` with mode 0600 if it does not exist (an existing file is left as is)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


def restrict_side_files(path: Path) -> None:
    """Give the -wal and -shm files no wider permissions than the database file itself."""
    mode = path.stat().st_mode & 0o666
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        try:
            if side.stat().st_mode & 0o777 & ~mode:
                os.chmod(side, mode)
        except (FileNotFoundError, PermissionError):
            pass


def connect(path: Path, *, query_only: bool = False) -> sqlite3.Connection:
    """Open a connection in autocommit mode (transactions are explicit) with the store's PRAGMAs."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    if query_only:
        conn.execute("PRAGMA query_only = ON")
    return conn


def split_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (triggers with inner ';' stay whole)."""
    statements, buf = [], ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                statements.append(buf.strip())
            buf = ""
    if buf.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {buf.strip()[:60]!r}")
    return statements


def migrate(conn: sqlite3.Connection, migrations: list[str] = MIGRATIONS) -> int:
    """Apply the migrations not yet applied, all in one IMMEDIATE transaction; return user_version.

    Safe when several processes open a fresh file at once: the version is read under the lock.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(migrations):
            raise SchemaTooNew(f"database schema version {version} is newer than this "
                               f"qbconsole knows ({len(migrations)}); upgrade qbconsole")
        for script in migrations[version:]:
            for statement in split_statements(script):
                conn.execute(statement)
        if version < len(migrations):
            conn.execute(f"PRAGMA user_version = {len(migrations)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(migrations)
