-- Report schedules (one JSON document each) and the archive of generated reports, every
-- format kept so an archived report never changes.
CREATE TABLE report_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document TEXT NOT NULL
);
CREATE TABLE report_archive (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    from_ms INTEGER NOT NULL,
    to_ms INTEGER NOT NULL,
    generated_ms INTEGER NOT NULL,
    schedule_id INTEGER,
    period_ms INTEGER,
    json BLOB NOT NULL,
    markdown BLOB NOT NULL,
    html BLOB NOT NULL,
    pdf BLOB NOT NULL
);
-- One archived report per schedule and period: a retried delivery finds it.
CREATE UNIQUE INDEX report_archive_period ON report_archive (schedule_id, period_ms)
    WHERE schedule_id IS NOT NULL;
