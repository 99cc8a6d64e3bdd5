//! Every y-websocket frame decoder on arbitrary bytes: no panic, and whatever decodes
//! survives a re-encode unchanged. (Bytes may differ: lib0 accepts overlong varints such as
//! `96 00` for 22, and the encoder writes the shortest form.)
#![no_main]

use bytes::Bytes;
use chorus_protocol::{AwarenessUpdate, Message, StateVector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Ok(message) = Message::decode(&frame) {
        let encoded = message.encode();
        assert!(encoded.len() <= frame.len(), "re-encoding grew");
        assert_eq!(Message::decode(&encoded), Ok(message));
    }
    if let Ok(sv) = StateVector::decode(data) {
        assert_eq!(StateVector::decode(&sv.encode()), Ok(sv));
    }
    if let Ok(update) = AwarenessUpdate::decode(&frame) {
        assert_eq!(
            AwarenessUpdate::decode(&Bytes::from(update.encode())),
            Ok(update)
        );
    }
});
