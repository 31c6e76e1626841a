-- Sealed events: once a UTC day is over, its rows move out of `events` into one encoded
-- columnar segment (liftoff-analytics: dictionary-encoded, sorted by user and time,
-- checksummed), a few bytes per event. Late events for a sealed day are sealed as another part.
CREATE TABLE event_segments (
    day     BIGINT NOT NULL,    -- Unix day (ts / 86400000)
    part    INTEGER NOT NULL,
    rows    BIGINT NOT NULL,
    max_seq BIGINT NOT NULL,    -- the highest `events.seq` sealed into it
    version BIGINT NOT NULL,    -- grows when an erasure rewrites the part
    bytes   BYTEA NOT NULL,
    PRIMARY KEY (day, part)
);
-- Uuids of sealed events, so a retry of an old event is still a duplicate.
CREATE TABLE event_uuids (
    uuid BYTEA PRIMARY KEY,
    day  BIGINT NOT NULL
);
CREATE INDEX event_uuids_day ON event_uuids (day);
