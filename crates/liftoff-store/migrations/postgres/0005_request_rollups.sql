-- Older request metrics, compacted: hourly rows (resolution 60) after 24 hours, daily rows
-- (resolution 1440) after 30 days. `bucket` is the first Unix minute the row covers.
CREATE TABLE request_rollups (
    resolution INTEGER NOT NULL,
    service    TEXT NOT NULL,
    method     TEXT NOT NULL,
    route      TEXT NOT NULL,
    status     SMALLINT NOT NULL,
    bucket     BIGINT NOT NULL,
    count      BIGINT NOT NULL,
    sketch     BYTEA NOT NULL,
    PRIMARY KEY (resolution, service, method, route, status, bucket)
);
CREATE INDEX request_rollups_by_bucket ON request_rollups (resolution, bucket);
