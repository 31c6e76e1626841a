//! The versioned schema of each backend. A migration is applied once, in order, and recorded in
//! `schema_migrations`; shipped migrations are never edited, only followed by new ones.

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "state",
        sql: include_str!("../migrations/sqlite/0001_state.sql"),
    },
    Migration {
        version: 2,
        name: "flags",
        sql: include_str!("../migrations/sqlite/0002_flags.sql"),
    },
    Migration {
        version: 3,
        name: "segments",
        sql: include_str!("../migrations/sqlite/0003_segments.sql"),
    },
    Migration {
        version: 4,
        name: "alerts",
        sql: include_str!("../migrations/sqlite/0004_alerts.sql"),
    },
    Migration {
        version: 5,
        name: "uptime_incidents",
        sql: include_str!("../migrations/sqlite/0005_uptime_incidents.sql"),
    },
    Migration {
        version: 6,
        name: "delivery_excerpt",
        sql: include_str!("../migrations/sqlite/0006_delivery_excerpt.sql"),
    },
    Migration {
        version: 7,
        name: "launch",
        sql: include_str!("../migrations/sqlite/0007_launch.sql"),
    },
    Migration {
        version: 8,
        name: "launch_counts",
        sql: include_str!("../migrations/sqlite/0008_launch_counts.sql"),
    },
    Migration {
        version: 9,
        name: "experiments",
        sql: include_str!("../migrations/sqlite/0009_experiments.sql"),
    },
    Migration {
        version: 10,
        name: "deployments",
        sql: include_str!("../migrations/sqlite/0010_deployments.sql"),
    },
    Migration {
        version: 11,
        name: "reports",
        sql: include_str!("../migrations/sqlite/0011_reports.sql"),
    },
    Migration {
        version: 12,
        name: "leases",
        sql: include_str!("../migrations/sqlite/0012_leases.sql"),
    },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "state",
        sql: include_str!("../migrations/postgres/0001_state.sql"),
    },
    Migration {
        version: 2,
        name: "flags",
        sql: include_str!("../migrations/postgres/0002_flags.sql"),
    },
    Migration {
        version: 3,
        name: "segments",
        sql: include_str!("../migrations/postgres/0003_segments.sql"),
    },
    Migration {
        version: 4,
        name: "request_minutes",
        sql: include_str!("../migrations/postgres/0004_request_minutes.sql"),
    },
    Migration {
        version: 5,
        name: "request_rollups",
        sql: include_str!("../migrations/postgres/0005_request_rollups.sql"),
    },
    Migration {
        version: 6,
        name: "operations",
        sql: include_str!("../migrations/postgres/0006_operations.sql"),
    },
    Migration {
        version: 7,
        name: "request_totals",
        sql: include_str!("../migrations/postgres/0007_request_totals.sql"),
    },
    Migration {
        version: 8,
        name: "events",
        sql: include_str!("../migrations/postgres/0008_events.sql"),
    },
    Migration {
        version: 9,
        name: "event_segments",
        sql: include_str!("../migrations/postgres/0009_event_segments.sql"),
    },
    Migration {
        version: 10,
        name: "alerts",
        sql: include_str!("../migrations/postgres/0010_alerts.sql"),
    },
    Migration {
        version: 11,
        name: "uptime_incidents",
        sql: include_str!("../migrations/postgres/0011_uptime_incidents.sql"),
    },
    Migration {
        version: 12,
        name: "delivery_excerpt",
        sql: include_str!("../migrations/postgres/0012_delivery_excerpt.sql"),
    },
    Migration {
        version: 13,
        name: "launch",
        sql: include_str!("../migrations/postgres/0013_launch.sql"),
    },
    Migration {
        version: 14,
        name: "launch_counts",
        sql: include_str!("../migrations/postgres/0014_launch_counts.sql"),
    },
    Migration {
        version: 15,
        name: "experiments",
        sql: include_str!("../migrations/postgres/0015_experiments.sql"),
    },
    Migration {
        version: 16,
        name: "variant_minutes",
        sql: include_str!("../migrations/postgres/0016_variant_minutes.sql"),
    },
    Migration {
        version: 17,
        name: "deployments",
        sql: include_str!("../migrations/postgres/0017_deployments.sql"),
    },
    Migration {
        version: 18,
        name: "reports",
        sql: include_str!("../migrations/postgres/0018_reports.sql"),
    },
    Migration {
        version: 19,
        name: "resource_hours",
        sql: include_str!("../migrations/postgres/0019_resource_hours.sql"),
    },
    Migration {
        version: 20,
        name: "leases",
        sql: include_str!("../migrations/postgres/0020_leases.sql"),
    },
    Migration {
        version: 21,
        name: "segment_uuids",
        sql: include_str!("../migrations/postgres/0021_segment_uuids.sql"),
    },
];

/// `metrics.db`, the SQLite file for request metrics.
pub(crate) const SQLITE_METRICS: &[Migration] = &[
    Migration {
        version: 1,
        name: "requests",
        sql: include_str!("../migrations/sqlite/metrics_0001_requests.sql"),
    },
    Migration {
        version: 2,
        name: "rollups",
        sql: include_str!("../migrations/sqlite/metrics_0002_rollups.sql"),
    },
    Migration {
        version: 3,
        name: "operations",
        sql: include_str!("../migrations/sqlite/metrics_0003_operations.sql"),
    },
    Migration {
        version: 4,
        name: "request_totals",
        sql: include_str!("../migrations/sqlite/metrics_0004_request_totals.sql"),
    },
    Migration {
        version: 5,
        name: "variant_minutes",
        sql: include_str!("../migrations/sqlite/metrics_0005_variant_minutes.sql"),
    },
    Migration {
        version: 6,
        name: "resource_hours",
        sql: include_str!("../migrations/sqlite/metrics_0006_resource_hours.sql"),
    },
];

/// `events.db`, the SQLite file for raw product events and persons.
pub(crate) const SQLITE_EVENTS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        sql: include_str!("../migrations/sqlite/events_0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "event_segments",
        sql: include_str!("../migrations/sqlite/events_0002_segments.sql"),
    },
    Migration {
        version: 3,
        name: "segment_uuids",
        sql: include_str!("../migrations/sqlite/events_0003_segment_uuids.sql"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner takes the last migration as the newest version: lists must ascend.
    #[test]
    fn versions_ascend_in_every_list() {
        for list in [SQLITE, POSTGRES, SQLITE_METRICS, SQLITE_EVENTS] {
            assert!(
                list.windows(2).all(|w| w[0].version < w[1].version),
                "{:?}",
                list.iter().map(|m| m.version).collect::<Vec<_>>()
            );
        }
    }
}
