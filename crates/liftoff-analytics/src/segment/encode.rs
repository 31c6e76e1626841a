//! Segment → bytes. The layout (all integers LEB128 varints unless noted):
//!
//! ```text
//! header  "LSEG" | version u16 LE | reserved u16 | body length u64 LE | body checksum u64 LE
//! body    rows | base_ts (zigzag)
//!         event names | users (ascending) | session ids | property objects   (front-coded)
//!         rows per user, one per user
//!         ts: first row of a user = ts - base_ts, later rows = delta to the previous row
//!         event ids: u8 each when there are at most 256 names, else u16 LE
//!         session codes: 0 same as the previous row of this user, 1 the next not yet used
//!                        id, 2 none, 3 + id an explicit id
//!         property ids
//!         uuids: count, then (if > 0) a presence bitmap of ceil(rows / 8) bytes and 16 bytes
//!                LE per present uuid — data without uuids costs one byte
//! ```

use super::codec::{HEADER_LEN, MAGIC, VERSION, checksum, put_strings, put_varint};
use super::{NO_SESSION, Segment};

impl Segment {
    /// The versioned, checksummed byte form; [`Segment::decode`] reads it back exactly.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.len();
        let mut body = Vec::with_capacity(n * 8 + 1024);
        put_varint(&mut body, n as u64);
        let base = self.ts.iter().copied().min().unwrap_or(0);
        put_varint(&mut body, zigzag(base));
        put_strings(&mut body, &self.events);
        put_strings(&mut body, &self.users);
        put_strings(&mut body, &self.sessions);
        put_strings(&mut body, &self.props);
        for &r in &self.user_rows {
            put_varint(&mut body, u64::from(r));
        }

        let mut row = 0usize;
        for &len in &self.user_rows {
            let mut prev = base;
            for i in row..row + len as usize {
                // Rows are sorted by ts within a user, and base is the minimum: never negative.
                put_varint(&mut body, (self.ts[i] - prev) as u64);
                prev = self.ts[i];
            }
            row += len as usize;
        }

        if self.events.len() <= 256 {
            body.extend(self.event.iter().map(|&e| e as u8));
        } else {
            for &e in &self.event {
                body.extend_from_slice(&e.to_le_bytes());
            }
        }

        let mut next_new = 0u32;
        let mut row = 0usize;
        for &len in &self.user_rows {
            let mut prev = NO_SESSION;
            for &s in &self.session[row..row + len as usize] {
                let code = if s == prev && s != NO_SESSION {
                    0
                } else if s == NO_SESSION {
                    2
                } else if s == next_new {
                    next_new += 1;
                    1
                } else {
                    3 + u64::from(s)
                };
                put_varint(&mut body, code);
                prev = s;
            }
            row += len as usize;
        }

        for &p in &self.prop {
            put_varint(&mut body, u64::from(p));
        }

        put_varint(&mut body, self.uuids.len() as u64);
        if !self.uuids.is_empty() {
            let mut bitmap = vec![0u8; n.div_ceil(8)];
            for &(r, _) in &self.uuids {
                bitmap[r as usize / 8] |= 1 << (r % 8);
            }
            body.extend_from_slice(&bitmap);
            for &(_, u) in &self.uuids {
                body.extend_from_slice(&u.to_le_bytes());
            }
        }

        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&checksum(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }
}

pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}
