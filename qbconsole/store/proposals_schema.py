"""Optimization proposals (store migration 4); qbconsole.actions reads and writes them.

A proposal is what an optimization rule suggests and a person decides on. Its
whole life (proposed, approved/rejected/expired/refused, executing,
succeeded/failed, improved/not improved) is in its row; every step is also an
audit_log row (append-only, see migration 2). At most one proposal per rule
and target is open at a time.
"""

MIGRATION = """
CREATE TABLE proposals (
    id            INTEGER PRIMARY KEY,
    rule          TEXT NOT NULL,
    target        TEXT NOT NULL,
    action        TEXT NOT NULL,
    spec          TEXT NOT NULL,
    evidence      TEXT NOT NULL DEFAULT '{}',
    bounds        TEXT NOT NULL DEFAULT '{}',
    priority      TEXT NOT NULL DEFAULT 'medium',
    state         TEXT NOT NULL CHECK (state IN ('proposed', 'approved', 'rejected', 'expired', 'refused',
                                                 'executing', 'succeeded', 'failed')),
    verdict       TEXT CHECK (verdict IN ('improved', 'not_improved')),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    decided_by    TEXT,
    decided_at    INTEGER,
    decision_note TEXT,
    started_at    INTEGER,
    finished_at   INTEGER,
    exit_status   INTEGER,
    output        TEXT,
    duration_s    REAL,
    verify_at     INTEGER,
    verified_at   INTEGER,
    baseline      REAL,
    after         REAL
);
CREATE UNIQUE INDEX proposals_open ON proposals(rule, target)
    WHERE state IN ('proposed', 'approved', 'executing');
CREATE INDEX proposals_by_state ON proposals(state, created_at);
"""
