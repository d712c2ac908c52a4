"""The ``sql`` executor: one statement with bound arguments against a SQLite DSN.

Spec: ``{"kind": "sql", "dsn": "sqlite:///rel.db" | "sqlite:////abs.db" | PATH,
"statement": "...", "args": [...], "timeout_s": 30}``. Arguments are bound
(``?``), never pasted into the text; exactly one statement runs, in its own
``BEGIN IMMEDIATE`` transaction; the file must already exist; ATTACH is
refused; at the timeout SQLite is interrupted and the transaction rolled
back. PostgreSQL and other databases are not built in.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any, Mapping

from qbconsole.actions.executors import Outcome, bound_output

MAX_ROWS = 50


def sqlite_file(dsn: str) -> Path:
    """The file a DSN names: ``sqlite:///relative``, ``sqlite:////absolute`` or a plain path."""
    if "://" not in dsn:
        return Path(dsn)
    if not dsn.startswith("sqlite:///"):
        raise ValueError(f"only SQLite DSNs (sqlite:///path) are built in, got {dsn.split('://')[0]}://")
    rest = dsn[len("sqlite:///"):]
    if not rest or rest == ":memory:" or rest.startswith("file:"):
        raise ValueError(f"{dsn!r} names no database file")
    return Path(urllib.parse.unquote(rest))


def connect(path: Path, *, readonly: bool, timeout: float) -> sqlite3.Connection:
    """An existing SQLite file, read-only or read-write (never created), ATTACH refused."""
    mode = "ro" if readonly else "rw"
    conn = sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode={mode}", uri=True, timeout=timeout,
                           isolation_level=None, check_same_thread=False)
    conn.set_authorizer(_refuse_attach)
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


def _refuse_attach(action: int, *_args) -> int:
    return sqlite3.SQLITE_DENY if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH) else sqlite3.SQLITE_OK


def problems(spec: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    try:
        path = sqlite_file(spec["dsn"])
    except ValueError as err:
        return [str(err)]
    return [] if path.is_file() else [f"database file {str(path)!r} does not exist"]


def resolved(spec: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    return {"dsn": spec["dsn"], "statement": spec["statement"], "args": list(spec.get("args") or []),
            "timeout_s": spec["timeout_s"]}


def run(spec: Mapping[str, Any], env: Mapping[str, str]) -> Outcome:
    started = time.monotonic()
    refused = problems(spec, env)
    if refused:
        return Outcome(False, None, "; ".join(refused), 0.0)
    timeout = float(spec["timeout_s"])
    deadline = started + timeout
    try:
        conn = connect(sqlite_file(spec["dsn"]), readonly=False, timeout=timeout)
    except sqlite3.Error as err:
        return Outcome(False, 1, f"cannot open the database: {err}", time.monotonic() - started)
    try:
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
        conn.execute("BEGIN IMMEDIATE")
        cursor = conn.execute(spec["statement"], list(spec.get("args") or []))
        rows = cursor.fetchmany(MAX_ROWS) if cursor.description else []
        changed = cursor.rowcount
        conn.execute("COMMIT")
    except sqlite3.Error as err:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        what = "interrupted at the timeout" if time.monotonic() > deadline else str(err)
        return Outcome(False, 1, f"{type(err).__name__}: {what}", time.monotonic() - started)
    finally:
        conn.close()
    if rows:
        text = "\n".join(" | ".join(str(v) for v in row) for row in rows)
    else:
        text = f"ok ({changed} row(s) changed)" if changed >= 0 else "ok"
    return Outcome(True, 0, bound_output(text), time.monotonic() - started)
