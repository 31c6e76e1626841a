//! The launch plan: ordered phases, each with its user limit, features and exit criteria, and
//! the decision whether the current phase may be left. Pure.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most phases a plan may have.
pub const MAX_PHASES: usize = 20;

/// What must hold before a phase may be left; absent targets are not checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitCriteria {
    /// Every readiness check passes or warns.
    #[serde(default)]
    pub readiness: bool,
    /// Error rate over the last hour below this fraction (`0.01` is 1 %).
    #[schema(minimum = 0, maximum = 1)]
    pub max_error_rate: Option<f64>,
    /// p95 response time over the last hour below this many milliseconds.
    #[schema(minimum = 0)]
    pub max_p95_ms: Option<f64>,
    /// Average feedback rating above this (1–5).
    #[schema(minimum = 1, maximum = 5)]
    pub min_average_rating: Option<f64>,
    /// At least this many admitted users.
    #[schema(minimum = 0, maximum = 10000000)]
    pub min_admitted: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// A short unique name such as `beta`.
    #[schema(min_length = 1, max_length = 50)]
    pub name: String,
    /// The user limit while in this phase; `null` is no limit.
    #[schema(minimum = 0, maximum = 10000000)]
    pub user_limit: Option<u32>,
    /// Flags turned on when the phase starts.
    #[serde(default)]
    #[schema(max_items = 200, value_type = Vec<crate::flags::FlagKey>)]
    pub features: Vec<String>,
    #[serde(default)]
    pub exit: ExitCriteria,
}

/// The plan a launch starts with: internal → beta (100) → soft launch (1,000) → general
/// availability (no limit).
pub fn default_plan() -> Vec<Phase> {
    let phase = |name: &str, user_limit: Option<u32>, exit: ExitCriteria| Phase {
        name: name.into(),
        user_limit,
        features: Vec::new(),
        exit,
    };
    vec![
        phase(
            "internal",
            Some(10),
            ExitCriteria {
                readiness: true,
                ..Default::default()
            },
        ),
        phase(
            "beta",
            Some(100),
            ExitCriteria {
                readiness: true,
                max_error_rate: Some(0.01),
                max_p95_ms: Some(1_000.0),
                min_average_rating: Some(4.0),
                min_admitted: None,
            },
        ),
        phase(
            "soft_launch",
            Some(1_000),
            ExitCriteria {
                readiness: true,
                max_error_rate: Some(0.01),
                max_p95_ms: Some(1_000.0),
                min_average_rating: Some(4.0),
                min_admitted: None,
            },
        ),
        phase("general_availability", None, ExitCriteria::default()),
    ]
}

/// Why a plan was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanInvalid(pub String);

/// A plan has 1–20 phases with unique, well-formed names and sane targets.
/// The most flags one phase may turn on.
pub const MAX_PHASE_FEATURES: usize = 200;

pub fn validate_plan(phases: &[Phase]) -> Result<(), PlanInvalid> {
    if phases.is_empty() || phases.len() > MAX_PHASES {
        return Err(PlanInvalid(format!(
            "a plan has 1 to {MAX_PHASES} phases (got {})",
            phases.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, p) in phases.iter().enumerate() {
        let well_formed = !p.name.is_empty()
            && p.name.len() <= 50
            && p.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !well_formed {
            return Err(PlanInvalid(format!(
                "phase {}: the name `{}` must be 1–50 lowercase letters, digits, `_` or `-`",
                i + 1,
                p.name.chars().take(60).collect::<String>()
            )));
        }
        if !seen.insert(p.name.as_str()) {
            return Err(PlanInvalid(format!("phase `{}` appears twice", p.name)));
        }
        let e = &p.exit;
        let bad = |what: &str| PlanInvalid(format!("phase `{}`: {what}", p.name));
        if p.features.len() > MAX_PHASE_FEATURES {
            return Err(bad(&format!(
                "`features` names at most {MAX_PHASE_FEATURES} flags"
            )));
        }
        if let Some(Err(e)) = p
            .features
            .iter()
            .map(|f| crate::flags::FlagKey::try_from(f.clone()))
            .find(Result::is_err)
        {
            return Err(bad(&format!("`features`: {e}")));
        }
        if e.min_admitted
            .is_some_and(|n| n > u64::from(super::service::MAX_USER_LIMIT))
        {
            return Err(bad(&format!(
                "`min_admitted` must be at most {}",
                super::service::MAX_USER_LIMIT
            )));
        }
        if p.user_limit
            .is_some_and(|l| l > super::service::MAX_USER_LIMIT)
        {
            return Err(bad(&format!(
                "`user_limit` must be at most {}",
                super::service::MAX_USER_LIMIT
            )));
        }
        if e.max_error_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
            return Err(bad("`max_error_rate` is a fraction, 0 to 1"));
        }
        if e.max_p95_ms.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            return Err(bad("`max_p95_ms` must be 0 or more"));
        }
        if e.min_average_rating
            .is_some_and(|v| !(1.0..=5.0).contains(&v))
        {
            return Err(bad("`min_average_rating` must be 1 to 5"));
        }
    }
    Ok(())
}

/// The figures exit criteria are judged on.
#[derive(Clone, Debug, Default)]
pub struct PhaseFigures {
    /// Whether readiness has no failing check.
    pub ready: bool,
    pub error_rate: Option<f64>,
    pub p95_ms: Option<f64>,
    pub average_rating: Option<f64>,
    pub admitted: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct CriterionResult {
    pub name: &'static str,
    pub pass: bool,
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    #[schema(value_type = Object)]
    pub target: serde_json::Value,
}

/// Each criterion of `exit` against `figures`. A missing figure (no traffic, no feedback)
/// fails its criterion: a phase is not left on the absence of evidence.
pub fn judge_exit(exit: &ExitCriteria, figures: &PhaseFigures) -> Vec<CriterionResult> {
    use serde_json::json;
    let mut out = Vec::new();
    if exit.readiness {
        out.push(CriterionResult {
            name: "readiness",
            pass: figures.ready,
            value: json!(figures.ready),
            target: json!(true),
        });
    }
    let mut below = |name: &'static str, value: Option<f64>, target: Option<f64>| {
        if let Some(t) = target {
            out.push(CriterionResult {
                name,
                pass: value.is_some_and(|v| v < t),
                value: json!(value),
                target: json!(t),
            });
        }
    };
    below("error_rate", figures.error_rate, exit.max_error_rate);
    below("p95_ms", figures.p95_ms, exit.max_p95_ms);
    if let Some(t) = exit.min_average_rating {
        out.push(CriterionResult {
            name: "average_rating",
            pass: figures.average_rating.is_some_and(|v| v > t),
            value: json!(figures.average_rating),
            target: json!(t),
        });
    }
    if let Some(t) = exit.min_admitted {
        out.push(CriterionResult {
            name: "admitted",
            pass: figures.admitted >= t,
            value: json!(figures.admitted),
            target: json!(t),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_plan_is_valid_and_ordered() {
        let plan = default_plan();
        validate_plan(&plan).unwrap();
        let names: Vec<&str> = plan.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["internal", "beta", "soft_launch", "general_availability"]
        );
        assert_eq!(plan[1].user_limit, Some(100));
        assert_eq!(plan[2].user_limit, Some(1_000));
        assert_eq!(plan[3].user_limit, None);
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        assert!(validate_plan(&[]).is_err());
        let mut plan = default_plan();
        plan[1].name = "internal".into();
        assert!(validate_plan(&plan).unwrap_err().0.contains("twice"));
        let mut plan = default_plan();
        plan[0].name = "Beta Phase".into();
        assert!(validate_plan(&plan).is_err());
        let mut plan = default_plan();
        plan[1].exit.max_error_rate = Some(5.0);
        assert!(validate_plan(&plan).unwrap_err().0.contains("fraction"));
        let mut plan = default_plan();
        plan[0].features = vec!["checkout".into(), String::new()];
        assert!(
            validate_plan(&plan)
                .unwrap_err()
                .0
                .contains("invalid flag id")
        );
        let mut plan = default_plan();
        plan[0].features = vec!["f".into(); MAX_PHASE_FEATURES + 1];
        assert!(validate_plan(&plan).unwrap_err().0.contains("at most"));
        let mut plan = default_plan();
        plan[0].exit.min_admitted = Some(u64::MAX);
        assert!(validate_plan(&plan).unwrap_err().0.contains("min_admitted"));
        let mut plan = default_plan();
        plan[0].user_limit = Some(u32::MAX);
        assert!(validate_plan(&plan).unwrap_err().0.contains("user_limit"));
    }

    #[test]
    fn exit_needs_every_target_met_and_evidence_present() {
        let exit = &default_plan()[1].exit;
        let good = PhaseFigures {
            ready: true,
            error_rate: Some(0.004),
            p95_ms: Some(420.0),
            average_rating: Some(4.3),
            admitted: 100,
        };
        assert!(judge_exit(exit, &good).iter().all(|c| c.pass));
        let mut no_feedback = good.clone();
        no_feedback.average_rating = None;
        let r = judge_exit(exit, &no_feedback);
        assert!(!r.iter().find(|c| c.name == "average_rating").unwrap().pass);
        let mut slow = good;
        slow.p95_ms = Some(1_000.0);
        assert!(
            !judge_exit(exit, &slow)
                .iter()
                .find(|c| c.name == "p95_ms")
                .unwrap()
                .pass
        );
    }
}
