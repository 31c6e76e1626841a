-- Feature flags: each flag's whole definition as JSON, versioned for optimistic concurrency.
CREATE TABLE flags (
    key        TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Counters that grow with every change of a kind of state; replicas poll them to reload.
CREATE TABLE revisions (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO revisions (name, value) VALUES ('flags', 0);

-- Evaluations per flag per UTC day, for stale-flag detection.
CREATE TABLE flag_evaluations (
    flag_key TEXT NOT NULL,
    day      TEXT NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (flag_key, day)
);

-- Gradual rollout plans, one per flag.
CREATE TABLE rollout_plans (
    flag_key   TEXT PRIMARY KEY,
    plan       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
