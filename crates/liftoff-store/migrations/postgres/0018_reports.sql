-- Report schedules (one JSON document each) and the archive of generated reports, every
-- format kept so an archived report never changes.
CREATE TABLE report_schedules (
    id BIGSERIAL PRIMARY KEY,
    document JSONB NOT NULL
);
CREATE TABLE report_archive (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    from_ms BIGINT NOT NULL,
    to_ms BIGINT NOT NULL,
    generated_ms BIGINT NOT NULL,
    schedule_id BIGINT,
    period_ms BIGINT,
    json BYTEA NOT NULL,
    markdown BYTEA NOT NULL,
    html BYTEA NOT NULL,
    pdf BYTEA NOT NULL
);
-- One archived report per schedule and period: a retried delivery finds it.
CREATE UNIQUE INDEX report_archive_period ON report_archive (schedule_id, period_ms)
    WHERE schedule_id IS NOT NULL;
