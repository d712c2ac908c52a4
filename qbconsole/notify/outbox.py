"""The persistent notification outbox: enqueue once, deliver until accepted, record every outcome.

Life of a row: ``pending`` -> ``delivered`` (the sink accepted it) or ``failed``
(a non-retryable answer such as HTTP 400, too many attempts, or older than the
maximum age). A retryable failure (HTTP 408/429/5xx, timeouts, refused
connections, SMTP 4xx) keeps it pending with ``next_attempt`` pushed back
exponentially (2 s, 4 s, 8 s ... capped at 5 min; optional full jitter), or
by the sink's ``Retry-After`` when it sent one.

Exactly once, as far as a sink lets us: :func:`enqueue` is ``INSERT OR IGNORE``
on a deterministic dedup key, so re-planning after a restart stores nothing
twice. :func:`deliver_due` sends *outside* any transaction and marks a row
delivered only after the sink accepted it, so a crash (even ``kill -9``)
mid-send leaves the row pending and it is sent once more on restart. For that
rare repeat every request carries the dedup key (``Idempotency-Key`` header,
the webhook's ``X-Qbconsole-Notification-Id``, the email's Message-ID) so a
receiver can drop it. Every outcome is an ``alert_events`` row ("notified" or
"notify_failed") for each alert the notification carries.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
from typing import Any, Iterable, Mapping, NamedTuple

from qbconsole.store.alerts import add_event

log = logging.getLogger("qbconsole.notify")

ACTOR = "notifier"
BASE_S, FACTOR, CAP_S = 2.0, 2.0, 300.0
MAX_ATTEMPTS = 300          # about a day at the 5-minute cap
MAX_AGE_MS = 24 * 3_600_000
_COLS = ("id, dedup_key, channel, route, group_key, kind, payload, created_at, state, attempts, "
         "next_attempt, expires_at, last_attempt_at, last_error, progress, delivered_at")


class OutboxRow(NamedTuple):
    id: int
    dedup_key: str
    channel: str
    route: str
    group_key: str
    kind: str
    payload: dict[str, Any]
    created_at: int
    state: str
    attempts: int
    next_attempt: int
    expires_at: int | None
    last_attempt_at: int | None
    last_error: str | None
    progress: list[str]
    delivered_at: int | None


class Backlog(NamedTuple):
    pending: int
    oldest_created_at: int | None  # of the pending rows
    failed: int


class Outcome(NamedTuple):
    """What one delivery attempt did to one row."""

    outbox_id: int
    channel: str
    state: str                  # pending (will retry) | delivered | failed
    attempts: int
    error: str | None
    next_attempt: int | None


def _row(r) -> OutboxRow:
    r = list(r)
    r[6], r[14] = json.loads(r[6]), json.loads(r[14])
    return OutboxRow(*r)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# ---- writes (inside a writer transaction) ----------------------------------------------------
def enqueue(conn: sqlite3.Connection, *, dedup_key: str, channel: str, route: str, group_key: str,
            kind: str, payload: Mapping[str, Any], alert_ids: Iterable[int], now: int,
            expires_at: int | None = None) -> int | None:
    """Store a notification unless its dedup key is already there; the new row id or None."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO notification_outbox(dedup_key, channel, route, group_key, kind, payload,"
        " created_at, next_attempt, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (dedup_key, channel, route, group_key, kind, _json(dict(payload)), now, now, expires_at))
    if cur.rowcount == 0:
        return None
    outbox_id = cur.lastrowid
    conn.executemany("INSERT OR IGNORE INTO notification_alerts(alert_id, outbox_id) VALUES (?, ?)",
                     [(a, outbox_id) for a in sorted(set(alert_ids))])
    return outbox_id


def prune(conn: sqlite3.Connection, before: int) -> int:
    """Delete delivered and failed rows created before ``before``; returns how many."""
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM notification_outbox WHERE state != 'pending' AND created_at < ?", (before,))]
    conn.executemany("DELETE FROM notification_alerts WHERE outbox_id = ?", [(i,) for i in ids])
    conn.executemany("DELETE FROM notification_outbox WHERE id = ?", [(i,) for i in ids])
    return len(ids)


# ---- reads --------------------------------------------------------------------------------------
def due(conn: sqlite3.Connection, now: int, limit: int = 20) -> list[OutboxRow]:
    """Pending rows whose next attempt has come, oldest first."""
    rows = conn.execute(f"SELECT {_COLS} FROM notification_outbox WHERE state = 'pending'"
                        " AND next_attempt <= ? ORDER BY next_attempt, id LIMIT ?", (now, limit))
    return [_row(r) for r in rows]


def get(conn: sqlite3.Connection, outbox_id: int) -> OutboxRow | None:
    r = conn.execute(f"SELECT {_COLS} FROM notification_outbox WHERE id = ?", (outbox_id,)).fetchone()
    return _row(r) if r else None


def rows(conn: sqlite3.Connection, *, state: str | None = None, limit: int = 1000) -> list[OutboxRow]:
    where, args = ("WHERE state = ?", (state,)) if state else ("", ())
    return [_row(r) for r in conn.execute(
        f"SELECT {_COLS} FROM notification_outbox {where} ORDER BY id LIMIT ?", (*args, limit))]


def notifications_for_alert(conn: sqlite3.Connection, alert_id: int) -> list[OutboxRow]:
    """Every notification that carried this alert, oldest first, with its delivery state."""
    return [_row(r) for r in conn.execute(
        f"SELECT {', '.join('o.' + c.strip() for c in _COLS.split(','))} FROM notification_outbox o"
        " JOIN notification_alerts n ON n.outbox_id = o.id WHERE n.alert_id = ? ORDER BY o.id",
        (alert_id,))]


def backlog(conn: sqlite3.Connection) -> Backlog:
    """(pending count, when the oldest pending row was created, failed count) for the console."""
    pending, oldest = conn.execute(
        "SELECT count(*), min(created_at) FROM notification_outbox WHERE state = 'pending'").fetchone()
    failed = conn.execute("SELECT count(*) FROM notification_outbox WHERE state = 'failed'").fetchone()[0]
    return Backlog(pending, oldest, failed)


# ---- delivery -----------------------------------------------------------------------------------
def backoff_ms(attempts: int, *, base_s: float = BASE_S, factor: float = FACTOR, cap_s: float = CAP_S,
               rng: random.Random | None = None) -> int:
    """Delay before retry number ``attempts`` (1 = after the first failure); full jitter with ``rng``."""
    delay = min(cap_s, base_s * factor ** max(0, attempts - 1))
    if rng is not None:
        delay = rng.uniform(0, delay)
    return int(delay * 1000)


def _record(conn: sqlite3.Connection, row: OutboxRow, now: int, *, state: str, attempts: int,
            next_attempt: int, error: str | None, progress: list[str], note: str | None) -> Outcome | None:
    cur = conn.execute(
        "UPDATE notification_outbox SET state = ?, attempts = ?, next_attempt = ?, last_attempt_at = ?,"
        " last_error = ?, progress = ?, delivered_at = ? WHERE id = ? AND state = 'pending'",
        (state, attempts, next_attempt, now, error, _json(progress),
         now if state == "delivered" else None, row.id))
    if cur.rowcount == 0:  # someone else settled it meanwhile
        return None
    detail: dict[str, Any] = {"channel": row.channel, "outbox_id": row.id, "attempt": attempts,
                              "notification": row.kind, "state": state}
    if error:
        detail["error"] = error
    if note:
        detail["note"] = note
    if state == "pending":
        detail["next_attempt"] = next_attempt
    kind = "notified" if state == "delivered" else "notify_failed"
    for (alert_id,) in conn.execute("SELECT alert_id FROM notification_alerts WHERE outbox_id = ?",
                                    (row.id,)).fetchall():
        add_event(conn, alert_id, now, kind, ACTOR, detail)
    return Outcome(row.id, row.channel, state, attempts, error, next_attempt if state == "pending" else None)


def _attempt(row: OutboxRow, sender, now: int, max_attempts: int, rng) -> dict[str, Any]:
    """Send one row (no transaction open) and say how to record it."""
    from qbconsole.notify.channels import DeliveryError  # httpx, smtplib: not for the console's reads

    attempts = row.attempts + 1
    try:
        note = sender.send(row.payload, row.dedup_key, frozenset(row.progress))
    except DeliveryError as err:
        progress = sorted(set(row.progress) | err.done)
        if not err.retryable:
            return dict(state="failed", attempts=attempts, next_attempt=now, error=err.message,
                        progress=progress, note=None)
        if attempts >= max_attempts:
            return dict(state="failed", attempts=attempts, next_attempt=now, progress=progress,
                        error=f"gave up after {attempts} attempts: {err.message}", note=None)
        wait = (int(err.retry_after_s * 1000) if err.retry_after_s is not None
                else backoff_ms(attempts, rng=rng))
        return dict(state="pending", attempts=attempts, next_attempt=now + wait, error=err.message,
                    progress=progress, note=None)
    except Exception as exc:  # a bug in a sender: keep the row, say what, never a traceback with locals
        log.error("sender %s failed unexpectedly: %s", row.channel, type(exc).__name__)
        return dict(state="pending", attempts=attempts, next_attempt=now + backoff_ms(attempts, rng=rng),
                    error=f"internal error in the {row.channel} sender ({type(exc).__name__})",
                    progress=row.progress, note=None)
    return dict(state="delivered", attempts=attempts, next_attempt=now, error=None,
                progress=row.progress, note=note)


def deliver_due(store, senders: Mapping[str, Any], now: int, *, limit: int = 20,
                max_attempts: int = MAX_ATTEMPTS, max_age_ms: int = MAX_AGE_MS,
                rng: random.Random | None = None) -> list[Outcome]:
    """Send up to ``limit`` due rows, each outside any transaction, then record its outcome in one.

    ``senders`` maps channel name -> sender; a row whose channel has none (disabled or
    removed from the config) is failed without sending, as is a row older than ``max_age_ms``
    or past its own ``expires_at``. After a retryable failure the channel's other rows wait
    for the next call, so one unreachable sink does not hold the loop for ``limit`` timeouts.
    """
    outcomes: list[Outcome] = []
    struggling: set[str] = set()  # channels that just failed retryably: their other rows wait
    for row in due(store.read(), now, limit):
        if row.channel in struggling:
            continue
        sender = senders.get(row.channel)
        if row.expires_at is not None and now >= row.expires_at:
            result = dict(state="failed", attempts=row.attempts, next_attempt=now, progress=row.progress,
                          error="expired before delivery (a newer notification supersedes it)", note=None)
        elif now - row.created_at >= max_age_ms:
            result = dict(state="failed", attempts=row.attempts, next_attempt=now, progress=row.progress,
                          error=f"gave up: not delivered within {max_age_ms // 3_600_000 or 1}h"
                                + (f" (last error: {row.last_error})" if row.last_error else ""), note=None)
        elif sender is None:
            result = dict(state="failed", attempts=row.attempts, next_attempt=now, progress=row.progress,
                          error=f"channel {row.channel!r} is disabled or not configured; not sent", note=None)
        else:
            result = _attempt(row, sender, now, max_attempts, rng)
        outcome = store.transaction(lambda conn, r=row, res=result: _record(conn, r, now, **res))
        if outcome is None:
            continue
        if outcome.state == "pending":
            struggling.add(row.channel)
        if outcome.state != "delivered":
            log.warning("notification %d to %s: %s (%s)", row.id, row.channel, outcome.state, outcome.error)
        outcomes.append(outcome)
    return outcomes
