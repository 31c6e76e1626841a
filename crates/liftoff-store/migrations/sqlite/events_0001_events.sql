-- events.db: raw product events and persons, in their own file so event ingest never queues
-- behind state or metrics writes.

-- AUTOINCREMENT: a seq is never reused after deletes, so pages and erasure marks stay valid.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       BLOB UNIQUE,
    ts         INTEGER NOT NULL,
    user_id    TEXT NOT NULL,
    session_id TEXT,
    event      TEXT NOT NULL,
    properties TEXT NOT NULL,
    -- Validation refuses these first; the checks keep a bug from storing nameless events.
    CHECK (event <> '' AND user_id <> '')
);
CREATE INDEX events_ts ON events (ts);
CREATE INDEX events_user_ts ON events (user_id, ts);

CREATE TABLE persons (
    user_id    TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    properties TEXT NOT NULL
) WITHOUT ROWID;

-- Tombstones: events of user_id with seq <= up_to_seq are erased; sealed copies filter on this.
CREATE TABLE erased_users (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   TEXT NOT NULL,
    erased_at INTEGER NOT NULL,
    up_to_seq INTEGER NOT NULL
);
CREATE INDEX erased_users_user ON erased_users (user_id);
