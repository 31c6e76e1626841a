-- Operations (named units of work). One row per (resolution, service, operation, bucket):
-- resolution 1 (minutes), 60 (hours, after a day) or 1440 (days, after 30 days); `bucket` is
-- the first Unix minute the row covers.
CREATE TABLE operation_cells (
    resolution  INTEGER NOT NULL,
    service     TEXT NOT NULL,
    operation   TEXT NOT NULL,
    bucket      BIGINT NOT NULL,
    count       BIGINT NOT NULL,
    failures    BIGINT NOT NULL,
    cache_hits  BIGINT NOT NULL,
    cache_known BIGINT NOT NULL,
    layers      JSONB NOT NULL,
    error_types JSONB NOT NULL,
    sketch      BYTEA NOT NULL,
    PRIMARY KEY (resolution, service, operation, bucket)
);
CREATE INDEX operation_cells_by_bucket ON operation_cells (bucket);
-- Failed runs with their details, at most 20 per (service, operation, error_type, minute).
CREATE TABLE operation_errors (
    id          BIGSERIAL PRIMARY KEY,
    service     TEXT NOT NULL,
    operation   TEXT NOT NULL,
    error_type  TEXT NOT NULL,
    minute      BIGINT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    error       TEXT,
    stack_trace TEXT,
    context     JSONB,
    user_id     TEXT
);
CREATE INDEX operation_errors_by_key ON operation_errors (service, operation, error_type, minute);
CREATE INDEX operation_errors_by_at ON operation_errors (at);
-- Who ran what, per Unix hour: a 64-bit hash of the user id, and whether they succeeded once.
CREATE TABLE operation_users (
    service   TEXT NOT NULL,
    operation TEXT NOT NULL,
    hour      BIGINT NOT NULL,
    user_hash BIGINT NOT NULL,
    ok        BOOLEAN NOT NULL,
    PRIMARY KEY (service, operation, hour, user_hash)
);
CREATE INDEX operation_users_by_hour ON operation_users (hour);
