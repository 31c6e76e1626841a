-- Segments: named, reusable sets of constraints that flag rules refer to by id.
CREATE TABLE segments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
