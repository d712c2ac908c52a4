"""A/B experiments (store migration 5); qbconsole.experiments reads and writes them.

An experiment is draft, running or stopped; its seed, variants and weights are
fixed once it has started (a trigger refuses the change). ``variants`` and
``weights`` are JSON lists (the first variant is the control); ``metrics`` is a
JSON list of ``{"name", "event", "kind"}`` (the first is the primary metric).

A user's first exposure is one row (the assignment is a pure function of the
experiment's seed and the user id, so it is never stored as state); events
count only at or after that exposure. The covering index on
``experiment_events`` is what the analysis reads: it never touches the table.
"""

MIGRATION = """
CREATE TABLE experiments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    seed        TEXT NOT NULL,
    variants    TEXT NOT NULL,
    weights     TEXT NOT NULL,
    metrics     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('draft', 'running', 'stopped')),
    origin      TEXT NOT NULL DEFAULT 'cli' CHECK (origin IN ('cli', 'config')),
    duration_s  REAL CHECK (duration_s IS NULL OR duration_s > 0),
    sequential  INTEGER NOT NULL DEFAULT 0 CHECK (sequential IN (0, 1)),
    mde         REAL NOT NULL DEFAULT 0.05 CHECK (mde > 0),
    alpha       REAL NOT NULL DEFAULT 0.05 CHECK (alpha > 0 AND alpha < 1),
    min_users   INTEGER NOT NULL DEFAULT 100 CHECK (min_users >= 2),
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    stopped_at  INTEGER,
    stopped_by  TEXT
);
CREATE TRIGGER experiments_split_fixed BEFORE UPDATE OF seed, variants, weights ON experiments
WHEN OLD.status <> 'draft'
 AND (NEW.seed IS NOT OLD.seed OR NEW.variants IS NOT OLD.variants OR NEW.weights IS NOT OLD.weights)
BEGIN SELECT RAISE(ABORT, 'the split of a started experiment is fixed'); END;
CREATE TRIGGER experiments_no_restart BEFORE UPDATE OF status ON experiments
WHEN OLD.status = 'stopped' AND NEW.status <> 'stopped'
BEGIN SELECT RAISE(ABORT, 'a stopped experiment cannot run again'); END;
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
CREATE INDEX experiment_events_by_user ON experiment_events(experiment_id, user_id, ts, event, value);
"""
