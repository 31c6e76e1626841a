-- Segments: named, reusable sets of constraints that flag rules refer to by id.
CREATE TABLE segments (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    definition JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
