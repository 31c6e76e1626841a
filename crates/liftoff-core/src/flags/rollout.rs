//! Gradual rollout plans: a flag's percentage raised in steps, by hand or on a schedule, paused
//! while a critical alert fires.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FlagKey;
use super::guard::{GuardCheck, Guarding, Verdict};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanState {
    /// Steps are applied when due.
    Active,
    /// Waiting: paused by a person or by a critical alert.
    Paused,
    /// The target was reached.
    Completed,
    /// A guardrail regressed and the flag went back to 0 %.
    #[serde(rename = "rolled_back")]
    RolledBack,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutPlan {
    pub flag_id: FlagKey,
    pub start_percentage: f64,
    pub target_percentage: f64,
    pub increment: f64,
    /// Minutes between steps; none means steps are applied by hand.
    pub interval_minutes: Option<u32>,
    /// The percentages the plan goes through after the start, ending at the target.
    pub steps: Vec<f64>,
    /// How many of `steps` were applied.
    pub applied: usize,
    pub next_at: Option<DateTime<Utc>>,
    pub state: PlanState,
    pub paused_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Guardrails checked against request metrics per flag value; none: an unguarded plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guarding>,
    /// When the current step began (the sample gate counts from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<DateTime<Utc>>,
    /// The last guardrail check whose verdict differed from the one before, with its evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<GuardCheck>,
}

/// The percentages from `current` to `target` in steps of `increment` (the last step lands on
/// the target exactly). Rolling back (target below current) steps down.
pub fn steps(current: f64, target: f64, increment: f64) -> Vec<f64> {
    let mut out = Vec::new();
    if increment <= 0.0 || (current - target).abs() < f64::EPSILON {
        return out;
    }
    let dir = if target > current { 1.0 } else { -1.0 };
    let mut p = current;
    while out.len() < 1000 {
        p += dir * increment;
        if (dir > 0.0 && p >= target) || (dir < 0.0 && p <= target) {
            out.push(target);
            break;
        }
        out.push((p * 1000.0).round() / 1000.0);
    }
    out
}

impl RolloutPlan {
    pub fn new(
        flag_id: FlagKey,
        current: f64,
        target: f64,
        increment: f64,
        interval_minutes: Option<u32>,
        now: DateTime<Utc>,
    ) -> Self {
        let steps = steps(current, target, increment);
        Self {
            flag_id,
            start_percentage: current,
            target_percentage: target,
            increment,
            interval_minutes,
            state: if steps.is_empty() {
                PlanState::Completed
            } else {
                PlanState::Active
            },
            next_at: interval_minutes
                .filter(|_| !steps.is_empty())
                .map(|m| now + Duration::minutes(i64::from(m))),
            steps,
            applied: 0,
            paused_reason: None,
            created_at: now,
            updated_at: now,
            guard: None,
            step_started_at: Some(now),
            last_check: None,
        }
    }

    /// Whether a due step may be applied: unguarded plans always; guarded ones once the last
    /// check saw enough requests this step and nothing regressed.
    pub fn guard_allows_step(&self) -> bool {
        self.guard.is_none()
            || self
                .last_check
                .as_ref()
                .is_some_and(|c| c.verdict == Verdict::Healthy)
    }

    /// The next percentage, if a step is due at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> Option<f64> {
        (self.state == PlanState::Active && self.next_at.is_some_and(|t| t <= now))
            .then(|| self.steps.get(self.applied).copied())
            .flatten()
    }

    /// Records that the next step was applied at `now`.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        self.applied = (self.applied + 1).min(self.steps.len());
        self.updated_at = now;
        self.step_started_at = Some(now);
        // The next step needs its own samples.
        self.last_check = None;
        if self.applied >= self.steps.len() {
            self.state = PlanState::Completed;
            self.next_at = None;
        } else if let Some(m) = self.interval_minutes {
            self.next_at = Some(now + Duration::minutes(i64::from(m)));
        }
    }

    pub fn remaining(&self) -> &[f64] {
        &self.steps[self.applied.min(self.steps.len())..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_land_on_the_target() {
        assert_eq!(steps(0.0, 50.0, 10.0), vec![10.0, 20.0, 30.0, 40.0, 50.0]);
        assert_eq!(steps(5.0, 20.0, 10.0), vec![15.0, 20.0]);
        assert_eq!(steps(50.0, 20.0, 25.0), vec![25.0, 20.0]);
        assert!(steps(10.0, 10.0, 5.0).is_empty());
        assert!(steps(0.0, 100.0, 0.0).is_empty());
        assert_eq!(steps(0.0, 100.0, 0.01).len(), 1000, "bounded");
    }

    #[test]
    fn a_scheduled_plan_advances_when_due() {
        let key = FlagKey::try_from("f".to_owned()).unwrap();
        let mut plan = RolloutPlan::new(key, 0.0, 20.0, 10.0, Some(30), Utc::now());
        let now = plan.created_at;
        assert_eq!(plan.due(now), None, "not before the interval");
        let later = now + Duration::minutes(31);
        assert_eq!(plan.due(later), Some(10.0));
        plan.advance(later);
        assert_eq!(plan.due(later), None);
        assert_eq!(plan.due(later + Duration::minutes(30)), Some(20.0));
        plan.advance(later + Duration::minutes(30));
        assert_eq!(plan.state, PlanState::Completed);
        assert_eq!(plan.due(later + Duration::days(1)), None);
    }
}
