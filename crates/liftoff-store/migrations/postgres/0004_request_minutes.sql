-- Request metrics: one row per (service, method, route, status, minute) with a DDSketch.
CREATE TABLE request_minutes (
    service TEXT NOT NULL,
    method  TEXT NOT NULL,
    route   TEXT NOT NULL,
    status  SMALLINT NOT NULL,
    minute  BIGINT NOT NULL,
    count   BIGINT NOT NULL,
    sketch  BYTEA NOT NULL,
    PRIMARY KEY (service, method, route, status, minute)
);
CREATE INDEX request_minutes_by_minute ON request_minutes (minute);
