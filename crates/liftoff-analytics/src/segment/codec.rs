//! Byte-level building blocks of the segment format: LEB128 varints, front-coded strings,
//! and the body checksum.

use super::decode::DecodeError;
use crate::strings::StrList;

pub(super) const MAGIC: [u8; 4] = *b"LSEG";
pub(super) const VERSION: u16 = 1;
/// magic (4) + version (2) + reserved (2) + body length (8) + body checksum (8).
pub(super) const HEADER_LEN: usize = 24;

pub(super) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Strings as (bytes shared with the previous string, suffix length, suffix). Sorted user
/// ids and sequential session ids share most of their bytes with their neighbour.
pub(super) fn put_strings(buf: &mut Vec<u8>, list: &StrList) {
    put_varint(buf, list.len() as u64);
    let mut prev: &[u8] = &[];
    for s in list.iter() {
        let s = s.as_bytes();
        let shared = prev.iter().zip(s).take_while(|(a, b)| a == b).count();
        put_varint(buf, shared as u64);
        put_varint(buf, (s.len() - shared) as u64);
        buf.extend_from_slice(&s[shared..]);
        prev = s;
    }
}

/// Checksum of the body: a word-at-a-time multiply–rotate chain. Each step is a bijection of
/// the state, so any change confined to one 8-byte word always changes the result; other
/// damage (torn tails, random garbage) slips through with probability about 2^-64. It guards
/// against storage faults, not against an adversary (the blobs never cross a trust boundary).
pub(super) fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = 0x243f_6a88_85a3_08d3 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail))
        .wrapping_mul(K)
        .rotate_left(29);
    h ^ (h >> 32)
}

/// A cursor over untrusted bytes: every read is bounds-checked and fails with a
/// [`DecodeError`] instead of panicking.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(DecodeError::Corrupt("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError::Corrupt("varint longer than 10 bytes"));
            }
        }
    }

    /// A varint that counts items each taking at least one more byte: bounding it by the
    /// bytes left stops a corrupt length from triggering a huge allocation.
    pub(super) fn count(&mut self) -> Result<usize, DecodeError> {
        let v = self.varint()?;
        if v > self.remaining() as u64 {
            return Err(DecodeError::Corrupt("count larger than the data left"));
        }
        Ok(v as usize)
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(super) fn strings(&mut self) -> Result<StrList, DecodeError> {
        let n = self.count()?;
        let mut list = StrList::with_capacity(n, n * 8);
        let mut prev: Vec<u8> = Vec::new();
        for _ in 0..n {
            let shared = self.varint()?;
            let suffix_len = self.varint()?;
            if shared > prev.len() as u64 {
                return Err(DecodeError::Corrupt(
                    "front-coded string shares more than its neighbour has",
                ));
            }
            let suffix =
                self.bytes(usize::try_from(suffix_len).map_err(|_| DecodeError::Truncated)?)?;
            prev.truncate(shared as usize);
            prev.extend_from_slice(suffix);
            let s = std::str::from_utf8(&prev)
                .map_err(|_| DecodeError::Corrupt("string is not UTF-8"))?;
            list.push(s);
        }
        Ok(list)
    }
}
