-- Experiments: one JSON document each with a version.
CREATE TABLE experiments (
    key TEXT PRIMARY KEY,
    flag_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    document JSONB NOT NULL
);

-- Server-side exposures, one row per (experiment, user): the first variant and time, and
-- whether the user was also given another variant.
CREATE TABLE experiment_exposures (
    experiment TEXT NOT NULL,
    user_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    multiple BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (experiment, user_id)
);
