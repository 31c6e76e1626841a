-- Requests per flag variant (flags under an experiment or a guarded rollout only): a DDSketch
-- of latencies per (flag, variant, failed, minute).
CREATE TABLE variant_minutes (
    flag    TEXT NOT NULL,
    variant TEXT NOT NULL,
    failed  INTEGER NOT NULL,
    minute  INTEGER NOT NULL,
    sketch  BLOB NOT NULL,
    PRIMARY KEY (flag, minute, variant, failed)
) WITHOUT ROWID;
CREATE INDEX variant_minutes_by_minute ON variant_minutes (minute);
