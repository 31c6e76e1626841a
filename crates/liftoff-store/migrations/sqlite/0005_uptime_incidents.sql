-- Uptime monitors with the checker's state, raw checks (24 h), hourly and daily rollups
-- (resolution in minutes: 60 or 1440; bucket = first millisecond), downtime periods.
CREATE TABLE uptime_monitors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    interval_seconds INTEGER NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    expected_status TEXT,
    keyword TEXT,
    retries INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'unknown',
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since INTEGER,
    last_checked_at INTEGER,
    last_error TEXT
);

CREATE TABLE uptime_checks (
    monitor_id INTEGER NOT NULL REFERENCES uptime_monitors (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    up INTEGER NOT NULL,
    status_code INTEGER,
    response_ms INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX uptime_checks_by_monitor ON uptime_checks (monitor_id, at);
CREATE INDEX uptime_checks_by_time ON uptime_checks (at);

CREATE TABLE uptime_rollups (
    monitor_id INTEGER NOT NULL REFERENCES uptime_monitors (id) ON DELETE CASCADE,
    resolution INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    up INTEGER NOT NULL,
    total INTEGER NOT NULL,
    sum_ms INTEGER NOT NULL,
    max_ms INTEGER NOT NULL,
    PRIMARY KEY (monitor_id, resolution, bucket)
);

CREATE TABLE uptime_downtimes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor_id INTEGER NOT NULL REFERENCES uptime_monitors (id) ON DELETE CASCADE,
    started_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE INDEX uptime_downtimes_by_monitor ON uptime_downtimes (monitor_id, started_at);

-- Incidents: one JSON document each with a version; numbers per year from a counter row.
CREATE TABLE incident_sequences (
    year INTEGER PRIMARY KEY,
    last INTEGER NOT NULL
);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    year INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    resolved_at INTEGER,
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    UNIQUE (year, seq)
);
