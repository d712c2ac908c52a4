"""Proposals as rows: reading them, deciding on them, and the engine's state changes.

Reads take any connection (``store.read()``). Every write is one conditional
UPDATE (``... WHERE id = ? AND state = 'approved'``) plus its audit row, in
one store transaction: when two consoles approve the same proposal, or two
engines try to run it, exactly one of them changes the row and the others
see that it already moved. :func:`approve` and :func:`reject` are what the
console and the CLI call; the ``engine_*`` helpers are the engine's.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Mapping, NamedTuple

from qbconsole.actions import audit
from qbconsole.actions.executors import Outcome, summary
from qbconsole.store.alerts import dumps

OPEN_STATES = ("proposed", "approved", "executing")
FINAL_STATES = ("rejected", "expired", "refused", "succeeded", "failed")
STATES = (*OPEN_STATES, *FINAL_STATES)
PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}
AUDIT_OUTPUT = 2000  # characters of output kept in the audit row (the proposal keeps more)


class Proposal(NamedTuple):
    id: int
    rule: str
    target: str
    action: str
    description: str
    spec: dict[str, Any]
    evidence: dict[str, Any]
    bounds: dict[str, Any]
    verify: dict[str, Any]
    priority: str
    state: str
    verdict: str | None
    reason: str | None
    created_at: int
    expires_at: int
    decided_by: str | None
    decided_at: int | None
    decision_note: str | None
    started_at: int | None
    finished_at: int | None
    exit_status: int | None
    output: str | None
    duration_s: float | None
    verify_at: int | None
    verified_at: int | None
    baseline: float | None
    after: float | None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def summary(self) -> str:
        """The exact action on one line."""
        return summary(self.spec)

    @property
    def audit_target(self) -> str:
        return f"proposal:{self.id}"

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "summary": self.summary}


_COLS = ", ".join(Proposal._fields)
_JSON = {Proposal._fields.index(k) for k in ("spec", "evidence", "bounds", "verify")}


def _row(r) -> Proposal:
    return Proposal(*(json.loads(v) if i in _JSON else v for i, v in enumerate(r)))


def target_of(proposal_id: int) -> str:
    return f"proposal:{proposal_id}"


# ---- reads -----------------------------------------------------------------
def get(conn: sqlite3.Connection, proposal_id: int) -> Proposal | None:
    row = conn.execute(f"SELECT {_COLS} FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
    return _row(row) if row else None


def list_proposals(conn: sqlite3.Connection, *, states: tuple[str, ...] | None = None, rule: str | None = None,
                   open_only: bool = False, limit: int = 200) -> list[Proposal]:
    """Open proposals first (high priority, then newest), then history, newest first."""
    clauses, args = [], []
    wanted = OPEN_STATES if open_only else states
    if wanted:
        clauses.append(f"state IN ({', '.join('?' * len(wanted))})")
        args.extend(wanted)
    if rule:
        clauses.append("rule = ?")
        args.append(rule)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = [_row(r) for r in conn.execute(
        f"SELECT {_COLS} FROM proposals {where} ORDER BY id DESC LIMIT ?", (*args, limit))]
    return sorted(rows, key=lambda p: (not p.is_open, PRIORITY_RANK.get(p.priority, 9) if p.is_open else 0,
                                       -p.created_at, -p.id))


def open_for(conn: sqlite3.Connection, rule: str, target: str) -> Proposal | None:
    row = conn.execute(f"SELECT {_COLS} FROM proposals WHERE rule = ? AND target = ? AND state IN "
                       "('proposed', 'approved', 'executing')", (rule, target)).fetchone()
    return _row(row) if row else None


def last_ran_or_rejected(conn: sqlite3.Connection, rule: str, target: str) -> int | None:
    """When the rule+target last started running or was rejected (the start of its cooldown)."""
    row = conn.execute("SELECT max(coalesce(started_at, 0)), max(CASE WHEN state = 'rejected' THEN decided_at END)"
                       " FROM proposals WHERE rule = ? AND target = ?", (rule, target)).fetchone()
    times = [t for t in row if t]
    return max(times) if times else None


def last_started(conn: sqlite3.Connection, rule: str, target: str, *, excluding: int | None = None) -> int | None:
    row = conn.execute("SELECT max(started_at) FROM proposals WHERE rule = ? AND target = ? AND id != ?",
                       (rule, target, excluding or -1)).fetchone()
    return row[0]


# ---- decisions (console and CLI) --------------------------------------------
def _decide(conn: sqlite3.Connection, proposal_id: int, state: str, operator: str, now: int,
            note: str) -> tuple[Proposal | None, str | None]:
    p = get(conn, proposal_id)
    if p is None:
        return None, f"no proposal with id {proposal_id}"
    if p.state != "proposed":
        by = f" by {p.decided_by}" if p.decided_by else ""
        return p, f"proposal {proposal_id} is already {p.state}{by}; nothing changed"
    if now >= p.expires_at:
        _expire(conn, p, now)
        return get(conn, proposal_id), f"proposal {proposal_id} expired before it was {state}; nothing runs"
    cur = conn.execute("UPDATE proposals SET state = ?, decided_by = ?, decided_at = ?, decision_note = ?"
                       " WHERE id = ? AND state = 'proposed'", (state, operator, now, note or None, proposal_id))
    if cur.rowcount != 1:
        return get(conn, proposal_id), f"proposal {proposal_id} changed meanwhile; nothing changed"
    audit.record(conn, now, operator, state, p.audit_target,
                 {"rule": p.rule, "target": p.target, "action": p.summary, "note": note})
    return get(conn, proposal_id), None


def _decision(store, proposal_id: int, state: str, operator: str, now: int, note: str) -> Proposal:
    if not operator:
        raise ValueError("an operator name is needed to decide on a proposal")
    proposal, problem = store.transaction(lambda c: _decide(c, proposal_id, state, operator, now, note))
    if problem:
        raise ValueError(problem)
    return proposal


def approve(store, proposal_id: int, operator: str, now: int, note: str = "") -> Proposal:
    """Approve a proposed action (the engine runs it at its next tick, after checking it again).

    Raises ValueError with the reason when it cannot be approved (unknown id,
    already decided, expired); exactly one of several concurrent approvals wins.
    """
    return _decision(store, proposal_id, "approved", operator, now, note)


def reject(store, proposal_id: int, operator: str, now: int, note: str = "") -> Proposal:
    """Reject a proposed action: it never runs. Raises ValueError like :func:`approve`."""
    return _decision(store, proposal_id, "rejected", operator, now, note)


# ---- the engine's steps (inside a store transaction) -------------------------
def engine_insert(conn: sqlite3.Connection, *, rule: str, target: str, action: str, description: str,
                  spec: Mapping, evidence: Mapping, bounds: Mapping, verify: Mapping, priority: str,
                  now: int, expires_at: int) -> int | None:
    """A new proposal, or None when one is already open for this rule and target."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO proposals(rule, target, action, description, spec, evidence, bounds, verify,"
        " priority, state, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'proposed', ?, ?)",
        (rule, target, action, description, dumps(dict(spec)), dumps(dict(evidence)), dumps(dict(bounds)),
         dumps(dict(verify)), priority, now, expires_at))
    if cur.rowcount != 1:
        return None
    pid = cur.lastrowid
    audit.record(conn, now, audit.ENGINE, "proposed", target_of(pid),
                 {"rule": rule, "target": target, "action": summary(spec), "expires_at": expires_at,
                  "evidence": dict(evidence)})
    return pid


def _expire(conn: sqlite3.Connection, p: Proposal, now: int) -> bool:
    cur = conn.execute("UPDATE proposals SET state = 'expired', reason = ? WHERE id = ? AND state = 'proposed'",
                       ("not decided before it expired", p.id))
    if cur.rowcount == 1:
        audit.record(conn, now, audit.ENGINE, "expired", p.audit_target,
                     {"rule": p.rule, "target": p.target, "expires_at": p.expires_at})
    return cur.rowcount == 1


def any_due_to_expire(conn: sqlite3.Connection, now: int) -> bool:
    return conn.execute("SELECT 1 FROM proposals WHERE state = 'proposed' AND expires_at <= ? LIMIT 1",
                        (now,)).fetchone() is not None


def engine_expire_due(conn: sqlite3.Connection, now: int) -> list[int]:
    due = [_row(r) for r in conn.execute(
        f"SELECT {_COLS} FROM proposals WHERE state = 'proposed' AND expires_at <= ?", (now,))]
    return [p.id for p in due if _expire(conn, p, now)]


def engine_refuse(conn: sqlite3.Connection, p: Proposal, now: int, reason: str) -> bool:
    """An approved proposal that is stale when it comes to run: refused, with the reason."""
    cur = conn.execute("UPDATE proposals SET state = 'refused', reason = ?, finished_at = ? "
                       "WHERE id = ? AND state = 'approved'", (reason, now, p.id))
    if cur.rowcount == 1:
        audit.record(conn, now, audit.ENGINE, "refused", p.audit_target,
                     {"rule": p.rule, "target": p.target, "reason": reason, "approved_by": p.decided_by})
    return cur.rowcount == 1


def engine_claim(conn: sqlite3.Connection, p: Proposal, now: int, baseline: float | None, process: str) -> bool:
    """Take an approved proposal to run it; False when another process took it first."""
    cur = conn.execute("UPDATE proposals SET state = 'executing', started_at = ?, baseline = coalesce(?, baseline)"
                       " WHERE id = ? AND state = 'approved'", (now, baseline, p.id))
    if cur.rowcount == 1:
        audit.record(conn, now, audit.ENGINE, "executing", p.audit_target,
                     {"rule": p.rule, "target": p.target, "action": p.summary, "approved_by": p.decided_by,
                      "process": process, "baseline": baseline})
    return cur.rowcount == 1


def engine_finish(conn: sqlite3.Connection, p: Proposal, now: int, outcome: Outcome, verify_at: int | None,
                  reason: str | None = None) -> bool:
    state = "succeeded" if outcome.ok else "failed"
    cur = conn.execute(
        "UPDATE proposals SET state = ?, finished_at = ?, exit_status = ?, output = ?, duration_s = ?,"
        " verify_at = ?, reason = ? WHERE id = ? AND state = 'executing'",
        (state, now, outcome.exit_status, outcome.output, outcome.duration_s,
         verify_at if outcome.ok else None, reason, p.id))
    if cur.rowcount == 1:
        audit.record(conn, now, audit.ENGINE, state, p.audit_target,
                     {"rule": p.rule, "target": p.target, "exit_status": outcome.exit_status,
                      "duration_s": round(outcome.duration_s, 3), "output": outcome.output[:AUDIT_OUTPUT],
                      **({"reason": reason} if reason else {})})
    return cur.rowcount == 1


def engine_verdict(conn: sqlite3.Connection, p: Proposal, now: int, verdict: str, after: float | None,
                   detail: Mapping[str, Any]) -> bool:
    cur = conn.execute("UPDATE proposals SET verdict = ?, verified_at = ?, after = ? "
                       "WHERE id = ? AND state = 'succeeded' AND verdict IS NULL", (verdict, now, after, p.id))
    if cur.rowcount == 1:
        audit.record(conn, now, audit.ENGINE, verdict, p.audit_target,
                     {"rule": p.rule, "target": p.target, "baseline": p.baseline, "after": after, **detail})
    return cur.rowcount == 1


def running(conn: sqlite3.Connection) -> list[Proposal]:
    return [_row(r) for r in conn.execute(f"SELECT {_COLS} FROM proposals WHERE state = 'executing'")]


def approved(conn: sqlite3.Connection) -> list[Proposal]:
    return [_row(r) for r in conn.execute(
        f"SELECT {_COLS} FROM proposals WHERE state = 'approved' ORDER BY decided_at, id")]


def due_for_verification(conn: sqlite3.Connection, now: int) -> list[Proposal]:
    return [_row(r) for r in conn.execute(
        f"SELECT {_COLS} FROM proposals WHERE state = 'succeeded' AND verdict IS NULL AND verify_at <= ?", (now,))]
