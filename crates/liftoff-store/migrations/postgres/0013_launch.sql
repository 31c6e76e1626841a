-- Launch controls: the settings document (one row, locked by every admission so replicas
-- serialize on it), admissions in order of first ask, feedback.
CREATE TABLE launch_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL,
    document JSONB NOT NULL
);
INSERT INTO launch_settings (id, revision, document) VALUES (1, 0, '{}');

CREATE TABLE launch_users (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE,
    first_asked_at BIGINT NOT NULL,
    admitted_at BIGINT
);
CREATE INDEX launch_users_waiting ON launch_users (seq) WHERE admitted_at IS NULL;

CREATE TABLE launch_feedback (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL,
    rating SMALLINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    category TEXT NOT NULL,
    message TEXT NOT NULL,
    page TEXT,
    request TEXT,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    resolution TEXT,
    resolved_at BIGINT
);
CREATE INDEX launch_feedback_created ON launch_feedback (created_at);
