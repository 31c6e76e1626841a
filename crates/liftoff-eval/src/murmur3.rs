//! MurmurHash3, x86 32-bit variant, as used by every Unleash SDK for bucketing.
//!
//! Besides the one-shot [`murmur3_x86_32`], this module has [`PrefixHasher`]: the hash state
//! after a fixed prefix (`"{groupId}:"`), computed once when a definition is compiled, so that
//! bucketing a user only hashes the user's id — no string concatenation, no allocation.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
fn mix_k(mut k: u32) -> u32 {
    k = k.wrapping_mul(C1);
    k = k.rotate_left(15);
    k.wrapping_mul(C2)
}

#[inline(always)]
fn mix_h(h: u32, k: u32) -> u32 {
    let h = (h ^ mix_k(k)).rotate_left(13);
    h.wrapping_mul(5).wrapping_add(0xe654_6b64)
}

#[inline(always)]
fn fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[inline(always)]
fn finish(mut h: u32, tail: u32, tail_len: usize, total_len: usize) -> u32 {
    if tail_len > 0 {
        h ^= mix_k(tail);
    }
    // MurmurHash3 mixes in the length modulo 2^32, exactly like the reference implementation.
    h ^= total_len as u32;
    fmix(h)
}

/// MurmurHash3 x86 32-bit of `data` with `seed`.
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for b in &mut blocks {
        h = mix_h(h, u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    }
    let rest = blocks.remainder();
    let mut tail = 0u32;
    for (i, &byte) in rest.iter().enumerate() {
        tail |= u32::from(byte) << (8 * i);
    }
    finish(h, tail, rest.len(), data.len())
}

/// MurmurHash3 state after hashing a fixed prefix; [`PrefixHasher::hash`] continues it with a
/// suffix. `PrefixHasher::new(p, seed).hash(s) == murmur3_x86_32(p ++ s, seed)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixHasher {
    h: u32,
    /// Bytes of the prefix that did not fill a whole 4-byte block, little-endian packed.
    tail: u32,
    tail_len: usize,
    len: usize,
}

impl PrefixHasher {
    /// Hash state after `prefix`.
    pub fn new(prefix: &[u8], seed: u32) -> Self {
        let mut h = seed;
        let mut blocks = prefix.chunks_exact(4);
        for b in &mut blocks {
            h = mix_h(h, u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        }
        let rest = blocks.remainder();
        let mut tail = 0u32;
        for (i, &byte) in rest.iter().enumerate() {
            tail |= u32::from(byte) << (8 * i);
        }
        PrefixHasher {
            h,
            tail,
            tail_len: rest.len(),
            len: prefix.len(),
        }
    }

    /// State for the bucketing key `"{group}:"`.
    pub fn for_group(group: &str, seed: u32) -> Self {
        let mut key = Vec::with_capacity(group.len() + 1);
        key.extend_from_slice(group.as_bytes());
        key.push(b':');
        Self::new(&key, seed)
    }

    /// MurmurHash3 of the prefix followed by `suffix`.
    #[inline]
    pub fn hash(&self, suffix: &[u8]) -> u32 {
        let mut h = self.h;
        let mut tail = self.tail;
        let mut tail_len = self.tail_len;
        let mut data = suffix;
        if tail_len > 0 {
            // Complete the block the prefix left open.
            let need = 4 - tail_len;
            if data.len() < need {
                for &byte in data {
                    tail |= u32::from(byte) << (8 * tail_len);
                    tail_len += 1;
                }
                return finish(h, tail, tail_len, self.len + suffix.len());
            }
            for &byte in &data[..need] {
                tail |= u32::from(byte) << (8 * tail_len);
                tail_len += 1;
            }
            h = mix_h(h, tail);
            data = &data[need..];
            tail = 0;
            tail_len = 0;
        }
        let mut blocks = data.chunks_exact(4);
        for b in &mut blocks {
            h = mix_h(h, u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        }
        for &byte in blocks.remainder() {
            tail |= u32::from(byte) << (8 * tail_len);
            tail_len += 1;
        }
        finish(h, tail, tail_len, self.len + suffix.len())
    }

    /// `hash(id) % modulus + 1`: the Unleash normalised bucket, in `1..=modulus` (0 when
    /// `modulus` is 0).
    #[inline]
    pub fn bucket(&self, id: &str, modulus: u32) -> u32 {
        if modulus == 0 {
            return 0;
        }
        self.hash(id.as_bytes()) % modulus + 1
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn standard_vectors() {
        // Published MurmurHash3_x86_32 test vectors (SMHasher / Wikipedia / Guava).
        let cases: &[(&[u8], u32, u32)] = &[
            (b"", 0, 0),
            (b"", 1, 0x514E_28B7),
            (b"", 0xffff_ffff, 0x81F1_6F39),
            (&[0xff, 0xff, 0xff, 0xff], 0, 0x7629_3B50),
            (&[0x21, 0x43, 0x65, 0x87], 0, 0xF55B_516B),
            (&[0x21, 0x43, 0x65, 0x87], 0x5082_EDEE, 0x2362_F9DE),
            (&[0x21, 0x43, 0x65], 0, 0x7E4A_8634),
            (&[0x21, 0x43], 0, 0xA0F7_B07A),
            (&[0x21], 0, 0x7266_1CF4),
            (&[0, 0, 0, 0], 0, 0x2362_F9DE),
            (&[0, 0, 0], 0, 0x85F0_B427),
            (&[0, 0], 0, 0x30F4_C306),
            (&[0], 0, 0x514E_28B7),
            (b"Hello, world!", 1234, 0xFAF6_CDB3),
            (b"Hello, world!", 4321, 0xBF50_5788),
            (b"xxxxxxxxxxxxxxxxxxxxxxxxxxxx", 1234, 0x8905_AC28),
            (
                b"The quick brown fox jumps over the lazy dog",
                0x9747_b28c,
                0x2FA8_26CD,
            ),
            (b"aaaa", 0x9747_b28c, 0x5A97_808A),
            (b"abc", 0, 0xB3DD_93FA),
            (b"abcd", 0x9747_b28c, 0xF047_8627),
        ];
        for (input, seed, expected) in cases {
            assert_eq!(
                murmur3_x86_32(input, *seed),
                *expected,
                "murmur3({input:?}, {seed:#x})"
            );
        }
    }

    #[test]
    fn prefix_hasher_matches_one_shot_for_every_split() {
        let data = b"Feature.flexibleRollout.10:some-user-id-0123456789";
        for seed in [0u32, 86_028_157, 42] {
            for split in 0..=data.len() {
                let (p, s) = data.split_at(split);
                assert_eq!(
                    PrefixHasher::new(p, seed).hash(s),
                    murmur3_x86_32(data, seed),
                    "split at {split}, seed {seed}"
                );
            }
        }
    }

    #[test]
    fn group_bucket_matches_unleash_examples() {
        // Values every Unleash SDK agrees on (from the node SDK's normalized-hash tests).
        assert_eq!(PrefixHasher::for_group("gr1", 0).bucket("123", 100), 73);
        assert_eq!(PrefixHasher::for_group("groupX", 0).bucket("999", 100), 25);
        assert_eq!(PrefixHasher::for_group("groupX", 0).bucket("999", 0), 0);
    }
}
