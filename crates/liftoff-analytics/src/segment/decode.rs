//! Bytes → Segment. The input is untrusted (a torn write, a flipped bit, a file from a newer
//! build): every length is bounded by the bytes left, every id by its dictionary, and every
//! failure is a [`DecodeError`] — never a panic, never a segment that answers wrongly.

use super::codec::{HEADER_LEN, MAGIC, Reader, VERSION, checksum};
use super::{NO_SESSION, Segment};

/// Why a blob is not a valid segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a segment (bad magic)")]
    BadMagic,
    #[error("segment format version {0} is not supported by this build")]
    UnsupportedVersion(u16),
    #[error("segment is truncated")]
    Truncated,
    #[error("segment checksum mismatch")]
    ChecksumMismatch,
    #[error("segment is corrupt: {0}")]
    Corrupt(&'static str),
}

/// Whether a decode keeps the uuid column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uuids {
    Keep,
    /// Checked like every column, then dropped: the query form never reads uuids, and at
    /// 16 bytes each they would outweigh the rest of a decoded segment.
    Skip,
}

impl Segment {
    /// Reads a blob written by [`Segment::encode`].
    pub fn decode(blob: &[u8]) -> Result<Segment, DecodeError> {
        Segment::decode_with(blob, Uuids::Keep)
    }

    /// [`Segment::decode`], keeping or dropping the uuids.
    pub fn decode_with(blob: &[u8], uuids: Uuids) -> Result<Segment, DecodeError> {
        if blob.len() < HEADER_LEN {
            return Err(if blob.len() >= 4 && blob[..4] != MAGIC {
                DecodeError::BadMagic
            } else {
                DecodeError::Truncated
            });
        }
        if blob[..4] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = u16::from_le_bytes([blob[4], blob[5]]);
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        if blob[6..8] != [0, 0] {
            return Err(DecodeError::Corrupt("unknown header flags"));
        }
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&blob[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let body_len = word(8);
        let body = &blob[HEADER_LEN..];
        if body_len != body.len() as u64 {
            return Err(if body_len > body.len() as u64 {
                DecodeError::Truncated
            } else {
                DecodeError::Corrupt("trailing bytes")
            });
        }
        if checksum(body) != word(16) {
            return Err(DecodeError::ChecksumMismatch);
        }
        decode_body(body, uuids)
    }
}

impl Segment {
    /// Decodes many blobs on all cores (blobs are independent); one result per blob, in
    /// order, so a caller can report or skip a corrupt day and keep the rest. For the query
    /// form: the uuids are checked, not kept ([`Uuids::Skip`]).
    pub fn decode_many<B: AsRef<[u8]> + Sync>(blobs: &[B]) -> Vec<Result<Segment, DecodeError>> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, blobs.len().max(1));
        if threads == 1 {
            return blobs
                .iter()
                .map(|b| Segment::decode_with(b.as_ref(), Uuids::Skip))
                .collect();
        }
        // Interleaved assignment balances days of similar size without measuring them.
        let mut out: Vec<Option<Result<Segment, DecodeError>>> =
            (0..blobs.len()).map(|_| None).collect();
        let parts: Vec<Vec<(usize, Result<Segment, DecodeError>)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        (t..blobs.len())
                            .step_by(threads)
                            .map(|i| (i, Segment::decode_with(blobs[i].as_ref(), Uuids::Skip)))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("segment decoding panicked"))
                .collect()
        });
        for (i, r) in parts.into_iter().flatten() {
            out[i] = Some(r);
        }
        out.into_iter()
            .map(|r| r.expect("every blob was decoded by one thread"))
            .collect()
    }
}

/// Decodes a body whose checksum already matched. Still validates everything: a checksum
/// proves the bytes are the ones written, not that the writer was correct.
pub(crate) fn decode_body(body: &[u8], keep: Uuids) -> Result<Segment, DecodeError> {
    let mut r = Reader::new(body);
    let n = r.count()?;
    let base = unzigzag(r.varint()?);
    let events = r.strings()?;
    let users = r.strings()?;
    let sessions = r.strings()?;
    let props = r.strings()?;
    if events.len() > usize::from(u16::MAX) + 1 {
        return Err(DecodeError::Corrupt("more than 65536 event names"));
    }
    if (n == 0) != users.is_empty_list()
        || (n > 0 && (events.is_empty_list() || props.is_empty_list()))
    {
        return Err(DecodeError::Corrupt(
            "dictionaries do not match the row count",
        ));
    }
    for i in 1..users.len() {
        if users.get(i - 1) >= users.get(i) {
            return Err(DecodeError::Corrupt("users are not strictly ascending"));
        }
    }
    if sessions.len() > n {
        return Err(DecodeError::Corrupt("more session ids than rows"));
    }

    let mut user_rows = Vec::with_capacity(users.len());
    let mut total = 0usize;
    for _ in 0..users.len() {
        let k = r.varint()?;
        if k == 0 || k > (n - total) as u64 {
            return Err(DecodeError::Corrupt(
                "user run lengths do not add up to the row count",
            ));
        }
        total += k as usize;
        user_rows.push(k as u32);
    }
    if total != n {
        return Err(DecodeError::Corrupt(
            "user run lengths do not add up to the row count",
        ));
    }

    let mut ts = Vec::with_capacity(n);
    for &len in &user_rows {
        let mut prev = base;
        for _ in 0..len {
            let d = i64::try_from(r.varint()?)
                .map_err(|_| DecodeError::Corrupt("timestamp delta too large"))?;
            prev = prev
                .checked_add(d)
                .ok_or(DecodeError::Corrupt("timestamp overflows"))?;
            ts.push(prev);
        }
    }

    let event: Vec<u16> = if events.len() <= 256 {
        r.bytes(n)?.iter().map(|&b| u16::from(b)).collect()
    } else {
        let raw = r.bytes(n.checked_mul(2).ok_or(DecodeError::Truncated)?)?;
        raw.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    };
    if event.iter().any(|&e| usize::from(e) >= events.len()) {
        return Err(DecodeError::Corrupt("event id outside the dictionary"));
    }

    let mut session = Vec::with_capacity(n);
    let mut next_new = 0u64;
    let n_sessions = sessions.len() as u64;
    for &len in &user_rows {
        let mut prev = NO_SESSION;
        for _ in 0..len {
            let s = match r.varint()? {
                0 if prev != NO_SESSION => prev,
                0 => {
                    return Err(DecodeError::Corrupt(
                        "'same session' without a previous session",
                    ));
                }
                1 if next_new < n_sessions => {
                    next_new += 1;
                    (next_new - 1) as u32
                }
                1 => return Err(DecodeError::Corrupt("more new sessions than session ids")),
                2 => NO_SESSION,
                c if c - 3 < n_sessions => (c - 3) as u32,
                _ => return Err(DecodeError::Corrupt("session id outside the dictionary")),
            };
            session.push(s);
            prev = s;
        }
    }

    let mut prop = Vec::with_capacity(n);
    for _ in 0..n {
        let p = r.varint()?;
        if p >= props.len() as u64 {
            return Err(DecodeError::Corrupt("property id outside the dictionary"));
        }
        prop.push(p as u32);
    }

    let n_uuids = r.varint()?;
    if n_uuids > n as u64 {
        return Err(DecodeError::Corrupt("more uuids than rows"));
    }
    let mut uuids = Vec::new();
    if n_uuids > 0 {
        let bitmap = r.bytes(n.div_ceil(8))?;
        let present: u64 = bitmap.iter().map(|b| u64::from(b.count_ones())).sum();
        if present != n_uuids || (n % 8 != 0 && bitmap[n / 8] >> (n % 8) != 0) {
            return Err(DecodeError::Corrupt(
                "uuid bitmap does not match the uuid count",
            ));
        }
        let values = r.bytes(n_uuids as usize * 16)?;
        let mut values = values.chunks_exact(16);
        if keep == Uuids::Keep {
            uuids.reserve_exact(n_uuids as usize);
        }
        for (i, &b) in bitmap.iter().enumerate().filter(|_| keep == Uuids::Keep) {
            let mut bits = b;
            while bits != 0 {
                let row = i * 8 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let v = values.next().ok_or(DecodeError::Truncated)?;
                let mut w = [0u8; 16];
                w.copy_from_slice(v);
                uuids.push((row as u32, u128::from_le_bytes(w)));
            }
        }
    }
    if r.remaining() != 0 {
        return Err(DecodeError::Corrupt("trailing bytes after the last column"));
    }
    Ok(Segment {
        users,
        user_rows,
        events,
        sessions,
        props,
        ts,
        event,
        session,
        prop,
        uuids,
    })
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::super::encode::zigzag;
    use super::*;

    #[test]
    fn zigzag_round_trips() {
        for v in [0, 1, -1, i64::MAX, i64::MIN, 1_704_067_200_000] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    use proptest::prelude::*;

    fn sample_body() -> Vec<u8> {
        let rows: Vec<crate::EventRow> = (0..40)
            .map(|i| crate::EventRow {
                ts_ms: 1_704_067_200_000 + i * 7_919,
                user: format!("u{}", i % 7),
                session: (i % 3 != 0).then(|| format!("s{}", i % 5)),
                event: format!("e{}", i % 4),
                properties: format!("{{\"k\": {}}}", i % 3),
                uuid: (i % 4 == 0).then_some(i as u128 * 0x1234_5678_9abc),
            })
            .collect();
        Segment::build(&rows).expect("small").encode()[HEADER_LEN..].to_vec()
    }

    proptest! {
        // What the checksum cannot promise: a body that passed it is still validated, so a
        // buggy or hostile writer yields an error or a consistent segment, never a panic.
        #[test]
        fn body_decoder_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_body(&bytes, Uuids::Keep);
        }

        #[test]
        fn mutated_bodies_decode_consistently_or_fail(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4), cut in any::<usize>()) {
            let mut body = sample_body();
            for (at, b) in edits {
                let at = at % body.len();
                body[at] = b;
            }
            if cut % 3 == 0 {
                body.truncate(cut % (body.len() + 1));
            }
            if let Ok(seg) = decode_body(&body, Uuids::Keep) {
                let n = seg.len();
                prop_assert_eq!(seg.user_rows.iter().map(|&r| r as usize).sum::<usize>(), n);
                prop_assert!(seg.event.iter().all(|&e| (e as usize) < seg.events.len()));
                prop_assert!(seg.prop.iter().all(|&p| (p as usize) < seg.props.len()));
                prop_assert!(seg.session.iter().all(|&s| s == NO_SESSION || (s as usize) < seg.sessions.len()));
                prop_assert!(seg.uuids.iter().all(|&(r, _)| (r as usize) < n));
                // and it can be used: rows() reads every column
                prop_assert_eq!(seg.rows().count(), n);
            }
        }
    }

    #[test]
    fn rejects_short_and_foreign_blobs() {
        assert_eq!(Segment::decode(b""), Err(DecodeError::Truncated));
        assert_eq!(
            Segment::decode(b"PK\x03\x04 not a segment at all"),
            Err(DecodeError::BadMagic)
        );
        let mut blob = Segment::build(&[]).expect("empty").encode();
        blob[4] = 9;
        assert_eq!(
            Segment::decode(&blob),
            Err(DecodeError::UnsupportedVersion(9))
        );
    }
}
