//! Exponential reconnection backoff with jitter.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// Doubles from `base` up to `cap`; each delay is drawn uniformly from the upper half of the
/// current step ("equal jitter"), so clients that lost the server together do not come back
/// together.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// The step before jitter for the next attempt.
    fn step(&self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step();
        if step < self.cap {
            self.attempt += 1;
        }
        step.mul_f64(0.5 + 0.5 * random_unit())
    }

    /// Back to `base` (after a connection that worked).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A number in `[0, 1)`; randomness from std's per-process random hash keys (enough for jitter).
fn random_unit() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(500), Duration::from_secs(30));
        let mut steps = Vec::new();
        for _ in 0..12 {
            let step = b.step();
            let d = b.next_delay();
            assert!(
                d >= step / 2 && d <= step,
                "{d:?} not within jitter of {step:?}"
            );
            steps.push(step);
        }
        assert_eq!(&steps[..4], &[ms(500), ms(1000), ms(2000), ms(4000)]);
        assert_eq!(steps[6], ms(30_000));
        assert_eq!(steps[11], ms(30_000));
        b.reset();
        assert_eq!(b.step(), ms(500));
    }

    #[test]
    fn jitter_varies() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let delays: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 1);
    }
}
