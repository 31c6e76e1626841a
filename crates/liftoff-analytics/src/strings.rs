//! String storage without a heap allocation per string.
//!
//! Ten million events carry ~1.5 million distinct strings (users, session ids). A `String`
//! each would cost ~50 bytes of headers and allocator slack plus a `HashMap` entry; here all
//! bytes live in one arena with an end offset per string, and the lookup index is an
//! open-addressing table of ids into that arena (4 bytes per slot).

/// Ordered list of strings in one arena; id = position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StrList {
    arena: String,
    ends: Vec<u32>,
}

impl StrList {
    pub(crate) fn with_capacity(strings: usize, bytes: usize) -> StrList {
        StrList {
            arena: String::with_capacity(bytes),
            ends: Vec::with_capacity(strings),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn is_empty_list(&self) -> bool {
        self.ends.is_empty()
    }

    pub(crate) fn get(&self, id: usize) -> &str {
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        &self.arena[start..self.ends[id] as usize]
    }

    /// The bytes of string `id`: what lookups compare, without `get`'s character-boundary
    /// checks (every end is a boundary by construction).
    #[inline]
    fn bytes(&self, id: usize) -> &[u8] {
        let start = match id.checked_sub(1) {
            Some(before) => self.ends[before] as usize,
            None => 0,
        };
        &self.arena.as_bytes()[start..self.ends[id] as usize]
    }

    /// Appends and returns the new id.
    pub(crate) fn push(&mut self, s: &str) -> u32 {
        self.arena.push_str(s);
        let end =
            u32::try_from(self.arena.len()).expect("string arena over 4 GiB: segment too large");
        self.ends.push(end);
        u32::try_from(self.ends.len() - 1).expect("more than 2^32 strings")
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }

    pub(crate) fn arena_bytes(&self) -> usize {
        self.arena.len()
    }

    pub(crate) fn arena(&self) -> &str {
        &self.arena
    }

    pub(crate) fn ends(&self) -> &[u32] {
        &self.ends
    }

    /// The list `arena` and `ends` describe, if they describe one: ends in order, the last at
    /// the arena's end, each on a character boundary.
    pub(crate) fn from_parts(arena: String, ends: Vec<u32>) -> Option<StrList> {
        let fits = ends.is_sorted()
            && ends.last().map_or(0, |&e| e as usize) == arena.len()
            && ends.iter().all(|&e| arena.is_char_boundary(e as usize));
        fits.then_some(StrList { arena, ends })
    }
}

const EMPTY: u32 = u32::MAX;

/// Interning dictionary: string ↔ dense `u32` id, ids in insertion order.
#[derive(Debug, Clone)]
pub(crate) struct Dict {
    list: StrList,
    slots: Vec<u32>,
}

impl Default for Dict {
    fn default() -> Self {
        Dict {
            list: StrList::default(),
            slots: vec![EMPTY; 16],
        }
    }
}

impl Dict {
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        self.list.get(id as usize)
    }

    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = hash_str(s) as usize & mask;
        loop {
            let id = self.slots[i];
            if id == EMPTY {
                return None;
            }
            if self.list.bytes(id as usize) == s.as_bytes() {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    /// The id of `s`, inserting it when new.
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        let mask = self.slots.len() - 1;
        let mut i = hash_str(s) as usize & mask;
        loop {
            let id = self.slots[i];
            if id == EMPTY {
                break;
            }
            if self.list.bytes(id as usize) == s.as_bytes() {
                return id;
            }
            i = (i + 1) & mask;
        }
        let id = self.list.push(s);
        self.slots[i] = id;
        // Keep the load factor under one half so probes stay short.
        if self.list.len() * 2 > self.slots.len() {
            self.grow();
        }
        id
    }

    fn grow(&mut self) {
        self.index(self.slots.len() * 2);
    }

    /// Rebuilds the lookup table with `size` slots (a power of two over twice the strings).
    fn index(&mut self, size: usize) {
        let mask = size - 1;
        let mut slots = vec![EMPTY; size];
        for (id, s) in self.list.iter().enumerate() {
            let mut i = hash_str(s) as usize & mask;
            while slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            slots[i] = id as u32;
        }
        self.slots = slots;
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.list.iter()
    }

    pub(crate) fn list(&self) -> &StrList {
        &self.list
    }

    /// A dictionary over `list`, ids kept. A string listed twice (only a damaged file has one)
    /// is found at its first id: probing meets the earlier slot first.
    pub(crate) fn from_list(list: StrList) -> Dict {
        let size = (list.len() * 2 + 1).next_power_of_two().max(16);
        let mut dict = Dict {
            list,
            slots: Vec::new(),
        };
        dict.index(size);
        dict
    }

    pub(crate) fn into_list(self) -> StrList {
        self.list
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.list.arena_bytes() + self.list.len() * 4 + self.slots.len() * 4
    }
}

/// A fast, deterministic, non-cryptographic hash (FxHash-style, word at a time). The ids are
/// not attacker-chosen secrets worth HashDoS protection: at worst a crafted id set makes
/// probing slower, never wrong.
pub(crate) fn hash_str(s: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let bytes = s.as_bytes();
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut tail = 0u64;
    for (i, b) in chunks.remainder().iter().enumerate() {
        tail |= u64::from(*b) << (8 * i);
    }
    h = (h.rotate_left(5) ^ tail).wrapping_mul(K);
    // Final avalanche: the low bits pick the slot, so fold the high bits down.
    h ^ (h >> 29) ^ (h >> 47)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_and_finds() {
        let mut d = Dict::default();
        let names: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(d.intern(n), i as u32);
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(d.intern(n), i as u32);
            assert_eq!(d.get(n), Some(i as u32));
            assert_eq!(d.name(i as u32), n);
        }
        assert_eq!(d.get("nope"), None);
        assert_eq!(d.get(""), None);
        assert_eq!(d.intern(""), 1000);
        assert_eq!(d.get(""), Some(1000));
    }
}
