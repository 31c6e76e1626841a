-- Operations (named units of work). One row per (resolution, service, operation, bucket):
-- resolution 1 (minutes), 60 (hours, after a day) or 1440 (days, after 30 days); `bucket` is
-- the first Unix minute the row covers. Layers and error types are JSON objects of counts.
CREATE TABLE operation_cells (
    resolution  INTEGER NOT NULL,
    service     TEXT NOT NULL,
    operation   TEXT NOT NULL,
    bucket      INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    cache_hits  INTEGER NOT NULL,
    cache_known INTEGER NOT NULL,
    layers      TEXT NOT NULL,
    error_types TEXT NOT NULL,
    sketch      BLOB NOT NULL,
    PRIMARY KEY (resolution, service, operation, bucket)
) WITHOUT ROWID;
CREATE INDEX operation_cells_by_bucket ON operation_cells (bucket);
-- Failed runs with their details, at most 20 per (service, operation, error_type, minute).
-- `at` is Unix milliseconds.
CREATE TABLE operation_errors (
    id          INTEGER PRIMARY KEY,
    service     TEXT NOT NULL,
    operation   TEXT NOT NULL,
    error_type  TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    error       TEXT,
    stack_trace TEXT,
    context     TEXT,
    user_id     TEXT
);
CREATE INDEX operation_errors_by_key ON operation_errors (service, operation, error_type, minute);
CREATE INDEX operation_errors_by_at ON operation_errors (at);
-- Who ran what, per Unix hour: a 64-bit hash of the user id, and whether they succeeded once.
CREATE TABLE operation_users (
    service   TEXT NOT NULL,
    operation TEXT NOT NULL,
    hour      INTEGER NOT NULL,
    user_hash INTEGER NOT NULL,
    ok        INTEGER NOT NULL,
    PRIMARY KEY (service, operation, hour, user_hash)
) WITHOUT ROWID;
CREATE INDEX operation_users_by_hour ON operation_users (hour);
