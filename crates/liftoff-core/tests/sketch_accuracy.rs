//! DDSketch accuracy on a million latencies from known distributions, against exact quantiles
//! computed by sorting. Every checked quantile must be within the sketch's 1% relative accuracy.
//!
//! `cargo test -p liftoff-core --test sketch_accuracy -- --nocapture` prints the numbers.

#![allow(clippy::unwrap_used, reason = "test code")]

use liftoff_core::monitoring::sketch::{DDSketch, nearest_rank};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const N: usize = 1_000_000;
const ALPHA: f64 = 0.01;
const QUANTILES: [(&str, f64); 5] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p99.9", 0.999),
];

/// A standard normal by Box–Muller (rand_distr is not a dependency).
fn standard_normal(rng: &mut StdRng) -> f64 {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Log-normal with the given median and σ of the underlying normal.
fn log_normal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * standard_normal(rng)).exp()
}

/// Builds the sketch, compares it with the sorted values and prints the comparison.
fn check(name: &str, values: &[f64]) -> DDSketch {
    let mut sketch = DDSketch::default();
    for &v in values {
        assert!(sketch.add(v));
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);

    println!("{name}: {} values", values.len());
    println!(
        "  {:<6} {:>12} {:>12} {:>10}",
        "", "estimate", "exact", "rel.err"
    );
    for (label, q) in QUANTILES {
        // Nearest rank: the smallest value with at least q·n values at or below it.
        let exact = sorted[nearest_rank(q, sorted.len() as u64) as usize];
        let estimate = sketch.quantile(q).unwrap();
        let err = (estimate - exact).abs() / exact;
        println!(
            "  {label:<6} {estimate:>9.3} ms {exact:>9.3} ms {:>9.4}%",
            err * 100.0
        );
        assert!(
            err <= ALPHA,
            "{name} {label}: estimate {estimate} exact {exact} error {err}"
        );
    }
    assert_eq!(sketch.count(), N as u64);
    assert_eq!(sketch.min(), sorted.first().copied());
    assert_eq!(sketch.max(), sorted.last().copied());
    let exact_sum: f64 = sorted.iter().sum();
    assert!((sketch.sum() - exact_sum).abs() <= 1e-9 * exact_sum);

    let bytes = sketch.to_bytes();
    println!(
        "  {} buckets, serialized {} bytes",
        sketch.bucket_count(),
        bytes.len()
    );
    assert_eq!(DDSketch::from_bytes(&bytes).unwrap(), sketch);

    // The same values as sixty per-minute rollups, merged: identical answers.
    let mut window = DDSketch::default();
    let mut minute_sizes = Vec::new();
    for chunk in values.chunks(N.div_ceil(60)) {
        let mut minute = DDSketch::default();
        for &v in chunk {
            minute.add(v);
        }
        minute_sizes.push(minute.to_bytes().len());
        window.merge(&minute).unwrap();
    }
    for (_, q) in QUANTILES {
        assert_eq!(window.quantile(q), sketch.quantile(q));
    }
    println!(
        "  as 60 merged minutes ({} values each): identical quantiles; minute sketch {}..{} bytes",
        N.div_ceil(60),
        minute_sizes.iter().min().unwrap(),
        minute_sizes.iter().max().unwrap()
    );
    sketch
}

#[test]
fn log_normal_latencies_are_within_one_percent() {
    // Median 80 ms, σ = 1: p99 around 820 ms, a maximum of several seconds.
    let mut rng = StdRng::seed_from_u64(0x0011_F70F);
    let values: Vec<f64> = (0..N).map(|_| log_normal(&mut rng, 80.0, 1.0)).collect();
    check("log-normal (median 80 ms, sigma 1)", &values);
}

#[test]
fn bimodal_latencies_are_within_one_percent() {
    // Three quarters cache hits around 12 ms, a quarter database round trips around 400 ms:
    // the p50 sits in one mode and the tail in the other, the shape that breaks histograms
    // with fixed bucket boundaries.
    let mut rng = StdRng::seed_from_u64(0x00B1_0DA1);
    let values: Vec<f64> = (0..N)
        .map(|_| {
            if rng.random::<f64>() < 0.75 {
                log_normal(&mut rng, 12.0, 0.4)
            } else {
                log_normal(&mut rng, 400.0, 0.6)
            }
        })
        .collect();
    check("bimodal (75% ~12 ms, 25% ~400 ms)", &values);
}

#[test]
fn latencies_across_1ms_to_10s_serialize_compactly() {
    // Log-uniform over the whole 1 ms – 10 s range: every bucket of the range is occupied,
    // the worst case for size among realistic latency streams.
    let mut rng = StdRng::seed_from_u64(0x512E);
    let (lo, hi) = (1.0f64.ln(), 10_000.0f64.ln());
    let values: Vec<f64> = (0..N)
        .map(|_| (lo + (hi - lo) * rng.random::<f64>()).exp())
        .collect();
    let sketch = check("log-uniform 1 ms .. 10 s", &values);
    let size = sketch.to_bytes().len();
    assert!(size <= 2048, "{size} bytes");
}
