-- Sealed events: once a UTC day is over, its rows move out of `events` into one encoded
-- columnar segment (liftoff-analytics: dictionary-encoded, sorted by user and time,
-- checksummed), a few bytes per event. Late events for a sealed day are sealed as another part.
CREATE TABLE event_segments (
    day     INTEGER NOT NULL,   -- Unix day (ts / 86400000)
    part    INTEGER NOT NULL,
    rows    INTEGER NOT NULL,
    max_seq INTEGER NOT NULL,   -- the highest `events.seq` sealed into it
    version INTEGER NOT NULL,   -- grows when an erasure rewrites the part
    bytes   BLOB NOT NULL,
    PRIMARY KEY (day, part)
) WITHOUT ROWID;
-- Uuids of sealed events, so a retry of an old event is still a duplicate.
CREATE TABLE event_uuids (
    uuid BLOB PRIMARY KEY,
    day  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX event_uuids_day ON event_uuids (day);
