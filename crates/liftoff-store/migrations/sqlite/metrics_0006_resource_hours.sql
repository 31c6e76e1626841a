-- Instances' resource readings per hour: sums and peaks of the percentages (0-100), so parts of
-- one hour written by several flushes or replicas add up; capacity as last read.
CREATE TABLE resource_hours (
    service         TEXT NOT NULL,
    instance        TEXT NOT NULL,
    hour            INTEGER NOT NULL,
    samples         INTEGER NOT NULL,
    cpu_sum         REAL NOT NULL,
    cpu_max         REAL NOT NULL,
    memory_sum      REAL NOT NULL,
    memory_max      REAL NOT NULL,
    disk_sum        REAL NOT NULL,
    disk_max        REAL NOT NULL,
    cpu_count       REAL NOT NULL,
    memory_total_mb REAL NOT NULL,
    disk_total_gb   REAL NOT NULL,
    PRIMARY KEY (service, instance, hour)
) WITHOUT ROWID;
CREATE INDEX resource_hours_by_hour ON resource_hours (hour);
