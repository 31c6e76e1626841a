-- Per-service totals are cells with an empty method and route (no request has either); these
-- partial indexes reach them without walking every endpoint's cells.
CREATE INDEX request_minutes_totals ON request_minutes (minute) WHERE method = '';
CREATE INDEX request_rollups_totals ON request_rollups (bucket) WHERE method = '';
-- Every (service, method, route, status) that has cells, so "which endpoints had traffic in a
-- window" is one index probe per series instead of a scan over every cell of the window.
CREATE TABLE request_series (
    service TEXT NOT NULL,
    method  TEXT NOT NULL,
    route   TEXT NOT NULL,
    status  SMALLINT NOT NULL,
    PRIMARY KEY (service, method, route, status)
);
INSERT INTO request_series
SELECT service, method, route, status FROM request_minutes WHERE method <> ''
UNION
SELECT service, method, route, status FROM request_rollups WHERE method <> '';
