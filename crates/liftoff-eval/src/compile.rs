//! The compiled form of definitions and the code that evaluates it.
//!
//! Everything that can be decided once is decided at compile time: operators become enum
//! variants, numbers/dates/semvers/CIDRs are parsed, regexes compiled, case-insensitive needles
//! lower-cased, percentages turned into integer thresholds, `"{groupId}:"` pre-hashed, segment
//! references inlined, dependency parents resolved to indices and variant weights accumulated.
//! Definitions that cannot be compiled never match (compilation never fails).

use std::cell::Cell;
use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use regex::{Regex, RegexBuilder};
use semver::Version;

use crate::context::Context;
use crate::defs::{ConstraintDef, Payload, SegmentDef, StrategyDef, VariantDef};
use crate::fxhash::{FxHashMap, StrSet};
use crate::ip::{IpNet, parse_addr};
use crate::murmur3::PrefixHasher;
use crate::rng;

/// Seed Unleash uses when hashing for variants.
pub(crate) const VARIANT_SEED: u32 = 86_028_157;
/// Most variants a feature or strategy may have.
pub(crate) const MAX_VARIANTS: usize = 1000;
/// The total variant weight Unleash distributes.
pub(crate) const TOTAL_WEIGHT: u32 = 1000;

/// The strategies this crate knows.
pub(crate) const KNOWN_STRATEGIES: [&str; 8] = [
    "default",
    "userWithId",
    "gradualRolloutUserId",
    "gradualRolloutSessionId",
    "gradualRolloutRandom",
    "remoteAddress",
    "flexibleRollout",
    "applicationHostname",
];

// ---------------------------------------------------------------------------------------------
// Parsing helpers, shared with `validate`.

/// A context field, resolved from its name once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    UserId,
    SessionId,
    RemoteAddress,
    Environment,
    AppName,
    CurrentTime,
    Property(Box<str>),
}

impl Field {
    pub(crate) fn from_name(name: &str) -> Field {
        match name {
            "userId" => Field::UserId,
            "sessionId" => Field::SessionId,
            "remoteAddress" => Field::RemoteAddress,
            "environment" => Field::Environment,
            "appName" => Field::AppName,
            "currentTime" => Field::CurrentTime,
            other => Field::Property(other.into()),
        }
    }

    #[inline]
    pub(crate) fn get<'c>(&self, ctx: &'c Context) -> Option<&'c str> {
        match self {
            Field::UserId => ctx.user_id.as_deref(),
            Field::SessionId => ctx.session_id.as_deref(),
            Field::RemoteAddress => ctx.remote_address.as_deref(),
            Field::Environment => ctx.environment.as_deref(),
            Field::AppName => ctx.app_name.as_deref(),
            Field::CurrentTime => ctx.current_time.as_deref(),
            Field::Property(name) => ctx.properties.get(&**name).map(String::as_str),
        }
    }
}

/// Constraint operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operator {
    In,
    NotIn,
    StrContains,
    StrStartsWith,
    StrEndsWith,
    NumEq,
    NumGt,
    NumGte,
    NumLt,
    NumLte,
    DateAfter,
    DateBefore,
    SemverEq,
    SemverGt,
    SemverGte,
    SemverLt,
    SemverLte,
    Regex,
    InCidr,
}

impl Operator {
    pub(crate) fn parse(s: &str) -> Option<Operator> {
        Some(match s {
            "IN" => Operator::In,
            "NOT_IN" => Operator::NotIn,
            "STR_CONTAINS" => Operator::StrContains,
            "STR_STARTS_WITH" => Operator::StrStartsWith,
            "STR_ENDS_WITH" => Operator::StrEndsWith,
            "NUM_EQ" => Operator::NumEq,
            "NUM_GT" => Operator::NumGt,
            "NUM_GTE" => Operator::NumGte,
            "NUM_LT" => Operator::NumLt,
            "NUM_LTE" => Operator::NumLte,
            "DATE_AFTER" => Operator::DateAfter,
            "DATE_BEFORE" => Operator::DateBefore,
            "SEMVER_EQ" => Operator::SemverEq,
            "SEMVER_GT" => Operator::SemverGt,
            "SEMVER_GTE" => Operator::SemverGte,
            "SEMVER_LT" => Operator::SemverLt,
            "SEMVER_LTE" => Operator::SemverLte,
            "REGEX" => Operator::Regex,
            "IN_CIDR" => Operator::InCidr,
            _ => return None,
        })
    }

    /// Operators that read `values` (the others read `value`).
    pub(crate) fn is_multi(self) -> bool {
        matches!(
            self,
            Operator::In
                | Operator::NotIn
                | Operator::StrContains
                | Operator::StrStartsWith
                | Operator::StrEndsWith
                | Operator::InCidr
        )
    }
}

pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| !f.is_nan())
}

pub(crate) fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(naive.and_utc());
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(naive.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
}

pub(crate) fn parse_semver(s: &str) -> Option<Version> {
    Version::parse(s.trim()).ok()
}

pub(crate) fn compile_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
}

/// A rollout percentage as the integer threshold a `1..=100` bucket is compared against
/// (`bucket <= percentage` ⇔ `bucket <= floor(percentage)`), clamped to 0–100.
pub(crate) fn parse_percentage(s: &str) -> Option<u32> {
    let p = parse_number(s)?;
    Some(p.clamp(0.0, 100.0).floor() as u32)
}

pub(crate) fn is_fixed(v: &VariantDef) -> bool {
    v.weight_type.as_deref() == Some("fix")
}

/// The weights variants are bucketed with. Weights are used as given (relative weights such as
/// 1/1 or 33/33/33 are fine), except:
/// - when some variants have a `fix` weight and the weights do not already add up to 1000, the
///   remainder `1000 - fixed` is split evenly over the variable variants (the first ones get
///   the rounding remainder), as the Unleash server does;
/// - when no variant has a weight at all, they share 1000 evenly.
pub(crate) fn effective_weights(variants: &[VariantDef]) -> Vec<u32> {
    let given: Vec<u32> = variants.iter().map(|v| v.weight).collect();
    if variants.is_empty() {
        return given;
    }
    let sum: u64 = given.iter().map(|&w| u64::from(w)).sum();
    let any_fixed = variants.iter().any(is_fixed);
    if any_fixed {
        if sum == u64::from(TOTAL_WEIGHT) {
            return given;
        }
        let fixed: u64 = variants
            .iter()
            .filter(|v| is_fixed(v))
            .map(|v| u64::from(v.weight))
            .sum();
        let variable = variants.iter().filter(|v| !is_fixed(v)).count() as u64;
        if variable == 0 || fixed > u64::from(TOTAL_WEIGHT) {
            return given;
        }
        let share = (u64::from(TOTAL_WEIGHT) - fixed) / variable;
        let mut remainder = (u64::from(TOTAL_WEIGHT) - fixed) % variable;
        variants
            .iter()
            .map(|v| {
                if is_fixed(v) {
                    v.weight
                } else {
                    let extra = u64::from(remainder > 0);
                    remainder = remainder.saturating_sub(1);
                    (share + extra) as u32
                }
            })
            .collect()
    } else if sum == 0 {
        let n = variants.len() as u32;
        let share = TOTAL_WEIGHT / n;
        let remainder = TOTAL_WEIGHT % n;
        (0..n).map(|i| share + u32::from(i < remainder)).collect()
    } else {
        given
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled constraints.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    #[inline]
    fn test(self, o: Ordering) -> bool {
        match self {
            Cmp::Eq => o == Ordering::Equal,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Gte => o != Ordering::Less,
            Cmp::Lt => o == Ordering::Less,
            Cmp::Lte => o != Ordering::Greater,
        }
    }
}

#[derive(Clone, Debug)]
enum Matcher {
    In(StrSet),
    NotIn(StrSet),
    Str {
        op: StrOp,
        /// Lower-cased when `case_insensitive`.
        needles: Box<[Box<str>]>,
        case_insensitive: bool,
    },
    Num(Cmp, f64),
    Date(Cmp, DateTime<Utc>),
    Semver(Cmp, Version),
    Regex(Box<Regex>),
    Cidr(Box<[IpNet]>),
    /// Unknown operator or a value that does not parse: the constraint is false, inverted or not.
    Never,
}

#[derive(Clone, Debug)]
pub(crate) struct Constraint {
    field: Field,
    matcher: Matcher,
    inverted: bool,
}

/// Per-evaluation state: the context and the lazily read clock.
pub(crate) struct Env<'c> {
    pub(crate) ctx: &'c Context,
    now: Cell<Option<DateTime<Utc>>>,
}

impl<'c> Env<'c> {
    pub(crate) fn new(ctx: &'c Context, now: Option<DateTime<Utc>>) -> Self {
        Env {
            ctx,
            now: Cell::new(now),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        match self.now.get() {
            Some(now) => now,
            None => {
                let now = Utc::now();
                self.now.set(Some(now));
                now
            }
        }
    }
}

#[inline]
fn ascii_starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

#[inline]
fn ascii_ends_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[hay.len() - needle.len()..].eq_ignore_ascii_case(needle)
}

#[inline]
fn ascii_contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

fn str_op(op: StrOp, hay: &str, needle: &str) -> bool {
    match op {
        StrOp::Contains => hay.contains(needle),
        StrOp::StartsWith => hay.starts_with(needle),
        StrOp::EndsWith => hay.ends_with(needle),
    }
}

impl Constraint {
    pub(crate) fn compile(def: &ConstraintDef) -> Constraint {
        let field = Field::from_name(&def.context_name);
        let matcher = match Operator::parse(&def.operator) {
            None => Matcher::Never,
            Some(op) => Self::matcher(op, def),
        };
        Constraint {
            field,
            matcher,
            inverted: def.inverted,
        }
    }

    fn matcher(op: Operator, def: &ConstraintDef) -> Matcher {
        let value = def.value.as_deref();
        let ci = def.case_insensitive;
        let str_matcher = |op: StrOp| Matcher::Str {
            op,
            needles: def
                .values
                .iter()
                .map(|v| if ci { v.to_lowercase() } else { v.clone() }.into_boxed_str())
                .collect(),
            case_insensitive: ci,
        };
        let num = |cmp: Cmp| match value.and_then(parse_number) {
            Some(n) => Matcher::Num(cmp, n),
            None => Matcher::Never,
        };
        let date = |cmp: Cmp| match value.and_then(parse_date) {
            Some(d) => Matcher::Date(cmp, d),
            None => Matcher::Never,
        };
        let semver = |cmp: Cmp| match value.and_then(parse_semver) {
            Some(v) => Matcher::Semver(cmp, v),
            None => Matcher::Never,
        };
        match op {
            Operator::In => Matcher::In(StrSet::new(def.values.iter().map(String::as_str))),
            Operator::NotIn => Matcher::NotIn(StrSet::new(def.values.iter().map(String::as_str))),
            Operator::StrContains => str_matcher(StrOp::Contains),
            Operator::StrStartsWith => str_matcher(StrOp::StartsWith),
            Operator::StrEndsWith => str_matcher(StrOp::EndsWith),
            Operator::NumEq => num(Cmp::Eq),
            Operator::NumGt => num(Cmp::Gt),
            Operator::NumGte => num(Cmp::Gte),
            Operator::NumLt => num(Cmp::Lt),
            Operator::NumLte => num(Cmp::Lte),
            Operator::DateAfter => date(Cmp::Gt),
            Operator::DateBefore => date(Cmp::Lt),
            Operator::SemverEq => semver(Cmp::Eq),
            Operator::SemverGt => semver(Cmp::Gt),
            Operator::SemverGte => semver(Cmp::Gte),
            Operator::SemverLt => semver(Cmp::Lt),
            Operator::SemverLte => semver(Cmp::Lte),
            Operator::Regex => match value.map(|v| compile_regex(v, ci)) {
                Some(Ok(re)) => Matcher::Regex(Box::new(re)),
                _ => Matcher::Never,
            },
            Operator::InCidr => {
                // Values that do not parse are ignored; with none left nothing matches.
                let nets: Box<[IpNet]> = def
                    .values
                    .iter()
                    .filter_map(|v| IpNet::parse(v).ok())
                    .collect();
                if nets.is_empty() {
                    Matcher::Never
                } else {
                    Matcher::Cidr(nets)
                }
            }
        }
    }

    /// Whether the constraint holds. A missing context value makes every operator false except
    /// `NOT_IN` (true); `inverted` then flips the answer, as in every Unleash SDK.
    #[inline]
    pub(crate) fn matches(&self, env: &Env<'_>) -> bool {
        let value = self.field.get(env.ctx);
        let raw = match &self.matcher {
            Matcher::Never => return false,
            Matcher::In(set) => value.is_some_and(|v| set.contains(v)),
            Matcher::NotIn(set) => !value.is_some_and(|v| set.contains(v)),
            Matcher::Str {
                op,
                needles,
                case_insensitive,
            } => match value {
                None => false,
                Some(v) if !*case_insensitive => needles.iter().any(|n| str_op(*op, v, n)),
                Some(v) if v.is_ascii() => {
                    let hay = v.as_bytes();
                    needles.iter().any(|n| {
                        let n = n.as_bytes();
                        match op {
                            StrOp::Contains => ascii_contains_ci(hay, n),
                            StrOp::StartsWith => ascii_starts_with_ci(hay, n),
                            StrOp::EndsWith => ascii_ends_with_ci(hay, n),
                        }
                    })
                }
                Some(v) => {
                    let lower = v.to_lowercase();
                    needles.iter().any(|n| str_op(*op, &lower, n))
                }
            },
            Matcher::Num(cmp, expected) => value
                .and_then(parse_number)
                .and_then(|n| n.partial_cmp(expected))
                .is_some_and(|o| cmp.test(o)),
            Matcher::Date(cmp, expected) => {
                let actual = match (&self.field, value) {
                    (_, Some(v)) => parse_date(v),
                    (Field::CurrentTime, None) => Some(env.now()),
                    (_, None) => None,
                };
                actual.is_some_and(|d| cmp.test(d.cmp(expected)))
            }
            Matcher::Semver(cmp, expected) => value
                .and_then(parse_semver)
                .is_some_and(|v| cmp.test(v.cmp_precedence(expected))),
            Matcher::Regex(re) => value.is_some_and(|v| re.is_match(v)),
            Matcher::Cidr(nets) => value
                .and_then(parse_addr)
                .is_some_and(|ip| nets.iter().any(|n| n.contains(ip))),
        };
        raw != self.inverted
    }
}

// ---------------------------------------------------------------------------------------------
// Stickiness, strategies, variants.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stickiness {
    /// userId, else sessionId, else random.
    Default,
    Random,
    Field(Field),
}

impl Stickiness {
    fn parse(s: Option<&str>) -> Stickiness {
        match s.map(str::trim) {
            None | Some("") | Some("default") => Stickiness::Default,
            Some("random") => Stickiness::Random,
            Some(name) => Stickiness::Field(Field::from_name(name)),
        }
    }
}

/// A non-empty stickiness value; empty strings count as missing.
#[inline]
fn present(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}

#[derive(Clone, Debug)]
enum Activation {
    Always,
    Never,
    UserIds(StrSet),
    Rollout {
        threshold: u32,
        stickiness: Stickiness,
        hasher: PrefixHasher,
    },
    Random {
        threshold: u32,
    },
    RemoteAddress {
        exact: StrSet,
        nets: Box<[IpNet]>,
    },
    Hostname(StrSet),
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl Activation {
    fn compile(def: &StrategyDef, feature_name: &str) -> Activation {
        let param = |k: &str| def.parameters.get(k).map(String::as_str);
        let rollout = |threshold: Option<u32>, stickiness: Stickiness, group: &str| match threshold
        {
            None => Activation::Never,
            Some(threshold) => Activation::Rollout {
                threshold,
                stickiness,
                hasher: PrefixHasher::for_group(group, 0),
            },
        };
        match def.name.as_str() {
            "default" => Activation::Always,
            "userWithId" => Activation::UserIds(StrSet::new(split_list(
                param("userIds").unwrap_or_default(),
            ))),
            "flexibleRollout" => rollout(
                param("rollout").and_then(parse_percentage),
                Stickiness::parse(param("stickiness")),
                param("groupId").unwrap_or(feature_name),
            ),
            "gradualRolloutUserId" => rollout(
                param("percentage").and_then(parse_percentage),
                Stickiness::Field(Field::UserId),
                param("groupId").unwrap_or_default(),
            ),
            "gradualRolloutSessionId" => rollout(
                param("percentage").and_then(parse_percentage),
                Stickiness::Field(Field::SessionId),
                param("groupId").unwrap_or_default(),
            ),
            "gradualRolloutRandom" => match param("percentage").and_then(parse_percentage) {
                Some(threshold) => Activation::Random { threshold },
                None => Activation::Never,
            },
            "remoteAddress" => {
                let ips = param("IPs").unwrap_or_default();
                Activation::RemoteAddress {
                    exact: StrSet::new(split_list(ips)),
                    nets: split_list(ips)
                        .filter_map(|s| IpNet::parse(s).ok())
                        .collect(),
                }
            }
            "applicationHostname" => Activation::Hostname(StrSet::new(
                split_list(param("hostNames").unwrap_or_default()).map(str::to_lowercase),
            )),
            _ => Activation::Never,
        }
    }

    /// Whether the strategy can answer differently for different contexts.
    fn targets(&self) -> bool {
        match self {
            Activation::Always => false,
            Activation::Rollout {
                threshold,
                stickiness,
                ..
            } => *threshold < 100 || matches!(stickiness, Stickiness::Field(_)),
            Activation::Random { threshold } => *threshold < 100,
            _ => true,
        }
    }

    #[inline]
    fn matches(&self, ctx: &Context) -> bool {
        match self {
            Activation::Always => true,
            Activation::Never => false,
            Activation::UserIds(ids) => ctx.user_id.as_deref().is_some_and(|u| ids.contains(u)),
            Activation::Rollout {
                threshold,
                stickiness,
                hasher,
            } => {
                if *threshold == 0 {
                    return false;
                }
                let id = match stickiness {
                    Stickiness::Default => {
                        present(ctx.user_id.as_deref()).or(present(ctx.session_id.as_deref()))
                    }
                    Stickiness::Random => None,
                    Stickiness::Field(field) => match present(field.get(ctx)) {
                        Some(id) => Some(id),
                        None => return false,
                    },
                };
                if *threshold >= 100 {
                    return true;
                }
                match id {
                    Some(id) => hasher.bucket(id, 100) <= *threshold,
                    None => rng::one_to(100) <= *threshold,
                }
            }
            Activation::Random { threshold } => match *threshold {
                0 => false,
                t if t >= 100 => true,
                t => rng::one_to(100) <= t,
            },
            Activation::RemoteAddress { exact, nets } => match ctx.remote_address.as_deref() {
                None => false,
                Some(addr) => {
                    exact.contains(addr.trim())
                        || parse_addr(addr).is_some_and(|ip| nets.iter().any(|n| n.contains(ip)))
                }
            },
            Activation::Hostname(hosts) => match ctx.properties.get("hostname") {
                None => false,
                Some(h) if h.bytes().any(|b| b.is_ascii_uppercase()) || !h.is_ascii() => {
                    hosts.contains(&h.to_lowercase())
                }
                Some(h) => hosts.contains(h),
            },
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Variant {
    pub(crate) name: Box<str>,
    pub(crate) payload: Option<Payload>,
    /// Running total of weights up to and including this variant.
    cumulative: u32,
    overrides: Box<[(Field, StrSet)]>,
}

#[derive(Clone, Debug)]
pub(crate) struct Variants {
    list: Box<[Variant]>,
    total: u32,
    stickiness: Stickiness,
    hasher: PrefixHasher,
    has_overrides: bool,
    /// More than one variant can be drawn.
    pub(crate) split: bool,
}

/// How a variant was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    Override,
    Bucket,
}

impl Variants {
    /// `None` for an empty list. `stickiness` is the fallback when the first variant names none.
    fn compile(defs: &[VariantDef], group: &str, stickiness: Option<&str>) -> Option<Variants> {
        if defs.is_empty() {
            return None;
        }
        let weights = effective_weights(defs);
        let mut cumulative = 0u32;
        let list: Box<[Variant]> = defs
            .iter()
            .zip(&weights)
            .map(|(def, &w)| {
                cumulative = cumulative.saturating_add(w);
                Variant {
                    name: def.name.as_str().into(),
                    payload: def.payload.clone(),
                    cumulative,
                    overrides: def
                        .overrides
                        .iter()
                        .map(|o| {
                            (
                                Field::from_name(&o.context_name),
                                StrSet::new(o.values.iter().map(String::as_str)),
                            )
                        })
                        .collect(),
                }
            })
            .collect();
        let has_overrides = list.iter().any(|v| !v.overrides.is_empty());
        let split = weights.iter().filter(|&&w| w > 0).count() > 1;
        let stickiness = defs[0].stickiness.as_deref().or(stickiness);
        Some(Variants {
            list,
            total: cumulative,
            stickiness: Stickiness::parse(stickiness),
            hasher: PrefixHasher::for_group(group, VARIANT_SEED),
            has_overrides,
            split,
        })
    }

    #[inline]
    pub(crate) fn pick(&self, ctx: &Context) -> Option<(&Variant, Pick)> {
        if self.has_overrides {
            for v in self.list.iter() {
                for (field, values) in v.overrides.iter() {
                    if field.get(ctx).is_some_and(|val| values.contains(val)) {
                        return Some((v, Pick::Override));
                    }
                }
            }
        }
        if self.total == 0 {
            return None;
        }
        let id = match &self.stickiness {
            Stickiness::Default => {
                present(ctx.user_id.as_deref()).or(present(ctx.session_id.as_deref()))
            }
            Stickiness::Random => None,
            Stickiness::Field(field) => present(field.get(ctx)),
        };
        let target = match id {
            Some(id) => self.hasher.bucket(id, self.total),
            None => rng::one_to(self.total),
        };
        let idx = self.list.partition_point(|v| v.cumulative < target);
        self.list.get(idx).map(|v| (v, Pick::Bucket))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Strategy {
    constraints: Box<[Constraint]>,
    activation: Activation,
    pub(crate) variants: Option<Variants>,
    pub(crate) targeted: bool,
}

impl Strategy {
    fn compile(
        def: &StrategyDef,
        feature_name: &str,
        segments: &FxHashMap<i64, &SegmentDef>,
    ) -> Strategy {
        let mut constraints: Vec<Constraint> =
            def.constraints.iter().map(Constraint::compile).collect();
        let mut activation = Activation::compile(def, feature_name);
        for id in &def.segments {
            match segments.get(id) {
                Some(seg) => constraints.extend(seg.constraints.iter().map(Constraint::compile)),
                // A reference to a segment we do not have: the strategy can never match.
                None => activation = Activation::Never,
            }
        }
        let group = def
            .parameters
            .get("groupId")
            .map(String::as_str)
            .unwrap_or(feature_name);
        let variants = Variants::compile(
            &def.variants,
            group,
            def.parameters.get("stickiness").map(String::as_str),
        );
        let targeted = !constraints.is_empty() || activation.targets();
        Strategy {
            constraints: constraints.into_boxed_slice(),
            activation,
            variants,
            targeted,
        }
    }

    #[inline]
    pub(crate) fn matches(&self, env: &Env<'_>) -> bool {
        self.constraints.iter().all(|c| c.matches(env)) && self.activation.matches(env.ctx)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Dependency {
    /// `None` when the parent is missing or has dependencies of its own: never satisfied.
    pub(crate) parent: Option<u32>,
    pub(crate) enabled: bool,
    pub(crate) variants: Option<StrSet>,
}

#[derive(Clone, Debug)]
pub(crate) struct Feature {
    pub(crate) name: Box<str>,
    pub(crate) enabled: bool,
    pub(crate) blacklist: Option<StrSet>,
    pub(crate) whitelist: Option<StrSet>,
    pub(crate) dependencies: Box<[Dependency]>,
    /// Active (not `disabled`) strategies.
    pub(crate) strategies: Box<[Strategy]>,
    /// No strategies at all: enabled for everyone. (A feature whose strategies are all
    /// `disabled` is enabled for no one.)
    pub(crate) unconditional: bool,
    pub(crate) variants: Option<Variants>,
    pub(crate) impression_data: bool,
}

impl Feature {
    pub(crate) fn compile(
        def: &crate::defs::FeatureDef,
        index: &FxHashMap<&str, u32>,
        has_dependencies: &dyn Fn(u32) -> bool,
        segments: &FxHashMap<i64, &SegmentDef>,
    ) -> Feature {
        let list = |ids: &[String]| {
            if ids.is_empty() {
                None
            } else {
                Some(StrSet::new(ids.iter().map(String::as_str)))
            }
        };
        Feature {
            name: def.name.as_str().into(),
            enabled: def.enabled,
            blacklist: list(&def.blacklist),
            whitelist: list(&def.whitelist),
            dependencies: def
                .dependencies
                .iter()
                .map(|d| Dependency {
                    parent: index
                        .get(d.feature.as_str())
                        .copied()
                        .filter(|&p| !has_dependencies(p)),
                    enabled: d.enabled.unwrap_or(true),
                    variants: d
                        .variants
                        .as_ref()
                        .filter(|v| !v.is_empty())
                        .map(|v| StrSet::new(v.iter().map(String::as_str))),
                })
                .collect(),
            strategies: def
                .strategies
                .iter()
                .filter(|s| !s.disabled)
                .map(|s| Strategy::compile(s, &def.name, segments))
                .collect(),
            unconditional: def.strategies.is_empty(),
            variants: Variants::compile(&def.variants, &def.name, None),
            impression_data: def.impression_data,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn check(op: &str, field: &str, values: &[&str], value: Option<&str>, ctx: &Context) -> bool {
        check_with(op, field, values, value, false, false, ctx)
    }

    fn check_with(
        op: &str,
        field: &str,
        values: &[&str],
        value: Option<&str>,
        inverted: bool,
        case_insensitive: bool,
        ctx: &Context,
    ) -> bool {
        let c = Constraint::compile(&ConstraintDef {
            context_name: field.into(),
            operator: op.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
            value: value.map(str::to_string),
            inverted,
            case_insensitive,
        });
        let t = parse_date("2024-06-01T12:00:00Z").unwrap();
        c.matches(&Env::new(ctx, Some(t)))
    }

    fn prop(name: &str, v: &str) -> Context {
        Context::default().property(name, v)
    }

    #[test]
    fn in_and_not_in() {
        let ctx = Context {
            environment: Some("prod".into()),
            ..Context::default()
        };
        assert!(check("IN", "environment", &["dev", "prod"], None, &ctx));
        assert!(!check("IN", "environment", &["dev"], None, &ctx));
        assert!(!check("IN", "environment", &[], None, &ctx));
        assert!(!check("NOT_IN", "environment", &["prod"], None, &ctx));
        assert!(check("NOT_IN", "environment", &["dev"], None, &ctx));
        // Missing field: IN false, NOT_IN true.
        assert!(!check("IN", "appName", &["x"], None, &ctx));
        assert!(check("NOT_IN", "appName", &["x"], None, &ctx));
        // Inverted.
        assert!(!check_with(
            "IN",
            "environment",
            &["prod"],
            None,
            true,
            false,
            &ctx
        ));
        // Many values use a hash set.
        let many: Vec<String> = (0..50).map(|i| format!("e{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(check("IN", "k", &many, None, &prop("k", "e49")));
        assert!(!check("IN", "k", &many, None, &prop("k", "e50")));
    }

    #[test]
    fn string_operators() {
        let ctx = prop("email", "Test@Some-Email.com");
        assert!(check("STR_CONTAINS", "email", &["Some"], None, &ctx));
        assert!(!check("STR_CONTAINS", "email", &["some"], None, &ctx));
        assert!(check_with(
            "STR_CONTAINS",
            "email",
            &["SOME"],
            None,
            false,
            true,
            &ctx
        ));
        assert!(check(
            "STR_STARTS_WITH",
            "email",
            &["x", "Test"],
            None,
            &ctx
        ));
        assert!(!check("STR_STARTS_WITH", "email", &["test"], None, &ctx));
        assert!(check_with(
            "STR_STARTS_WITH",
            "email",
            &["tEST"],
            None,
            false,
            true,
            &ctx
        ));
        assert!(check("STR_ENDS_WITH", "email", &[".com"], None, &ctx));
        assert!(check_with(
            "STR_ENDS_WITH",
            "email",
            &["EMAIL.COM"],
            None,
            false,
            true,
            &ctx
        ));
        assert!(!check("STR_ENDS_WITH", "email", &[".org"], None, &ctx));
        // Non-ASCII, case-insensitive.
        let ctx = prop("city", "ÅLESUND");
        assert!(check_with(
            "STR_STARTS_WITH",
            "city",
            &["åle"],
            None,
            false,
            true,
            &ctx
        ));
        // Missing field is false, inverted true.
        assert!(!check("STR_CONTAINS", "nope", &["a"], None, &ctx));
        assert!(check_with(
            "STR_CONTAINS",
            "nope",
            &["a"],
            None,
            true,
            false,
            &ctx
        ));
    }

    #[test]
    fn number_operators() {
        let ctx = prop("n", "12");
        assert!(check("NUM_EQ", "n", &[], Some("12.0"), &ctx));
        assert!(!check("NUM_EQ", "n", &[], Some("13"), &ctx));
        assert!(check("NUM_GT", "n", &[], Some("11.5"), &ctx));
        assert!(!check("NUM_GT", "n", &[], Some("12"), &ctx));
        assert!(check("NUM_GTE", "n", &[], Some("12"), &ctx));
        assert!(check("NUM_LT", "n", &[], Some("12.01"), &ctx));
        assert!(!check("NUM_LT", "n", &[], Some("12"), &ctx));
        assert!(check("NUM_LTE", "n", &[], Some("12"), &ctx));
        // Unparsable context value: false (inverted: true). Unparsable definition: never.
        assert!(!check("NUM_EQ", "n", &[], Some("12"), &prop("n", "twelve")));
        assert!(check_with(
            "NUM_EQ",
            "n",
            &[],
            Some("12"),
            true,
            false,
            &prop("n", "x")
        ));
        assert!(!check_with(
            "NUM_EQ",
            "n",
            &[],
            Some("twelve"),
            true,
            false,
            &ctx
        ));
    }

    #[test]
    fn date_operators() {
        let ctx = Context {
            current_time: Some("2022-01-25T13:00:00.000Z".into()),
            ..Context::default()
        };
        assert!(check(
            "DATE_AFTER",
            "currentTime",
            &[],
            Some("2022-01-22T13:00:00.000Z"),
            &ctx
        ));
        assert!(!check(
            "DATE_AFTER",
            "currentTime",
            &[],
            Some("2022-01-25T13:00:00Z"),
            &ctx
        ));
        assert!(check(
            "DATE_BEFORE",
            "currentTime",
            &[],
            Some("2022-01-26T00:00:00+02:00"),
            &ctx
        ));
        assert!(!check(
            "DATE_BEFORE",
            "currentTime",
            &[],
            Some("2022-01-25"),
            &ctx
        ));
        // No currentTime in the context: the evaluation's clock (2024-06-01 here).
        let empty = Context::default();
        assert!(check(
            "DATE_AFTER",
            "currentTime",
            &[],
            Some("2024-05-31"),
            &empty
        ));
        assert!(!check(
            "DATE_AFTER",
            "currentTime",
            &[],
            Some("2024-06-02"),
            &empty
        ));
        // A date in a property.
        assert!(check(
            "DATE_BEFORE",
            "signup",
            &[],
            Some("2020-01-01"),
            &prop("signup", "2019-12-31T23:59:59Z")
        ));
        assert!(!check(
            "DATE_BEFORE",
            "currentTime",
            &[],
            Some("not a date"),
            &ctx
        ));
    }

    #[test]
    fn semver_operators() {
        let ctx = prop("version", "2.0.0-beta.1");
        assert!(check(
            "SEMVER_GT",
            "version",
            &[],
            Some("2.0.0-alpha.1"),
            &ctx
        ));
        assert!(check("SEMVER_LT", "version", &[], Some("2.0.0"), &ctx));
        assert!(check(
            "SEMVER_EQ",
            "version",
            &[],
            Some("2.0.0-beta.1"),
            &ctx
        ));
        assert!(check(
            "SEMVER_GTE",
            "version",
            &[],
            Some("2.0.0-beta.1"),
            &ctx
        ));
        assert!(check(
            "SEMVER_LTE",
            "version",
            &[],
            Some("2.0.0-beta.2"),
            &ctx
        ));
        // Build metadata does not count.
        assert!(check(
            "SEMVER_EQ",
            "version",
            &[],
            Some("2.0.0-beta.1+build.5"),
            &ctx
        ));
        assert!(!check(
            "SEMVER_EQ",
            "version",
            &[],
            Some("v2.0.0-beta.1"),
            &ctx
        ));
        assert!(!check(
            "SEMVER_EQ",
            "version",
            &[],
            Some("2.0.0"),
            &prop("version", "v2.0.0")
        ));
    }

    #[test]
    fn regex_operator() {
        let ctx = Context::with_user("User123");
        assert!(check(
            "REGEX",
            "userId",
            &[],
            Some(r"^user\d+$"),
            &Context::with_user("user1")
        ));
        assert!(!check("REGEX", "userId", &[], Some(r"^user\d+$"), &ctx));
        assert!(check_with(
            "REGEX",
            "userId",
            &[],
            Some(r"^user\d+$"),
            false,
            true,
            &ctx
        ));
        assert!(!check_with(
            "REGEX",
            "userId",
            &[],
            Some("("),
            true,
            false,
            &ctx
        ));
        assert!(!check("REGEX", "userId", &[], Some("^(?=a)b$"), &ctx));
    }

    #[test]
    fn cidr_operator() {
        let ctx = Context {
            remote_address: Some("10.1.2.3".into()),
            ..Context::default()
        };
        assert!(check(
            "IN_CIDR",
            "remoteAddress",
            &["bad", "10.0.0.0/8"],
            None,
            &ctx
        ));
        assert!(!check(
            "IN_CIDR",
            "remoteAddress",
            &["10.0.0.0/16"],
            None,
            &ctx
        ));
        assert!(check_with(
            "IN_CIDR",
            "remoteAddress",
            &["10.0.0.0/16"],
            None,
            true,
            false,
            &ctx
        ));
        assert!(!check_with(
            "IN_CIDR",
            "remoteAddress",
            &["bad"],
            None,
            true,
            false,
            &ctx
        ));
        assert!(!check(
            "IN_CIDR",
            "remoteAddress",
            &["10.0.0.0/8"],
            None,
            &Context::default()
        ));
    }

    #[test]
    fn unknown_operator_is_false_even_inverted() {
        let ctx = prop("x", "1");
        assert!(!check("NOT_AN_OPERATOR", "x", &["1"], Some("1"), &ctx));
        assert!(!check_with(
            "NOT_AN_OPERATOR",
            "x",
            &["1"],
            Some("1"),
            true,
            false,
            &ctx
        ));
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percentage("50"), Some(50));
        assert_eq!(parse_percentage("50.9"), Some(50));
        assert_eq!(parse_percentage(" 0.5 "), Some(0));
        assert_eq!(parse_percentage("150"), Some(100));
        assert_eq!(parse_percentage("-3"), Some(0));
        assert_eq!(parse_percentage("abc"), None);
        assert_eq!(parse_percentage(""), None);
    }

    #[test]
    fn weights() {
        let v = |w: u32, fix: bool| VariantDef {
            name: "v".into(),
            weight: w,
            weight_type: fix.then(|| "fix".to_string()),
            ..VariantDef::default()
        };
        assert_eq!(effective_weights(&[v(1, false), v(1, false)]), vec![1, 1]);
        assert_eq!(
            effective_weights(&[v(0, false), v(0, false), v(0, false)]),
            vec![334, 333, 333]
        );
        assert_eq!(
            effective_weights(&[v(200, true), v(0, false), v(0, false)]),
            vec![200, 400, 400]
        );
        assert_eq!(
            effective_weights(&[v(200, true), v(400, false), v(400, false)]),
            vec![200, 400, 400]
        );
        assert_eq!(
            effective_weights(&[v(0, false), v(100, true), v(0, false)]),
            vec![450, 100, 450]
        );
    }
}
