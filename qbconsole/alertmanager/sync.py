"""Mirror an Alertmanager's alerts into the alerts table, and turn acknowledgements into silences.

:meth:`AlertmanagerSync.sync` (the agent calls it every
``datasource.alertmanager_sync_interval``) does two things:

1. ``GET /api/v2/alerts`` and mirror each alert into the alerts table with
   ``source='alertmanager'``, keyed by Alertmanager's fingerprint: a new alert
   is inserted (firing since its ``startsAt``), a known one gets its
   annotations updated, and one that Alertmanager resolved (``endsAt`` past)
   or no longer holds is resolved. Alerts qbconsole forwarded itself (same
   label set as one of its own recent alerts) are left out, so they are not
   shown twice. The notifier never notifies ``alertmanager`` rows again.
   When Alertmanager cannot be reached nothing is resolved.
2. For each acknowledged mirrored alert without a silence for that
   acknowledgement, ``POST /api/v2/silences`` with an equality matcher per
   label, starting now and ending when the acknowledgement expires (or in
   4 hours), created by the operator, with the acknowledgement's note as the
   comment: Alertmanager's idiom for "someone is on it". The silence id goes
   into a ``silenced`` alert event. An existing identical silence (after a
   crash between the POST and the event) is reused, not duplicated.

Every run records a ``SourceStatus`` named ``alertmanager``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Callable, NamedTuple

from qbconsole.alertmanager.api import (AlertmanagerClient, AlertmanagerError, AmAlert, AmMatcher,
                                        equality_matchers, silence_body)
from qbconsole.notify.messages import am_fingerprint
from qbconsole.store import SourceStatus
from qbconsole.store.alerts import AlertRow, add_event, dumps, get_alert

log = logging.getLogger("qbconsole.alertmanager")

SOURCE = "alertmanager"
ACTOR = "alertmanager"
DEFAULT_SILENCE_MS = 4 * 3_600_000
OWN_WINDOW_MS = 3_600_000  # qbconsole's own alerts resolved this recently still count as ours
STATUS_NAME = "alertmanager"


class SyncResult(NamedTuple):
    inserted: int = 0
    updated: int = 0
    resolved: int = 0
    silenced: int = 0
    error: str | None = None


def own_fingerprints(conn: sqlite3.Connection, now: int) -> set[str]:
    """Alertmanager fingerprints of qbconsole's own recent alerts, labelled as the notifier
    forwards them (``alertname`` and ``severity`` always present)."""
    out = set()
    for rule, labels, severity in conn.execute(
            "SELECT rule, labels, severity FROM alerts WHERE source = 'local'"
            " AND (state IN ('pending', 'firing') OR resolved_at >= ?)", (now - OWN_WINDOW_MS,)):
        full = json.loads(labels)
        full.setdefault("alertname", rule)
        full.setdefault("severity", severity)
        out.add(am_fingerprint(full))
    return out


def mirror(conn: sqlite3.Connection, alerts: list[AmAlert], now: int) -> SyncResult:
    """Bring the ``alertmanager`` rows in line with ``alerts`` (inside a writer transaction)."""
    own = own_fingerprints(conn, now)
    open_rows = {fp: (alert_id, annotations) for alert_id, fp, annotations in conn.execute(
        "SELECT id, fingerprint, annotations FROM alerts WHERE source = 'alertmanager'"
        " AND state IN ('pending', 'firing')")}
    inserted = updated = resolved = 0
    for a in alerts:
        if a.fingerprint in own or not a.labels:
            continue
        ended = a.ends_at is not None and a.ends_at <= now
        row = open_rows.pop(a.fingerprint, None)
        if row is None:
            if ended:
                continue
            alert_id = _insert(conn, a, now)
            add_event(conn, alert_id, now, "firing", ACTOR,
                      {"startsAt": a.starts_at, "state": a.state, "generatorURL": a.generator_url})
            inserted += 1
        elif ended:
            _resolve(conn, row[0], a.ends_at, now, "resolved in Alertmanager")  # type: ignore[arg-type]
            resolved += 1
        elif dumps(a.annotations) != row[1]:
            conn.execute("UPDATE alerts SET annotations = ?, last_eval = ? WHERE id = ?",
                         (dumps(a.annotations), now, row[0]))
            updated += 1
    for alert_id, _ in open_rows.values():
        _resolve(conn, alert_id, now, now, "no longer held by Alertmanager")
        resolved += 1
    return SyncResult(inserted, updated, resolved)


def _insert(conn: sqlite3.Connection, a: AmAlert, now: int) -> int:
    rule = a.labels.get("alertname") or "(alertmanager)"
    severity = a.labels.get("severity") or "none"
    started = a.starts_at or now
    cur = conn.execute(
        "INSERT INTO alerts(rule, fingerprint, labels, annotations, severity, state, value, active_at,"
        " fired_at, last_eval, source) VALUES (?, ?, ?, ?, ?, 'firing', NULL, ?, ?, ?, ?)",
        (rule, a.fingerprint, dumps(a.labels), dumps(a.annotations), severity, started, started, now, SOURCE))
    return int(cur.lastrowid)


def _resolve(conn: sqlite3.Connection, alert_id: int, at: int, now: int, reason: str) -> None:
    conn.execute("UPDATE alerts SET state = 'resolved', resolved_at = ?, last_eval = ? WHERE id = ?",
                 (at, now, alert_id))
    add_event(conn, alert_id, now, "resolved", ACTOR, {"reason": reason})


def acks_needing_silence(conn: sqlite3.Connection, now: int) -> list[AlertRow]:
    """Active mirrored alerts acknowledged (and not expired) with no silence (or refusal)
    recorded for that acknowledgement yet."""
    ids = [r[0] for r in conn.execute(
        "SELECT a.id FROM alerts a WHERE a.source = 'alertmanager' AND a.state IN ('pending', 'firing')"
        " AND a.ack_by IS NOT NULL AND (a.ack_expires IS NULL OR a.ack_expires > ?)"
        " AND NOT EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id = a.id"
        "   AND e.kind IN ('silenced', 'silence_failed') AND json_extract(e.detail, '$.ack_at') = a.ack_at)"
        " ORDER BY a.id", (now,))]
    return [row for row in (get_alert(conn, i) for i in ids) if row is not None]


class AlertmanagerSync:
    """One Alertmanager mirrored into one store; see the module docstring."""

    def __init__(self, store, client: AlertmanagerClient, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.client = client
        self.clock = clock

    def close(self) -> None:
        self.client.close()

    def _now(self) -> int:
        return int(self.clock() * 1000)

    def sync(self) -> SyncResult:
        started = time.perf_counter()
        now = self._now()
        try:
            alerts = self.client.alerts()
        except AlertmanagerError as err:
            log.warning("alertmanager sync: %s", err)
            self._status(False, now, started, str(err))
            return SyncResult(error=str(err))
        result = self.store.transaction(lambda conn: mirror(conn, alerts, now))
        silenced, error = self._silence_acks(now)
        self._status(error is None, now, started, error)
        return result._replace(silenced=silenced, error=error)

    def _status(self, up: bool, now: int, started: float, error: str | None) -> None:
        self.store.set_source_status(SourceStatus(STATUS_NAME, up, now, time.perf_counter() - started, error))

    # ---- acknowledgement -> silence ----------------------------------------------------------
    def _silence_acks(self, now: int) -> tuple[int, str | None]:
        rows = acks_needing_silence(self.store.read(), now)
        if not rows:
            return 0, None
        try:
            existing = self.client.silences()
        except AlertmanagerError as err:
            return 0, str(err)
        made = 0
        for row in rows:
            matchers = equality_matchers(row.labels)
            ends = row.ack_expires if row.ack_expires and row.ack_expires > now else now + DEFAULT_SILENCE_MS
            comment = row.ack_comment or f"acknowledged in qbconsole by {row.ack_by}"
            silence_id = _same_silence(existing, matchers, row.ack_by or "", comment, now)
            try:
                if silence_id is None:
                    silence_id = self.client.create_silence(
                        silence_body(matchers, now, ends, row.ack_by or "qbconsole", comment))
            except AlertmanagerError as err:
                if err.retryable:
                    return made, str(err)
                log.error("alertmanager refused the silence for alert %d: %s", row.id, err)
                self.store.transaction(lambda conn, r=row, e=str(err): add_event(
                    conn, r.id, now, "silence_failed", ACTOR, {"ack_at": r.ack_at, "error": e}))
                continue
            self.store.transaction(lambda conn, r=row, sid=silence_id, end=ends: add_event(
                conn, r.id, now, "silenced", r.ack_by or ACTOR,
                {"ack_at": r.ack_at, "alertmanager_silence_id": sid, "ends_at": end,
                 "matchers": [f'{m.name}="{m.value}"' for m in matchers]}))
            log.info("alert %d acknowledged by %s: silence %s in Alertmanager", row.id, row.ack_by, silence_id)
            made += 1
        return made, None


def _same_silence(silences, matchers: list[AmMatcher], created_by: str, comment: str, now: int) -> str | None:
    wanted = sorted(matchers)
    for s in silences:
        if (s.state in ("active", "pending") and s.ends_at > now and s.created_by == created_by
                and s.comment == comment and sorted(s.matchers) == wanted):
            return s.id
    return None
