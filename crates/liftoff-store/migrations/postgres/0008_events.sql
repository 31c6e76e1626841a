-- Raw product events and persons. Timestamps are Unix milliseconds like the SQLite file, so
-- both backends page and purge with the same numbers.

CREATE TABLE events (
    seq        BIGSERIAL PRIMARY KEY,
    uuid       BYTEA UNIQUE,
    ts         BIGINT NOT NULL,
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
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    properties TEXT NOT NULL
);

-- Tombstones: events of user_id with seq <= up_to_seq are erased; sealed copies filter on this.
CREATE TABLE erased_users (
    id        BIGSERIAL PRIMARY KEY,
    user_id   TEXT NOT NULL,
    erased_at TIMESTAMPTZ NOT NULL,
    up_to_seq BIGINT NOT NULL
);
CREATE INDEX erased_users_user ON erased_users (user_id);
