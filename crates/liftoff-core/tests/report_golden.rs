//! The weekly report's Markdown for a fixed data set, compared byte for byte with
//! `tests/golden/weekly.md`. A layout change shows up here as a diff to review; after a
//! deliberate change, regenerate with `LIFTOFF_UPDATE_GOLDEN=1 cargo test -p liftoff-core
//! --test report_golden`.

#![allow(clippy::unwrap_used, reason = "test: a panic is the failure report")]

use chrono::{DateTime, TimeZone, Utc};
use liftoff_core::incidents::{IncidentSeverity, IncidentStatus};
use liftoff_core::monitoring::resources::{ResourceDirection, ResourceTrend};
use liftoff_core::reports::Report;
use liftoff_core::reports::targets::{Comparison, Target};
use liftoff_core::reports::weekly::{
    DayTraffic, DowntimeRow, EndpointShare, HealthGrade, IncidentRow, Movement, Recommendation,
    ResourceRow, StatusShare, WeekChange, WeekFigures, WeeklyReport,
};

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, day, hour, 0, 0).unwrap()
}

fn trend(
    average: f64,
    peak: f64,
    per_week: Option<f64>,
    direction: ResourceDirection,
    full_in_days: Option<f64>,
) -> ResourceTrend {
    ResourceTrend {
        average_percent: average,
        peak_percent: peak,
        change_per_week: per_week,
        p_value: per_week.map(|_| 0.01),
        direction,
        full_in_days,
    }
}

fn endpoint(method: &str, path: &str, requests: u64, avg: f64, p95: f64) -> EndpointShare {
    EndpointShare {
        service: "shop".into(),
        method: method.into(),
        endpoint: path.into(),
        requests,
        share: requests as f64 / 1_250_000.0,
        avg_ms: avg,
        p95_ms: p95,
        error_rate: 0.002,
    }
}

fn change(metric: &str, now: f64, before: f64, status: Movement) -> WeekChange {
    WeekChange {
        metric: metric.into(),
        this_week: Some(now),
        last_week: Some(before),
        change: Some(now - before),
        relative_change: Some((now - before) / before),
        status,
    }
}

/// A week whose figures are known: 1.25 M requests, one incident, one planned and one
/// unplanned downtime, the average over target.
fn week() -> WeeklyReport {
    let this_week = WeekFigures {
        uptime: Some(0.9995),
        avg_response_time_ms: Some(212.4),
        p95_ms: Some(640.0),
        error_rate: Some(0.0042),
        requests: 1_250_000,
        errors: 5_250,
        active_users: 8_420,
        new_users: 1_130,
    };
    let last_week = WeekFigures {
        uptime: Some(0.9999),
        avg_response_time_ms: Some(180.0),
        p95_ms: Some(610.0),
        error_rate: Some(0.0040),
        requests: 1_100_000,
        errors: 4_400,
        active_users: 7_900,
        new_users: 1_200,
    };
    let top = vec![
        endpoint("GET", "/users", 625_000, 48.2, 120.0),
        endpoint("GET", "/items/{id}", 300_000, 64.0, 150.0),
        endpoint("POST", "/checkout", 50_000, 910.0, 2_400.0),
    ];
    WeeklyReport {
        generated_at: at(8, 6),
        from: at(1, 0),
        to: at(8, 0),
        grade: HealthGrade {
            grade: Some('B'),
            label: "Good".into(),
            rule: "A when uptime, average response time and error rate all meet their targets; \
                   one letter lower for each missed target; F when uptime is under 99 % or the \
                   error rate reaches 5 %."
                .into(),
            missed: vec!["avg_response_time_ms".into()],
        },
        targets: vec![
            Target::judge("uptime", this_week.uptime, 0.999, Comparison::AtLeast),
            Target::judge(
                "avg_response_time_ms",
                this_week.avg_response_time_ms,
                200.0,
                Comparison::Below,
            ),
            Target::judge("error_rate", this_week.error_rate, 0.01, Comparison::Below),
        ],
        week_over_week: vec![
            change("uptime", 0.9995, 0.9999, Movement::Stable),
            change("avg_response_time_ms", 212.4, 180.0, Movement::Worse),
            change("p95_ms", 640.0, 610.0, Movement::Stable),
            change("error_rate", 0.0042, 0.0040, Movement::Stable),
            change("requests", 1_250_000.0, 1_100_000.0, Movement::Improved),
            change("active_users", 8_420.0, 7_900.0, Movement::Improved),
            change("new_users", 1_130.0, 1_200.0, Movement::Worse),
        ],
        daily: (1..=7)
            .map(|d| DayTraffic {
                day: at(d, 0),
                requests: 150_000 + u64::from(d) * 5_000,
                errors: 700 + u64::from(d) * 10,
                p95_ms: Some(600.0 + f64::from(d) * 5.0),
            })
            .collect(),
        incidents: vec![IncidentRow {
            id: "INC-2026-014".into(),
            title: "Checkout | payment errors".into(),
            severity: IncidentSeverity::Critical,
            status: IncidentStatus::Resolved,
            started_at: at(3, 14),
            duration_minutes: 42,
            requests_failed: 3_100,
            requests_total: 12_400,
            users_affected: 310,
            root_cause: Some("An expired TLS certificate at the payment provider".into()),
            resolution: Some("Rotated the certificate".into()),
        }],
        downtime: vec![
            DowntimeRow {
                monitor: "API".into(),
                started_at: at(3, 14),
                ended_at: Some(at(3, 14) + chrono::Duration::minutes(42)),
                duration_seconds: 2_520,
                planned: false,
                window: None,
            },
            DowntimeRow {
                monitor: "API".into(),
                started_at: at(6, 2),
                ended_at: Some(at(6, 2) + chrono::Duration::minutes(10)),
                duration_seconds: 600,
                planned: true,
                window: Some("Database upgrade".into()),
            },
        ],
        top_endpoints: top.clone(),
        errors_by_status: vec![
            StatusShare {
                status: 503,
                count: 4_000,
                share: 0.7,
                share_of_requests: 0.0032,
            },
            StatusShare {
                status: 404,
                count: 1_714,
                share: 0.3,
                share_of_requests: 0.00137,
            },
        ],
        slowest_endpoints: vec![top[2].clone(), top[1].clone()],
        resources: vec![ResourceRow {
            service: "shop".into(),
            instance: "web-1".into(),
            cpu_percent: 63.0,
            cpu_count: 4.0,
            memory_used_mb: 2_900.0,
            memory_total_mb: 4_096.0,
            memory_percent: 70.8,
            disk_used_gb: 31.5,
            disk_total_gb: 80.0,
            disk_percent: 39.4,
            read_at: at(8, 5),
            cpu_trend: Some(trend(
                58.0,
                91.0,
                Some(0.4),
                ResourceDirection::Stable,
                None,
            )),
            memory_trend: Some(trend(
                66.2,
                74.0,
                Some(4.1),
                ResourceDirection::Rising,
                Some(7.1),
            )),
            disk_trend: Some(trend(
                39.1,
                39.4,
                Some(0.1),
                ResourceDirection::Stable,
                None,
            )),
        }],
        recommendations: vec![
            Recommendation {
                title: "Bring the average response time back on target".into(),
                evidence: "212 ms this week against a target of < 200 ms.".into(),
            },
            Recommendation {
                title: "Cache GET /users first".into(),
                evidence: "50.0 % of requests (625,000 of them), average 48.2 ms.".into(),
            },
        ],
        this_week,
        last_week,
    }
}

#[test]
fn the_weekly_markdown_matches_its_golden_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/weekly.md");
    let md = String::from_utf8(
        Report::Weekly(Box::new(week()))
            .render(liftoff_core::reports::Format::Md)
            .body,
    )
    .unwrap();
    if std::env::var_os("LIFTOFF_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &md).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap();
    assert!(
        md == golden,
        "the Markdown differs from {}; if the change is meant, regenerate it with \
         LIFTOFF_UPDATE_GOLDEN=1 and review the diff.\n--- got ---\n{md}",
        path.display()
    );
}
