//! The compiled, immutable view of every flag that evaluation reads. A new catalog is built on
//! every change and swapped in whole, so evaluation never waits on the store or a lock held
//! by a writer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use liftoff_eval::{ClientFeatures, Context, Evaluation, EvaluationRef, Snapshot};
use sha2::{Digest as _, Sha256};

use super::model::{Environment, Flag, FlagKey};
use super::segments::Segment;

/// Evaluation counts per flag, kept across catalog swaps and drained by the stats job.
#[derive(Default)]
pub struct EvaluationCounters {
    counters: std::sync::RwLock<HashMap<String, Arc<AtomicU64>>>,
}

impl EvaluationCounters {
    fn counter(&self, key: &str) -> Arc<AtomicU64> {
        if let Some(c) = self.counters.read().ok().and_then(|m| m.get(key).cloned()) {
            return c;
        }
        let Ok(mut map) = self.counters.write() else {
            return Arc::default();
        };
        map.entry(key.to_owned()).or_default().clone()
    }

    /// Takes the counts so far, leaving zeros.
    pub fn drain(&self) -> Vec<(String, u64)> {
        let Ok(map) = self.counters.read() else {
            return Vec::new();
        };
        map.iter()
            .map(|(k, c)| (k.clone(), c.swap(0, Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// One environment's compiled flags and their SDK feed.
pub struct EnvCatalog {
    pub snapshot: Snapshot,
    pub features: ClientFeatures,
    /// `features` serialized, once per catalog: every SDK poll and every connected stream
    /// sends these bytes, however many there are.
    pub json: Arc<str>,
    /// Changes exactly when `features` changes: the SDK feed's ETag.
    pub etag: String,
}

pub struct Catalog {
    pub revision: i64,
    pub flags: BTreeMap<FlagKey, Flag>,
    pub segments: Vec<Segment>,
    envs: [EnvCatalog; 3],
    counters: HashMap<String, Arc<AtomicU64>>,
}

fn env_index(env: Environment) -> usize {
    match env {
        Environment::Development => 0,
        Environment::Staging => 1,
        Environment::Production => 2,
    }
}

impl Catalog {
    pub fn build(
        revision: i64,
        flags: Vec<Flag>,
        segments: Vec<Segment>,
        counters: &EvaluationCounters,
    ) -> Self {
        Self::build_counted(revision, flags, segments, counters, &AtomicU64::new(0))
    }

    /// [`build`](Self::build), adding to `serialized` once per feed serialized.
    pub fn build_counted(
        revision: i64,
        flags: Vec<Flag>,
        segments: Vec<Segment>,
        counters: &EvaluationCounters,
        serialized: &AtomicU64,
    ) -> Self {
        let env = |e: Environment| {
            let features = ClientFeatures {
                version: 2,
                features: flags.iter().map(|f| f.to_feature(e)).collect(),
                segments: segments.iter().map(Segment::to_def).collect(),
            };
            let json: Arc<str> = serde_json::to_string(&features).unwrap_or_default().into();
            serialized.fetch_add(1, Ordering::Relaxed);
            let etag = format!(
                "\"{}\"",
                hex::encode(&Sha256::digest(json.as_bytes())[..12])
            );
            EnvCatalog {
                snapshot: Snapshot::compile(&features),
                features,
                json,
                etag,
            }
        };
        let envs = [
            env(Environment::Development),
            env(Environment::Staging),
            env(Environment::Production),
        ];
        let counters = flags
            .iter()
            .map(|f| (f.flag_id.to_string(), counters.counter(f.flag_id.as_str())))
            .collect();
        Self {
            revision,
            flags: flags.into_iter().map(|f| (f.flag_id.clone(), f)).collect(),
            segments,
            envs,
            counters,
        }
    }

    pub fn env(&self, env: Environment) -> &EnvCatalog {
        &self.envs[env_index(env)]
    }

    pub fn evaluate(&self, key: &str, env: Environment, ctx: &Context) -> Evaluation {
        self.evaluate_ref(key, env, ctx).to_evaluation()
    }

    /// [`evaluate`](Self::evaluate) without allocating: names and payloads borrow from the
    /// catalog.
    pub fn evaluate_ref(&self, key: &str, env: Environment, ctx: &Context) -> EvaluationRef<'_> {
        if let Some(c) = self.counters.get(key) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.envs[env_index(env)].snapshot.evaluate_ref(key, ctx)
    }

    /// Every flag for one context, in key order.
    pub fn evaluate_all(
        &self,
        env: Environment,
        ctx: &Context,
    ) -> impl Iterator<Item = (&Flag, EvaluationRef<'_>)> {
        self.flags
            .values()
            .map(move |f| (f, self.evaluate_ref(f.flag_id.as_str(), env, ctx)))
    }
}
