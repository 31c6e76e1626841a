//! The analytics table kept across a clean restart: written at shutdown beside the data, read
//! once at the next start instead of decoding and merging every sealed part.
//!
//! The file holds what [`InsightsService`](super::insights::InsightsService) needs to bring a
//! table up to the store (the parts it was built from, the last row sequence it read, the
//! erasures it knew), then the table ([`EventTable::write_to`]). So a table read back is
//! checked exactly as one that stayed in memory: the refresh after it appends the rows stored
//! since, or rebuilds when a part is gone, a new part holds rows it never read, or an erasure
//! happened meanwhile. The file is removed as soon as it is read, so it never outlives the one
//! start it was written for.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use liftoff_analytics::{EventTable, FileError};

/// The file's name in the data directory.
pub const TABLE_FILE: &str = "analytics-table";

const MAGIC: &[u8; 8] = b"LFTSTATE";
const VERSION: u32 = 1;

/// A table and what it was built from.
pub struct TableState {
    pub table: EventTable,
    /// `(day, part)` → the highest sequence each sealed part took from the rows.
    pub parts: BTreeMap<(i64, i64), i64>,
    /// The highest row sequence in the table.
    pub seq: i64,
    /// Erasures recorded when it was built.
    pub erasures: usize,
}

/// Writes the table to `path` through a temporary file, so a crash while writing leaves no
/// file rather than half of one. Not synced to disk: after a power cut the next start finds a
/// damaged file at worst, refuses it and builds the table from the store as usual.
pub fn save(
    path: &Path,
    table: &EventTable,
    parts: &BTreeMap<(i64, i64), i64>,
    seq: i64,
    erasures: usize,
) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    w.write_all(MAGIC)?;
    w.write_all(&VERSION.to_le_bytes())?;
    w.write_all(&seq.to_le_bytes())?;
    w.write_all(&(erasures as u64).to_le_bytes())?;
    w.write_all(&(parts.len() as u64).to_le_bytes())?;
    for (&(day, part), &max_seq) in parts {
        for x in [day, part, max_seq] {
            w.write_all(&x.to_le_bytes())?;
        }
    }
    table.write_to(&mut w)?;
    w.into_inner().map_err(|e| e.into_error())?;
    std::fs::rename(&tmp, path)
}

/// Reads and removes the file at `path`; `Ok(None)` when there is none.
pub fn take(path: &Path) -> Result<Option<TableState>, FileError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let read = read(file);
    // Used once: a later start must not find a table older than the store it left.
    std::fs::remove_file(path)?;
    read.map(Some)
}

fn read(file: File) -> Result<TableState, FileError> {
    let len = file.metadata()?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0; 8];
    r.read_exact(&mut magic)?;
    let version = u32::from_le_bytes(array(&mut r)?);
    if &magic != MAGIC || version != VERSION {
        return Err(FileError::Foreign);
    }
    let seq = i64::from_le_bytes(array(&mut r)?);
    let erasures = u64::from_le_bytes(array(&mut r)?) as usize;
    let count = u64::from_le_bytes(array(&mut r)?);
    let header = 8 + 4 + 8 + 8 + 8;
    let body = len.saturating_sub(header);
    if count.saturating_mul(24) > body {
        return Err(FileError::Damaged("a part count past the end of the file"));
    }
    let mut parts = BTreeMap::new();
    for _ in 0..count {
        let [day, part, max_seq] = [(); 3].map(|()| array(&mut r).map(i64::from_le_bytes));
        parts.insert((day?, part?), max_seq?);
    }
    let table = EventTable::read_from(&mut r, body - count * 24)?;
    Ok(TableState {
        table,
        parts,
        seq,
        erasures,
    })
}

fn array<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut b = [0; N];
    r.read_exact(&mut b)?;
    Ok(b)
}
