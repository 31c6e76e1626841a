//! The per-minute error-row cap: at most [`ERRORS_PER_MINUTE`] rows are kept per (service,
//! operation, error type, minute), counting the rows already stored. A store counts the rows
//! it holds for each [`ErrorSlot`] of a write ([`error_slots`]), then keeps what
//! [`cap_errors`] admits and reports the rest as dropped.

use std::collections::{BTreeMap, BTreeSet};

use super::{ERRORS_PER_MINUTE, OperationError};

/// What the cap counts per: an error row's (service, operation, error type, minute).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrorSlot {
    pub service: String,
    pub operation: String,
    pub error_type: String,
    /// Unix minute of the failure.
    pub minute: i64,
}

/// The Unix minute an error row is filed under.
pub fn error_minute(e: &OperationError) -> i64 {
    e.at.timestamp().div_euclid(60)
}

impl ErrorSlot {
    pub fn of(e: &OperationError) -> Self {
        Self {
            service: e.service.clone(),
            operation: e.operation.clone(),
            error_type: e.error_type.clone(),
            minute: error_minute(e),
        }
    }
}

/// The distinct slots of a write's error rows: the counts a store looks up before
/// [`cap_errors`].
pub fn error_slots(errors: &[OperationError]) -> BTreeSet<ErrorSlot> {
    errors.iter().map(ErrorSlot::of).collect()
}

/// The error rows of a write that fit under the cap, in order, each with its minute, and how
/// many were dropped. `stored` holds the rows already kept per slot (a missing slot has none).
/// Earlier rows of a write win over later ones of the same slot.
pub fn cap_errors<'a>(
    errors: &'a [OperationError],
    stored: &BTreeMap<ErrorSlot, u64>,
) -> (Vec<(&'a OperationError, i64)>, u64) {
    let mut room: BTreeMap<ErrorSlot, usize> = BTreeMap::new();
    let mut kept = Vec::with_capacity(errors.len());
    let mut dropped = 0;
    for e in errors {
        let slot = ErrorSlot::of(e);
        let minute = slot.minute;
        let left = room.entry(slot).or_insert_with_key(|s| {
            let had = stored.get(s).copied().unwrap_or(0);
            ERRORS_PER_MINUTE.saturating_sub(usize::try_from(had).unwrap_or(usize::MAX))
        });
        if *left == 0 {
            dropped += 1;
            continue;
        }
        *left -= 1;
        kept.push((e, minute));
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;

    fn error(op: u8, kind: u8, second: i64) -> OperationError {
        OperationError {
            service: "app".into(),
            operation: format!("op{op}"),
            error_type: format!("E{kind}"),
            error: None,
            stack_trace: None,
            context: None,
            user_id: None,
            at: Utc
                .timestamp_opt(second, 0)
                .single()
                .unwrap_or_else(Utc::now),
        }
    }

    proptest! {
        /// Kept plus dropped is the whole write; no slot ends above the cap (stored rows
        /// included); a slot under the cap drops nothing; the rows kept keep their order.
        #[test]
        fn the_cap_holds_per_slot(
            runs in prop::collection::vec((0u8..3, 0u8..2, -300i64..300), 0..120),
            stored in prop::collection::vec(0u64..30, 12),
        ) {
            let errors: Vec<OperationError> =
                runs.iter().map(|&(o, k, s)| error(o, k, s)).collect();
            let slots: Vec<ErrorSlot> = error_slots(&errors).into_iter().collect();
            let stored: BTreeMap<ErrorSlot, u64> =
                slots.iter().cloned().zip(stored.iter().copied()).collect();
            let (kept, dropped) = cap_errors(&errors, &stored);
            prop_assert_eq!(kept.len() as u64 + dropped, errors.len() as u64);
            let mut per: BTreeMap<ErrorSlot, u64> = BTreeMap::new();
            for (e, minute) in &kept {
                prop_assert_eq!(*minute, error_minute(e));
                *per.entry(ErrorSlot::of(e)).or_default() += 1;
            }
            for slot in &slots {
                let had = stored.get(slot).copied().unwrap_or(0);
                let wrote = errors.iter().filter(|e| ErrorSlot::of(e) == *slot).count() as u64;
                let now = per.get(slot).copied().unwrap_or(0);
                let cap = ERRORS_PER_MINUTE as u64;
                prop_assert_eq!(now, wrote.min(cap.saturating_sub(had)));
            }
            let positions: Vec<usize> = kept
                .iter()
                .map(|(e, _)| errors.iter().position(|x| std::ptr::eq(x, *e)).unwrap_or(usize::MAX))
                .collect();
            prop_assert!(positions.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn minutes_are_floored_before_the_epoch() {
        assert_eq!(error_minute(&error(0, 0, -1)), -1);
        assert_eq!(error_minute(&error(0, 0, 59)), 0);
    }
}
