use proptest::prelude::*;

use super::*;

/// The nearest-rank quantile, from its definition: the smallest of the sorted values with at
/// least `q·n` values at or below it (`q·n` with the same tolerance for float products).
fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    let need = q * sorted.len() as f64;
    let need = need - need * 1e-12;
    sorted
        .iter()
        .enumerate()
        .find(|(i, v)| {
            let at_or_below = sorted.partition_point(|x| x <= *v).max(i + 1);
            at_or_below as f64 >= need
        })
        .map_or(sorted[0], |(_, v)| *v)
}

fn sketch_of(alpha: f64, max_buckets: usize, values: &[f64]) -> DDSketch {
    let mut s = DDSketch::with_max_buckets(alpha, max_buckets).unwrap();
    for &v in values {
        assert!(s.add(v), "{v} rejected");
    }
    s
}

const QS: [f64; 14] = [
    0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0,
];

/// Latency-like values spanning many orders of magnitude (e^±10, a ratio of 5·10^8), with
/// exact zeros and duplicates. At the finest accuracy tested, 0.5%, that range needs 2000
/// buckets, just within the default limit, so no collapsing happens.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => (-10.0f64..10.0).prop_map(f64::exp),
        1 => Just(0.0),
        1 => prop::sample::select(vec![1.0, 80.0, 1000.0]),
    ]
}

/// Values spread wide enough that small bucket limits force collapses.
fn wide_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        9 => (-40.0f64..40.0).prop_map(f64::exp),
        1 => Just(0.0),
    ]
}

fn accuracy() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![0.005, 0.01, 0.02, 0.05])
}

fn bucket_limit() -> impl Strategy<Value = usize> {
    prop::sample::select(vec![1, 2, 8, 64, 2048])
}

/// Relative error with a hair of slack for the rounding of `ln` and `exp` at bucket edges;
/// the bound itself is exact.
fn within(estimate: f64, exact: f64, alpha: f64) -> bool {
    if exact == 0.0 {
        estimate == 0.0
    } else {
        (estimate - exact).abs() <= alpha * exact * (1.0 + 1e-9)
    }
}

proptest! {
    #[test]
    fn quantiles_are_within_the_relative_accuracy(
        alpha in accuracy(),
        mut values in prop::collection::vec(value(), 1..1500),
        extra_qs in prop::collection::vec(0.0f64..=1.0, 0..8),
    ) {
        let s = sketch_of(alpha, DEFAULT_MAX_BUCKETS, &values);
        values.sort_by(f64::total_cmp);
        for q in QS.iter().copied().chain(extra_qs) {
            let exact = exact_quantile(&values, q);
            let estimate = s.quantile(q).unwrap();
            prop_assert!(
                within(estimate, exact, alpha),
                "q={q} estimate={estimate} exact={exact} alpha={alpha}"
            );
        }
        prop_assert_eq!(s.count(), values.len() as u64);
        prop_assert_eq!(s.min(), values.first().copied());
        prop_assert_eq!(s.max(), values.last().copied());
    }

    /// Up to the exact limit, every quantile is the nearest-rank value itself, however the
    /// sketch was assembled (adds, weighted adds, merges, an encoding round trip).
    #[test]
    fn small_samples_answer_the_exact_nearest_rank_value(
        alpha in accuracy(),
        parts in prop::collection::vec(prop::collection::vec(value(), 0..12), 1..4),
        extra_qs in prop::collection::vec(0.0f64..=1.0, 0..8),
    ) {
        let mut all: Vec<f64> = parts.iter().flatten().copied().collect();
        prop_assume!(!all.is_empty() && all.len() <= EXACT_LIMIT);
        let mut s = DDSketch::new(alpha);
        for part in &parts {
            s.merge(&sketch_of(alpha, DEFAULT_MAX_BUCKETS, part)).unwrap();
        }
        let s = DDSketch::from_bytes(&s.to_bytes()).unwrap();
        prop_assert!(s.is_exact_sample());
        all.sort_by(f64::total_cmp);
        for q in QS.iter().copied().chain(extra_qs) {
            prop_assert_eq!(s.quantile(q), Some(exact_quantile(&all, q)), "q={}", q);
        }
    }

    /// p50 ≤ p95 ≤ p99, all within [min, max], for any sample size and assembly.
    #[test]
    fn percentiles_are_ordered_and_within_min_and_max(
        alpha in accuracy(),
        max_buckets in bucket_limit(),
        parts in prop::collection::vec(prop::collection::vec(wide_value(), 0..80), 1..5),
        weight in 1u64..5,
    ) {
        let mut s = DDSketch::with_max_buckets(alpha, max_buckets).unwrap();
        for part in &parts {
            let mut p = DDSketch::with_max_buckets(alpha, max_buckets).unwrap();
            for &v in part {
                p.add_n(v, weight);
            }
            s.merge(&p).unwrap();
        }
        prop_assume!(!s.is_empty());
        let (min, max) = (s.min().unwrap(), s.max().unwrap());
        let answers: Vec<f64> = [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]
            .iter()
            .map(|&q| s.quantile(q).unwrap())
            .collect();
        prop_assert_eq!(answers[0], min);
        prop_assert_eq!(answers[answers.len() - 1], max);
        for w in answers.windows(2) {
            prop_assert!(w[0] <= w[1], "not ordered: {:?}", answers);
        }
    }

    /// The collapsing-lowest variant keeps the guarantee for every quantile whose value lies
    /// above the collapsed bucket.
    #[test]
    fn collapsing_keeps_the_guarantee_above_the_lowest_bucket(
        alpha in accuracy(),
        max_buckets in 2usize..128,
        mut values in prop::collection::vec(wide_value(), 1..1000),
        extra_qs in prop::collection::vec(0.0f64..=1.0, 0..8),
    ) {
        let s = sketch_of(alpha, max_buckets, &values);
        prop_assert!(s.bucket_count() <= max_buckets);
        values.sort_by(f64::total_cmp);
        for q in QS.iter().copied().chain(extra_qs) {
            let exact = exact_quantile(&values, q);
            if exact <= s.mapping.min_indexable() || s.mapping.index(exact) <= s.store.offset() {
                continue;
            }
            let estimate = s.quantile(q).unwrap();
            prop_assert!(
                within(estimate, exact, alpha),
                "q={q} estimate={estimate} exact={exact} alpha={alpha} buckets={max_buckets}"
            );
        }
    }

    #[test]
    fn merge_is_commutative(
        alpha in accuracy(),
        max_buckets in bucket_limit(),
        a in prop::collection::vec(wide_value(), 0..300),
        b in prop::collection::vec(wide_value(), 0..300),
    ) {
        let sa = sketch_of(alpha, max_buckets, &a);
        let sb = sketch_of(alpha, max_buckets, &b);
        let mut ab = sa.clone();
        ab.merge(&sb).unwrap();
        let mut ba = sb.clone();
        ba.merge(&sa).unwrap();
        prop_assert_eq!(&ab, &ba);
        prop_assert_eq!(ab.to_bytes(), ba.to_bytes());
    }

    /// Per-minute rollups merged into a window answer exactly like one sketch of the window.
    #[test]
    fn merging_parts_equals_one_sketch_of_everything(
        alpha in accuracy(),
        max_buckets in bucket_limit(),
        parts in prop::collection::vec(prop::collection::vec(wide_value(), 0..200), 1..6),
    ) {
        let all: Vec<f64> = parts.iter().flatten().copied().collect();
        let whole = sketch_of(alpha, max_buckets, &all);
        let mut merged = DDSketch::with_max_buckets(alpha, max_buckets).unwrap();
        for part in &parts {
            merged.merge(&sketch_of(alpha, max_buckets, part)).unwrap();
        }
        for q in QS {
            prop_assert_eq!(merged.quantile(q), whole.quantile(q), "q={}", q);
        }
        prop_assert_eq!(&merged.store, &whole.store);
        prop_assert_eq!(merged.zero_count, whole.zero_count);
        prop_assert_eq!(merged.count(), whole.count());
        prop_assert_eq!(merged.min(), whole.min());
        prop_assert_eq!(merged.max(), whole.max());
        // Float addition is not associative: the sums agree to rounding, not bit for bit.
        let tolerance = 1e-12 * whole.sum().max(f64::MIN_POSITIVE);
        prop_assert!((merged.sum() - whole.sum()).abs() <= tolerance);
    }

    #[test]
    fn encoding_round_trips_exactly(
        alpha in accuracy(),
        max_buckets in bucket_limit(),
        values in prop::collection::vec(wide_value(), 0..500),
        weights in prop::collection::vec(1u64..1_000_000_000_000, 0..10),
    ) {
        let mut s = sketch_of(alpha, max_buckets, &values);
        for (k, &w) in weights.iter().enumerate() {
            s.add_n(k as f64 * 7.5, w);
        }
        let bytes = s.to_bytes();
        let back = DDSketch::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(back.to_bytes(), bytes);
        for q in QS {
            prop_assert_eq!(back.quantile(q), s.quantile(q));
        }
    }

    #[test]
    fn truncated_encodings_are_rejected(
        values in prop::collection::vec(value(), 0..100),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = sketch_of(0.01, DEFAULT_MAX_BUCKETS, &values).to_bytes();
        let cut = cut.index(bytes.len());
        prop_assert!(DDSketch::from_bytes(&bytes[..cut]).is_err());
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise(&bytes);
        // Past the header, so that the fuzzing reaches the body.
        for version in [1, 2] {
            let mut framed = vec![0xDD, version];
            framed.extend_from_slice(&0.01f64.to_le_bytes());
            framed.extend_from_slice(&bytes);
            exercise(&framed);
        }
    }

    #[test]
    fn corrupted_encodings_never_panic(
        values in prop::collection::vec(wide_value(), 0..200),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = sketch_of(0.01, 64, &values).to_bytes();
        for (at, byte) in flips {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        exercise(&bytes);
    }
}

/// Decodes and, if that succeeds, uses the sketch every way a caller could.
fn exercise(bytes: &[u8]) {
    if let Ok(s) = DDSketch::from_bytes(bytes) {
        for q in QS {
            let answer = s.quantile(q);
            assert_eq!(answer.is_some(), !s.is_empty());
            if let (Some(v), Some(min), Some(max)) = (answer, s.min(), s.max()) {
                assert!((min..=max).contains(&v));
            }
        }
        assert_eq!(DDSketch::from_bytes(&s.to_bytes()).as_ref(), Ok(&s));
        let mut twice = s.clone();
        if twice.merge(&s).is_ok() {
            twice.add(1.0);
            let _ = twice.quantile(0.99);
        }
    }
}

#[test]
fn default_is_one_percent_with_2048_buckets() {
    let s = DDSketch::default();
    assert_eq!(s.relative_accuracy(), 0.01);
    assert_eq!(s.max_buckets(), 2048);
    assert!(s.is_empty());
}

#[test]
fn an_empty_sketch_has_no_answers() {
    let s = DDSketch::default();
    assert_eq!(s.count(), 0);
    assert_eq!(s.sum(), 0.0);
    assert_eq!(s.min(), None);
    assert_eq!(s.max(), None);
    assert_eq!(s.quantile(0.5), None);
    assert_eq!(s.bucket_count(), 0);
}

#[test]
fn values_that_are_not_latencies_are_rejected() {
    let mut s = DDSketch::default();
    for v in [
        f64::NAN,
        -1.0,
        -f64::MIN_POSITIVE,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        assert!(!s.add(v), "{v} accepted");
    }
    assert!(!s.add_n(5.0, 0));
    assert!(s.is_empty());
    assert_eq!(s, DDSketch::default());
}

#[test]
fn zero_and_tiny_values_go_to_the_zero_bucket() {
    let mut s = DDSketch::default();
    assert!(s.add(0.0));
    assert!(s.add(-0.0));
    assert!(s.add(f64::MIN_POSITIVE / 2.0));
    assert!(s.add(10.0));
    assert_eq!(s.zero_count, 3);
    assert_eq!(s.bucket_count(), 1);
    assert_eq!(s.min(), Some(0.0));
    assert!(s.min().unwrap().is_sign_positive());
    assert_eq!(s.quantile(0.5), Some(0.0));
    assert_eq!(s.quantile(1.0), Some(10.0));
}

#[test]
fn quantiles_outside_zero_to_one_are_none() {
    let mut s = DDSketch::default();
    s.add(1.0);
    for q in [-0.01, 1.01, f64::NAN, f64::INFINITY] {
        assert_eq!(s.quantile(q), None, "q={q}");
    }
    assert_eq!(s.quantile(0.0), Some(1.0));
    assert_eq!(s.quantile(1.0), Some(1.0));
}

#[test]
fn answers_are_clamped_to_the_exact_min_and_max() {
    let mut s = DDSketch::default();
    s.add_n(100.0, 10);
    for q in QS {
        assert_eq!(s.quantile(q), Some(100.0));
    }
    assert_eq!(s.sum(), 1000.0);
}

#[test]
fn invalid_parameters_are_errors() {
    for a in [0.0, -0.01, 1.0, 1e-7, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            DDSketch::with_max_buckets(a, 16),
            Err(SketchError::InvalidAccuracy(_))
        ));
    }
    for n in [0, MAX_BUCKET_LIMIT + 1] {
        assert!(matches!(
            DDSketch::with_max_buckets(0.01, n),
            Err(SketchError::InvalidBucketLimit(_))
        ));
    }
    assert!(DDSketch::with_max_buckets(MIN_RELATIVE_ACCURACY, MAX_BUCKET_LIMIT).is_ok());
}

#[test]
#[should_panic(expected = "relative accuracy")]
fn new_panics_on_a_bad_accuracy() {
    let _ = DDSketch::new(1.5);
}

#[test]
fn merging_different_accuracies_is_an_error() {
    let mut a = DDSketch::new(0.01);
    a.add(1.0);
    let mut b = DDSketch::new(0.02);
    b.add(2.0);
    let before = a.clone();
    assert_eq!(
        a.merge(&b),
        Err(SketchError::IncompatibleAccuracy {
            ours: 0.01,
            theirs: 0.02
        })
    );
    assert_eq!(a, before);
    // Different bucket limits merge; the result keeps the receiver's.
    let mut c = DDSketch::with_max_buckets(0.01, 4).unwrap();
    c.merge(&a).unwrap();
    assert_eq!(c.max_buckets(), 4);
}

#[test]
fn memory_stays_within_the_bucket_limit_over_the_whole_f64_range() {
    let mut s = DDSketch::default();
    let mut v = 1e-300;
    while v < 1e300 {
        s.add(v);
        v *= 1.01;
    }
    assert!(s.bucket_count() <= 2048, "{}", s.bucket_count());
    s.add(f64::MAX);
    assert_eq!(s.bucket_count(), 2048);
    // The top of the distribution is still within 1%.
    let p999 = s.quantile(0.999).unwrap();
    assert!(p999 > 1e297, "{p999}");
    let back = DDSketch::from_bytes(&s.to_bytes()).unwrap();
    assert_eq!(back, s);
}

#[test]
fn a_stream_below_the_collapsed_range_folds_into_the_lowest_bucket() {
    let mut s = DDSketch::with_max_buckets(0.01, 8).unwrap();
    s.add(1000.0);
    // Far below: the store grows down to its limit and 1.0 joins the lowest bucket.
    s.add(1.0);
    assert_eq!(s.bucket_count(), 8);
    assert_eq!(s.store.counts(), &[1, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(s.quantile(0.0), Some(1.0));
    assert_eq!(s.quantile(1.0), Some(1000.0));
    // Far above: the window moves up and everything below it collapses into its lowest bucket.
    s.add(1e6);
    assert_eq!(s.store.counts(), &[2, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(s.quantile(1.0), Some(1e6));
}

#[test]
fn decoding_rejects_garbage() {
    assert_eq!(DDSketch::from_bytes(&[]), Err(SketchError::Truncated));
    assert_eq!(
        DDSketch::from_bytes(b"{\"p99\": 1}"),
        Err(SketchError::BadMagic(b'{'))
    );
    assert_eq!(
        DDSketch::from_bytes(&[0xDD, 9]),
        Err(SketchError::UnsupportedVersion(9))
    );
    let mut s = DDSketch::default();
    s.add(5.0);
    let mut bytes = s.to_bytes();
    bytes.push(0);
    assert_eq!(
        DDSketch::from_bytes(&bytes),
        Err(SketchError::Corrupt("trailing bytes"))
    );
    // A bucket count claiming more buckets than there are bytes must not allocate.
    let mut huge = vec![0xDD, 1];
    huge.extend_from_slice(&0.01f64.to_le_bytes());
    huge.extend_from_slice(&[0x80, 0x80, 0x04, 0x00, 0xFF, 0xFF, 0x03]);
    assert!(DDSketch::from_bytes(&huge).is_err());
}

#[test]
fn an_empty_sketch_encodes_in_a_few_bytes() {
    let bytes = DDSketch::default().to_bytes();
    assert_eq!(bytes.len(), 2 + 8 + 2 + 1 + 1);
    assert_eq!(DDSketch::from_bytes(&bytes), Ok(DDSketch::default()));
}

#[test]
fn histogram_counts_fall_in_their_buckets() {
    let mut s = DDSketch::default();
    for v in [0.0, 3.0, 7.0, 8.0, 40.0, 900.0, 20_000.0] {
        s.add(v);
    }
    let h = s.histogram(&[5.0, 10.0, 50.0, 1000.0]);
    assert_eq!(h, vec![2, 2, 1, 1, 1]);
    assert_eq!(h.iter().sum::<u64>(), s.count());
    assert_eq!(DDSketch::default().histogram(&[1.0]), vec![0, 0]);
}

#[test]
fn two_requests_have_the_fast_one_as_median_and_the_slow_one_as_tail() {
    let mut s = DDSketch::default();
    s.add(12.0);
    s.add(900.0);
    assert_eq!(s.quantile(0.5), Some(12.0));
    assert_eq!(s.quantile(0.95), Some(900.0));
    assert_eq!(s.quantile(0.99), Some(900.0));
}

#[test]
fn nearest_rank_is_the_ceiling_of_q_n() {
    assert_eq!(nearest_rank(0.5, 2), 0);
    assert_eq!(nearest_rank(0.95, 2), 1);
    assert_eq!(nearest_rank(0.0, 10), 0);
    assert_eq!(nearest_rank(1.0, 10), 9);
    assert_eq!(
        nearest_rank(0.07, 100),
        6,
        "0.07 × 100 is 7 despite rounding"
    );
    assert_eq!(nearest_rank(0.95, 20), 18);
    assert_eq!(nearest_rank(0.99, 1000), 989);
}

#[test]
fn the_exact_values_end_at_the_limit_and_do_not_come_back() {
    let mut s = DDSketch::default();
    for i in 0..EXACT_LIMIT {
        s.add(i as f64 + 1.0);
    }
    assert!(s.is_exact_sample());
    s.add(1000.0);
    assert!(!s.is_exact_sample());
    // Larger than the limit: estimates within 1 % of the nearest-rank value (rank 16 of 33).
    let p50 = s.quantile(0.5).unwrap();
    assert!((p50 - 17.0).abs() <= 0.17, "{p50}");
    let mut big = DDSketch::default();
    big.add_n(5.0, EXACT_LIMIT as u64 + 1);
    assert!(!big.is_exact_sample());
}

#[test]
fn version_1_encodings_are_still_read_and_answer_from_the_buckets() {
    let mut s = DDSketch::default();
    for v in [10.0, 20.0, 30.0] {
        s.add(v);
    }
    let mut v1 = s.to_bytes();
    assert_eq!(v1[1], 2);
    // Version 1 is version 2 without the exact values (3 values: count and 24 bytes).
    v1[1] = 1;
    v1.truncate(v1.len() - 1 - 3 * 8);
    let old = DDSketch::from_bytes(&v1).unwrap();
    assert!(!old.is_exact_sample());
    assert_eq!(old.count(), 3);
    assert_eq!(old.quantile(0.0), Some(10.0));
    assert_eq!(old.quantile(1.0), Some(30.0));
    let p50 = old.quantile(0.5).unwrap();
    assert!((p50 - 20.0).abs() <= 0.2, "{p50}");
    // Adding to it cannot make it exact again: its first three values are unknown.
    let mut more = old.clone();
    more.add(40.0);
    assert!(!more.is_exact_sample());
}

#[test]
fn exact_values_that_contradict_the_statistics_are_corrupt() {
    let mut s = DDSketch::default();
    s.add(10.0);
    s.add(20.0);
    let mut bytes = s.to_bytes();
    let n = bytes.len();
    // Swap the two values: no longer ascending nor matching min and max.
    let (a, b) = (bytes[n - 16..n - 8].to_vec(), bytes[n - 8..].to_vec());
    bytes[n - 16..n - 8].copy_from_slice(&b);
    bytes[n - 8..].copy_from_slice(&a);
    assert!(matches!(
        DDSketch::from_bytes(&bytes),
        Err(SketchError::Corrupt(_))
    ));
}
