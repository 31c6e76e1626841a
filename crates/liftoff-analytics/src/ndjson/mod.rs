//! NDJSON in the export shape → one [`Segment`] per UTC day, on every core.
//!
//! Four stages run at once, joined by bounded channels so only a few chunks are ever in
//! memory: one thread reads the input (and, when the caller passes a decoder, inflates it)
//! into ~1 MiB chunks cut at line ends; one worker per core parses chunks; this thread takes
//! the parsed rows in line order into the builder of their day; another sorts and packs each
//! finished day. The caller's `Read` is the only IO: the crate still opens no file.
//!
//! A time-ordered file (what `liftoff export` writes) gives exactly one segment per day.
//! Days stay open while later ones arrive, up to [`OPEN_DAYS`]; a row for a day already
//! packed starts another segment for it, which the table merges like any overlap.

mod line;

use crate::row::RowRef;
use crate::segment::{BuildError, PropertiesId, Segment, SegmentBuilder};
use crate::time::DAY_MS;
use line::ParsedChunk;
use std::io::{self, Read};
use std::sync::mpsc;

/// Days kept open at once; the oldest is packed when one more arrives.
pub const OPEN_DAYS: usize = 3;
/// Bytes a chunk is read in (it grows to hold a longer line).
const CHUNK: usize = 1 << 20;
/// A longer line is refused rather than buffered.
pub const MAX_LINE: usize = 64 << 20;

/// Why an NDJSON input could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum NdjsonError {
    #[error("cannot read the input: {0}")]
    Io(#[from] io::Error),
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("line {line}: {source}")]
    Build { line: u64, source: BuildError },
}

/// What a load read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub events: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
}

/// What [`load_days`] made.
#[derive(Debug)]
pub struct Loaded {
    /// Segments, ascending by day (a day may have more than one when the input was out of
    /// order).
    pub segments: Vec<Segment>,
    pub counts: Counts,
}

/// Reads NDJSON lines in the export shape (`EventRow::to_ndjson`) from `input` and builds one
/// segment per UTC day. Stops at the first bad line with its 1-based number.
pub fn load_days<R: Read + Send>(input: R) -> Result<Loaded, NdjsonError> {
    let mut days: Vec<(i64, Segment)> = Vec::new();
    let counts = for_each_day(input, |day, segment| days.push((day, segment)))?;
    // Stable: two segments of one day keep their order.
    days.sort_by_key(|&(day, _)| day);
    Ok(Loaded {
        segments: days.into_iter().map(|(_, s)| s).collect(),
        counts,
    })
}

/// [`load_days`], handing each segment with its UTC day number to `on_day` as soon as the day
/// is done (in the order days close), so a caller that encodes or stores them never holds
/// them all. On an error, days already handed over stay handed over.
pub fn for_each_day<R, F>(input: R, on_day: F) -> Result<Counts, NdjsonError>
where
    R: Read + Send,
    F: FnMut(i64, Segment) + Send,
{
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        // Chunk n goes to worker n % workers and its rows come back on that worker's
        // channel, so taking the channels in turn keeps line order with nothing to reorder.
        let mut to_workers = Vec::with_capacity(workers);
        let mut from_workers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Vec<u8>>(2);
            let (parsed_tx, parsed_rx) = mpsc::sync_channel::<ParsedChunk>(2);
            scope.spawn(move || {
                for chunk in chunk_rx {
                    if parsed_tx.send(ParsedChunk::parse(chunk)).is_err() {
                        return;
                    }
                }
            });
            to_workers.push(chunk_tx);
            from_workers.push(parsed_rx);
        }
        let (days_tx, days_rx) = mpsc::sync_channel::<(i64, SegmentBuilder)>(2);
        let reader = scope.spawn(move || read_chunks(input, &to_workers));
        let packer = scope.spawn(move || {
            let mut on_day = on_day;
            for (day, builder) in days_rx {
                on_day(day, builder.finish());
            }
        });
        let built = build_days(&from_workers, &days_tx);
        drop(days_tx);
        // Dropping the channels stops the workers and the reader early after a bad line.
        drop(from_workers);
        packer.join().expect("packing a day does not panic");
        let read = reader.join().expect("reading chunks does not panic");
        let counts = built?;
        read?;
        Ok(counts)
    })
}

/// Fills chunks from `input` and sends each cut after its last newline; the remainder starts
/// the next one.
fn read_chunks<R: Read>(
    mut input: R,
    workers: &[mpsc::SyncSender<Vec<u8>>],
) -> Result<(), NdjsonError> {
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK);
    // Chunk n must go to worker n % workers: the turn only moves when a chunk is sent.
    let mut turn = workers.iter().cycle();
    loop {
        // A chunk without a line end yet doubles until one arrives, but never reads past
        // MAX_LINE + 1 bytes of one line.
        let room = CHUNK
            .max(chunk.len())
            .min((MAX_LINE + 1).saturating_sub(chunk.len()))
            .max(1);
        let n = input.by_ref().take(room as u64).read_to_end(&mut chunk)?;
        let eof = n < room;
        let cut = match chunk.iter().rposition(|&b| b == b'\n') {
            None if chunk.len() > MAX_LINE => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a line is longer than {} MiB", MAX_LINE >> 20),
                )
                .into());
            }
            _ if eof => chunk.len(),
            Some(last) => last + 1,
            None => continue,
        };
        let mut next = Vec::with_capacity(CHUNK + chunk.len() - cut);
        next.extend_from_slice(&chunk[cut..]);
        chunk.truncate(cut);
        if !chunk.is_empty() {
            let worker = turn
                .next()
                .expect("cycling over at least one worker never ends");
            if worker.send(chunk).is_err() {
                return Ok(());
            }
        }
        if eof {
            return Ok(());
        }
        chunk = next;
    }
}

/// A day being built, and the builder's property ids of the current chunk's distinct texts
/// (`None` until first used), so each text is interned once per chunk, not once per row.
struct OpenDay {
    day: i64,
    builder: SegmentBuilder,
    properties: Vec<Option<PropertiesId>>,
}

/// Takes the parsed chunks in order into day builders, sending each day to the packer when
/// it closes.
fn build_days(
    workers: &[mpsc::Receiver<ParsedChunk>],
    days: &mpsc::SyncSender<(i64, SegmentBuilder)>,
) -> Result<Counts, NdjsonError> {
    let mut open: Vec<OpenDay> = Vec::with_capacity(OPEN_DAYS + 1);
    let (mut lines, mut events, mut blank) = (0u64, 0u64, 0u64);
    let pack = |day: i64, builder: SegmentBuilder| {
        // The packer only stops when this side has gone, so a send cannot fail here.
        let _ = days.send((day, builder));
    };
    // A worker's channel closes once the reader has run out of chunks: every chunk before
    // has been taken by then.
    for chunk in workers.iter().cycle().map_while(|w| w.recv().ok()) {
        if let Some((line, message)) = chunk.error {
            return Err(NdjsonError::Line {
                line: lines + line,
                message,
            });
        }
        for day in &mut open {
            day.properties.clear();
            day.properties.resize(chunk.distinct_properties, None);
        }
        for r in chunk.rows() {
            let day = r.row.ts_ms.div_euclid(DAY_MS);
            let slot = match open.iter().position(|d| d.day == day) {
                Some(i) => i,
                None => {
                    if open.len() == OPEN_DAYS {
                        let oldest = (0..open.len())
                            .min_by_key(|&i| open[i].day)
                            .expect("OPEN_DAYS > 0");
                        let closed = open.swap_remove(oldest);
                        pack(closed.day, closed.builder);
                    }
                    open.push(OpenDay {
                        day,
                        builder: SegmentBuilder::with_capacity(1 << 16),
                        properties: vec![None; chunk.distinct_properties],
                    });
                    open.len() - 1
                }
            };
            let open_day = &mut open[slot];
            let properties = match r.properties_key {
                Some(key) => *open_day.properties[key as usize]
                    .get_or_insert_with(|| open_day.builder.properties_id(r.row.properties)),
                None => open_day.builder.properties_id(r.row.properties),
            };
            if let Err(source) = push(open_day, r.row, properties, &pack) {
                return Err(NdjsonError::Build {
                    line: lines + r.line,
                    source,
                });
            }
            events += 1;
        }
        lines += chunk.lines;
        blank += chunk.blank;
    }
    for closed in open {
        pack(closed.day, closed.builder);
    }
    Ok(Counts {
        events,
        blank_lines: blank,
    })
}

/// Pushes `row`; a builder at its row limit is packed and a new one started for the day.
fn push(
    open: &mut OpenDay,
    row: RowRef<'_>,
    properties: PropertiesId,
    pack: &impl Fn(i64, SegmentBuilder),
) -> Result<(), BuildError> {
    match open.builder.push_with_properties(row, properties) {
        Err(BuildError::TooManyRows) => {
            pack(open.day, std::mem::take(&mut open.builder));
            open.properties.fill(None);
            open.builder.push(row)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::EventRow;

    fn row(ts: i64, user: &str) -> EventRow {
        EventRow {
            ts_ms: ts,
            user: user.into(),
            session: Some(format!("s-{user}")),
            event: "page_view".into(),
            properties: r#"{"plan": "free"}"#.into(),
            uuid: None,
        }
    }

    fn ndjson(rows: &[EventRow]) -> String {
        rows.iter().map(|r| r.to_ndjson() + "\n").collect()
    }

    /// A reader that hands out a few bytes at a time, so lines straddle every chunk edge.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn one_segment_per_day_equal_to_building_each_day() {
        // ~3 MB: lines straddle the edges of the 1 MiB chunks as well as of the reads.
        let rows: Vec<EventRow> = (0..20_000)
            .map(|i| row(i * 15_000, &format!("u{}", i % 37)))
            .collect();
        let text = ndjson(&rows);
        let loaded = load_days(Trickle(text.as_bytes(), 777)).expect("valid");
        assert_eq!(loaded.counts.events, 20_000);
        let days: Vec<Segment> = rows
            .chunk_by(|a, b| a.ts_ms / DAY_MS == b.ts_ms / DAY_MS)
            .map(|day| Segment::build(day).expect("small"))
            .collect();
        assert_eq!(loaded.segments, days);
    }

    #[test]
    fn lines_longer_than_a_chunk_keep_their_place() {
        // Lines of 1.5 MiB among short ones: a chunk that holds no line end yet grows, and
        // the chunks still reach the day builder in line order.
        let long = format!(r#"{{"k": "{}"}}"#, "x".repeat(3 << 19));
        let rows: Vec<EventRow> = (0..40)
            .map(|i| {
                let mut r = row(i * 1_000, &format!("u{}", i % 3));
                if i % 7 == 3 {
                    r.properties.clone_from(&long);
                }
                r
            })
            .collect();
        let text = ndjson(&rows);
        let loaded = load_days(Trickle(text.as_bytes(), 1 << 16)).expect("valid");
        // Not assert_eq: the segment's 1.5 MiB property text would fill the report.
        assert!(
            loaded.segments == [Segment::build(&rows).expect("small")],
            "{} segments, not the one of building every row",
            loaded.segments.len()
        );
        let mut bad = text.clone();
        bad.push_str("{\"ts\":1}\n");
        let err = load_days(bad.as_bytes()).expect_err("the last line lacks fields");
        assert!(matches!(err, NdjsonError::Line { line: 41, .. }), "{err}");
    }

    #[test]
    fn a_line_over_the_limit_is_refused_not_buffered() {
        let huge = vec![b'x'; MAX_LINE + 2];
        let err = load_days(&huge[..]).expect_err("no line end within MAX_LINE");
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    #[test]
    fn rows_out_of_order_land_in_extra_segments_of_their_day() {
        let day = |d: i64| row(d * DAY_MS + 5, "u");
        let rows = [day(0), day(1), day(2), day(3), day(0), day(4)];
        let loaded = load_days(ndjson(&rows).as_bytes()).expect("valid");
        let counts: Vec<(i64, usize)> = loaded
            .segments
            .iter()
            .map(|s| (s.time_bounds().expect("rows").0 / DAY_MS, s.len()))
            .collect();
        assert_eq!(counts, [(0, 1), (0, 1), (1, 1), (2, 1), (3, 1), (4, 1)]);
    }

    #[test]
    fn a_bad_line_is_named_by_number() {
        let mut text = ndjson(&[row(1, "a"), row(2, "b")]);
        text.push_str("\n  \n{\"ts\":3}\n");
        let err = load_days(text.as_bytes()).expect_err("line 5 lacks fields");
        assert!(
            matches!(&err, NdjsonError::Line { line: 5, message } if message.contains("missing field")),
            "{err}"
        );
        let mut bytes = ndjson(&[row(1, "a")]).into_bytes();
        bytes.extend_from_slice(b"{\"ts\":2,\"user_id\":\"\xff\",\"event\":\"e\"}\n");
        let err = load_days(&bytes[..]).expect_err("not UTF-8");
        assert!(matches!(err, NdjsonError::Line { line: 2, .. }), "{err}");
    }

    #[test]
    fn a_last_line_without_newline_and_blank_lines_are_read() {
        let mut text = ndjson(&[row(1, "a")]);
        text.push_str("\r\n");
        text.push_str(&row(2, "b").to_ndjson());
        let loaded = load_days(text.as_bytes()).expect("valid");
        assert_eq!(
            loaded.counts,
            Counts {
                events: 2,
                blank_lines: 1
            }
        );
    }
}
