-- Instances' resource readings per hour: sums and peaks of the percentages (0-100), so parts of
-- one hour written by several flushes or replicas add up; capacity as last read.
CREATE TABLE resource_hours (
    service         TEXT NOT NULL,
    instance        TEXT NOT NULL,
    hour            BIGINT NOT NULL,
    samples         BIGINT NOT NULL,
    cpu_sum         DOUBLE PRECISION NOT NULL,
    cpu_max         DOUBLE PRECISION NOT NULL,
    memory_sum      DOUBLE PRECISION NOT NULL,
    memory_max      DOUBLE PRECISION NOT NULL,
    disk_sum        DOUBLE PRECISION NOT NULL,
    disk_max        DOUBLE PRECISION NOT NULL,
    cpu_count       DOUBLE PRECISION NOT NULL,
    memory_total_mb DOUBLE PRECISION NOT NULL,
    disk_total_gb   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (service, instance, hour)
);
CREATE INDEX resource_hours_by_hour ON resource_hours (hour);
