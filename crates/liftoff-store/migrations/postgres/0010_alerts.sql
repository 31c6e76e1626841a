-- Alerts: rules, silences, maintenance windows and notification channels as JSON documents;
-- alert instances; the notification outbox; the evaluation lease; once-only markers.
CREATE TABLE alert_rules (id BIGSERIAL PRIMARY KEY, doc JSONB NOT NULL);
CREATE TABLE alert_silences (id BIGSERIAL PRIMARY KEY, doc JSONB NOT NULL);
CREATE TABLE maintenance_windows (id BIGSERIAL PRIMARY KEY, doc JSONB NOT NULL);
CREATE TABLE notification_channels (id BIGSERIAL PRIMARY KEY, doc JSONB NOT NULL);

CREATE TABLE alerts (
    id BIGSERIAL PRIMARY KEY,
    rule_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    doc JSONB NOT NULL
);
CREATE INDEX alerts_active ON alerts (rule_id) WHERE status <> 'resolved';

CREATE TABLE notification_outbox (
    id BIGSERIAL PRIMARY KEY,
    channel_id BIGINT NOT NULL,
    alert_id BIGINT,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE alert_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
CREATE TABLE alert_markers (name TEXT PRIMARY KEY, at TIMESTAMPTZ NOT NULL);
