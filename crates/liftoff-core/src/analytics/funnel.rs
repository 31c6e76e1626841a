//! The rules a funnel question must keep before the engine runs it: [`FunnelRequest::validate`]
//! and the [`FunnelError`] it answers with. The JSON API deserializes a [`FunnelRequest`] and
//! the dashboard builds one from its form; both ask it whether it is valid.

use super::event::MAX_NAME_CHARS;
use super::insights::FunnelRequest;

/// Fewest steps a funnel has.
pub const MIN_FUNNEL_STEPS: usize = 2;
/// Most steps a funnel has.
pub const MAX_FUNNEL_STEPS: usize = 32;
/// Longest look-back and conversion window, in days.
pub const MAX_FUNNEL_DAYS: f64 = 3650.0;

/// Why a funnel request was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FunnelError {
    /// Fewer than [`MIN_FUNNEL_STEPS`] or more than [`MAX_FUNNEL_STEPS`] steps.
    #[error("`funnel_steps` needs 2 to 32 event names")]
    Steps { given: usize },
    /// Step `step` (1-based) is empty or longer than an event name can be.
    #[error("every step is an event name of 1 to 200 characters")]
    StepName { step: usize },
    /// `days` is not more than 0 and at most [`MAX_FUNNEL_DAYS`].
    #[error("`days` must be more than 0 and at most 3650")]
    Days,
    /// `conversion_window_days` is not between 0 and [`MAX_FUNNEL_DAYS`].
    #[error("`conversion_window_days` must be between 0 and 3650")]
    ConversionWindow,
}

impl FunnelRequest {
    /// Checks, in this order: the number of steps, each step's name (1–200 characters, as
    /// event names are), the look-back `days` (default 30) and the conversion window (default
    /// 14 days).
    pub fn validate(&self) -> Result<(), FunnelError> {
        let given = self.funnel_steps.len();
        if !(MIN_FUNNEL_STEPS..=MAX_FUNNEL_STEPS).contains(&given) {
            return Err(FunnelError::Steps { given });
        }
        if let Some(i) = self
            .funnel_steps
            .iter()
            .position(|s| s.is_empty() || s.chars().count() > MAX_NAME_CHARS)
        {
            return Err(FunnelError::StepName { step: i + 1 });
        }
        let days = self.days.unwrap_or(30.0);
        if !(days.is_finite() && days > 0.0 && days <= MAX_FUNNEL_DAYS) {
            return Err(FunnelError::Days);
        }
        if !self
            .conversion_window_days
            .is_none_or(|w| w.is_finite() && (0.0..=MAX_FUNNEL_DAYS).contains(&w))
        {
            return Err(FunnelError::ConversionWindow);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(steps: &[&str]) -> FunnelRequest {
        FunnelRequest {
            funnel_steps: steps.iter().map(|s| (*s).to_owned()).collect(),
            days: None,
            conversion_window_days: None,
            breakdown: None,
        }
    }

    #[test]
    fn a_plain_funnel_is_valid() {
        assert_eq!(req(&["signup", "purchase"]).validate(), Ok(()));
        let full = FunnelRequest {
            days: Some(3650.0),
            conversion_window_days: Some(0.0),
            breakdown: Some("plan".into()),
            ..req(&["a"; 32])
        };
        assert_eq!(full.validate(), Ok(()));
    }

    #[test]
    fn step_counts_outside_two_to_thirty_two_are_refused() {
        assert_eq!(req(&["a"]).validate(), Err(FunnelError::Steps { given: 1 }));
        assert_eq!(req(&[]).validate(), Err(FunnelError::Steps { given: 0 }));
        assert_eq!(
            req(&["a"; 33]).validate(),
            Err(FunnelError::Steps { given: 33 })
        );
    }

    #[test]
    fn step_names_are_one_to_two_hundred_characters() {
        assert_eq!(
            req(&["a", ""]).validate(),
            Err(FunnelError::StepName { step: 2 })
        );
        let long = "x".repeat(201);
        assert_eq!(
            req(&[&long, "a"]).validate(),
            Err(FunnelError::StepName { step: 1 })
        );
        // Characters, not bytes: 200 three-byte characters are a valid event name.
        let wide = "€".repeat(200);
        assert_eq!(req(&["a", &wide]).validate(), Ok(()));
    }

    #[test]
    fn windows_are_checked() {
        for days in [0.0, -1.0, 3650.5, f64::NAN, f64::INFINITY] {
            let r = FunnelRequest {
                days: Some(days),
                ..req(&["a", "b"])
            };
            assert_eq!(r.validate(), Err(FunnelError::Days), "{days}");
        }
        for w in [-1.0, 3651.0, f64::NAN] {
            let r = FunnelRequest {
                conversion_window_days: Some(w),
                ..req(&["a", "b"])
            };
            assert_eq!(r.validate(), Err(FunnelError::ConversionWindow), "{w}");
        }
        // The step count is checked first.
        let r = FunnelRequest {
            days: Some(0.0),
            ..req(&["a"])
        };
        assert_eq!(r.validate(), Err(FunnelError::Steps { given: 1 }));
    }
}
