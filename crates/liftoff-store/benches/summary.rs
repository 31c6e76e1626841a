//! `/performance/summary` over 7 days of traffic on 200 routes, as the store keeps it: the last
//! 24 hours in minute cells, the six days before in hourly cells. Measured against the
//! reference in the same run: merging every endpoint cell of the window (what the summary did
//! before per-service totals existed). SQLite always; PostgreSQL and ClickHouse too when
//! `BENCH_DATABASE_URL` (`postgres://…`) or `BENCH_CLICKHOUSE_URL` (`http://HOST:8123`) name
//! one (a fresh schema or database is used).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark set-up")]

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use liftoff_core::jobs::JobRegistry;
use liftoff_core::monitoring::MetricsStore;
use liftoff_core::monitoring::requests::CellKey;
use liftoff_core::monitoring::service::{MonitoringService, TimeRange};
use liftoff_core::monitoring::sketch::DDSketch;
use liftoff_store::sqlite::SqliteMetrics;

const ROUTES: usize = 200;
const DAYS: i64 = 7;

fn cell(minute: i64, route: usize, status: u16, base_ms: f64) -> (CellKey, DDSketch) {
    let method = if route.is_multiple_of(4) {
        "POST"
    } else {
        "GET"
    };
    let mut s = DDSketch::default();
    for i in 0..20 {
        s.add(base_ms * (1.0 + (i as f64) / 10.0));
    }
    (
        CellKey {
            minute,
            service: "shop".into(),
            method: method.into(),
            route: format!("/api/v1/resource{route}/{{id}}"),
            status,
        },
        s,
    )
}

/// The stores to measure: SQLite, and the servers the environment names.
async fn stores(dir: &std::path::Path) -> Vec<(&'static str, Arc<dyn MetricsStore>)> {
    let mut out: Vec<(&'static str, Arc<dyn MetricsStore>)> = vec![(
        "sqlite",
        Arc::new(SqliteMetrics::open(&dir.join("metrics.db")).await.unwrap()),
    )];
    if let Ok(base) = std::env::var("BENCH_DATABASE_URL") {
        let schema = format!("liftoff_bench_{:08x}", rand::random::<u32>());
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        out.push((
            "postgres",
            Arc::new(
                liftoff_store::postgres::PgState::connect(&url)
                    .await
                    .unwrap(),
            ),
        ));
    }
    if let Ok(base) = std::env::var("BENCH_CLICKHOUSE_URL") {
        let url = format!(
            "{}/liftoff_bench_{:08x}",
            base.trim_end_matches('/'),
            rand::random::<u32>()
        );
        let url = liftoff_store::clickhouse::EventsUrl::parse(&url, None).unwrap();
        let (events, _) = liftoff_store::clickhouse::open(url).await.unwrap();
        out.push((
            "clickhouse",
            Arc::new(liftoff_store::clickhouse::ClickHouseMetrics::new(
                events.client().clone(),
            )),
        ));
    }
    out
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let mut g = c.benchmark_group("summary_7d_200_routes");
    g.sample_size(20);
    for (backend, metrics) in rt.block_on(stores(dir.path())) {
        measure(&rt, &mut g, backend, metrics, now);
    }
    g.finish();
}

fn measure(
    rt: &tokio::runtime::Runtime,
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    backend: &str,
    metrics: Arc<dyn MetricsStore>,
    now: chrono::DateTime<Utc>,
) {
    let now_minute = now.timestamp() / 60;
    let svc = rt.block_on(async {
        let (svc, _writer) = MonitoringService::start(metrics.clone(), &JobRegistry::default())
            .await
            .unwrap();
        // Older days arrive as one cell per hour (what compaction leaves), the last day per
        // minute; every 7th route answers some 500s.
        let first = now_minute - DAYS * 1440;
        let mut batch = Vec::new();
        let mut minute = first;
        while minute < now_minute {
            let recent = now_minute - minute <= 1440;
            for route in 0..ROUTES {
                batch.push(cell(minute, route, 200, 5.0 + route as f64));
                if route.is_multiple_of(7) {
                    batch.push(cell(minute, route, 500, 50.0));
                }
            }
            if batch.len() > 20_000 {
                svc.ingest_cells(std::mem::take(&mut batch)).await.unwrap();
            }
            minute += if recent { 1 } else { 60 };
        }
        if !batch.is_empty() {
            svc.ingest_cells(batch).await.unwrap();
        }
        println!(
            "{backend} compaction: {}",
            svc.compact(now, Default::default()).await.unwrap()
        );
        svc
    });
    let range = TimeRange {
        from: now - Duration::days(DAYS),
        to: now,
    };
    let (from, to) = (range.from.timestamp() / 60, range.to.timestamp() / 60 + 1);
    let summary = rt
        .block_on(svc.summary(range, &Default::default()))
        .unwrap();
    let cells = rt.block_on(metrics.request_minutes(from, to)).unwrap();
    println!(
        "{backend}: {} endpoint cells, {} requests, {} endpoints ({} with errors)",
        cells.len(),
        summary.requests.total,
        summary.endpoints.total,
        summary.endpoints.with_errors
    );
    assert_eq!(summary.endpoints.total, ROUTES);

    g.bench_function(format!("{backend}/liftoff_summary"), |b| {
        b.iter(|| {
            rt.block_on(svc.summary(range, &Default::default()))
                .unwrap()
        })
    });
    g.bench_function(
        format!("{backend}/reference_merge_every_endpoint_cell"),
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut all = DDSketch::default();
                    for (_, s) in metrics.request_minutes(from, to).await.unwrap() {
                        all.merge(&s).unwrap();
                    }
                    all.quantile(0.95)
                })
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
