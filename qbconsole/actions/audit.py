"""The audit log: one append-only row per step anyone (or the engine) takes.

The table (migration 2, ``qbconsole.store.alerts``) has triggers that refuse
UPDATE and DELETE, so a row once written stays as written. ``detail`` is
JSON. Writers call :func:`record` inside their own store transaction, so the
step and its audit row commit together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Mapping, NamedTuple

from qbconsole.store.alerts import dumps

ENGINE = "engine"  # the actor of the steps the engine takes by itself


class AuditEntry(NamedTuple):
    id: int
    ts: int
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


def record(conn: sqlite3.Connection, ts: int, actor: str, action: str, target: str,
           detail: Mapping[str, Any] | None = None) -> int:
    cur = conn.execute("INSERT INTO audit_log(ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                       (ts, actor, action, target, dumps(dict(detail or {}))))
    return cur.lastrowid


def entries(conn: sqlite3.Connection, *, since: int | None = None, target: str | None = None,
            limit: int = 10_000) -> list[AuditEntry]:
    """Entries oldest first (the newest ``limit`` of them), optionally since a time or for one target."""
    clauses, args = [], []
    if since is not None:
        clauses.append("ts >= ?")
        args.append(since)
    if target is not None:
        clauses.append("target = ?")
        args.append(target)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(f"SELECT id, ts, actor, action, target, detail FROM audit_log {where} "
                        "ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
    return [AuditEntry(*r[:5], json.loads(r[5])) for r in reversed(rows)]
