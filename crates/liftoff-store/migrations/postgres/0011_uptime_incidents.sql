-- Uptime monitors with the checker's state, raw checks (24 h), hourly and daily rollups
-- (resolution in minutes: 60 or 1440; bucket = first millisecond), downtime periods. Times are
-- Unix milliseconds here as on SQLite: every query is range arithmetic on them.
CREATE TABLE uptime_monitors (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    interval_seconds BIGINT NOT NULL,
    timeout_seconds BIGINT NOT NULL,
    expected_status TEXT,
    keyword TEXT,
    retries BIGINT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'unknown',
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    failing_since BIGINT,
    last_checked_at BIGINT,
    last_error TEXT
);

CREATE TABLE uptime_checks (
    monitor_id BIGINT NOT NULL REFERENCES uptime_monitors (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    up BOOLEAN NOT NULL,
    status_code BIGINT,
    response_ms BIGINT NOT NULL,
    error TEXT
);
CREATE INDEX uptime_checks_by_monitor ON uptime_checks (monitor_id, at);
CREATE INDEX uptime_checks_by_time ON uptime_checks (at);

CREATE TABLE uptime_rollups (
    monitor_id BIGINT NOT NULL REFERENCES uptime_monitors (id) ON DELETE CASCADE,
    resolution BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    up BIGINT NOT NULL,
    total BIGINT NOT NULL,
    sum_ms BIGINT NOT NULL,
    max_ms BIGINT NOT NULL,
    PRIMARY KEY (monitor_id, resolution, bucket)
);

CREATE TABLE uptime_downtimes (
    id BIGSERIAL PRIMARY KEY,
    monitor_id BIGINT NOT NULL REFERENCES uptime_monitors (id) ON DELETE CASCADE,
    started_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX uptime_downtimes_by_monitor ON uptime_downtimes (monitor_id, started_at);

-- Incidents: one JSON document each with a version; numbers per year from a counter row.
CREATE TABLE incident_sequences (
    year BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    year BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    resolved_at BIGINT,
    version BIGINT NOT NULL,
    document JSONB NOT NULL,
    UNIQUE (year, seq)
);
