-- Experiments: one JSON document each with a version.
CREATE TABLE experiments (
    key TEXT PRIMARY KEY,
    flag_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    document TEXT NOT NULL
);

-- Server-side exposures, one row per (experiment, user): the first variant and time, and
-- whether the user was also given another variant.
CREATE TABLE experiment_exposures (
    experiment TEXT NOT NULL,
    user_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    first_at INTEGER NOT NULL,
    multiple INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, user_id)
) WITHOUT ROWID;
