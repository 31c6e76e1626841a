//! Consistent copies of the SQLite files for backups: `VACUUM INTO` reads one transaction's
//! view of the database, so a copy taken while the server writes is never torn.

use std::path::Path;

use liftoff_core::store::StoreError;
use rusqlite::{Connection, OpenFlags};

/// The SQLite files of a data directory, in the order a backup holds them.
pub const SQLITE_FILES: [&str; 3] = ["state.db", "metrics.db", "events.db"];

/// Writes a consistent, compacted copy of the database at `src` to `dst` (which must not
/// exist). Safe while another process writes `src`.
pub fn snapshot(src: &Path, dst: &Path) -> Result<(), StoreError> {
    let unavailable =
        |e: rusqlite::Error| StoreError::Unavailable(format!("cannot copy {}: {e}", src.display()));
    let conn = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(unavailable)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(unavailable)?;
    let target = dst
        .to_str()
        .ok_or_else(|| StoreError::Unavailable(format!("{} is not UTF-8", dst.display())))?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(unavailable)?;
    Ok(())
}

/// Checks a restored file: SQLite's own integrity check must answer `ok`.
pub fn check(path: &Path) -> Result<(), StoreError> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt(format!("{}: {e}", path.display()));
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(corrupt)?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(corrupt)?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "{} fails SQLite's integrity check: {verdict}",
            path.display()
        )))
    }
}
