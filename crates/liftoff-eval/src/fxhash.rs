//! A small, fast, non-cryptographic string hasher (the FxHash mixing used by rustc) and a
//! string set built on it. Keys are flag names and constraint values taken from definitions;
//! lookups with untrusted input never insert, so hash flooding is not a concern here.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0xf135_7aea_2e62_a9c5;

/// FxHash-style hasher.
#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        self.hash = self.hash.wrapping_add(word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxHashMap<K, V> = HashMap<K, V, FxBuild>;

/// A set of strings: a linear scan for the handful of values constraints usually carry, a hash
/// set past that.
#[derive(Clone, Debug)]
pub(crate) enum StrSet {
    Small(Box<[Box<str>]>),
    Large(HashSet<Box<str>, FxBuild>),
}

const SMALL_SET: usize = 8;

impl StrSet {
    pub(crate) fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        let values: Vec<Box<str>> = values.into_iter().map(Into::into).collect();
        if values.len() <= SMALL_SET {
            StrSet::Small(values.into_boxed_slice())
        } else {
            StrSet::Large(values.into_iter().collect())
        }
    }

    #[inline]
    pub(crate) fn contains(&self, value: &str) -> bool {
        match self {
            StrSet::Small(values) => values.iter().any(|v| &**v == value),
            StrSet::Large(set) => set.contains(value),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_sets() {
        let small = StrSet::new(["a", "b"]);
        assert!(small.contains("a") && small.contains("b") && !small.contains("c"));
        let many: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
        let large = StrSet::new(many.iter().map(String::as_str));
        assert!(matches!(large, StrSet::Large(_)));
        assert!(large.contains("v0") && large.contains("v99") && !large.contains("v100"));
        assert!(!StrSet::new(Vec::<String>::new()).contains(""));
    }
}
