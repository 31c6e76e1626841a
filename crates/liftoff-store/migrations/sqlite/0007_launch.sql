-- Launch controls: the settings document (one row), admissions in order of first ask, feedback.
CREATE TABLE launch_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    document TEXT NOT NULL
);
INSERT INTO launch_settings (id, revision, document) VALUES (1, 0, '{}');

CREATE TABLE launch_users (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL UNIQUE,
    first_asked_at INTEGER NOT NULL,
    admitted_at INTEGER
);
CREATE INDEX launch_users_waiting ON launch_users (seq) WHERE admitted_at IS NULL;

CREATE TABLE launch_feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    category TEXT NOT NULL,
    message TEXT NOT NULL,
    page TEXT,
    request TEXT,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    resolution TEXT,
    resolved_at INTEGER
);
CREATE INDEX launch_feedback_created ON launch_feedback (created_at);
