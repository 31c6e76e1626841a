//! A small connection pool for one SQLite file: one writer thread (SQLite serialises writes
//! anyway) and a few readers that WAL mode lets run beside it on tokio's blocking pool.
//!
//! The writer commits in groups: the writes waiting when it becomes free run one after another
//! inside one transaction, each in its own savepoint, and one commit (one fsync) makes them all
//! durable. A write that fails is rolled back to its savepoint alone; every caller hears only
//! after the commit, so a success still means "on disk". Under concurrency this turns N
//! fsyncs into one, the way PostgreSQL's group commit does.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use liftoff_core::store::StoreError;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::migrations::Migration;

const READERS: usize = 4;
/// Writes waiting for the writer at most; more wait to be queued (backpressure).
const QUEUED_WRITES: usize = 1024;
/// Writes committed together at most.
const GROUP: usize = 256;

/// Tells a caller how its write ended once the group's commit is known.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A write: runs in the group's transaction (or hears why there is none) and says whether it
/// succeeded.
type Job =
    Box<dyn FnOnce(Result<&rusqlite::Transaction<'_>, &StoreError>) -> (bool, Finish) + Send>;

enum Work {
    Write(Job),
    /// Runs on the writer's connection outside any transaction (a WAL checkpoint).
    Raw(Box<dyn FnOnce(&mut Connection) + Send>),
}

#[derive(Clone)]
pub(crate) struct Db {
    path: PathBuf,
    writer: mpsc::Sender<Work>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<AtomicUsize>,
}

fn lost() -> StoreError {
    StoreError::Unavailable(
        "the database write did not complete (the writer stopped or the write panicked)".into(),
    )
}

/// WAL pages at which the writer checkpoints itself: only when the checkpointer (below) falls
/// behind, since a checkpoint on the writer holds up every write queued behind it.
const WRITER_CHECKPOINT_PAGES: u32 = 16_000;

/// The writer's page cache, in KiB (SQLite's default is 2,000). Every insert walks the indexes
/// down to a leaf; with the default the upper pages of a 10M-event `events.db` kept falling out
/// and were read again through the OS on every batch, and imports slowed by a third as the file
/// grew. Filled lazily, so a small database never holds it all. Readers keep the default.
const WRITER_CACHE_KIB: i64 = 16_384;

/// Copies the WAL back into the database file on its own connection and thread, after
/// commits (at most every [`CHECKPOINT_EVERY`]), so the writer's commits only append to the
/// WAL. PASSIVE: it never blocks the writer or readers; frames a reader still needs wait for
/// the next round. Ends with the writer.
fn run_checkpointer(conn: Connection, commits: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    loop {
        match commits.recv_timeout(CHECKPOINT_EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // A failure (busy, I/O) is retried next round; the writer's own threshold bounds the WAL.
        let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
        std::thread::sleep(CHECKPOINT_EVERY);
    }
}

const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The writer thread: takes what is waiting, commits it as one group, repeats until every
/// handle is gone.
fn run_writer(
    mut conn: Connection,
    mut work: mpsc::Receiver<Work>,
    committed: std::sync::mpsc::SyncSender<()>,
) {
    while let Some(first) = work.blocking_recv() {
        let mut jobs = Vec::new();
        let mut next = Some(first);
        while let Some(w) = next.take() {
            match w {
                Work::Write(job) => jobs.push(job),
                Work::Raw(f) => {
                    // Jobs taken so far commit first: a raw task sees them.
                    commit_group(&mut conn, std::mem::take(&mut jobs));
                    f(&mut conn);
                }
            }
            if jobs.len() < GROUP {
                next = work.try_recv().ok();
            }
        }
        commit_group(&mut conn, jobs);
        // Full: a checkpoint is already due.
        let _ = committed.try_send(());
    }
}

fn commit_group(conn: &mut Connection, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = sql_err(e);
            for job in jobs {
                fail_unrun(job, &e);
            }
            return;
        }
    };
    let mut finishes: Vec<(bool, Finish)> = Vec::with_capacity(jobs.len());
    let mut broken = None;
    for job in jobs {
        if let Some(e) = &broken {
            fail_unrun(job, e);
            continue;
        }
        if let Err(e) = tx.execute_batch("SAVEPOINT job") {
            let e = sql_err(e);
            fail_unrun(job, &e);
            broken = Some(e);
            continue;
        }
        // A panicking write is that write's failure, not the writer's end.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| job(Ok(&tx))));
        let ok = matches!(outcome, Ok((true, _)));
        let undo = if ok {
            tx.execute_batch("RELEASE job")
        } else {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")
        };
        if let Ok(done) = outcome {
            finishes.push(done);
        }
        if let Err(e) = undo {
            broken = Some(sql_err(e));
        }
    }
    let committed = match broken {
        // The transaction cannot be trusted: nothing of it is kept.
        Some(e) => {
            drop(tx);
            Err(e)
        }
        None => tx.commit().map_err(sql_err),
    };
    for (ok, finish) in finishes {
        // A failed job already carries its own error; only successes hear the commit.
        finish(if ok { committed.clone() } else { Ok(()) });
    }
}

/// Tells a job that it cannot run: its caller gets `e`.
fn fail_unrun(job: Job, e: &StoreError) {
    let (_, finish) = job(Err(e));
    finish(Ok(()));
}

pub(crate) fn sql_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(e.to_string())
        }
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// Creates a new database file readable only by this user (mode 0600) before SQLite opens it;
/// SQLite gives its `-wal` and `-shm` files the mode of the database file. Existing files are
/// left as they are.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    // FULL: a commit is on disk before the call returns, so an acknowledged change survives a
    // power cut, not only a crash.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;",
    )
    .map_err(sql_err)?;
    // One plan per statement, whatever is bound. Without it a parameter compared with a
    // partial index's condition (`method = ?2` against `request_minutes_totals`) makes SQLite
    // compile the statement again at every bind: a tenth of request ingest went to that.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(sql_err)?;
    Ok(conn)
}

impl Db {
    pub(crate) async fn open(
        path: &Path,
        migrations: &'static [Migration],
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            create_private_file(&path)?;
            let mut writer = open_connection(&path)?;
            migrate(&mut writer, migrations)?;
            writer
                .pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
                .map_err(sql_err)?;
            writer
                .pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
                .map_err(sql_err)?;
            let checkpointer = open_connection(&path)?;
            let (committed, commits) = std::sync::mpsc::sync_channel(1);
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || run_checkpointer(checkpointer, commits))
                .map_err(|e| {
                    StoreError::Unavailable(format!("cannot start the checkpointer: {e}"))
                })?;
            let readers = (0..READERS)
                .map(|_| open_connection(&path).map(Mutex::new))
                .collect::<Result<Vec<_>, _>>()?;
            let (tx, rx) = mpsc::channel(QUEUED_WRITES);
            std::thread::Builder::new()
                .name("sqlite-writer".into())
                .spawn(move || run_writer(writer, rx, committed))
                .map_err(|e| StoreError::Unavailable(format!("cannot start the writer: {e}")))?;
            Ok(Self {
                path,
                writer: tx,
                readers: Arc::new(readers),
                next_reader: Arc::default(),
            })
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` inside a write transaction (shared with the writes queued beside it, in its own
    /// savepoint); answers once that transaction committed, or `f`'s own error.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |tx| match tx.map_err(Clone::clone).and_then(f) {
            Ok(v) => (
                true,
                Box::new(move |committed: Result<(), StoreError>| {
                    let _ = reply.send(committed.map(|()| v));
                }),
            ),
            Err(e) => (
                false,
                Box::new(move |_| {
                    let _ = reply.send(Err(e));
                }),
            ),
        });
        self.writer
            .send(Work::Write(job))
            .await
            .map_err(|_| lost())?;
        answer.await.map_err(|_| lost())?
    }

    /// Runs `f` on a reader connection.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = self.readers.clone();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            // Take the first free reader, starting from a rotating position; wait on one if all are busy.
            for i in 0..readers.len() {
                if let Ok(conn) = readers[(start + i) % readers.len()].try_lock() {
                    return f(&conn);
                }
            }
            let conn = readers[start % readers.len()]
                .lock()
                .map_err(|_| StoreError::Unavailable("reader lock poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    /// Folds the WAL back into the database file.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let task = Box::new(move |conn: &mut Connection| {
            let _ = reply.send(
                conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                    .map_err(sql_err),
            );
        });
        self.writer
            .send(Work::Raw(task))
            .await
            .map_err(|_| lost())?;
        answer.await.map_err(|_| lost())?
    }
}

fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .map_err(sql_err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .map_err(sql_err)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    let newest = migrations.last().map_or(0, |m| m.version);
    if current > newest {
        return Err(StoreError::Unavailable(format!(
            "the database schema is version {current}, newer than this build knows ({newest}); run a newer Liftoff"
        )));
    }
    for m in migrations.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql).map_err(|e| {
            StoreError::Unavailable(format!("migration {} ({}) failed: {e}", m.version, m.name))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, chrono::Utc::now().timestamp_millis()],
        )
        .map_err(sql_err)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "Applied SQLite migration."
        );
    }
    tx.commit().map_err(sql_err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    static TABLE: &[Migration] = &[Migration {
        version: 1,
        name: "numbers",
        sql: "CREATE TABLE n (v INTEGER PRIMARY KEY)",
    }];

    fn count(db: &Db) -> i64 {
        let c = Connection::open(db.path()).unwrap();
        c.query_row("SELECT COUNT(*) FROM n", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_group_keeps_every_good_write_and_none_of_a_failed_or_panicking_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("g.db"), TABLE).await.unwrap();
        let mut writes = Vec::new();
        for i in 0..400i64 {
            let db = db.clone();
            writes.push(tokio::spawn(async move {
                db.write(move |tx| {
                    tx.execute("INSERT INTO n (v) VALUES (?1)", [i])
                        .map_err(sql_err)?;
                    match i % 100 {
                        // Inserted, then refused: the row must not stay.
                        7 => Err(StoreError::Conflict(format!("{i} refused"))),
                        13 => panic!("write {i} panics"),
                        _ => Ok(i),
                    }
                })
                .await
            }));
        }
        let mut ok = 0;
        for (i, w) in writes.into_iter().enumerate() {
            match (i % 100, w.await.unwrap()) {
                (7, Err(StoreError::Conflict(_))) | (13, Err(StoreError::Unavailable(_))) => {}
                (_, Ok(v)) => {
                    assert_eq!(v, i as i64);
                    ok += 1;
                }
                (_, other) => panic!("write {i}: {other:?}"),
            }
        }
        assert_eq!(ok, 392);
        assert_eq!(count(&db), 392);
        // A duplicate key fails alone; the writer goes on.
        let dup = db
            .write(|tx| {
                tx.execute("INSERT INTO n (v) VALUES (1)", [])
                    .map_err(sql_err)
            })
            .await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        db.checkpoint().await.unwrap();
        db.write(|tx| {
            tx.execute("INSERT INTO n (v) VALUES (1000)", [])
                .map_err(sql_err)
        })
        .await
        .unwrap();
        assert_eq!(count(&db), 393);
    }
}
