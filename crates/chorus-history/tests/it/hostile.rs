//! Bytes from the store are still bytes: garbage, cut or mutated states and hostile nesting give
//! errors, never panics.

use chorus_history::{HistoryError, content_json, diff, restore_update};
use proptest::prelude::*;
use yrs::{Any, Array, Map, MapPrelim, MapRef, Transact, WriteTxn};

use crate::helpers::{doc, state};
use crate::restore::{prosemirror_edits, prosemirror_version};

/// Runs every entry point on `bytes` (alone and against a real state); they may fail, not panic.
fn all_entry_points(bytes: &[u8], real: &[u8]) {
    let _ = content_json(bytes);
    let _ = diff(bytes, real);
    let _ = diff(real, bytes);
    let _ = restore_update(bytes, real, 7);
    let _ = restore_update(real, bytes, 7);
}

#[test]
fn cut_and_mutated_states_never_panic() {
    let d = doc(1);
    prosemirror_version(&d);
    let version = state(&d);
    prosemirror_edits(&d);
    let real = state(&d);
    for len in 0..real.len() {
        all_entry_points(&real[..len], &version);
    }
    for i in 0..real.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = real.clone();
            bytes[i] ^= flip;
            all_entry_points(&bytes, &version);
        }
    }
}

#[test]
fn garbage_is_an_error() {
    assert!(matches!(
        content_json(&[0xff, 0xff, 0xff]),
        Err(HistoryError::Invalid(_))
    ));
    assert!(restore_update(&[], &[0x01], 1).is_err());
}

#[test]
fn client_ids_past_53_bits_are_refused() {
    let s = state(&doc(1));
    assert!(matches!(
        restore_update(&s, &s, 1 << 53),
        Err(HistoryError::InvalidClientId(_))
    ));
    assert!(restore_update(&s, &s, (1 << 53) - 1).is_ok());
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    // 300 maps, each inside the previous one.
    let d = doc(1);
    {
        let mut txn = d.transact_mut();
        let mut m: MapRef = txn.get_or_insert_map("deep");
        for _ in 0..300 {
            m = m.insert(&mut txn, "m", MapPrelim::default());
        }
    }
    let deep = state(&d);
    let flat = state(&doc(2));
    // The validator or the reader refuses it, whichever sees it first.
    let too_deep = |r: Result<_, HistoryError>| {
        matches!(r, Err(HistoryError::TooDeep(_) | HistoryError::Invalid(_)))
    };
    assert!(too_deep(content_json(&deep).map(|_| ())));
    assert!(too_deep(diff(&flat, &deep).map(|_| ())));
    assert!(too_deep(restore_update(&flat, &deep, 3).map(|_| ())));

    // A value nested 300 levels deep.
    let d = doc(3);
    let mut any = Any::from(1);
    for _ in 0..300 {
        any = Any::from(vec![any]);
    }
    d.get_or_insert_array("a")
        .push_back(&mut d.transact_mut(), any);
    assert!(too_deep(content_json(&state(&d)).map(|_| ())));

    // Deep but honest trees are fine: 200 levels read, and 100 levels (under the 128 the server
    // accepts from clients) restore.
    let nested = |levels: usize| {
        let d = doc(4);
        {
            let mut txn = d.transact_mut();
            let mut m: MapRef = txn.get_or_insert_map("deep");
            for _ in 0..levels {
                m = m.insert(&mut txn, "m", MapPrelim::default());
            }
            m.insert(&mut txn, "leaf", 1);
        }
        state(&d)
    };
    assert!(content_json(&nested(200)).is_ok());
    crate::helpers::assert_restores(&flat, &nested(100));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let d = doc(1);
        prosemirror_version(&d);
        all_entry_points(&bytes, &state(&d));
    }
}
