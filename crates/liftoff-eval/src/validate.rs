//! Strict validation of definitions written through Liftoff's API. (Imported Unleash data is
//! not validated: [`crate::Snapshot::compile`] is lenient.)

use std::collections::HashSet;
use std::fmt;

use crate::compile::{
    KNOWN_STRATEGIES, MAX_VARIANTS, Operator, TOTAL_WEIGHT, compile_regex, effective_weights,
    is_fixed, parse_date, parse_number, parse_percentage, parse_semver,
};
use crate::defs::{ConstraintDef, FeatureDef, StrategyDef, VariantDef};
use crate::ip::IpNet;

/// One problem in a definition: where (`strategies[0].constraints[1]`) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// Where in the feature, e.g. `strategies[0].constraints[1].value`; empty for the feature.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ValidationError {}

struct Problems(Vec<ValidationError>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Checks a feature strictly; every problem is reported, each with where it is.
///
/// Rejected: an empty feature name; unknown strategies, operators and weight types; invalid
/// regexes; numbers, dates, semvers, IPs/CIDRs, percentages and payloads that do not parse;
/// percentages outside 0–100 (decimals are fine); missing `value`s; variant lists longer than
/// 1000, with empty or duplicate names, or whose weights do not add up (fixed weights over
/// 1000, only fixed weights not adding up to 1000, nothing to draw from); empty context names;
/// dependencies on nothing or on the feature itself.
pub fn validate(feature: &FeatureDef) -> Result<(), Vec<ValidationError>> {
    let mut p = Problems(Vec::new());
    if feature.name.trim().is_empty() {
        p.add("name", "must not be empty");
    }
    for (i, s) in feature.strategies.iter().enumerate() {
        strategy(&mut p, &format!("strategies[{i}]"), s);
    }
    variants(&mut p, "variants", &feature.variants);
    for (i, d) in feature.dependencies.iter().enumerate() {
        let path = format!("dependencies[{i}]");
        if d.feature.trim().is_empty() {
            p.add(format!("{path}.feature"), "must not be empty");
        } else if d.feature == feature.name {
            p.add(
                format!("{path}.feature"),
                format!("feature `{}` cannot depend on itself", feature.name),
            );
        }
        if let Some(vs) = &d.variants
            && vs.iter().any(|v| v.trim().is_empty())
        {
            p.add(
                format!("{path}.variants"),
                "variant names must not be empty",
            );
        }
    }
    for (name, list) in [
        ("blacklist", &feature.blacklist),
        ("whitelist", &feature.whitelist),
    ] {
        if list.iter().any(|u| u.is_empty()) {
            p.add(name, "user ids must not be empty");
        }
    }
    if p.0.is_empty() { Ok(()) } else { Err(p.0) }
}

#[allow(
    clippy::collapsible_match,
    reason = "one arm per strategy reads better"
)]
fn strategy(p: &mut Problems, path: &str, s: &StrategyDef) {
    let param = |k: &str| s.parameters.get(k).map(String::as_str);
    let percentage = |p: &mut Problems, key: &str, required: bool| match param(key) {
        None if required => p.add(
            format!("{path}.parameters.{key}"),
            format!("`{}` needs a `{key}` parameter", s.name),
        ),
        None => {}
        Some(v) => match parse_number(v) {
            Some(n) if (0.0..=100.0).contains(&n) && parse_percentage(v).is_some() => {}
            Some(n) => p.add(
                format!("{path}.parameters.{key}"),
                format!("percentage {n} is outside 0–100"),
            ),
            None => p.add(
                format!("{path}.parameters.{key}"),
                format!("`{v}` is not a percentage"),
            ),
        },
    };
    match s.name.as_str() {
        "" => p.add(format!("{path}.name"), "must not be empty"),
        "flexibleRollout" => {
            percentage(p, "rollout", true);
            if param("stickiness").is_some_and(|v| v.trim().is_empty()) {
                p.add(format!("{path}.parameters.stickiness"), "must not be empty");
            }
        }
        "gradualRolloutUserId" | "gradualRolloutSessionId" | "gradualRolloutRandom" => {
            percentage(p, "percentage", true);
        }
        "userWithId" => {
            if param("userIds").is_none_or(|v| v.split(',').all(|u| u.trim().is_empty())) {
                p.add(
                    format!("{path}.parameters.userIds"),
                    "`userWithId` needs at least one user id",
                );
            }
        }
        "remoteAddress" => match param("IPs") {
            None => p.add(
                format!("{path}.parameters.IPs"),
                "`remoteAddress` needs an `IPs` parameter",
            ),
            Some(ips) => {
                for ip in ips.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if let Err(e) = IpNet::parse(ip) {
                        p.add(format!("{path}.parameters.IPs"), e);
                    }
                }
            }
        },
        "applicationHostname" => {
            if param("hostNames").is_none_or(|v| v.trim().is_empty()) {
                p.add(
                    format!("{path}.parameters.hostNames"),
                    "`applicationHostname` needs at least one host name",
                );
            }
        }
        name if !KNOWN_STRATEGIES.contains(&name) => p.add(
            format!("{path}.name"),
            format!(
                "unknown strategy `{name}` (known: {})",
                KNOWN_STRATEGIES.join(", ")
            ),
        ),
        _ => {}
    }
    for (i, c) in s.constraints.iter().enumerate() {
        constraint(p, &format!("{path}.constraints[{i}]"), c);
    }
    variants(p, &format!("{path}.variants"), &s.variants);
}

#[allow(
    clippy::collapsible_match,
    reason = "one arm per operator family reads better"
)]
fn constraint(p: &mut Problems, path: &str, c: &ConstraintDef) {
    if c.context_name.trim().is_empty() {
        p.add(format!("{path}.contextName"), "must not be empty");
    }
    let Some(op) = Operator::parse(&c.operator) else {
        p.add(
            format!("{path}.operator"),
            format!("unknown operator `{}`", c.operator),
        );
        return;
    };
    if op.is_multi() {
        if op == Operator::InCidr {
            if c.values.is_empty() {
                p.add(format!("{path}.values"), "IN_CIDR needs at least one value");
            }
            for (i, v) in c.values.iter().enumerate() {
                if let Err(e) = IpNet::parse(v) {
                    p.add(format!("{path}.values[{i}]"), e);
                }
            }
        }
        return;
    }
    let Some(value) = c.value.as_deref() else {
        p.add(
            format!("{path}.value"),
            format!("{} needs a `value`", c.operator),
        );
        return;
    };
    let bad = |what: &str| format!("`{value}` is not a valid {what}");
    match op {
        Operator::NumEq
        | Operator::NumGt
        | Operator::NumGte
        | Operator::NumLt
        | Operator::NumLte => {
            if parse_number(value).is_none_or(|n| !n.is_finite()) {
                p.add(format!("{path}.value"), bad("number"));
            }
        }
        Operator::DateAfter | Operator::DateBefore => {
            if parse_date(value).is_none() {
                p.add(format!("{path}.value"), bad("date (RFC 3339)"));
            }
        }
        Operator::SemverEq
        | Operator::SemverGt
        | Operator::SemverGte
        | Operator::SemverLt
        | Operator::SemverLte => {
            if parse_semver(value).is_none() {
                p.add(format!("{path}.value"), bad("semantic version"));
            }
        }
        Operator::Regex => {
            if let Err(e) = compile_regex(value, c.case_insensitive) {
                let detail = e.to_string();
                let detail = detail.lines().last().unwrap_or_default().trim();
                p.add(path, format!("invalid regex `{value}`: {detail}"));
            }
        }
        _ => {}
    }
}

fn variants(p: &mut Problems, path: &str, vs: &[VariantDef]) {
    if vs.is_empty() {
        return;
    }
    if vs.len() > MAX_VARIANTS {
        p.add(
            path,
            format!("{} variants, more than {MAX_VARIANTS}", vs.len()),
        );
    }
    let mut seen = HashSet::new();
    let mut reported = HashSet::new();
    for (i, v) in vs.iter().enumerate() {
        let vpath = format!("{path}[{i}]");
        if v.name.trim().is_empty() {
            p.add(format!("{vpath}.name"), "must not be empty");
        } else if !seen.insert(v.name.as_str()) && reported.insert(v.name.as_str()) {
            p.add(
                format!("{vpath}.name"),
                format!("duplicate variant name `{}`", v.name),
            );
        }
        match v.weight_type.as_deref() {
            None | Some("variable") | Some("fix") => {}
            Some(other) => p.add(
                format!("{vpath}.weightType"),
                format!("unknown weight type `{other}` (use `variable` or `fix`)"),
            ),
        }
        if is_fixed(v) && v.weight > TOTAL_WEIGHT {
            p.add(
                format!("{vpath}.weight"),
                format!("fixed weight {} is more than {TOTAL_WEIGHT}", v.weight),
            );
        }
        if let Some(payload) = &v.payload {
            let ppath = format!("{vpath}.payload");
            match payload.kind.as_str() {
                "string" | "csv" => {}
                "json" => {
                    if let Err(e) = serde_json::from_str::<serde_json::Value>(&payload.value) {
                        p.add(ppath, format!("invalid JSON: {e}"));
                    }
                }
                "number" => {
                    if parse_number(&payload.value).is_none() {
                        p.add(ppath, format!("`{}` is not a number", payload.value));
                    }
                }
                other => p.add(
                    format!("{ppath}.type"),
                    format!("unknown payload type `{other}` (use string, json, csv or number)"),
                ),
            }
        }
        for (j, o) in v.overrides.iter().enumerate() {
            if o.context_name.trim().is_empty() {
                p.add(
                    format!("{vpath}.overrides[{j}].contextName"),
                    "must not be empty",
                );
            }
        }
    }
    let fixed: u64 = vs
        .iter()
        .filter(|v| is_fixed(v))
        .map(|v| u64::from(v.weight))
        .sum();
    let all_fixed = vs.iter().all(is_fixed);
    if fixed > u64::from(TOTAL_WEIGHT) {
        p.add(
            path,
            format!("fixed weights add up to {fixed}, more than {TOTAL_WEIGHT}"),
        );
    } else if all_fixed && fixed != u64::from(TOTAL_WEIGHT) {
        p.add(
            path,
            format!("all weights are fixed but add up to {fixed}, not {TOTAL_WEIGHT}"),
        );
    } else if effective_weights(vs).iter().all(|&w| w == 0) {
        p.add(path, "variant weights add up to 0: no variant can be drawn");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::defs::Payload;
    use std::collections::BTreeMap;

    fn rollout(pct: &str) -> StrategyDef {
        StrategyDef {
            name: "flexibleRollout".into(),
            parameters: BTreeMap::from([("rollout".to_string(), pct.to_string())]),
            ..StrategyDef::default()
        }
    }

    fn feature(strategies: Vec<StrategyDef>, variants: Vec<VariantDef>) -> FeatureDef {
        FeatureDef {
            name: "f".into(),
            enabled: true,
            strategies,
            variants,
            ..FeatureDef::default()
        }
    }

    fn variant(name: &str, weight: u32) -> VariantDef {
        VariantDef {
            name: name.into(),
            weight,
            ..VariantDef::default()
        }
    }

    fn errors(f: &FeatureDef) -> Vec<String> {
        validate(f)
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn constraint(op: &str, value: Option<&str>, values: &[&str]) -> ConstraintDef {
        ConstraintDef {
            context_name: "x".into(),
            operator: op.into(),
            value: value.map(str::to_string),
            values: values.iter().map(|s| s.to_string()).collect(),
            ..ConstraintDef::default()
        }
    }

    #[test]
    fn valid_feature_passes() {
        let mut s = rollout("33.5");
        s.constraints = vec![
            constraint("IN", None, &["a"]),
            constraint("NUM_GT", Some("1.5"), &[]),
            constraint("DATE_AFTER", Some("2024-01-01T00:00:00Z"), &[]),
            constraint("SEMVER_LT", Some("2.0.0-rc.1"), &[]),
            constraint("REGEX", Some("^a+$"), &[]),
            constraint("IN_CIDR", None, &["10.0.0.0/8", "::1"]),
        ];
        let f = feature(vec![s], vec![variant("a", 50), variant("b", 50)]);
        assert_eq!(validate(&f), Ok(()));
    }

    #[test]
    fn unknown_operator() {
        let mut s = rollout("50");
        s.constraints = vec![
            constraint("IN", None, &["a"]),
            constraint("LIKE", None, &["a"]),
        ];
        assert_eq!(
            errors(&feature(vec![s], vec![])),
            vec!["strategies[0].constraints[1].operator: unknown operator `LIKE`"]
        );
    }

    #[test]
    fn invalid_regex() {
        let mut s = rollout("50");
        s.constraints = vec![
            constraint("IN", None, &[]),
            constraint("REGEX", Some("("), &[]),
        ];
        let errs = errors(&feature(vec![s], vec![]));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("strategies[0].constraints[1]: invalid regex `(`: "),
            "{errs:?}"
        );
    }

    #[test]
    fn percentage_out_of_range() {
        let errs = errors(&feature(vec![rollout("150")], vec![]));
        assert_eq!(
            errs,
            vec!["strategies[0].parameters.rollout: percentage 150 is outside 0–100"]
        );
        assert!(!errors(&feature(vec![rollout("-1")], vec![])).is_empty());
        assert!(!errors(&feature(vec![rollout("half")], vec![])).is_empty());
        assert_eq!(validate(&feature(vec![rollout("99.99")], vec![])), Ok(()));
    }

    #[test]
    fn too_many_variants() {
        let vs: Vec<VariantDef> = (0..10_000).map(|i| variant(&format!("v{i}"), 1)).collect();
        let errs = errors(&feature(vec![], vs));
        assert_eq!(errs, vec!["variants: 10000 variants, more than 1000"]);
    }

    #[test]
    fn duplicate_variant_names() {
        let vs = vec![
            variant("a", 1),
            variant("b", 1),
            variant("a", 1),
            variant("a", 1),
        ];
        assert_eq!(
            errors(&feature(vec![], vs)),
            vec!["variants[2].name: duplicate variant name `a`"]
        );
    }

    #[test]
    fn bad_values_and_weights_all_listed() {
        let mut s = rollout("50");
        s.constraints = vec![
            constraint("NUM_EQ", Some("ten"), &[]),
            constraint("DATE_BEFORE", Some("yesterday"), &[]),
            constraint("SEMVER_EQ", Some("v1.2.3"), &[]),
            constraint("IN_CIDR", None, &["10.0.0.0/40"]),
            constraint("NUM_LT", None, &["3"]),
        ];
        s.variants = vec![VariantDef {
            name: "".into(),
            weight: 1200,
            weight_type: Some("fix".into()),
            payload: Some(Payload {
                kind: "json".into(),
                value: "{".into(),
            }),
            ..VariantDef::default()
        }];
        let mut f = feature(vec![s], vec![]);
        f.name = "".into();
        f.dependencies = vec![crate::defs::DependencyDef {
            feature: "".into(),
            ..Default::default()
        }];
        let errs = errors(&f);
        let expected_paths = [
            "name:",
            "strategies[0].constraints[0].value: `ten` is not a valid number",
            "strategies[0].constraints[1].value:",
            "strategies[0].constraints[2].value:",
            "strategies[0].constraints[3].values[0]:",
            "strategies[0].constraints[4].value: NUM_LT needs a `value`",
            "strategies[0].variants[0].name:",
            "strategies[0].variants[0].weight:",
            "strategies[0].variants[0].payload: invalid JSON",
            "strategies[0].variants: fixed weights add up to 1200",
            "dependencies[0].feature:",
        ];
        assert_eq!(errs.len(), expected_paths.len(), "{errs:#?}");
        for (e, want) in errs.iter().zip(expected_paths) {
            assert!(e.starts_with(want), "{e} should start with {want}");
        }
    }

    #[test]
    fn self_dependency_and_unknown_strategy() {
        let mut f = feature(
            vec![StrategyDef {
                name: "custom".into(),
                ..StrategyDef::default()
            }],
            vec![],
        );
        f.dependencies = vec![crate::defs::DependencyDef {
            feature: "f".into(),
            ..Default::default()
        }];
        let errs = errors(&f);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("strategies[0].name: unknown strategy `custom`"));
        assert_eq!(
            errs[1],
            "dependencies[0].feature: feature `f` cannot depend on itself"
        );
    }

    #[test]
    fn weights_that_do_not_add_up() {
        let fix = |name: &str, w: u32| VariantDef {
            weight_type: Some("fix".into()),
            ..variant(name, w)
        };
        assert_eq!(
            errors(&feature(vec![], vec![fix("a", 300), fix("b", 300)])),
            vec!["variants: all weights are fixed but add up to 600, not 1000"]
        );
        assert_eq!(
            errors(&feature(
                vec![],
                vec![fix("a", 700), fix("b", 400), variant("c", 0)]
            )),
            vec!["variants: fixed weights add up to 1100, more than 1000"]
        );
        assert_eq!(
            validate(&feature(vec![], vec![fix("a", 300), variant("b", 0)])),
            Ok(())
        );
        assert_eq!(
            validate(&feature(vec![], vec![variant("a", 0), variant("b", 0)])),
            Ok(())
        );
    }
}
