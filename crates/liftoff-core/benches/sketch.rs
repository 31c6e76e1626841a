//! DDSketch speed, with sorting the same values as the reference: what exact quantiles would
//! cost per value if every minute kept its raw latencies.
//!
//! A "minute" here is 60,000 log-normal latencies (1,000 requests per second, median 80 ms).
//!
//! `cargo bench -p liftoff-core --bench sketch -- --quick`

#![allow(clippy::unwrap_used, reason = "bench code")]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use liftoff_core::monitoring::sketch::DDSketch;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PER_MINUTE: usize = 60_000;

fn minute_of_latencies(seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..PER_MINUTE)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            80.0 * z.exp()
        })
        .collect()
}

fn sketch_of(values: &[f64]) -> DDSketch {
    let mut s = DDSketch::default();
    for &v in values {
        s.add(v);
    }
    s
}

fn bench(c: &mut Criterion) {
    let values = minute_of_latencies(1);
    let minute_a = sketch_of(&values);
    let minute_b = sketch_of(&minute_of_latencies(2));
    let bytes = minute_a.to_bytes();

    let mut group = c.benchmark_group("sketch");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));

    // Per value: throughput is in elements, so criterion reports time per `add`.
    group.throughput(Throughput::Elements(PER_MINUTE as u64));
    group.bench_function("add/per_value", |b| {
        b.iter(|| {
            let mut s = DDSketch::default();
            for &v in &values {
                s.add(black_box(v));
            }
            s
        })
    });
    // The reference: keep the raw values and sort them to read exact p50/p95/p99.
    group.bench_function("sort_exact_reference/per_value", |b| {
        b.iter_batched_ref(
            || values.clone(),
            |v| {
                v.sort_unstable_by(f64::total_cmp);
                let at = |q: f64| v[(q * (v.len() - 1) as f64) as usize];
                black_box((at(0.5), at(0.95), at(0.99)))
            },
            BatchSize::LargeInput,
        )
    });

    group.throughput(Throughput::Elements(1));
    group.bench_function("merge/two_minutes", |b| {
        b.iter_batched_ref(
            || minute_a.clone(),
            |a| a.merge(black_box(&minute_b)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("quantile/p99", |b| {
        b.iter(|| black_box(&minute_a).quantile(black_box(0.99)))
    });
    group.bench_function("quantile/p50", |b| {
        b.iter(|| black_box(&minute_a).quantile(black_box(0.5)))
    });
    group.bench_function("to_bytes/minute", |b| {
        b.iter(|| black_box(&minute_a).to_bytes())
    });
    group.bench_function("from_bytes/minute", |b| {
        b.iter(|| DDSketch::from_bytes(black_box(&bytes)).unwrap())
    });
    group.finish();

    println!(
        "one minute ({PER_MINUTE} values): {} buckets, {} bytes serialized",
        minute_a.bucket_count(),
        bytes.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
