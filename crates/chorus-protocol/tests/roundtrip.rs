//! Properties of the wire format: every message survives encode → decode (y-websocket's, and
//! Hocuspocus's addressed frames), no input panics a decoder, every strict prefix of a frame is
//! refused, varints round-trip; and the CRDT
//! property the server relies on when it relays updates in whatever order they arrive: real
//! yrs documents converge under reordered and duplicated delivery.

mod common;

use bytes::Bytes;
use chorus_protocol::lib0::{
    Decoder, MAX_SAFE_INTEGER, var_uint_len, write_var_string, write_var_uint,
};
use chorus_protocol::{
    AwarenessEntry, AwarenessUpdate, Message, StateVector, SyncMessage, UpdateLimits,
    message::AuthMessage, validate_update_v1,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn client_id() -> impl Strategy<Value = u64> {
    prop_oneof![0..=MAX_SAFE_INTEGER, Just(MAX_SAFE_INTEGER), 0..256u64]
}

fn state_vector() -> impl Strategy<Value = StateVector> {
    vec((client_id(), any::<u32>()), 0..12).prop_map(|entries| StateVector { entries })
}

fn payload() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..300).prop_map(Bytes::from)
}

fn awareness() -> impl Strategy<Value = AwarenessUpdate> {
    let entry = (client_id(), any::<u32>(), any::<String>()).prop_map(|(client, clock, state)| {
        AwarenessEntry {
            client,
            clock,
            state: Bytes::from(state),
        }
    });
    vec(entry, 0..6).prop_map(|entries| AwarenessUpdate { entries })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        state_vector().prop_map(|sv| Message::Sync(SyncMessage::Step1(sv))),
        payload().prop_map(|u| Message::Sync(SyncMessage::Step2(u))),
        payload().prop_map(|u| Message::Sync(SyncMessage::Update(u))),
        awareness().prop_map(Message::Awareness),
        any::<String>().prop_map(|reason| Message::Auth(AuthMessage::PermissionDenied { reason })),
        Just(Message::Auth(AuthMessage::PermissionGranted)),
        Just(Message::QueryAwareness),
        (0..=chorus_protocol::lib0::MAX_SAFE_INTEGER).prop_map(Message::Durable),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(message in message()) {
        let frame = message.encode();
        prop_assert_eq!(Message::decode(&frame), Ok(message));
    }

    #[test]
    fn every_strict_prefix_of_a_frame_is_an_error(message in message()) {
        let frame = message.encode();
        for end in 0..frame.len() {
            let prefix = frame.slice(..end);
            prop_assert!(Message::decode(&prefix).is_err(), "prefix of {} bytes decoded", end);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(bytes in vec(any::<u8>(), 0..512)) {
        let frame = Bytes::from(bytes);
        // Errors are fine; a panic fails the test. Whatever decodes must survive a re-encode
        // (the bytes may shrink: lib0 accepts overlong varints, the encoder writes the shortest).
        if let Ok(message) = Message::decode(&frame) {
            let encoded = message.encode();
            prop_assert!(encoded.len() <= frame.len());
            prop_assert_eq!(Message::decode(&encoded), Ok(message));
        }
        let _ = StateVector::decode(&frame);
        let _ = AwarenessUpdate::decode(&frame);
        let _ = validate_update_v1(&frame, &UpdateLimits::default());
    }

    #[test]
    fn frames_with_a_valid_header_never_panic(kind in 0..4u8, sub in 0..3u8, body in vec(any::<u8>(), 0..256)) {
        // Random bytes rarely get past the first varint; these do.
        let mut frame = vec![kind, sub];
        frame.extend(body);
        let _ = Message::decode(&Bytes::from(frame));
    }

    #[test]
    fn var_uints_round_trip(value in prop_oneof![0..=MAX_SAFE_INTEGER, 0..=u64::from(u32::MAX), 0..300u64]) {
        let mut out = Vec::new();
        write_var_uint(&mut out, value);
        prop_assert_eq!(out.len(), var_uint_len(value));
        let mut decoder = Decoder::new(&out);
        prop_assert_eq!(decoder.read_var_uint(), Ok(value));
        prop_assert!(decoder.is_empty());
        let mut decoder = Decoder::new(&out);
        prop_assert_eq!(decoder.read_var_u32().ok(), u32::try_from(value).ok());
    }

    #[test]
    fn var_uints_beyond_53_bits_are_refused(value in (MAX_SAFE_INTEGER + 1)..=u64::MAX) {
        let mut out = Vec::new();
        write_var_uint(&mut out, value);
        prop_assert!(Decoder::new(&out).read_var_uint().is_err());
    }

    #[test]
    fn overlong_var_uints_decode_like_lib0(value in 0..128u64, padding in 1..4usize) {
        // lib0 reads `0x80 | low bits` continuation bytes followed by zeros as the same number.
        let mut bytes = vec![0x80 | value as u8];
        bytes.extend(std::iter::repeat_n(0x80, padding - 1));
        bytes.push(0);
        prop_assert_eq!(Decoder::new(&bytes).read_var_uint(), Ok(value));
    }

    #[test]
    fn var_strings_round_trip(text in any::<String>()) {
        let mut out = Vec::new();
        write_var_string(&mut out, &text);
        let mut decoder = Decoder::new(&out);
        prop_assert_eq!(decoder.read_var_string(), Ok(text.as_str()));
        prop_assert!(decoder.is_empty());
    }
}

/// A small deterministic generator for delivery orders (proptest supplies the seed, so a
/// failing order shrinks and replays like any other input).
struct Shuffle(u64);

impl Shuffle {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Every index of `0..n` at least once, some twice, in a random order.
    fn order_with_duplicates(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for _ in 0..n / 2 + 1 {
            if n > 0 {
                order.push(self.below(n));
            }
        }
        for i in (1..order.len()).rev() {
            order.swap(i, self.below(i + 1));
        }
        order
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// yrs' `TestConnector` property: N replicas edit concurrently (text, maps, arrays, XML,
    /// nested types, sub-documents), exchange some updates while editing, then receive every
    /// update in a random order with duplicates, and end identical.
    #[test]
    fn documents_converge_under_reordered_duplicated_delivery(
        docs in 2..=4usize,
        steps in vec(common::step(), 1..20),
        seed in any::<u64>().prop_map(|s| s | 1),
    ) {
        let mut session = common::Session::new(docs, 1);
        session.run(steps).map_err(TestCaseError::fail)?;
        let log = session.observed();
        let mut shuffle = Shuffle(seed);
        for doc in &session.docs {
            for i in shuffle.order_with_duplicates(log.len()) {
                let update = &log[i].1;
                prop_assert!(
                    validate_update_v1(update, &UpdateLimits::default()).is_ok(),
                    "validator refused a relayed update"
                );
                common::apply(doc, update).map_err(TestCaseError::fail)?;
            }
        }
        let first = common::snapshot(&session.docs[0]);
        for doc in &session.docs[1..] {
            prop_assert_eq!(&common::snapshot(doc), &first);
        }
    }
}

/// Messages a Hocuspocus frame carries with y-websocket's own numbering (sync, awareness,
/// query-awareness).
fn hocuspocus_y_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        state_vector().prop_map(|sv| Message::Sync(SyncMessage::Step1(sv))),
        payload().prop_map(|u| Message::Sync(SyncMessage::Step2(u))),
        payload().prop_map(|u| Message::Sync(SyncMessage::Update(u))),
        awareness().prop_map(Message::Awareness),
        Just(Message::QueryAwareness),
    ]
}

proptest! {
    #[test]
    fn no_input_panics_the_hocuspocus_decoder(bytes in vec(any::<u8>(), 0..400)) {
        let _ = chorus_protocol::hocuspocus::Incoming::decode(&Bytes::from(bytes));
    }

    #[test]
    fn addressed_hocuspocus_frames_round_trip(
        address in "[a-z0-9/._-]{0,40}",
        message in hocuspocus_y_message(),
    ) {
        use chorus_protocol::hocuspocus::{HocusMessage, Incoming, addressed};
        let frame = addressed(&address, &message.encode());
        prop_assert_eq!(
            Incoming::decode(&frame),
            Ok(Incoming::Addressed { address, message: HocusMessage::Y(message) })
        );
    }
}
