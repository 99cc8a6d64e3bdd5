//! What the server does with a client update: validate, then hand it to yrs. Every input the
//! validator accepts must decode in yrs (or fail only on invalid JSON, which the validator
//! leaves to yrs), apply without panicking to a fresh document and to one that already knows
//! client 1 and 2 (where clock wrap-around used to panic and free a linked block), and the
//! resulting state, which the server sends to every joiner, must validate and decode again.
//! As in the server, each document applies only what the room's own check against it accepts
//! too (`validate_update_v1_in` with the document's `DocIndex` and state vector), since some
//! rules need to know the document (the order of its clients' runs, its collected content),
//! and of an update that skips clocks only the part before its holes (`split_update_v1`).
//! Build with debug assertions (the fuzz profile enables them) so yrs' asserts fire.
#![no_main]

use chorus_protocol::update::{
    DocIndex, UpdateLimits, split_update_v1, validate_update_v1, validate_update_v1_in,
};
use libfuzzer_sys::fuzz_target;
use yrs::encoding::read::Error;
use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, OffsetKind, Options, ReadTxn, StateVector, Transact, Update};

/// Client 1 typed "hello" into text "t" and client 2 set map "m".k = 1 (v1 updates).
const SEED_UPDATES: [&[u8]; 2] = [
    &[
        0x01, 0x01, 0x01, 0x00, 0x04, 0x01, 0x01, 0x74, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ],
    &[
        0x01, 0x01, 0x02, 0x00, 0x28, 0x01, 0x01, 0x6d, 0x01, 0x6b, 0x01, 0x7d, 0x01, 0x00,
    ],
];

/// A document as the room makes one: text counted in UTF-16 units, as Yjs counts it.
fn room_doc(client: u64) -> Doc {
    Doc::with_options(Options {
        client_id: ClientID::new(client),
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    })
}

fn apply(doc: &Doc, update: Update) {
    // An Err is a clean refusal; only a panic (or abort) is a finding.
    let _ = doc.transact_mut().apply_update(update);
}

fuzz_target!(|data: &[u8]| {
    if validate_update_v1(data, &UpdateLimits::default()).is_err() {
        return;
    }
    match Update::decode_v1(data) {
        Ok(_) => {}
        Err(Error::InvalidJSON(_)) => return,
        Err(e) => panic!("validator accepted what yrs cannot decode: {e}"),
    }
    // A whole document legitimately names more clients, and nests types deeper (through
    // references the single-pass check could not follow), than one client update may.
    let state_limits = UpdateLimits {
        max_clients: usize::MAX,
        max_type_depth: usize::MAX,
        // The state may show content yrs collected itself next to live items (finding 12);
        // origins are judged on what clients send, by the room's check below.
        check_origins: false,
        ..UpdateLimits::default()
    };
    let fresh = room_doc(1000);
    let known = room_doc(1001);
    let mut known_index = DocIndex::default();
    for seed in SEED_UPDATES {
        let (_, added) = validate_update_v1_in(seed, &state_limits, &known_index, None)
            .expect("seed update validates");
        known_index.absorb(added);
        apply(&known, Update::decode_v1(seed).expect("seed update"));
    }
    let room_limits = UpdateLimits {
        max_clients: usize::MAX,
        ..UpdateLimits::default()
    };
    for (doc, index) in [(&fresh, DocIndex::default()), (&known, known_index)] {
        let sv = doc.transact().state_vector();
        let clock_of = |client: u64| sv.get(&ClientID::new(client));
        let Ok((summary, _)) = validate_update_v1_in(data, &room_limits, &index, Some(&clock_of))
        else {
            continue; // refused or held by the room
        };
        if summary.skips_clocks() {
            // The room applies what comes before the holes and holds the rest.
            let split = split_update_v1(data, &clock_of).expect("validated above");
            if let Some(now) = split.now {
                validate_update_v1(&now, &room_limits).expect("a part of an update validates");
                if let Ok(now) = Update::decode_v1(&now) {
                    apply(doc, now);
                }
            }
        } else {
            apply(doc, Update::decode_v1(data).expect("decoded above"));
        }
        let state = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        validate_update_v1(&state, &state_limits)
            .expect("the server's own state must pass its validator");
        Update::decode_v1(&state).expect("the server's own state must decode");
    }
});
