"""The notifier: plan notifications from the store's alerts, and deliver the outbox.

The agent calls ``plan()`` then ``deliver()`` about once a second from its own
thread. ``plan`` runs entirely inside one writer transaction: it expires
acknowledgements past their timeout, reads alerts and silences, applies
silences and inhibition, routes and groups alerts, decides with the stored
per-group timing state what is due (see :mod:`routing`), escalates, and
enqueues every due notification together with the new timing state — so a
crash either keeps all of it or none, and a restarted notifier never plans
the same notification twice. ``deliver`` sends due outbox rows (see
:mod:`outbox`). Times are integer ms UTC; ``now`` defaults to ``clock()``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sqlite3
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from qbconsole.notify import outbox, routing
from qbconsole.notify.channels import Sender, build_sender
from qbconsole.notify.config import (ChannelConfig, Route, parse_channels, parse_inhibit_rules,
                                     parse_routes)
from qbconsole.notify.messages import am_fingerprint
from qbconsole.store.alerts import AlertRow, current_alerts, expire_acknowledgements, set_escalation, silences

log = logging.getLogger("qbconsole.notify")

STATE_TTL_MS = 24 * 3_600_000      # forget the timing state of groups quiet this long
PRUNE_AFTER_MS = 7 * 24 * 3_600_000  # delivered/failed outbox rows are kept a week
PRUNE_EVERY_MS = 3_600_000


class ChannelStatus(NamedTuple):
    name: str
    kind: str
    enabled: bool
    reason: str  # why it is disabled; "" when enabled


def _key(*parts: Any) -> str:
    """A dedup key: ASCII, header-safe, the same for the same inputs in every process."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return "qbn-" + hashlib.sha256(blob.encode()).hexdigest()[:40]


def _labels(a: AlertRow) -> dict[str, str]:
    """The alert's labels with ``alertname`` and ``severity`` always present."""
    labels = dict(a.labels)
    labels.setdefault("alertname", a.rule)
    labels.setdefault("severity", a.severity)
    return labels


class Notifier:
    """Routes alerts to channels through the persistent outbox. See the module docstring."""

    def __init__(self, store, channels_cfg: list | None, routes_cfg: list | None, *,
                 inhibit_cfg: list | None = None, clock: Callable[[], float] = time.time,
                 external_url: str = "http://127.0.0.1",
                 generator_url: str | Callable[[AlertRow], str] | None = None,
                 senders: Mapping[str, Sender] | None = None, env: Mapping[str, str] | None = None,
                 max_attempts: int = outbox.MAX_ATTEMPTS, max_age_ms: int = outbox.MAX_AGE_MS,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.channels: list[ChannelConfig] = parse_channels(channels_cfg, env)
        self.routes: list[Route] = parse_routes(routes_cfg, self.channels)
        self.inhibit_rules = parse_inhibit_rules(inhibit_cfg)
        self.clock = clock
        self.external_url = external_url
        self.generator_url = generator_url if generator_url is not None else external_url
        self.max_attempts = max_attempts
        self.max_age_ms = max_age_ms
        self.rng = rng
        self._by_name = {c.name: c for c in self.channels}
        self._last_prune = 0
        for c in self.channels:
            log.info("notification channel %s", c.describe())
        if senders is not None:
            self.senders = {n: s for n, s in senders.items() if n in self._by_name and self._by_name[n].enabled}
            self._own_senders = False
        else:
            self.senders = {c.name: build_sender(c) for c in self.channels if c.enabled}
            self._own_senders = True

    def close(self) -> None:
        if self._own_senders:
            for s in self.senders.values():
                s.close()

    def _now(self, now: int | None) -> int:
        return int(self.clock() * 1000) if now is None else int(now)

    # ---- status ---------------------------------------------------------------------------
    def channel_status(self) -> list[ChannelStatus]:
        return [ChannelStatus(c.name, c.kind, c.enabled, c.disabled_reason or "") for c in self.channels]

    def backlog(self) -> outbox.Backlog:
        return outbox.backlog(self.store.read())

    # ---- delivery --------------------------------------------------------------------------
    def deliver(self, now: int | None = None, *, limit: int = 20) -> list[outbox.Outcome]:
        return outbox.deliver_due(self.store, self.senders, self._now(now), limit=limit,
                                  max_attempts=self.max_attempts, max_age_ms=self.max_age_ms, rng=self.rng)

    # ---- planning --------------------------------------------------------------------------
    def plan(self, now: int | None = None) -> list[int]:
        """Enqueue every notification due at ``now`` in one transaction; the new outbox ids."""
        t = self._now(now)
        return self.store.transaction(lambda conn: self._plan(conn, t))

    def _enabled(self, names: Sequence[str]) -> list[ChannelConfig]:
        return [self._by_name[n] for n in names if n in self._by_name and self._by_name[n].enabled]

    def _generator(self, a: AlertRow) -> str:
        if callable(self.generator_url):
            return self.generator_url(a)
        return (self.generator_url.replace("{rule}", a.rule).replace("{id}", str(a.id))
                .replace("{fingerprint}", a.fingerprint))

    def _item(self, a: AlertRow, now: int, ends_at: int | None = None) -> dict[str, Any]:
        resolved = a.state == "resolved"
        return {"id": a.id, "status": "resolved" if resolved else "firing", "labels": _labels(a),
                "annotations": dict(a.annotations), "startsAt": a.fired_at or a.active_at,
                "endsAt": a.resolved_at if resolved else ends_at, "generatorURL": self._generator(a),
                "fingerprint": am_fingerprint(_labels(a)), "value": a.value,
                "acknowledgedBy": a.ack_by if a.acknowledged(now) else None}

    def _plan(self, conn: sqlite3.Connection, now: int) -> list[int]:
        expire_acknowledgements(conn, now)
        alerts = [a for a in current_alerts(conn, now) if a.state in ("firing", "resolved")]
        labelled = [a._replace(labels=_labels(a)) for a in alerts]
        muted = routing.silenced_ids(labelled, silences(conn, now)) | \
            routing.inhibited_ids(labelled, self.inhibit_rules)
        visible = [a for a in labelled if a.id not in muted]
        acked = {a.id for a in visible if a.acknowledged(now)}
        groups: dict[tuple[str, str], tuple[Route, dict, list[AlertRow]]] = {}
        for a in visible:
            for route in routing.routes_for(self.routes, a.labels):
                glabels = routing.group_labels(route, a.labels)
                gkey = routing.group_key(route, glabels)
                groups.setdefault((route.name, gkey), (route, glabels, []))[2].append(a)
        states = _load_states(conn)
        created: list[int] = []
        for (route_name, gkey), (route, glabels, members) in sorted(groups.items(), key=lambda g: g[0]):
            firing = [a for a in members if a.state == "firing"]
            resolved = [a for a in members if a.state == "resolved"]
            for ch in self._enabled(route.channels):
                skey = (route_name, ch.name, gkey)
                if ch.kind == "alertmanager":  # never echo alerts that came from an Alertmanager
                    resend = int(ch.options.get("resend_interval", 60_000))
                    decision = routing.decide_resend(states.get(skey), _local(firing), _local(resolved),
                                                     resend_ms=resend, now=now)
                    ends_at = now + 4 * resend
                else:
                    decision = routing.decide(states.get(skey), firing, resolved, route=route,
                                              send_resolved=ch.send_resolved, acknowledged=acked, now=now)
                    ends_at = None
                if decision.state != states.get(skey, routing.GroupState()):
                    _save_state(conn, skey, decision.state, now)
                if decision.send is None:
                    continue
                payload = self._payload(ch, route, gkey, glabels, decision.send, decision.alerts, now, ends_at)
                key = _key(route_name, ch.name, gkey, decision.send, decision.state.seq,
                           sorted((a.id, a.state) for a in decision.alerts))
                oid = outbox.enqueue(conn, dedup_key=key, channel=ch.name, route=route_name, group_key=gkey,
                                     kind=decision.send, payload=payload, alert_ids=[a.id for a in decision.alerts],
                                     now=now, expires_at=ends_at)
                if oid is not None:
                    created.append(oid)
        created += self._escalate(conn, visible, now)
        conn.execute("DELETE FROM notification_groups WHERE updated_at < ? AND firing = '[]'",
                     (now - STATE_TTL_MS,))
        if now - self._last_prune >= PRUNE_EVERY_MS:
            outbox.prune(conn, now - PRUNE_AFTER_MS)
            self._last_prune = now
        return created

    def _payload(self, ch: ChannelConfig, route: Route, gkey: str, glabels: Mapping[str, str], kind: str,
                 alerts: Sequence[AlertRow], now: int, ends_at: int | None, **extra: Any) -> dict[str, Any]:
        items = [self._item(a, now, ends_at) for a in alerts]
        return {"receiver": ch.name, "route": route.name, "kind": kind,
                "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
                "groupKey": gkey, "groupLabels": dict(glabels), "externalURL": self.external_url,
                "createdAt": now, "alerts": items, **extra}

    def _escalate(self, conn: sqlite3.Connection, visible: Sequence[AlertRow], now: int) -> list[int]:
        """Escalation by the first matching route that has levels; once per alert and level."""
        created: list[int] = []
        for a in visible:
            route = next((r for r in routing.routes_for(self.routes, a.labels) if r.escalation), None)
            if route is None:
                continue
            levels = routing.escalations_due(route, a, now)
            if not levels:
                continue
            glabels = routing.group_labels(route, a.labels)
            gkey = routing.group_key(route, glabels)
            # Earlier escalations of this alert (an expired acknowledgement resets the level).
            prior = conn.execute("SELECT count(*) FROM alert_events WHERE alert_id = ? AND kind = 'escalated'",
                                 (a.id,)).fetchone()[0]
            sent_to: list[str] = []
            for level in levels:
                for ch in self._enabled(route.escalation[level - 1].channels):
                    payload = self._payload(ch, route, gkey, glabels, "escalation", [a], now, None,
                                            escalationLevel=level)
                    oid = outbox.enqueue(conn, dedup_key=_key(route.name, ch.name, "escalation", a.id, level, prior),
                                         channel=ch.name, route=route.name, group_key=gkey, kind="escalation",
                                         payload=payload, alert_ids=[a.id], now=now)
                    if oid is not None:
                        created.append(oid)
                        sent_to.append(ch.name)
            set_escalation(conn, a.id, levels[-1], now, {"route": route.name, "channels": sorted(set(sent_to))})
        return created


def _local(alerts: Sequence[AlertRow]) -> list[AlertRow]:
    return [a for a in alerts if a.source == "local"]


def _load_states(conn: sqlite3.Connection) -> dict[tuple[str, str, str], routing.GroupState]:
    out = {}
    for route, channel, gkey, first, last, firing, resolved, seq in conn.execute(
            "SELECT route, channel, group_key, first_seen, last_sent, firing, resolved, seq"
            " FROM notification_groups"):
        out[(route, channel, gkey)] = routing.GroupState(first, last, frozenset(json.loads(firing)),
                                                         frozenset(json.loads(resolved)), seq)
    return out


def _save_state(conn: sqlite3.Connection, skey: tuple[str, str, str], st: routing.GroupState, now: int) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO notification_groups(route, channel, group_key, first_seen, last_sent, firing,"
        " resolved, seq, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*skey, st.first_seen, st.last_sent, json.dumps(sorted(st.firing)), json.dumps(sorted(st.resolved)),
         st.seq, now))
