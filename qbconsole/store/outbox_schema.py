"""The notifier's tables (store migration 3); qbconsole.notify.outbox reads and writes them.

* ``notification_outbox``: one row per notification to one channel. ``dedup_key``
  is UNIQUE, so planning the same notification twice never stores it twice.
  ``progress`` lists the parts already accepted (SMS recipients) so a retry
  does not resend them.
* ``notification_alerts``: which alerts a notification carries (for the
  console's alert detail: every notification and its delivery status).
* ``notification_groups``: per (route, channel, group) timing state, so
  ``group_wait``, ``group_interval`` and ``repeat_interval`` survive restarts.
"""

MIGRATION = """
CREATE TABLE notification_outbox (
    id              INTEGER PRIMARY KEY,
    dedup_key       TEXT NOT NULL UNIQUE,
    channel         TEXT NOT NULL,
    route           TEXT NOT NULL,
    group_key       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt    INTEGER NOT NULL,
    expires_at      INTEGER,
    last_attempt_at INTEGER,
    last_error      TEXT,
    progress        TEXT NOT NULL DEFAULT '[]',
    delivered_at    INTEGER
);
CREATE INDEX notification_outbox_due ON notification_outbox(state, next_attempt);
CREATE TABLE notification_alerts (
    alert_id  INTEGER NOT NULL,
    outbox_id INTEGER NOT NULL REFERENCES notification_outbox(id) ON DELETE CASCADE,
    PRIMARY KEY (alert_id, outbox_id)
) WITHOUT ROWID;
CREATE INDEX notification_alerts_by_outbox ON notification_alerts(outbox_id);
CREATE TABLE notification_groups (
    route       TEXT NOT NULL,
    channel     TEXT NOT NULL,
    group_key   TEXT NOT NULL,
    first_seen  INTEGER,
    last_sent   INTEGER,
    firing      TEXT NOT NULL DEFAULT '[]',
    resolved    TEXT NOT NULL DEFAULT '[]',
    seq         INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (route, channel, group_key)
) WITHOUT ROWID;
"""
