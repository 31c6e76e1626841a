-- Alerts: rules, silences, maintenance windows and notification channels as JSON documents;
-- alert instances; the notification outbox; the evaluation lease; once-only markers.
CREATE TABLE alert_rules (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL);
CREATE TABLE alert_silences (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL);
CREATE TABLE maintenance_windows (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL);
CREATE TABLE notification_channels (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX alerts_active ON alerts (rule_id) WHERE status <> 'resolved';

CREATE TABLE notification_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL,
    alert_id INTEGER,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE alert_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE alert_markers (name TEXT PRIMARY KEY, at INTEGER NOT NULL);
