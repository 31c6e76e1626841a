//! The schema of a Liftoff database in ClickHouse, created and migrated by Liftoff: each
//! statement is applied once, in order, and recorded in `liftoff_schema`.

use liftoff_core::store::StoreError;

use super::client::ClickHouse;

/// The schema, in order; each statement is applied once (recorded in `liftoff_schema`).
const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS events (
            seq Int64,
            uuid UUID,
            has_uuid UInt8,
            ts Int64,
            user_id String,
            session_id Nullable(String),
            event String,
            properties String
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(toDateTime(intDiv(ts, 1000)))
        ORDER BY (user_id, uuid)",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS persons (
            user_id String,
            first_seen Int64,
            last_seen Int64,
            properties String,
            deleted UInt8,
            version Int64
        ) ENGINE = ReplacingMergeTree(version)
        ORDER BY user_id",
    ),
    (
        3,
        "CREATE TABLE IF NOT EXISTS erasures (
            user_id String,
            erased_at Int64,
            up_to_seq Int64
        ) ENGINE = MergeTree
        ORDER BY (erased_at, user_id)",
    ),
    // Request and operation rollups. Cells are appended as partial rows and merged when read
    // (sketches merge in Liftoff); compaction writes a coarser row that names the rows it
    // `replaces`, so a read that meets both counts the sources once (see `cells.rs`). Request
    // cells sort by method before time: the per-service totals (method '') lie together, and
    // the summary reads them without touching the endpoint cells' sketches.
    (
        4,
        "CREATE TABLE IF NOT EXISTS request_cells (
            resolution UInt16,
            service String,
            method String,
            route String,
            status UInt16,
            bucket Int64,
            sketch String,
            id Int64,
            replaces Array(Int64)
        ) ENGINE = MergeTree
        ORDER BY (resolution, method, bucket, service, route, status)",
    ),
    (
        5,
        "CREATE TABLE IF NOT EXISTS variant_cells (
            flag String,
            minute Int64,
            variant String,
            failed UInt8,
            sketch String
        ) ENGINE = MergeTree
        ORDER BY (flag, minute, variant, failed)",
    ),
    (
        6,
        "CREATE TABLE IF NOT EXISTS resource_hours (
            service String,
            instance String,
            hour Int64,
            samples UInt64,
            cpu_sum Float64,
            cpu_max Float64,
            memory_sum Float64,
            memory_max Float64,
            disk_sum Float64,
            disk_max Float64,
            cpu_count Float64,
            memory_total_mb Float64,
            disk_total_gb Float64,
            seq Int64
        ) ENGINE = MergeTree
        ORDER BY (hour, service, instance)",
    ),
    (
        7,
        "CREATE TABLE IF NOT EXISTS operation_cells (
            resolution UInt16,
            service String,
            operation String,
            bucket Int64,
            count UInt64,
            failures UInt64,
            cache_hits UInt64,
            cache_known UInt64,
            layers String,
            error_types String,
            sketch String,
            id Int64,
            replaces Array(Int64)
        ) ENGINE = MergeTree
        ORDER BY (resolution, bucket, service, operation)",
    ),
    (
        8,
        "CREATE TABLE IF NOT EXISTS operation_errors (
            service String,
            operation String,
            error_type String,
            minute Int64,
            at Int64,
            error Nullable(String),
            stack_trace Nullable(String),
            context Nullable(String),
            user_id Nullable(String),
            seq Int64
        ) ENGINE = MergeTree
        ORDER BY (minute, service, operation, error_type)",
    ),
    (
        9,
        "CREATE TABLE IF NOT EXISTS operation_users (
            service String,
            operation String,
            hour Int64,
            user_hash Int64,
            ok UInt8
        ) ENGINE = MergeTree
        ORDER BY (hour, service, operation, user_hash)",
    ),
];

/// Creates the database and applies the migrations it has not had yet.
pub(super) async fn migrate(ch: &ClickHouse) -> Result<(), StoreError> {
    ch.execute_outside(&format!("CREATE DATABASE IF NOT EXISTS {}", ch.database()))
        .await?;
    ch.execute(
        "CREATE TABLE IF NOT EXISTS liftoff_schema (version UInt32, applied_at DateTime)
         ENGINE = TinyLog",
    )
    .await?;
    let applied = applied_version(ch).await?;
    for (version, sql) in MIGRATIONS {
        if i64::from(*version) > applied {
            ch.execute(sql).await?;
            ch.execute(&format!(
                "INSERT INTO liftoff_schema (version, applied_at) VALUES ({version}, now())"
            ))
            .await?;
        }
    }
    Ok(())
}

/// The highest migration `liftoff_schema` records (0 for none).
pub(super) async fn applied_version(ch: &ClickHouse) -> Result<i64, StoreError> {
    ch.number("SELECT toInt64(max(version)) FROM liftoff_schema")
        .await
}
