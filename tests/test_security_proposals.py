"""The security pass, proposals and the audit log: stale and expired proposals are refused and never
run, and the audit log's triggers refuse every way of rewriting it (UPDATE, DELETE, INSERT OR
REPLACE, upsert), housekeeping included."""

from __future__ import annotations

import os
import sqlite3
import sys
import textwrap

import pytest

from qbconsole.model import Sample
from qbconsole.store import Store

T0 = 1_700_000_000_000
MIN = 60_000


# ---- stale and expired proposals ----------------------------------------------------------------------
def test_stale_and_expired_proposals_are_refused(tmp_path):
    from qbconsole.actions import ActionEngine, approve, audit_entries, get, list_proposals
    from qbconsole.config import parse_config

    ran = tmp_path / "ran"
    recorder = "import pathlib, sys; pathlib.Path(sys.argv[1]).open('a').write(sys.argv[2] + '\\n')"
    text = textwrap.dedent(f"""
        optimizations:
          - name: drain
            expr: queue_depth > 10
            action:
              kind: command
              argv: [{sys.executable!r}, -c, {recorder!r}, {str(ran)!r}, "{{who}}"]
              params: {{who: "{{{{ $labels.instance }}}}"}}
            expiry: 2m
            cooldown: 1m
        """)
    store = Store.open(tmp_path / "qb.db")
    try:
        clock = [T0 / 1000]
        engine = ActionEngine(store, parse_config(text, "rules.yaml", env={}), env=dict(os.environ),
                              interval_s=0, clock=lambda: clock[0])
        store.write([Sample("queue_depth", {"instance": i}, T0, 50.0) for i in ("late", "stale", "lapsed")])
        engine.tick(T0)
        by = {p.target: p for p in list_proposals(store.read())}
        assert sorted(by) == ["instance=lapsed", "instance=late", "instance=stale"]
        # expired before anyone decided: approving it is refused, and it lapses
        with pytest.raises(ValueError, match="expired"):
            approve(store, by["instance=lapsed"].id, "alice", T0 + 3 * MIN)
        # approved in time, but the condition stopped holding before it ran: refused as stale
        approve(store, by["instance=stale"].id, "alice", T0 + 1000)
        store.write([Sample("queue_depth", {"instance": "stale"}, T0 + 2000, 3.0),
                     Sample("queue_depth", {"instance": "late"}, T0 + 2000, 50.0)])
        engine.tick(T0 + 2000)
        stale = get(store.read(), by["instance=stale"].id)
        assert stale.state == "refused" and "condition no longer holds" in stale.reason
        # approved in time, but its run came only after the expiry: refused
        approve(store, by["instance=late"].id, "bob", T0 + 100_000)
        store.write([Sample("queue_depth", {"instance": "late"}, T0 + 3 * MIN, 50.0)])
        clock[0] = (T0 + 3 * MIN) / 1000
        engine.tick(T0 + 3 * MIN)
        late = get(store.read(), by["instance=late"].id)
        assert late.state == "refused" and "expired" in late.reason
        assert get(store.read(), by["instance=lapsed"].id).state == "expired"
        assert not ran.exists(), "a stale or expired proposal ran"
        trail = {p: [e.action for e in audit_entries(store.read(), target=f"proposal:{by[p].id}")] for p in by}
        assert trail["instance=stale"][-1] == "refused" and trail["instance=late"][-1] == "refused"
    finally:
        store.close()


# ---- audit log -------------------------------------------------------------------------------------
def test_the_audit_triggers_hold(tmp_path):
    from qbconsole.actions import audit_entries
    from qbconsole.actions import audit as audit_rows

    store = Store.open(tmp_path / "qb.db")
    try:
        store.transaction(lambda c: audit_rows.record(c, T0, "alice", "approved", "proposal:1", {"note": "go"}))
        store.transaction(lambda c: audit_rows.record(c, T0 + 1, "engine", "succeeded", "proposal:1", {}))
        before = audit_entries(store.read())
        first = before[0].id
        attempts = [
            "UPDATE audit_log SET actor = 'mallory'",
            "UPDATE audit_log SET detail = '{}' WHERE id = %d" % first,
            "UPDATE OR REPLACE audit_log SET action = 'rejected'",
            "DELETE FROM audit_log",
            "DELETE FROM audit_log WHERE id = %d" % first,
            "INSERT OR REPLACE INTO audit_log(id, ts, actor, action, target) VALUES (%d, 0, 'mallory', 'x', 'y')" % first,
            "REPLACE INTO audit_log(id, ts, actor, action, target) VALUES (%d, 0, 'mallory', 'x', 'y')" % first,
            "INSERT INTO audit_log(id, ts, actor, action, target) VALUES (%d, 0, 'm', 'x', 'y') "
            "ON CONFLICT(id) DO UPDATE SET actor = 'mallory'" % first,
            "INSERT OR IGNORE INTO audit_log(id, ts, actor, action, target) VALUES (%d, 0, 'm', 'x', 'y')" % first,
        ]
        conn = sqlite3.connect(store.path)
        try:
            for sql in attempts:
                with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                    conn.execute(sql)
                conn.rollback()
        finally:
            conn.close()
        assert audit_entries(store.read()) == before
        store.rollup(T0 + 10 ** 12)
        store.purge(T0 + 10 ** 12)  # housekeeping never touches it either
        assert audit_entries(store.read()) == before
    finally:
        store.close()

