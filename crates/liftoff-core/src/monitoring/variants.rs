//! Request metrics per flag variant: for flags under an experiment or a guarded rollout only,
//! each request that says which variants it was served (the SDK request layer, OpenTelemetry's
//! `feature_flag.*` attributes, a `flags` map on a request record) also lands in a per-minute
//! cell of (flag, variant, failed). Guardrails compare error rates and latency per variant
//! from these cells without a warehouse.
//!
//! Cardinality is bounded twice: only watched flags are kept ([`WatchedFlags`]), and at most
//! [`MAX_VARIANTS_PER_REQUEST`] flags of one request are read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use super::sketch::{DDSketch, SketchError};

/// Flags a request may name; more are ignored.
pub const MAX_VARIANTS_PER_REQUEST: usize = 50;

/// A per-minute cell of one flag's variant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VariantKey {
    /// Unix minute.
    pub minute: i64,
    pub flag: String,
    pub variant: String,
    /// The requests answered 5xx.
    pub failed: bool,
}

pub type VariantCell = (VariantKey, DDSketch);

/// The flags whose variants are recorded, gathered from the parts that watch flags
/// (experiments, guarded rollouts), each replacing only its own set.
#[derive(Default)]
pub struct WatchedFlags {
    by_source: std::sync::Mutex<HashMap<&'static str, HashSet<String>>>,
    current: RwLock<Arc<HashSet<String>>>,
}

impl WatchedFlags {
    /// Replaces what `source` watches.
    pub fn set(&self, source: &'static str, flags: HashSet<String>) {
        let Ok(mut by_source) = self.by_source.lock() else {
            return;
        };
        by_source.insert(source, flags);
        let all: HashSet<String> = by_source.values().flatten().cloned().collect();
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(all);
        }
    }

    pub fn snapshot(&self) -> Arc<HashSet<String>> {
        self.current.read().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Folds requests (minute, status, duration, served variants) into variant cells, keeping only
/// watched flags.
pub fn fold<'a>(
    watched: &HashSet<String>,
    requests: impl Iterator<Item = (i64, u16, f64, &'a [(String, String)])>,
) -> Vec<VariantCell> {
    let mut cells: BTreeMap<VariantKey, DDSketch> = BTreeMap::new();
    if watched.is_empty() {
        return Vec::new();
    }
    for (minute, status, duration_ms, flags) in requests {
        for (flag, variant) in flags.iter().take(MAX_VARIANTS_PER_REQUEST) {
            if !watched.contains(flag) {
                continue;
            }
            cells
                .entry(VariantKey {
                    minute,
                    flag: flag.clone(),
                    variant: variant.clone(),
                    failed: status >= 500,
                })
                .or_default()
                .add(duration_ms);
        }
    }
    cells.into_iter().collect()
}

/// A variant's requests over a window: how many, how many failed, and all their latencies.
#[derive(Clone, Debug, Default)]
pub struct VariantTraffic {
    pub requests: u64,
    pub failed: u64,
    pub latency: DDSketch,
}

/// Merges cells into per-variant traffic.
pub fn by_variant(
    cells: Vec<VariantCell>,
) -> Result<BTreeMap<String, VariantTraffic>, SketchError> {
    let mut out: BTreeMap<String, VariantTraffic> = BTreeMap::new();
    for (k, s) in cells {
        let t = out.entry(k.variant).or_default();
        t.requests += s.count();
        if k.failed {
            t.failed += s.count();
        }
        t.latency.merge(&s)?;
    }
    Ok(out)
}

#[async_trait::async_trait]
impl crate::flags::guard::RequestsByValue for super::MonitoringService {
    async fn traffic(
        &self,
        flag: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<BTreeMap<String, VariantTraffic>, crate::store::StoreError> {
        self.variant_traffic(flag, from, to).await
    }

    fn watch(&self, flags: HashSet<String>) {
        self.watched.set("rollouts", flags);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_watched_flags_are_folded_and_merged_per_variant() {
        let watched: HashSet<String> = ["checkout".to_owned()].into();
        let served = vec![
            ("checkout".to_owned(), "v2".to_owned()),
            ("other".to_owned(), "x".to_owned()),
        ];
        let control = vec![("checkout".to_owned(), "control".to_owned())];
        let reqs = vec![
            (10, 200, 12.0, served.as_slice()),
            (10, 503, 40.0, served.as_slice()),
            (11, 200, 8.0, control.as_slice()),
            (11, 200, 9.0, &[][..]),
        ];
        let cells = fold(&watched, reqs.into_iter());
        assert_eq!(cells.len(), 3);
        assert!(cells.iter().all(|(k, _)| k.flag == "checkout"));
        let t = by_variant(cells).unwrap();
        assert_eq!((t["v2"].requests, t["v2"].failed), (2, 1));
        assert_eq!((t["control"].requests, t["control"].failed), (1, 0));
        assert!(fold(&HashSet::new(), std::iter::empty()).is_empty());
    }

    #[test]
    fn sources_replace_only_their_own_flags() {
        let w = WatchedFlags::default();
        w.set("experiments", ["a".to_owned(), "b".to_owned()].into());
        w.set("rollouts", ["c".to_owned()].into());
        w.set("experiments", ["a".to_owned()].into());
        let mut got: Vec<String> = w.snapshot().iter().cloned().collect();
        got.sort();
        assert_eq!(got, ["a", "c"]);
    }
}
