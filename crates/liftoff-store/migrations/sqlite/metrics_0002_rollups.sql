-- Older request metrics, compacted: hourly rows (resolution 60) after 24 hours, daily rows
-- (resolution 1440) after 30 days. `bucket` is the first Unix minute the row covers. A
-- compaction moves rows in one transaction, so each request is counted in exactly one table.
CREATE TABLE request_rollups (
    resolution INTEGER NOT NULL,
    service    TEXT NOT NULL,
    method     TEXT NOT NULL,
    route      TEXT NOT NULL,
    status     INTEGER NOT NULL,
    bucket     INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    sketch     BLOB NOT NULL,
    PRIMARY KEY (resolution, service, method, route, status, bucket)
) WITHOUT ROWID;
CREATE INDEX request_rollups_by_bucket ON request_rollups (resolution, bucket);
