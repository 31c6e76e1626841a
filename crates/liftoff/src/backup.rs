//! `liftoff backup` and `liftoff restore`: the data directory's SQLite databases (and the key
//! that encrypts stored secrets) in one file, taken while the server runs.
//!
//! Each database is copied with `VACUUM INTO`, which reads one transaction's view, so a copy is
//! never torn by concurrent writes. The archive is a header line, a JSON manifest line (file
//! names, sizes, SHA-256) and the files' bytes in manifest order; restore checks every digest
//! and SQLite's integrity check before anything lands in the target directory. The archive
//! holds the secret key: it is written with mode 0600, like the data directory's own files.
//!
//! On PostgreSQL the state is not in the data directory: the backup holds the SQLite files
//! (metrics and events) and says to use `pg_dump` for the state.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use liftoff_core::audit::Change;
use liftoff_core::auth::Actor;
use liftoff_store::snapshot::{self, SQLITE_FILES};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::startup::SECRET_KEY_FILE;

const MAGIC: &str = "LIFTOFF-BACKUP 1";

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    created_at: DateTime<Utc>,
    liftoff_version: String,
    /// `sqlite`, or `postgres` when the state is elsewhere (and not in this backup).
    state: String,
    files: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    name: String,
    bytes: u64,
    sha256: String,
}

/// What `liftoff backup` did.
#[derive(Debug)]
pub struct BackedUp {
    pub output: PathBuf,
    pub files: Vec<(String, u64)>,
    pub state_on_postgres: bool,
    /// Events, request metrics and operations are in ClickHouse (and not in the file).
    pub events_in_clickhouse: bool,
}

impl BackedUp {
    pub fn report(&self) -> String {
        let mut out = format!("Wrote {}:\n", self.output.display());
        for (name, bytes) in &self.files {
            out.push_str(&format!("  {name:<12} {:>12} bytes\n", bytes));
        }
        if self.state_on_postgres {
            out.push_str(
                "The state is on PostgreSQL and not in this file: back it up with `pg_dump` (and restore with `pg_restore`).\n",
            );
        }
        if self.events_in_clickhouse {
            out.push_str(
                "Events, request metrics and operations are in ClickHouse and not in this file: back them up with ClickHouse's own tools (`ALTER TABLE … FREEZE`, or `BACKUP DATABASE` from 22.8).\n",
            );
        }
        out.push_str("Restore with `liftoff restore FILE --data EMPTY_DIR`. The file holds the secret key: keep it as safe as the data.\n");
        out
    }
}

fn private_file(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn sha256_of(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((n, hex(&h.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the backup to `output` (which must not exist) and records it in the launch
/// settings, which readiness reads.
pub async fn backup(settings: &Settings, output: &Path) -> anyhow::Result<BackedUp> {
    if output.exists() {
        bail!(
            "{} exists; choose a new file name (a backup never overwrites)",
            output.display()
        );
    }
    let data = &settings.data;
    let on_postgres = settings.state_url.is_some();
    let in_clickhouse = settings.events.is_some();
    let scratch = tempdir_beside(output)?;
    let result = write_archive(
        data,
        output,
        &scratch,
        on_postgres,
        &local_files(on_postgres, in_clickhouse),
    );
    let _ = fs::remove_dir_all(&scratch);
    let files = result?;
    record(settings).await?;
    Ok(BackedUp {
        output: output.to_owned(),
        files,
        state_on_postgres: on_postgres,
        events_in_clickhouse: in_clickhouse,
    })
}

/// The SQLite files that hold data: none of them when PostgreSQL holds it all; the state's
/// only when ClickHouse holds events, request metrics and operations.
fn local_files(state_on_postgres: bool, events_in_clickhouse: bool) -> Vec<&'static str> {
    SQLITE_FILES
        .into_iter()
        .filter(|name| match *name {
            "state.db" => !state_on_postgres,
            _ => !state_on_postgres && !events_in_clickhouse,
        })
        .collect()
}

fn tempdir_beside(output: &Path) -> anyhow::Result<PathBuf> {
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = parent.join(format!(
        ".liftoff-backup-{}-{}",
        std::process::id(),
        Utc::now().timestamp_millis()
    ));
    fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn write_archive(
    data: &Path,
    output: &Path,
    scratch: &Path,
    on_postgres: bool,
    files: &[&str],
) -> anyhow::Result<Vec<(String, u64)>> {
    let mut copies: Vec<(String, PathBuf)> = Vec::new();
    for &name in files {
        let src = data.join(name);
        if !src.exists() {
            bail!(
                "{} is missing: is {} a Liftoff data directory?",
                src.display(),
                data.display()
            );
        }
        let dst = scratch.join(name);
        snapshot::snapshot(&src, &dst)?;
        copies.push((name.to_owned(), dst));
    }
    let key = data.join(SECRET_KEY_FILE);
    if key.exists() {
        copies.push((SECRET_KEY_FILE.to_owned(), key));
    }
    let mut entries = Vec::new();
    for (name, path) in &copies {
        let (bytes, sha256) = sha256_of(path)?;
        entries.push(Entry {
            name: name.clone(),
            bytes,
            sha256,
        });
    }
    let manifest = Manifest {
        created_at: Utc::now(),
        liftoff_version: env!("CARGO_PKG_VERSION").to_owned(),
        state: if on_postgres { "postgres" } else { "sqlite" }.to_owned(),
        files: entries,
    };
    // Written beside the target and renamed: a crash leaves no half archive under its name.
    let partial = output.with_extension("partial");
    let _ = fs::remove_file(&partial);
    let mut out = BufWriter::new(private_file(&partial)?);
    writeln!(out, "{MAGIC}")?;
    writeln!(out, "{}", serde_json::to_string(&manifest)?)?;
    for (_, path) in &copies {
        std::io::copy(&mut File::open(path)?, &mut out)?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(&partial, output)?;
    Ok(manifest
        .files
        .iter()
        .map(|e| (e.name.clone(), e.bytes))
        .collect())
}

async fn record(settings: &Settings) -> anyhow::Result<()> {
    let store = liftoff_store::open_state(settings.state_url.as_deref(), &settings.data).await?;
    let now = Utc::now();
    for _ in 0..5 {
        let mut s = store.launch_settings().await?;
        s.last_backup_at = Some(now);
        let change = Change::new(&Actor::System, "launch.backup", "launch", "backup");
        if store
            .save_launch_settings(&s, now, &change)
            .await?
            .is_some()
        {
            store.close().await?;
            return Ok(());
        }
    }
    bail!("the backup was written but could not be recorded: the launch settings kept changing")
}

/// What `liftoff restore` did.
#[derive(Debug)]
pub struct Restored {
    pub data: PathBuf,
    pub created_at: DateTime<Utc>,
    pub files: Vec<String>,
    pub state_on_postgres: bool,
}

impl Restored {
    pub fn report(&self) -> String {
        let mut out = format!(
            "Restored the backup of {} into {}: {}.\n",
            self.created_at.to_rfc3339(),
            self.data.display(),
            self.files.join(", ")
        );
        if self.state_on_postgres {
            out.push_str("The state was on PostgreSQL: restore it with `pg_restore` and start with the same --state-url.\n");
        }
        out
    }
}

/// Unpacks `archive` into `data`, which must be empty or missing. Nothing is left in `data`
/// unless every file's digest and SQLite's integrity check pass.
pub fn restore(archive: &Path, data: &Path) -> anyhow::Result<Restored> {
    if data.exists()
        && fs::read_dir(data)
            .with_context(|| format!("cannot read {}", data.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: restore into a new or empty directory",
            data.display()
        );
    }
    let mut input = BufReader::new(
        File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?,
    );
    let mut line = String::new();
    input.read_line(&mut line)?;
    if line.trim_end() != MAGIC {
        bail!("{} is not a Liftoff backup", archive.display());
    }
    line.clear();
    input.read_line(&mut line)?;
    let manifest: Manifest =
        serde_json::from_str(&line).context("the backup's manifest is unreadable")?;
    let staging = data.with_extension("restoring");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir_all(&staging)?;
    let unpacked = unpack(&mut input, &manifest, &staging);
    if let Err(e) = unpacked {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    if data.exists() {
        fs::remove_dir(data)?;
    }
    fs::rename(&staging, data)
        .with_context(|| format!("cannot move the restored files to {}", data.display()))?;
    Ok(Restored {
        data: data.to_owned(),
        created_at: manifest.created_at,
        files: manifest.files.iter().map(|e| e.name.clone()).collect(),
        state_on_postgres: manifest.state == "postgres",
    })
}

fn unpack(input: &mut impl Read, manifest: &Manifest, dir: &Path) -> anyhow::Result<()> {
    for entry in &manifest.files {
        let allowed = SQLITE_FILES.contains(&entry.name.as_str()) || entry.name == SECRET_KEY_FILE;
        if !allowed {
            bail!("the backup names an unexpected file `{}`", entry.name);
        }
        let path = dir.join(&entry.name);
        let mut out = BufWriter::new(private_file(&path)?);
        let mut h = Sha256::new();
        let mut part = input.take(entry.bytes);
        let mut buf = vec![0u8; 64 * 1024];
        let mut copied = 0u64;
        loop {
            let n = part.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            copied += n as u64;
        }
        out.flush()?;
        if copied != entry.bytes || hex(&h.finalize()) != entry.sha256 {
            bail!(
                "`{}` in the backup is damaged (its size or SHA-256 does not match the manifest)",
                entry.name
            );
        }
        if entry.name.ends_with(".db") {
            snapshot::check(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::local_files;

    #[test]
    fn a_backup_holds_the_files_that_hold_data() {
        assert_eq!(
            local_files(false, false),
            ["state.db", "metrics.db", "events.db"]
        );
        assert_eq!(local_files(false, true), ["state.db"]);
        assert!(local_files(true, false).is_empty());
        assert!(local_files(true, true).is_empty());
    }
}
