//! A torn, truncated or corrupted segment blob is an error, never a panic or a wrong answer.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use liftoff_analytics::{DecodeError, EventRow, Segment};
use proptest::prelude::*;

fn blob() -> Vec<u8> {
    let rows: Vec<EventRow> = (0..200)
        .map(|i| EventRow {
            ts_ms: 1_704_067_200_000 + i * 61_003,
            user: format!("user-{}", i % 13),
            session: (i % 5 != 0).then(|| format!("sess-{}", i / 9)),
            event: ["page_view", "signup", "search", "purchase"][(i % 4) as usize].to_owned(),
            properties: format!(r#"{{"path": "/p/{}", "plan": "free"}}"#, i % 6),
            uuid: (i % 3 == 0).then_some(0xdead_beef_u128 << 64 | i as u128),
        })
        .collect();
    Segment::build(&rows).unwrap().encode()
}

#[test]
fn round_trips_with_uuids_and_missing_sessions() {
    let b = blob();
    let seg = Segment::decode(&b).unwrap();
    assert_eq!(seg.encode(), b, "encoding is deterministic");
    assert_eq!(seg.len(), 200);
    assert_eq!(seg.rows().filter(|r| r.uuid.is_some()).count(), 67);
}

#[test]
fn decode_many_keeps_order_and_reports_each_blob() {
    let good = blob();
    let blobs = vec![
        good.clone(),
        good[..10].to_vec(),
        good.clone(),
        Vec::new(),
        good.clone(),
    ];
    let out = Segment::decode_many(&blobs);
    let ok: Vec<bool> = out.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [true, false, true, false, true]);
    // The query form: every row, no uuids.
    let seg = out[0].as_ref().unwrap();
    assert_eq!(seg.len(), Segment::decode(&good).unwrap().len());
    assert_eq!(seg.rows().filter(|r| r.uuid.is_some()).count(), 0);
}

#[test]
fn every_truncation_is_an_error() {
    let b = blob();
    for len in 0..b.len() {
        assert!(
            Segment::decode(&b[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
    }
    let mut longer = b.clone();
    longer.push(0);
    assert!(Segment::decode(&longer).is_err());
}

#[test]
fn every_single_byte_change_is_an_error() {
    let b = blob();
    for at in 0..b.len() {
        for delta in [1u8, 0x80, 0xff] {
            let mut m = b.clone();
            m[at] = m[at].wrapping_add(delta);
            assert!(
                Segment::decode(&m).is_err(),
                "byte {at} += {delta} went unnoticed"
            );
        }
    }
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Segment::decode(&bytes);
    }

    #[test]
    fn garbage_behind_a_valid_header_is_rejected(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut b = b"LSEG\x01\x00\x00\x00".to_vec();
        b.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(&bytes);
        prop_assert!(Segment::decode(&b).is_err());
    }

    #[test]
    fn random_damage_is_an_error(edits in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..8)) {
        let mut b = blob();
        for (at, x) in edits {
            let at = at % b.len();
            b[at] ^= x;
        }
        // Several edits could cancel out (x ^ x); only a changed blob must fail.
        if b != blob() {
            prop_assert!(Segment::decode(&b).is_err());
        }
    }
}

#[test]
fn errors_name_the_problem() {
    let mut b = blob();
    let last = b.len() - 1;
    b[last] ^= 1;
    assert_eq!(
        Segment::decode(&b).unwrap_err(),
        DecodeError::ChecksumMismatch
    );
    assert_eq!(
        Segment::decode(&blob()[..30]).unwrap_err(),
        DecodeError::Truncated
    );
}
