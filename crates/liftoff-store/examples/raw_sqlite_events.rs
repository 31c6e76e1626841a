//! The reference for `bench/capture.sh`: the same event rows Liftoff's capture stores, inserted
//! straight into SQLite with the same schema (`events.db`'s migration) and the same durability
//! (WAL, `synchronous = FULL`, one transaction per batch), from one thread. No HTTP, no
//! parsing, no validation, no persons: the floor under what capture can cost.
//!
//! Usage: `raw_sqlite_events EVENTS BATCH` → prints `events/s`.

use std::time::Instant;

use rusqlite::{Connection, params};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let batch: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir()?;
    let mut conn = Connection::open(dir.path().join("events.db"))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    conn.execute_batch(include_str!("../migrations/sqlite/events_0001_events.sql"))?;
    let props = r#"{"path":"/pricing","plan":"free","browser":"Chrome"}"#;
    let started = Instant::now();
    let mut seq = 0u128;
    for chunk in 0..n.div_ceil(batch) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (uuid, ts, user_id, session_id, event, properties)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (uuid) DO NOTHING",
            )?;
            for i in 0..batch.min(n - chunk * batch) {
                seq += 1;
                let user = format!("u{}", (chunk * batch + i) % 5000);
                insert.execute(params![
                    seq.to_be_bytes().to_vec(),
                    1_764_000_000_000i64 + seq as i64,
                    user,
                    Option::<String>::None,
                    "page_view",
                    props
                ])?;
            }
        }
        tx.commit()?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:.0} events/s ({n} events in batches of {batch}, {secs:.2} s)",
        n as f64 / secs
    );
    Ok(())
}
