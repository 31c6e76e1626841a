//! Evaluation as a pure function: a rule, the value just measured and the previous state give
//! the next state and, when the status changed, the transition.

use chrono::{DateTime, Duration, Utc};

use super::hooks::{AlertStatus, AlertTransition};
use super::model::Rule;

/// A rule's current alert, as evaluation sees it. `status: None` means inactive.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertState {
    /// The current alert instance (none while inactive or before it is stored).
    pub alert_id: Option<i64>,
    pub status: Option<AlertStatus>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_true_at: Option<DateTime<Utc>>,
}

impl AlertState {
    pub fn active(&self) -> bool {
        matches!(
            self.status,
            Some(AlertStatus::Pending | AlertStatus::Firing)
        )
    }
}

/// Whether the condition holds; no data means it does not.
pub fn holds(rule: &Rule, value: Option<f64>) -> bool {
    value.is_some_and(|v| v.is_finite() && rule.op.holds(v, rule.threshold))
}

/// One evaluation: inactive → pending when the condition starts holding (or straight to firing
/// with `for` 0); pending → firing once it held for `for`; pending → resolved when it stops
/// before; firing → resolved once it has not held for `keep_firing_for`.
pub fn step(
    rule: &Rule,
    value: Option<f64>,
    prev: AlertState,
    now: DateTime<Utc>,
) -> (AlertState, Option<AlertTransition>) {
    let cond = holds(rule, value);
    let for_ = Duration::seconds(rule.for_seconds.max(0));
    let keep = Duration::seconds(rule.keep_firing_for_seconds.max(0));
    let mut next = prev.clone();
    let to = match prev.status {
        None | Some(AlertStatus::Resolved) => {
            if !cond {
                return (prev, None);
            }
            next.alert_id = None;
            next.started_at = Some(now);
            next.last_true_at = Some(now);
            Some(if for_.is_zero() {
                AlertStatus::Firing
            } else {
                AlertStatus::Pending
            })
        }
        Some(AlertStatus::Pending) => {
            if cond {
                next.last_true_at = Some(now);
                let started = prev.started_at.unwrap_or(now);
                (now - started >= for_).then_some(AlertStatus::Firing)
            } else {
                Some(AlertStatus::Resolved)
            }
        }
        Some(AlertStatus::Firing) => {
            if cond {
                next.last_true_at = Some(now);
                None
            } else {
                let last = prev.last_true_at.unwrap_or(now);
                (now - last >= keep).then_some(AlertStatus::Resolved)
            }
        }
    };
    let Some(status) = to else {
        return (next, None);
    };
    next.status = Some(status);
    let t = AlertTransition {
        alert_id: next.alert_id.unwrap_or(0),
        rule_id: rule.id,
        rule_name: rule.name.clone(),
        severity: rule.severity,
        status,
        at: now,
        summary: summary(rule, value),
        value: value.unwrap_or(0.0),
        labels: rule.labels(),
    };
    (next, Some(t))
}

/// `error_rate 0.12 > 0.05` in words people read in a notification.
pub fn summary(rule: &Rule, value: Option<f64>) -> String {
    let op = match rule.op {
        super::model::Op::Gt => ">",
        super::model::Op::Lt => "<",
    };
    match value {
        Some(v) => format!(
            "{}: {} is {} ({op} {})",
            rule.name,
            rule.metric.as_str(),
            round(v),
            round(rule.threshold)
        ),
        None => format!("{}: {} has no data", rule.name, rule.metric.as_str()),
    }
}

fn round(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::alerts::model::{Metric, Op, RuleScope, Severity};
    use proptest::prelude::*;

    fn rule(for_s: i64, keep_s: i64) -> Rule {
        Rule {
            id: 1,
            name: "errors".into(),
            metric: Metric::ErrorRate,
            scope: RuleScope::default(),
            op: Op::Gt,
            threshold: 0.05,
            for_seconds: for_s,
            keep_firing_for_seconds: keep_s,
            severity: Severity::Critical,
            enabled: true,
            description: String::new(),
            slo: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn pending_then_firing_then_resolved() {
        let r = rule(60, 120);
        let (s, tr) = step(&r, Some(0.2), AlertState::default(), t(0));
        assert_eq!(tr.unwrap().status, AlertStatus::Pending);
        let (s, tr) = step(&r, Some(0.2), s, t(30));
        assert!(tr.is_none());
        let (s, tr) = step(&r, Some(0.2), s, t(60));
        assert_eq!(tr.unwrap().status, AlertStatus::Firing);
        let (s, tr) = step(&r, Some(0.01), s, t(90));
        assert!(tr.is_none(), "kept firing");
        let (s, tr) = step(&r, Some(0.2), s, t(100));
        assert!(tr.is_none());
        let (s, tr) = step(&r, None, s, t(219));
        assert!(tr.is_none());
        let (s, tr) = step(&r, None, s, t(220));
        assert_eq!(tr.unwrap().status, AlertStatus::Resolved);
        assert_eq!(s.status, Some(AlertStatus::Resolved));
    }

    #[test]
    fn a_short_blip_never_fires() {
        let r = rule(60, 0);
        let (s, _) = step(&r, Some(0.2), AlertState::default(), t(0));
        let (s, tr) = step(&r, Some(0.0), s, t(15));
        assert_eq!(tr.unwrap().status, AlertStatus::Resolved);
        let (_, tr) = step(&r, Some(0.0), s, t(90));
        assert!(tr.is_none());
    }

    #[test]
    fn for_zero_fires_at_once_and_lt_compares_below() {
        let mut r = rule(0, 0);
        let (_, tr) = step(&r, Some(0.2), AlertState::default(), t(0));
        assert_eq!(tr.unwrap().status, AlertStatus::Firing);
        r.op = Op::Lt;
        let (_, tr) = step(&r, Some(0.2), AlertState::default(), t(0));
        assert!(tr.is_none());
    }

    proptest! {
        /// Whatever the values, a firing alert never resolves while the condition held within
        /// the last `keep_firing_for`, and resolved→firing needs `for` of holding.
        #[test]
        fn no_flapping_within_keep_firing_for(
            values in proptest::collection::vec(proptest::option::of(0.0f64..0.1), 1..80),
            for_s in 0i64..120,
            keep_s in 0i64..300,
        ) {
            let r = rule(for_s, keep_s);
            let mut s = AlertState::default();
            let mut last_true: Option<i64> = None;
            let mut last_fired: Option<i64> = None;
            let mut last_start: Option<i64> = None;
            for (i, v) in values.iter().enumerate() {
                let now = i as i64 * 15;
                let cond = holds(&r, *v);
                let was = s.status;
                let (n, tr) = step(&r, *v, s, t(now));
                if cond { last_true = Some(now); }
                if let Some(tr) = &tr {
                    prop_assert_ne!(Some(tr.status), was);
                    match tr.status {
                        AlertStatus::Resolved => {
                            if was == Some(AlertStatus::Firing) {
                                prop_assert!(!cond);
                                prop_assert!(now - last_true.unwrap() >= keep_s);
                            }
                        }
                        AlertStatus::Firing => {
                            prop_assert!(cond);
                            if was == Some(AlertStatus::Pending) {
                                prop_assert!(now - last_start.unwrap() >= for_s);
                            } else {
                                prop_assert_eq!(for_s, 0);
                                last_start = Some(now);
                            }
                            last_fired = Some(now);
                        }
                        AlertStatus::Pending => { last_start = Some(now); }
                    }
                }
                if n.status == Some(AlertStatus::Firing) && !cond {
                    prop_assert!(now - last_true.unwrap() < keep_s);
                }
                s = n;
            }
            let _ = last_fired;
        }
    }
}
