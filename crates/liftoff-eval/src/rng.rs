//! Randomness for `random` stickiness and `gradualRolloutRandom`: a per-thread SplitMix64
//! stream seeded from the standard library's per-process random keys (no IO, no extra crates).

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// Uniform in `1..=n` (0 when `n` is 0).
pub(crate) fn one_to(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    // Multiply-shift maps 64 random bits onto 0..n with negligible bias.
    ((u128::from(next_u64()) * u128::from(n)) >> 64) as u32 + 1
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    #[test]
    fn in_range_and_varied() {
        let mut seen = [false; 10];
        for _ in 0..10_000 {
            let v = super::one_to(10);
            assert!((1..=10).contains(&v));
            seen[(v - 1) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(super::one_to(0), 0);
    }
}
