//! Active users per calendar bucket (DAU/WAU/MAU series, stickiness) and new vs returning.
//!
//! A user's rows are time-ordered, so after counting a user in a bucket the kernel jumps
//! (binary search) straight to the first row of the next bucket: the work is per
//! (user, active bucket), not per event.

use super::{per_user_ranges, sum_parts};
use crate::table::EventTable;
use crate::time::{Bucket, TimeRange};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketCount {
    /// First millisecond of the bucket (UTC).
    pub start_ms: i64,
    pub users: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewVsReturning {
    pub start_ms: i64,
    /// Active users whose first event ever falls in this bucket.
    pub new: u64,
    /// Active users seen in an earlier bucket.
    pub returning: u64,
}

impl EventTable {
    /// Distinct users with an event in `range`, per bucket; every bucket the range touches is
    /// listed, empty ones with 0.
    pub fn active_users(&self, range: TimeRange, bucket: Bucket) -> Vec<BucketCount> {
        self.new_vs_returning(range, bucket)
            .into_iter()
            .map(|b| BucketCount {
                start_ms: b.start_ms,
                users: b.new + b.returning,
            })
            .collect()
    }

    /// Mean daily active users divided by the distinct users of the whole range (DAU/MAU
    /// when the range is a month); 0 when nobody was active.
    pub fn stickiness(&self, range: TimeRange) -> f64 {
        let daily = self.active_users(range, Bucket::Day);
        let distinct = self.distinct_users(range);
        if daily.is_empty() || distinct == 0 {
            return 0.0;
        }
        let mean = daily.iter().map(|b| b.users as f64).sum::<f64>() / daily.len() as f64;
        mean / distinct as f64
    }

    /// Users with at least one event in `range`.
    pub fn distinct_users(&self, range: TimeRange) -> u64 {
        let Some(range) = self.clip(range) else {
            return 0;
        };
        (0..self.user_count())
            .filter(|&u| !self.rows_in(u, range.from_ms, range.to_ms).is_empty())
            .count() as u64
    }

    /// Active users per bucket split into new (first event ever in that bucket) and returning.
    pub fn new_vs_returning(&self, range: TimeRange, bucket: Bucket) -> Vec<NewVsReturning> {
        let Some(range) = self.clip(range) else {
            return Vec::new();
        };
        let first = bucket.index(range.from_ms);
        let n = (bucket.index(range.to_ms - 1) - first + 1) as usize;
        let parts = per_user_ranges(self, |users| {
            // [new per bucket.., returning per bucket..]
            let mut counts = vec![0u64; 2 * n];
            for u in users {
                let all = self.rows_of(u);
                let first_seen = bucket.index(self.ts[all.start]);
                let rows = self.rows_in(u, range.from_ms, range.to_ms);
                let ts = &self.ts[rows];
                let mut i = 0;
                while i < ts.len() {
                    let b = bucket.index(ts[i]);
                    let slot = (b - first) as usize;
                    counts[if b == first_seen { slot } else { n + slot }] += 1;
                    let next = bucket.start_ms(b + 1);
                    i += ts[i..].partition_point(|&t| t < next);
                }
            }
            counts
        });
        let counts = sum_parts(parts);
        (0..n)
            .map(|k| NewVsReturning {
                start_ms: bucket.start_ms(first + k as i64),
                new: counts[k],
                returning: counts[n + k],
            })
            .collect()
    }
}
