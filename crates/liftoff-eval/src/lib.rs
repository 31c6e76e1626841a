//! Feature-flag evaluation for Liftoff, shared by the server and the Rust SDK.
//!
//! Pure: no IO, no async, no global state (the clock is read only for `DATE_*` constraints on
//! `currentTime` when the context has none; randomness only for `random` stickiness).
//! Compatible with the Unleash client specification: definitions use the Unleash
//! client-features JSON shape ([`ClientFeatures`]), bucketing is MurmurHash3 exactly as in every
//! Unleash SDK.
//!
//! ```
//! use liftoff_eval::{ClientFeatures, Context, Reason, Snapshot};
//!
//! let defs: ClientFeatures = serde_json::from_str(r#"{"features": [{
//!     "name": "new-checkout", "enabled": true,
//!     "strategies": [{"name": "flexibleRollout",
//!                     "parameters": {"rollout": "100", "stickiness": "default", "groupId": "nc"},
//!                     "constraints": [{"contextName": "environment", "operator": "IN", "values": ["prod"]}]}]
//! }]}"#).unwrap();
//! let snapshot = Snapshot::compile(&defs);
//! let ctx = Context { environment: Some("prod".into()), ..Context::with_user("42") };
//! let eval = snapshot.evaluate("new-checkout", &ctx);
//! assert!(eval.enabled);
//! assert_eq!(eval.reason, Reason::TargetingMatch);
//! ```
//!
//! Evaluation order for a flag: unknown → off (`Error`); disabled → off (`Disabled`); unmet
//! dependencies → off (`Disabled`); `blacklist` hit → off, `whitelist` hit → on (both
//! `TargetingMatch`); then the first matching strategy wins, its variants (or else the
//! feature's) give the variant; no match → off (`Default`).

mod compile;
mod context;
mod defs;
mod eval;
mod fxhash;
mod ip;
pub mod murmur3;
mod rng;
mod validate;

pub use context::Context;
pub use defs::{
    ClientFeatures, ClientFeaturesDelta, ConstraintDef, DeltaEvent, DependencyDef, FeatureDef,
    OverrideDef, Payload, SegmentDef, StrategyDef, VariantDef,
};
pub use eval::{
    DISABLED_VARIANT, Evaluation, EvaluationRef, OFF, ON, Reason, Snapshot, VariantResult,
};
pub use validate::{ValidationError, validate};

/// The seed Unleash uses when hashing for variants (rollouts use 0).
pub const VARIANT_HASH_SEED: u32 = compile::VARIANT_SEED;

/// Unleash's normalised hash: MurmurHash3 (x86, 32-bit) of `"{group}:{id}"` with `seed`,
/// `% modulus + 1` — so in `1..=modulus` (0 when `modulus` is 0).
pub fn normalized_hash(group: &str, id: &str, modulus: u32, seed: u32) -> u32 {
    murmur3::PrefixHasher::for_group(group, seed).bucket(id, modulus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_hash_matches_unleash() {
        assert_eq!(normalized_hash("gr1", "123", 100, 0), 73);
        assert_eq!(normalized_hash("groupX", "999", 100, 0), 25);
        assert_eq!(normalized_hash("g", "u", 0, 0), 0);
        for id in ["a", "bb", "ccc", "dddd", "eeeee"] {
            let key = format!("grp:{id}");
            assert_eq!(
                normalized_hash("grp", id, 1000, VARIANT_HASH_SEED),
                murmur3::murmur3_x86_32(key.as_bytes(), VARIANT_HASH_SEED) % 1000 + 1
            );
        }
    }
}
