//! Deduplication of appended events by uuid. An event whose uuid is already stored is a
//! duplicate: a hot row's uuid is caught by the store's unique index, a sealed event's by the
//! uuids kept beside the sealed days for [`DEDUPE_DAYS`]. Stores key uuids as 16 big-endian
//! bytes ([`uuid_key`]) and tally each event with [`tally`].

use super::AppendOutcome;
use crate::store::StoreError;

pub use super::sealed::DEDUPE_DAYS;

/// The stored form of a uuid: 16 big-endian bytes.
pub fn uuid_key(uuid: u128) -> Vec<u8> {
    uuid.to_be_bytes().to_vec()
}

/// A uuid back from its stored form.
pub fn uuid_from_key(bytes: &[u8]) -> Result<u128, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .map(u128::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("stored uuid is not 16 bytes".into()))
}

/// Whether the event at position `at` of an append is stored: not when its uuid is among the
/// sealed ones, else when the store's insert took it (a conflict on the uuid is a duplicate).
pub fn tally(out: &mut AppendOutcome, at: usize, already_sealed: bool, inserted: bool) {
    if already_sealed || !inserted {
        out.duplicates += 1;
        out.duplicate_at.push(at);
    } else {
        out.inserted += 1;
    }
}

/// Sealing `day` forgets the sealed uuids of days before the returned one: retries come
/// within minutes, so a week answers them.
pub fn uuids_kept_from(day: i64) -> i64 {
    day - DEDUPE_DAYS
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn uuid_keys_round_trip(u in any::<u128>()) {
            let key = uuid_key(u);
            prop_assert_eq!(key.len(), 16);
            prop_assert_eq!(uuid_from_key(&key).unwrap(), u);
        }

        #[test]
        fn keys_of_other_lengths_are_corrupt(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            prop_assume!(bytes.len() != 16);
            prop_assert!(uuid_from_key(&bytes).is_err());
        }

        /// Every event is counted once; the duplicates' positions ascend.
        #[test]
        fn tally_counts_every_event_once(flags in prop::collection::vec((any::<bool>(), any::<bool>()), 0..50)) {
            let mut out = AppendOutcome::default();
            for (i, (sealed, inserted)) in flags.iter().enumerate() {
                tally(&mut out, i, *sealed, *inserted);
            }
            prop_assert_eq!(out.inserted + out.duplicates, flags.len() as u64);
            prop_assert_eq!(out.duplicate_at.len() as u64, out.duplicates);
            prop_assert!(out.duplicate_at.windows(2).all(|w| w[0] < w[1]));
            let fresh = flags.iter().filter(|(s, i)| !s && *i).count() as u64;
            prop_assert_eq!(out.inserted, fresh);
        }

        #[test]
        fn a_week_of_uuids_is_kept(day in -1_000_000i64..1_000_000) {
            prop_assert_eq!(day - uuids_kept_from(day), DEDUPE_DAYS);
        }
    }
}
