-- Request metrics, in their own file (metrics.db) so ingest writes never queue behind state.
-- One row per (service, method, route, status, minute): counts and a DDSketch of latencies.
CREATE TABLE request_minutes (
    service TEXT NOT NULL,
    method  TEXT NOT NULL,
    route   TEXT NOT NULL,
    status  INTEGER NOT NULL,
    minute  INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    sketch  BLOB NOT NULL,
    PRIMARY KEY (service, method, route, status, minute)
) WITHOUT ROWID;
CREATE INDEX request_minutes_by_minute ON request_minutes (minute);
