"""Alerts, their event history, silences and acknowledgements, as rows.

The rules engine writes alert states here; the console and the CLI write
operator actions (acknowledge, silence) here; the notifier reads both. Every
state change is an ``alert_events`` row with who and when. Functions taking a
connection run inside a writer transaction (``Store.transaction``) when they
write; reads take any connection.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Iterable, Mapping, NamedTuple

ENGINE = "engine"  # the actor of transitions the rules engine makes
RESOLVED_VISIBLE_MS = 15 * 60 * 1000
SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}


def dumps(value) -> str:
    """The stored JSON of labels, annotations and details."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


_json = dumps


class AlertRow(NamedTuple):
    id: int
    rule: str
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    severity: str
    state: str  # pending | firing | resolved | inactive (pending that cleared)
    value: float | None
    active_at: int
    fired_at: int | None
    resolved_at: int | None
    keep_firing_since: int | None
    last_eval: int
    ack_by: str | None
    ack_at: int | None
    ack_comment: str | None
    ack_expires: int | None
    escalation_level: int
    source: str  # local | alertmanager

    def acknowledged(self, now: int) -> bool:
        return self.ack_by is not None and (self.ack_expires is None or self.ack_expires > now)


class AlertEvent(NamedTuple):
    id: int
    alert_id: int
    ts: int
    kind: str
    actor: str
    detail: dict


class Matcher(NamedTuple):
    """An Alertmanager-style label matcher: ``name op value`` with op in = != =~ !~."""

    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = re.fullmatch(self.value, have) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


def parse_matcher(text: str) -> Matcher:
    """``severity=critical``, ``instance=~"web-.*"``; raises ValueError with the reason."""
    m = _MATCHER.match(text)
    if not m:
        raise ValueError(f"bad matcher {text!r}: expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX")
    name, op, value = m.groups()
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"bad regular expression in matcher {text!r}: {err}") from None
    return Matcher(name, op, value)


class Silence(NamedTuple):
    id: int
    matchers: list[Matcher]
    starts_at: int
    ends_at: int
    created_by: str
    comment: str
    created_at: int

    def active(self, now: int) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


# ---- reads -------------------------------------------------------------------
_ALERT_COLS = ("id, rule, fingerprint, labels, annotations, severity, state, value, active_at, fired_at, "
               "resolved_at, keep_firing_since, last_eval, ack_by, ack_at, ack_comment, ack_expires, "
               "escalation_level, source")


def _alert(row) -> AlertRow:
    r = list(row)
    r[3], r[4] = json.loads(r[3]), json.loads(r[4])
    return AlertRow(*r)


def current_alerts(conn: sqlite3.Connection, now: int, *, rule: str | None = None) -> list[AlertRow]:
    """Active alerts and those resolved in the last 15 minutes, most severe and newest first."""
    sql = (f"SELECT {_ALERT_COLS} FROM alerts WHERE (state IN ('pending', 'firing')"
           " OR (state = 'resolved' AND resolved_at >= ?))"
           + (" AND rule = ?" if rule else ""))
    args: tuple = (now - RESOLVED_VISIBLE_MS, rule) if rule else (now - RESOLVED_VISIBLE_MS,)
    rows = [_alert(r) for r in conn.execute(sql, args)]
    return sorted(rows, key=sort_key)


def sort_key(a: AlertRow):
    """Feed order: firing before pending before resolved, by severity, newest first."""
    state_rank = {"firing": 0, "pending": 1, "resolved": 2}.get(a.state, 3)
    return (state_rank, SEVERITY_ORDER.get(a.severity, 9), -(a.fired_at or a.active_at))


def alerts(conn: sqlite3.Connection, *, state: str | None = None, since: int | None = None,
           limit: int = 1000) -> list[AlertRow]:
    clauses, args = [], []
    if state:
        clauses.append("state = ?")
        args.append(state)
    if since is not None:
        clauses.append("(resolved_at IS NULL OR resolved_at >= ?)")
        args.append(since)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(f"SELECT {_ALERT_COLS} FROM alerts {where} ORDER BY id DESC LIMIT ?", (*args, limit))
    return sorted((_alert(r) for r in rows), key=sort_key)


def get_alert(conn: sqlite3.Connection, alert_id: int) -> AlertRow | None:
    row = conn.execute(f"SELECT {_ALERT_COLS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return _alert(row) if row else None


def events(conn: sqlite3.Connection, alert_id: int) -> list[AlertEvent]:
    rows = conn.execute("SELECT id, alert_id, ts, kind, actor, detail FROM alert_events "
                        "WHERE alert_id = ? ORDER BY ts, id", (alert_id,))
    return [AlertEvent(*r[:5], json.loads(r[5])) for r in rows]


def silences(conn: sqlite3.Connection, now: int | None = None) -> list[Silence]:
    """All silences, or only those active at ``now``."""
    sql = "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at FROM silences"
    args: tuple = ()
    if now is not None:
        sql += " WHERE starts_at <= ? AND ends_at > ?"
        args = (now, now)
    out = []
    for r in conn.execute(sql + " ORDER BY id", args):
        matchers = [Matcher(*m) for m in json.loads(r[1])]
        out.append(Silence(r[0], matchers, *r[2:]))
    return out


# ---- writes (inside a writer transaction) -------------------------------------
def add_event(conn: sqlite3.Connection, alert_id: int, ts: int, kind: str, actor: str,
              detail: Mapping | None = None) -> None:
    conn.execute("INSERT INTO alert_events(alert_id, ts, kind, actor, detail) VALUES (?, ?, ?, ?, ?)",
                 (alert_id, ts, kind, actor, _json(dict(detail or {}))))


def open_alert_ids(conn: sqlite3.Connection, rule: str) -> dict[str, int]:
    """fingerprint -> id of the rule's unresolved alert rows."""
    return dict(conn.execute(
        "SELECT fingerprint, id FROM alerts WHERE rule = ? AND state IN ('pending', 'firing')", (rule,)))


def insert_alert(conn: sqlite3.Connection, rule: str, fingerprint: str, labels: Mapping[str, str],
                 annotations: Mapping[str, str], severity: str, state: str, value: float,
                 active_at: int, fired_at: int | None, t: int) -> int:
    cur = conn.execute(
        "INSERT INTO alerts(rule, fingerprint, labels, annotations, severity, state, value, active_at,"
        " fired_at, last_eval) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rule, fingerprint, _json(dict(labels)), _json(dict(annotations)), severity, state,
         number(value), active_at, fired_at, t))
    return cur.lastrowid


def update_alert(conn: sqlite3.Connection, alert_id: int, *, state: str, value: float,
                 annotations: Mapping[str, str], fired_at: int | None, resolved_at: int | None,
                 keep_firing_since: int | None, t: int) -> None:
    conn.execute(
        "UPDATE alerts SET state = ?, value = ?, annotations = ?, fired_at = ?, resolved_at = ?,"
        " keep_firing_since = ?, last_eval = ? WHERE id = ?",
        (state, number(value), _json(dict(annotations)), fired_at, resolved_at, keep_firing_since, t, alert_id))


def update_alerts(conn: sqlite3.Connection, changed: list[tuple]) -> None:
    """Many alert updates at once: (state, value, annotations JSON, fired_at, resolved_at,
    keep_firing_since, last_eval, id) tuples."""
    if changed:
        conn.executemany(
            "UPDATE alerts SET state = ?, value = ?, annotations = ?, fired_at = ?, resolved_at = ?,"
            " keep_firing_since = ?, last_eval = ? WHERE id = ?", changed)


def deactivate_pending(conn: sqlite3.Connection, alert_id: int, t: int) -> None:
    """A pending alert whose condition went away never fired: it leaves the feed (its events stay)."""
    conn.execute("UPDATE alerts SET state = 'inactive', last_eval = ? WHERE id = ?", (t, alert_id))


def acknowledge(conn: sqlite3.Connection, alert_id: int, actor: str, now: int, comment: str = "",
                timeout_ms: int | None = None) -> AlertRow:
    """Acknowledge an active alert: stops escalation and repeats, not the alert.

    Raises ValueError (with the reason) if the alert does not exist or is resolved.
    """
    alert = get_alert(conn, alert_id)
    if alert is None:
        raise ValueError(f"no alert with id {alert_id}")
    if alert.state not in ("pending", "firing"):
        raise ValueError(f"alert {alert_id} ({alert.rule}) is {alert.state}; only active alerts can be acknowledged")
    expires = now + timeout_ms if timeout_ms else None
    conn.execute("UPDATE alerts SET ack_by = ?, ack_at = ?, ack_comment = ?, ack_expires = ? WHERE id = ?",
                 (actor, now, comment, expires, alert_id))
    add_event(conn, alert_id, now, "acknowledged", actor, {"comment": comment, "expires": expires})
    return get_alert(conn, alert_id)  # type: ignore[return-value]


def expire_acknowledgements(conn: sqlite3.Connection, now: int) -> list[int]:
    """Acknowledgements past their timeout return the alert to unacknowledged."""
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM alerts WHERE ack_by IS NOT NULL AND ack_expires IS NOT NULL AND ack_expires <= ?"
        " AND state IN ('pending', 'firing')", (now,))]
    for alert_id in ids:
        conn.execute("UPDATE alerts SET ack_by = NULL, ack_at = NULL, ack_comment = NULL, ack_expires = NULL,"
                     " escalation_level = 0 WHERE id = ?", (alert_id,))
        add_event(conn, alert_id, now, "unacknowledged", ENGINE, {"reason": "acknowledgement timed out"})
    return ids


def set_escalation(conn: sqlite3.Connection, alert_id: int, level: int, now: int, detail: Mapping) -> None:
    conn.execute("UPDATE alerts SET escalation_level = ? WHERE id = ?", (level, alert_id))
    add_event(conn, alert_id, now, "escalated", ENGINE, {"level": level, **detail})


def add_silence(conn: sqlite3.Connection, matchers: Iterable[Matcher], starts_at: int, ends_at: int,
                created_by: str, comment: str, now: int) -> int:
    matchers = list(matchers)
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    cur = conn.execute(
        "INSERT INTO silences(matchers, starts_at, ends_at, created_by, comment, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (_json([list(m) for m in matchers]), starts_at, ends_at, created_by, comment, now))
    return cur.lastrowid


def expire_silence(conn: sqlite3.Connection, silence_id: int, actor: str, now: int) -> None:
    row = conn.execute("SELECT ends_at FROM silences WHERE id = ?", (silence_id,)).fetchone()
    if row is None:
        raise ValueError(f"no silence with id {silence_id}")
    if row[0] <= now:
        raise ValueError(f"silence {silence_id} has already ended")
    conn.execute("UPDATE silences SET ends_at = ?, expired_by = ? WHERE id = ?", (now, actor, silence_id))


def number(value: float | None):
    """A value as stored: NaN (no value) becomes NULL."""
    return None if value is None or value != value else value


MIGRATION = """
CREATE TABLE alerts (
    id                INTEGER PRIMARY KEY,
    rule              TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    labels            TEXT NOT NULL,
    annotations       TEXT NOT NULL DEFAULT '{}',
    severity          TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved', 'inactive')),
    value             REAL,
    active_at         INTEGER NOT NULL,
    fired_at          INTEGER,
    resolved_at       INTEGER,
    keep_firing_since INTEGER,
    last_eval         INTEGER NOT NULL,
    ack_by            TEXT,
    ack_at            INTEGER,
    ack_comment       TEXT,
    ack_expires       INTEGER,
    escalation_level  INTEGER NOT NULL DEFAULT 0,
    source            TEXT NOT NULL DEFAULT 'local'
);
CREATE UNIQUE INDEX alerts_open ON alerts(rule, fingerprint) WHERE state IN ('pending', 'firing');
CREATE INDEX alerts_by_state ON alerts(state, resolved_at);
CREATE TABLE alert_events (
    id       INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts(id),
    ts       INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_by_alert ON alert_events(alert_id, ts);
CREATE TABLE silences (
    id         INTEGER PRIMARY KEY,
    matchers   TEXT NOT NULL,
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expired_by TEXT
);
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    ts     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
