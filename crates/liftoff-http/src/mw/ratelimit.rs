//! Token buckets per caller: each key may spend `burst` requests at once and regains `rate`
//! per second. Over the limit the answer is 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets beyond this many are dropped (least recently used first) so memory stays bounded.
const MAX_BUCKETS: usize = 100_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `rate` requests per second with bursts of `burst`; a rate of 0 disables limiting.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::default(),
        }
    }

    /// Takes one token for `key`; `Err(seconds)` says when the next one is available.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    /// Whether `key` is out of tokens, without taking one: `Some(seconds)` until the next.
    /// For limits that only failures spend (sign-in attempts).
    pub fn blocked(&self, key: &str) -> Option<u64> {
        self.blocked_at(key, Instant::now())
    }

    fn blocked_at(&self, key: &str, now: Instant) -> Option<u64> {
        if self.rate <= 0.0 {
            return None;
        }
        let buckets = self.buckets.lock().ok()?;
        let b = buckets.get(key)?;
        let tokens =
            (b.tokens + now.duration_since(b.updated).as_secs_f64() * self.rate).min(self.burst);
        (tokens < 1.0).then(|| ((1.0 - tokens) / self.rate).ceil().max(1.0) as u64)
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let full = self.burst;
            let rate = self.rate;
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < full
            });
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.updated).as_secs_f64() * self.rate).min(self.burst);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn allows_a_burst_then_refills() {
        let limiter = RateLimiter::new(2.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("k", t0).is_ok());
        }
        assert_eq!(limiter.check_at("k", t0), Err(1));
        assert!(limiter.check_at("other", t0).is_ok(), "buckets are per key");
        assert!(
            limiter
                .check_at("k", t0 + Duration::from_millis(500))
                .is_ok()
        );
        assert!(
            limiter
                .check_at("k", t0 + Duration::from_millis(500))
                .is_err()
        );
    }

    #[test]
    fn blocked_does_not_spend() {
        let limiter = RateLimiter::new(1.0, 2.0);
        let t0 = Instant::now();
        assert_eq!(limiter.blocked_at("k", t0), None);
        assert!(limiter.check_at("k", t0).is_ok());
        assert_eq!(limiter.blocked_at("k", t0), None);
        assert!(limiter.check_at("k", t0).is_ok());
        assert_eq!(limiter.blocked_at("k", t0), Some(1));
        assert_eq!(limiter.blocked_at("k", t0), Some(1));
    }

    #[test]
    fn zero_rate_disables() {
        let limiter = RateLimiter::new(0.0, 0.0);
        for _ in 0..1000 {
            assert!(limiter.check("k").is_ok());
        }
    }
}
