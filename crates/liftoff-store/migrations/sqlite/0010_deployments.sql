-- Deployments recorded by CI pipelines, for release verification.
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployed_at INTEGER NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX deployments_by_time ON deployments (deployed_at);
