//! The storage encoding of a sketch.
//!
//! Version 2, little-endian:
//!
//! ```text
//! u8        magic 0xDD
//! u8        version 2
//! f64       relative accuracy (γ is derived from it, bit for bit)
//! varint    bucket limit
//! varint    zero count
//! varint    number of buckets n
//! if n > 0:
//!   zigzag varint  index of the first bucket
//!   n × varint     bucket counts, first and last non-zero
//! if the total count > 0:
//!   f64 sum, f64 min, f64 max
//!   varint    number of exact values k (0, or the total count when it is at most 32)
//!   k × f64   the values, ascending
//! ```
//!
//! Version 1 is version 2 without the exact values; it is still read (its sketches answer
//! from the buckets alone).
//!
//! Counts are varints because a minute's buckets mostly hold tens to thousands of values:
//! one or two bytes instead of eight, which is what keeps a persisted minute around 1 KiB.
//! The total count is not stored; it is the sum of the buckets. The format carries a version
//! so that a later change (say, a sparse run-length encoding) can still read version 1.
//!
//! Decoding trusts nothing: every length is checked against the bytes that remain and the
//! bucket limit before anything is allocated, indices are checked against the range a value
//! can map to, and the statistics must be consistent, so any input gives a sketch whose
//! methods behave, or an error.

use super::mapping::LogMapping;
use super::store::DenseStore;
use super::{DDSketch, MAX_BUCKET_LIMIT, SketchError};

const MAGIC: u8 = 0xDD;
const VERSION: u8 = 2;
/// The first version: no exact values.
const VERSION_1: u8 = 1;

impl DDSketch {
    /// The sketch in the compact, versioned storage format described in the module source.
    /// [`DDSketch::from_bytes`] gives back an equal sketch.
    pub fn to_bytes(&self) -> Vec<u8> {
        let counts = self.store.counts();
        let mut out = Vec::with_capacity(2 + 8 + 3 * 10 + counts.len() * 2 + 24);
        out.push(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.mapping.relative_accuracy().to_le_bytes());
        put_varint(&mut out, self.store.max_buckets() as u64);
        put_varint(&mut out, self.zero_count);
        put_varint(&mut out, counts.len() as u64);
        if !counts.is_empty() {
            put_varint(&mut out, zigzag(self.store.offset()));
            for &c in counts {
                put_varint(&mut out, c);
            }
        }
        if self.count > 0 {
            for v in [self.sum, self.min, self.max] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            put_varint(&mut out, self.exact.len() as u64);
            for v in &self.exact {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Reads a sketch written by [`DDSketch::to_bytes`]. Truncated, corrupt or foreign input
    /// is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SketchError> {
        let mut r = Reader { bytes };
        let magic = r.u8()?;
        if magic != MAGIC {
            return Err(SketchError::BadMagic(magic));
        }
        let version = r.u8()?;
        if version != VERSION && version != VERSION_1 {
            return Err(SketchError::UnsupportedVersion(version));
        }
        let mapping = LogMapping::new(r.f64()?)?;
        let max_buckets = r.varint()?;
        if !(1..=MAX_BUCKET_LIMIT as u64).contains(&max_buckets) {
            return Err(SketchError::InvalidBucketLimit(max_buckets));
        }
        let max_buckets = max_buckets as usize;
        let zero_count = r.varint()?;
        let len = r.varint()?;
        if len > max_buckets as u64 {
            return Err(SketchError::Corrupt("more buckets than the bucket limit"));
        }
        // Every count takes at least one byte: refuse before allocating for a length the
        // input cannot back.
        if len > r.bytes.len() as u64 {
            return Err(SketchError::Truncated);
        }
        let mut store = DenseStore::new(max_buckets);
        let mut count = zero_count;
        if len > 0 {
            let offset = unzigzag(r.varint()?)?;
            let (min_index, max_index) = mapping.index_bounds();
            let last = i64::from(offset) + len as i64 - 1;
            if offset < min_index || last > i64::from(max_index) {
                return Err(SketchError::Corrupt("bucket index out of range"));
            }
            let mut counts = Vec::with_capacity(len as usize);
            for _ in 0..len {
                let c = r.varint()?;
                count = count.saturating_add(c);
                counts.push(c);
            }
            if counts.first() == Some(&0) || counts.last() == Some(&0) {
                return Err(SketchError::Corrupt(
                    "empty bucket at the edge of the store",
                ));
            }
            store = DenseStore::from_parts(offset, counts, max_buckets);
        }
        let (sum, min, max) = if count > 0 {
            let (sum, min, max) = (r.f64()?, r.f64()?, r.f64()?);
            // The sum may legitimately be +inf (values near f64::MAX) but, as a sum of
            // non-negative values, never below the max; min and max are values that `add`
            // accepted, so finite and non-negative.
            // `add` normalises -0.0, so a negative sign bit is corruption too. `min <= max`
            // also guards `f64::clamp` in `quantile`, which panics otherwise.
            let stats_ok = min.is_finite()
                && max.is_finite()
                && min.is_sign_positive()
                && min <= max
                && sum >= max;
            if !stats_ok {
                return Err(SketchError::Corrupt("inconsistent sum, min or max"));
            }
            (sum, min, max)
        } else {
            (0.0, f64::INFINITY, f64::NEG_INFINITY)
        };
        let exact = if count > 0 && version == VERSION {
            read_exact(&mut r, count, min, max)?
        } else {
            Vec::new()
        };
        if !r.bytes.is_empty() {
            return Err(SketchError::Corrupt("trailing bytes"));
        }
        Ok(Self {
            mapping,
            store,
            zero_count,
            count,
            sum,
            min,
            max,
            exact,
        })
    }
}

/// The exact values of a version 2 sketch: none, or all `count` of them, ascending, from
/// `min` to `max`.
fn read_exact(r: &mut Reader<'_>, count: u64, min: f64, max: f64) -> Result<Vec<f64>, SketchError> {
    let k = r.varint()?;
    if k == 0 {
        return Ok(Vec::new());
    }
    if k != count || k > super::EXACT_LIMIT as u64 {
        return Err(SketchError::Corrupt("exact values do not match the count"));
    }
    let mut values = Vec::with_capacity(k as usize);
    for _ in 0..k {
        values.push(r.f64()?);
    }
    let ascending = values.windows(2).all(|w| w[0] <= w[1]);
    let bounded = values.first() == Some(&min) && values.last() == Some(&max);
    if !(ascending && bounded && values.iter().all(|v| v.is_sign_positive())) {
        return Err(SketchError::Corrupt("exact values out of order or bounds"));
    }
    Ok(values)
}

fn zigzag(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

fn unzigzag(v: u64) -> Result<i32, SketchError> {
    let v = u32::try_from(v).map_err(|_| SketchError::Corrupt("bucket index out of range"))?;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

/// LEB128: seven bits per byte, low bits first, high bit set on all but the last byte.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, SketchError> {
        let (&b, rest) = self.bytes.split_first().ok_or(SketchError::Truncated)?;
        self.bytes = rest;
        Ok(b)
    }

    fn f64(&mut self) -> Result<f64, SketchError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<8>()
            .ok_or(SketchError::Truncated)?;
        self.bytes = rest;
        Ok(f64::from_le_bytes(*head))
    }

    fn varint(&mut self) -> Result<u64, SketchError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            // The tenth byte carries bit 63 only; anything more would be silently dropped.
            if shift == 63 && b > 1 {
                return Err(SketchError::Corrupt("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SketchError::Corrupt("varint overflows 64 bits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader { bytes: &out };
            assert_eq!(r.varint(), Ok(v));
            assert!(r.bytes.is_empty());
        }
        let mut out = Vec::new();
        put_varint(&mut out, u64::MAX);
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn varints_longer_than_64_bits_are_rejected() {
        let mut r = Reader {
            bytes: &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02],
        };
        assert!(matches!(r.varint(), Err(SketchError::Corrupt(_))));
        let mut r = Reader { bytes: &[0x80; 11] };
        assert!(r.varint().is_err());
        let mut r = Reader { bytes: &[0x80] };
        assert_eq!(r.varint(), Err(SketchError::Truncated));
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0, 1, -1, 2, -2, i32::MAX, i32::MIN, -35_000, 35_000] {
            assert_eq!(unzigzag(zigzag(v)), Ok(v));
        }
        assert!(unzigzag(u64::from(u32::MAX) + 1).is_err());
    }
}
