"""Optimization proposals (store migration 4); qbconsole.actions reads and writes them.

A proposal is what an optimization rule suggests and a person decides on. Its
whole life is in its row:

    proposed -> approved | rejected | expired
    approved -> executing | refused (stale: expired, out of bounds, in
                cooldown, condition gone, not configured; ``reason`` says which)
    executing -> succeeded | failed          (output, exit_status, duration_s)
    succeeded -> verdict improved | not_improved   (baseline, after, verified_at)

``spec`` is the exact thing that runs (argv, HTTP request or SQL, parameters
filled in) as JSON; ``evidence`` the metric values (and alerts) that led to
it; ``bounds`` and ``verify`` the rule's, as they were when it was proposed.
Every step is also an audit_log row (append-only, see migration 2). At most
one proposal per rule and target is open (proposed, approved or executing) at
a time; state changes are conditional UPDATEs (``... WHERE id = ? AND state =
'approved'``) so two processes never both take the same step.

It also closes a gap in the audit log's protection: ``INSERT OR REPLACE``
deletes the row it replaces without firing DELETE triggers, so a trigger
refuses any insert that reuses an existing id.
"""

MIGRATION = """
CREATE TABLE proposals (
    id            INTEGER PRIMARY KEY,
    rule          TEXT NOT NULL,
    target        TEXT NOT NULL,
    action        TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    spec          TEXT NOT NULL,
    evidence      TEXT NOT NULL DEFAULT '{}',
    bounds        TEXT NOT NULL DEFAULT '{}',
    verify        TEXT NOT NULL DEFAULT '{}',
    priority      TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('high', 'medium', 'low')),
    state         TEXT NOT NULL CHECK (state IN ('proposed', 'approved', 'rejected', 'expired', 'refused',
                                                 'executing', 'succeeded', 'failed')),
    verdict       TEXT CHECK (verdict IN ('improved', 'not_improved')),
    reason        TEXT,
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
CREATE INDEX proposals_by_rule ON proposals(rule, target, id);
CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
