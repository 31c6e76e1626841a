//! Rollup cells in ClickHouse: request cells and operation cells are kept the same way.
//!
//! ClickHouse has no row updates to merge a sketch into, and a sketch is Liftoff's own
//! format, so a write **appends** its partial cells (one row each, with an `id` from the
//! replicas' shared [`SeqClock`]) and a read merges the rows of one key in Liftoff.
//!
//! Compaction cannot delete and insert in one transaction either. It appends each coarser
//! cell with the ids of the rows it `replaces`; from that insert on, reads leave the
//! replaced rows out (`id NOT IN` the replaced ids of the window), so no request is ever
//! counted twice nor missed, whichever step a crash interrupts. Then it deletes the replaced
//! rows and clears `replaces` (both awaited mutations). A compaction that finds `replaces`
//! still set (its predecessor died between the steps) finishes those steps first.
//!
//! Only the lease holder compacts (see `lease.rs` in the server), so two compactions never
//! read the same rows.

use std::collections::BTreeMap;

use liftoff_core::monitoring::bucket_start;
use liftoff_core::store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::ClickHouse;
use super::seq::SeqClock;

/// A key/cell type kept in a cell table.
pub(super) trait CellKind {
    const TABLE: &'static str;
    /// The columns a read selects, in the order `Row` names them; they end with `id`.
    const COLUMNS: &'static str;
    /// The columns that name a cell (with `bucket`), for counting cells rather than rows.
    const KEY_COLUMNS: &'static str;
    type Key: Ord + Clone;
    type Cell;
    /// A row: every column when written, `COLUMNS` when read.
    type Row: Serialize + DeserializeOwned;
    fn decode(row: Self::Row) -> Result<(Self::Key, Self::Cell, i64), StoreError>;
    fn encode(
        res: i64,
        key: &Self::Key,
        cell: &Self::Cell,
        id: i64,
        replaces: Vec<i64>,
    ) -> Self::Row;
    fn merge(into: &mut Self::Cell, other: Self::Cell) -> Result<(), StoreError>;
    fn bucket(key: &Self::Key) -> i64;
    fn with_bucket(key: &Self::Key, bucket: i64) -> Self::Key;
}

/// A day: the longest span a compacted cell covers, so a cell replaced by one in
/// `from - DAY..to` is all a read of `from..to` must look for.
const DAY: i64 = 1440;
/// Minutes before and after any stored cell (2⁴⁰ minutes is two million years).
const EVER: (i64, i64) = (-(1 << 40), 1 << 40);

/// `AND`s to a filter over `from..to` (Unix minutes) that leave out replaced rows.
fn live(table: &str, from: i64, to: i64) -> String {
    format!(
        "id NOT IN (SELECT arrayJoin(replaces) FROM {table}
                    WHERE notEmpty(replaces) AND bucket >= {} AND bucket < {to})",
        from - DAY
    )
}

/// The merged cells of rows with `from <= bucket < to` that match `filter`.
pub(super) async fn read<K: CellKind>(
    ch: &ClickHouse,
    filter: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(K::Key, K::Cell)>, StoreError> {
    let rows: Vec<K::Row> = ch
        .rows(&format!(
            "SELECT {} FROM {} WHERE bucket >= {from} AND bucket < {to} AND ({filter}) AND {}",
            K::COLUMNS,
            K::TABLE,
            live(K::TABLE, from, to)
        ))
        .await?;
    let mut cells: BTreeMap<K::Key, K::Cell> = BTreeMap::new();
    for row in rows {
        let (key, cell, _) = K::decode(row)?;
        merge_into::<K>(&mut cells, key, cell)?;
    }
    Ok(cells.into_iter().collect())
}

fn merge_into<K: CellKind>(
    cells: &mut BTreeMap<K::Key, K::Cell>,
    key: K::Key,
    cell: K::Cell,
) -> Result<(), StoreError> {
    match cells.get_mut(&key) {
        Some(into) => K::merge(into, cell),
        None => {
            cells.insert(key, cell);
            Ok(())
        }
    }
}

/// `SELECT {select} … GROUP BY {group}` over the live rows of `from..to` matching `filter`.
pub(super) async fn grouped<K: CellKind, T: DeserializeOwned>(
    ch: &ClickHouse,
    select: &str,
    group: &str,
    filter: &str,
    from: i64,
    to: i64,
) -> Result<Vec<T>, StoreError> {
    ch.rows(&format!(
        "SELECT {select} FROM {} WHERE bucket >= {from} AND bucket < {to} AND ({filter}) AND {}
         GROUP BY {group}",
        K::TABLE,
        live(K::TABLE, from, to)
    ))
    .await
}

/// Distinct values of `columns` over the live rows matching `filter` (any bucket). `GROUP BY`,
/// not `DISTINCT`: 18.16 answers `DISTINCT` beside an `IN (subquery)` with repeated rows.
pub(super) async fn distinct<K: CellKind, T: DeserializeOwned>(
    ch: &ClickHouse,
    columns: &str,
    filter: &str,
) -> Result<Vec<T>, StoreError> {
    ch.rows(&format!(
        "SELECT {columns} FROM {} WHERE ({filter}) AND {} GROUP BY {columns}",
        K::TABLE,
        live(K::TABLE, EVER.0, EVER.1)
    ))
    .await
}

/// Appends cells at minute resolution.
pub(super) async fn append<K: CellKind>(
    ch: &ClickHouse,
    ids: &SeqClock,
    cells: &[(K::Key, K::Cell)],
) -> Result<(), StoreError> {
    let ids = ids.take(cells.len());
    let rows: Vec<K::Row> = cells
        .iter()
        .zip(ids)
        .map(|((k, c), id)| K::encode(1, k, c, id, Vec::new()))
        .collect();
    ch.insert(K::TABLE, &rows).await
}

/// Moves up to `limit` rows of resolution `from_res` older than minute `before` into cells
/// of `to_res`; returns how many cells (not rows) moved.
pub(super) async fn compact<K: CellKind>(
    ch: &ClickHouse,
    ids: &SeqClock,
    from_res: i64,
    to_res: i64,
    before: i64,
    limit: usize,
) -> Result<u64, StoreError> {
    finish_replacements::<K>(ch).await?;
    let rows: Vec<K::Row> = ch
        .rows(&format!(
            "SELECT {} FROM {} WHERE resolution = {from_res} AND bucket < {before} AND {}
             ORDER BY bucket LIMIT {limit}",
            K::COLUMNS,
            K::TABLE,
            live(K::TABLE, EVER.0, before)
        ))
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut sources = 0u64;
    let mut last_key = None;
    let mut groups: BTreeMap<K::Key, (K::Cell, Vec<i64>)> = BTreeMap::new();
    let mut decoded: Vec<(K::Key, K::Cell, i64)> =
        rows.into_iter().map(K::decode).collect::<Result<_, _>>()?;
    decoded.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, cell, id) in decoded {
        if last_key.as_ref() != Some(&key) {
            sources += 1;
            last_key = Some(key.clone());
        }
        let target = K::with_bucket(&key, bucket_start(K::bucket(&key), to_res));
        match groups.get_mut(&target) {
            Some((into, replaced)) => {
                K::merge(into, cell)?;
                replaced.push(id);
            }
            None => {
                groups.insert(target, (cell, vec![id]));
            }
        }
    }
    let new_ids = ids.take(groups.len());
    let replaced: Vec<i64> = groups
        .values()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    let rows: Vec<K::Row> = groups
        .into_iter()
        .zip(new_ids.iter())
        .map(|((k, (c, r)), id)| K::encode(to_res, &k, &c, *id, r))
        .collect();
    ch.insert(K::TABLE, &rows).await?;
    retire::<K>(ch, &replaced, &new_ids).await?;
    Ok(sources)
}

/// Deletes replaced rows, then clears `replaces` of the rows that replaced them.
async fn retire<K: CellKind>(
    ch: &ClickHouse,
    replaced: &[i64],
    replacing: &[i64],
) -> Result<(), StoreError> {
    for chunk in replaced.chunks(50_000) {
        ch.execute(&format!(
            "ALTER TABLE {} DELETE WHERE id IN ({})",
            K::TABLE,
            id_list(chunk)
        ))
        .await?;
    }
    ch.await_mutations(K::TABLE).await?;
    for chunk in replacing.chunks(50_000) {
        ch.execute(&format!(
            "ALTER TABLE {} UPDATE replaces = emptyArrayInt64() WHERE id IN ({})",
            K::TABLE,
            id_list(chunk)
        ))
        .await?;
    }
    ch.await_mutations(K::TABLE).await
}

/// Completes the replacements a compaction left half done.
async fn finish_replacements<K: CellKind>(ch: &ClickHouse) -> Result<(), StoreError> {
    #[derive(serde::Deserialize)]
    struct Pending {
        id: i64,
        replaces: Vec<i64>,
    }
    let pending: Vec<Pending> = ch
        .rows(&format!(
            "SELECT id, replaces FROM {} WHERE notEmpty(replaces)",
            K::TABLE
        ))
        .await?;
    if pending.is_empty() {
        return Ok(());
    }
    let replacing: Vec<i64> = pending.iter().map(|p| p.id).collect();
    let replaced: Vec<i64> = pending.into_iter().flat_map(|p| p.replaces).collect();
    retire::<K>(ch, &replaced, &replacing).await
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Deletes the rows of resolution `res` older than minute `before` (and the rows they
/// replaced); returns how many cells went.
pub(super) async fn purge<K: CellKind>(
    ch: &ClickHouse,
    res: i64,
    before: i64,
) -> Result<u64, StoreError> {
    finish_replacements::<K>(ch).await?;
    let filter = format!("resolution = {res} AND bucket < {before}");
    let count = format!(
        "SELECT count() FROM (SELECT DISTINCT {} FROM {} WHERE {filter})",
        K::KEY_COLUMNS,
        K::TABLE,
    );
    delete_counted(ch, K::TABLE, &count, &filter).await
}

/// Deletes the rows of `table` matching `filter` when `count` (a `SELECT` of one number:
/// what the caller reports as deleted) finds any, and waits until they are gone. Nothing to
/// delete asks for no mutation: a mutation rewrites the parts it touches.
pub(super) async fn delete_counted(
    ch: &ClickHouse,
    table: &str,
    count: &str,
    filter: &str,
) -> Result<u64, StoreError> {
    let n = ch.number(count).await?;
    if n > 0 {
        ch.execute(&format!("ALTER TABLE {table} DELETE WHERE {filter}"))
            .await?;
        ch.await_mutations(table).await?;
    }
    Ok(n.max(0) as u64)
}

/// A sketch as it is kept in a `String` column: hex of its bytes (JSON carries text only).
pub(super) fn sketch_text(s: &liftoff_core::monitoring::sketch::DDSketch) -> String {
    hex::encode(s.to_bytes())
}

pub(super) fn sketch_of(
    text: &str,
) -> Result<liftoff_core::monitoring::sketch::DDSketch, StoreError> {
    let bytes =
        hex::decode(text).map_err(|e| StoreError::Corrupt(format!("stored sketch: {e}")))?;
    crate::codec::sketch_from(&bytes)
}
