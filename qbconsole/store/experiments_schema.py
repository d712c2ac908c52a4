"""A/B experiments (store migration 5); qbconsole.experiments reads and writes them.

An experiment is draft, running or stopped; its variants and their weights are
fixed once it runs. A user's first exposure is one row (the assignment is a
pure function of the experiment's seed and the user id, so it is never stored
as state); events count only at or after that exposure.
"""

MIGRATION = """
CREATE TABLE experiments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    seed        TEXT NOT NULL,
    variants    TEXT NOT NULL,
    weights     TEXT NOT NULL,
    metrics     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('draft', 'running', 'stopped')),
    origin      TEXT NOT NULL DEFAULT 'cli',
    duration_s  REAL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    stopped_at  INTEGER,
    stopped_by  TEXT
);
CREATE TABLE exposures (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    user_id       TEXT NOT NULL,
    variant       TEXT NOT NULL,
    ts            INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, user_id)
) WITHOUT ROWID;
CREATE TABLE experiment_events (
    id            INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    user_id       TEXT NOT NULL,
    event         TEXT NOT NULL,
    value         REAL,
    ts            INTEGER NOT NULL
);
CREATE INDEX experiment_events_by_user ON experiment_events(experiment_id, event, user_id, ts);
"""
