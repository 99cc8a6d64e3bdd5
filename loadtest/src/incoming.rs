//! A y-websocket or Hocuspocus message from the server, seen in place: what a simulated user
//! needs from it, as slices of the frame, without allocating.
//!
//! A Hocuspocus frame is `varString(document) • varUint(type) • payload`, and its sync,
//! awareness and query-awareness bodies are exactly y-websocket messages
//! ([`chorus_protocol::hocuspocus`]), so both protocols share one reader past the address.
//!
//! The checks are those of `chorus_protocol::Message::decode` (one message per frame, nothing
//! left over, awareness entries well formed), so a frame counts as malformed exactly when it
//! did with the decoding reader; only the head of an update that arrived in fragments and was
//! not kept whole ([`crate::wire::Message::whole`]) cannot be checked to its end.

use chorus_protocol::ProtocolError;
use chorus_protocol::hocuspocus::{
    self as hocus, AUTH_AUTHENTICATED, AUTH_TOKEN, MSG_CLOSE, MSG_STATELESS, MSG_SYNC_REPLY,
    MSG_SYNC_STATUS, PING, PONG,
};
use chorus_protocol::lib0::Decoder;
use chorus_protocol::message::{
    AUTH_PERMISSION_DENIED, AUTH_PERMISSION_GRANTED, MSG_AUTH, MSG_AWARENESS, MSG_QUERY_AWARENESS,
    MSG_SYNC, SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE,
};

/// One message, borrowing from its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// Sync step 1: the server's state vector (v1).
    Step1(&'a [u8]),
    /// Sync step 2: an update (only its head when the frame was cut).
    Step2(&'a [u8]),
    /// A document update (only its head when the frame was cut).
    Update(&'a [u8]),
    /// An awareness update, already checked: iterate it with [`awareness_entries`].
    Awareness(&'a [u8]),
    /// The server refused access.
    PermissionDenied,
    /// Permission granted, or a query for our awareness: nothing to do.
    Ignored,
    /// Hocuspocus: the server's answer to one of our updates (or to our sync step 2), in the
    /// order they were sent: `true` applied (in Chorus: durable), `false` refused.
    SyncStatus(bool),
    /// Hocuspocus: a bare ping frame, to be answered with a bare pong.
    Ping,
    /// Hocuspocus: the server ended our session for the document.
    Closed,
    /// Hocuspocus: a frame addressed to a document this socket never opened.
    OtherDocument,
}

/// Reads the message in `frame`; `whole` is false when the frame holds only the head of a
/// longer update.
///
/// # Errors
/// What `chorus_protocol::Message::decode` refuses: truncation, unknown types, bytes left over,
/// malformed awareness entries.
pub fn parse(frame: &[u8], whole: bool) -> Result<Incoming<'_>, ProtocolError> {
    let mut decoder = Decoder::new(frame);
    let message = match decoder.read_var_uint()? {
        MSG_SYNC => sync(&mut decoder, whole)?,
        MSG_AWARENESS => awareness(&mut decoder)?,
        MSG_AUTH => match decoder.read_var_uint()? {
            AUTH_PERMISSION_DENIED => {
                decoder.read_var_string()?;
                Incoming::PermissionDenied
            }
            AUTH_PERMISSION_GRANTED => Incoming::Ignored,
            other => return Err(ProtocolError::UnknownAuthType(other)),
        },
        MSG_QUERY_AWARENESS => Incoming::Ignored,
        other => return Err(ProtocolError::UnknownMessageType(other)),
    };
    finish(&decoder, message)
}

/// Reads the Hocuspocus frame in `frame`, which should be addressed to `document` (a frame for
/// another document is [`Incoming::OtherDocument`]); `whole` as for [`parse`].
///
/// # Errors
/// What [`parse`] refuses in the body, a malformed address, or a type or auth sub-type the
/// Hocuspocus server does not send.
pub fn parse_hocuspocus<'a>(
    frame: &'a [u8],
    whole: bool,
    document: &str,
) -> Result<Incoming<'a>, ProtocolError> {
    match frame {
        [PING] => return Ok(Incoming::Ping),
        [PONG] => return Ok(Incoming::Ignored),
        _ => {}
    }
    let mut decoder = Decoder::new(frame);
    if hocus::document_of(decoder.read_var_string()?) != document {
        return Ok(Incoming::OtherDocument);
    }
    let message = match decoder.read_var_uint()? {
        // A sync reply is the server's step 1 (`@hocuspocus/server` sends its step 1 so, and
        // the provider answers it with a step 2 like any other).
        MSG_SYNC | MSG_SYNC_REPLY => sync(&mut decoder, whole)?,
        MSG_AWARENESS => awareness(&mut decoder)?,
        MSG_QUERY_AWARENESS => Incoming::Ignored,
        MSG_AUTH => match decoder.read_var_uint()? {
            // The server asks for a fresh token: the run's token does not change.
            AUTH_TOKEN => Incoming::Ignored,
            hocus::AUTH_PERMISSION_DENIED => {
                decoder.read_var_string()?;
                Incoming::PermissionDenied
            }
            AUTH_AUTHENTICATED => {
                decoder.read_var_string()?;
                Incoming::Ignored
            }
            other => return Err(ProtocolError::UnknownAuthType(other)),
        },
        MSG_STATELESS => {
            decoder.read_var_string()?;
            Incoming::Ignored
        }
        MSG_CLOSE => {
            if !decoder.is_empty() {
                decoder.read_var_string()?;
            }
            Incoming::Closed
        }
        MSG_SYNC_STATUS => Incoming::SyncStatus(decoder.read_var_uint()? == 1),
        other => return Err(ProtocolError::UnknownMessageType(other)),
    };
    finish(&decoder, message)
}

/// A sync message's body, after its type.
fn sync<'a>(decoder: &mut Decoder<'a>, whole: bool) -> Result<Incoming<'a>, ProtocolError> {
    let sync_type = decoder.read_var_uint()?;
    let payload = if whole {
        decoder.read_var_bytes()?
    } else {
        // The length covers bytes that were not kept: take what there is.
        decoder.read_var_uint()?;
        decoder.read_rest()
    };
    Ok(match sync_type {
        SYNC_STEP1 => {
            chorus_protocol::StateVector::decode(payload)?;
            Incoming::Step1(payload)
        }
        SYNC_STEP2 => Incoming::Step2(payload),
        SYNC_UPDATE => Incoming::Update(payload),
        other => return Err(ProtocolError::UnknownSyncType(other)),
    })
}

/// An awareness message's body, after its type, with every entry checked.
fn awareness<'a>(decoder: &mut Decoder<'a>) -> Result<Incoming<'a>, ProtocolError> {
    let payload = decoder.read_var_bytes()?;
    for entry in awareness_entries(payload) {
        entry?;
    }
    Ok(Incoming::Awareness(payload))
}

/// One message per frame: nothing may follow it.
fn finish<'a>(decoder: &Decoder<'a>, message: Incoming<'a>) -> Result<Incoming<'a>, ProtocolError> {
    if !decoder.is_empty() {
        return Err(ProtocolError::TrailingBytes(decoder.remaining()));
    }
    Ok(message)
}

/// One awareness entry: who, which clock, and whether it removes the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The client whose state this is.
    pub client: u64,
    /// Its awareness clock.
    pub clock: u32,
    /// The state is `null`: the client left.
    pub removal: bool,
}

/// The entries of an awareness update (the payload of an awareness message), in order; an
/// error ends the iteration.
pub fn awareness_entries(payload: &[u8]) -> impl Iterator<Item = Result<Entry, ProtocolError>> {
    let mut decoder = Decoder::new(payload);
    let mut remaining = None;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let result = (|| {
            let left = match remaining {
                Some(left) => left,
                None => decoder.read_var_uint()?,
            };
            if left == 0 {
                if !decoder.is_empty() {
                    return Err(ProtocolError::TrailingBytes(decoder.remaining()));
                }
                return Ok(None);
            }
            remaining = Some(left - 1);
            let client = decoder.read_var_uint()?;
            let clock = decoder.read_var_u32()?;
            let state = decoder.read_var_string()?;
            Ok(Some(Entry {
                client,
                clock,
                removal: state.as_bytes() == chorus_protocol::awareness::NULL_STATE,
            }))
        })();
        failed = result.is_err();
        result.transpose()
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chorus_protocol::awareness::encode_entries;
    use chorus_protocol::message::{awareness_frame, sync_frame};
    use chorus_protocol::{AwarenessEntry, AwarenessUpdate, Message};

    use super::*;

    #[test]
    fn reads_what_the_decoder_reads() {
        let update = [
            0x01, 0x01, 0x05, 0x00, 0x04, 0x01, 0x01, 0x74, 0x02, 0x61, 0x62, 0x00,
        ];
        let frame = sync_frame(SYNC_UPDATE, &update);
        assert_eq!(parse(&frame, true), Ok(Incoming::Update(&update[..])));
        let frame = sync_frame(SYNC_STEP2, &update);
        assert_eq!(parse(&frame, true), Ok(Incoming::Step2(&update[..])));
        // A head cut out of a longer update still names it.
        assert_eq!(parse(&frame[..8], false), Ok(Incoming::Step2(&update[..5])));
        let frame = sync_frame(SYNC_STEP1, &[0x01, 0x05, 0x02]);
        assert_eq!(
            parse(&frame, true),
            Ok(Incoming::Step1(&[0x01, 0x05, 0x02][..]))
        );
    }

    #[test]
    fn refuses_what_the_decoder_refuses() {
        let frames: [&[u8]; 5] = [
            &[0x00, 0x02, 0x05, 0x01],       // payload longer than the frame
            &[0x00, 0x02, 0x01, 0x00, 0x00], // a byte after the message
            &[0x00, 0x07, 0x00],             // unknown sync type
            &[0x09],                         // unknown message type
            &[0x01, 0x03, 0x01, 0x05, 0x00], // awareness entry cut short
        ];
        for frame in frames {
            assert!(parse(frame, true).is_err(), "{frame:?}");
            assert!(
                Message::decode(&Bytes::copy_from_slice(frame)).is_err(),
                "{frame:?}"
            );
        }
    }

    #[test]
    fn awareness_entries_match_the_decoder() {
        let entries = [
            AwarenessEntry {
                client: 7,
                clock: 3,
                state: Bytes::from_static(br#"{"cursor":1}"#),
            },
            AwarenessEntry {
                client: 9,
                clock: 1,
                state: Bytes::from_static(b"null"),
            },
        ];
        let payload = encode_entries(entries.iter());
        let frame = awareness_frame(&payload);
        let Ok(Incoming::Awareness(seen)) = parse(&frame, true) else {
            panic!("not awareness");
        };
        let ours: Vec<Entry> = awareness_entries(seen)
            .collect::<Result<_, _>>()
            .expect("valid");
        let decoded = AwarenessUpdate::decode(&Bytes::from(payload)).expect("valid");
        let theirs: Vec<Entry> = decoded
            .entries
            .iter()
            .map(|e| Entry {
                client: e.client,
                clock: e.clock,
                removal: e.is_removal(),
            })
            .collect();
        assert_eq!(ours, theirs);
        assert!(ours[1].removal && !ours[0].removal);
    }

    #[test]
    fn reads_hocuspocus_frames_as_the_provider_does() {
        use chorus_protocol::hocuspocus::{
            addressed, authenticated_frame, close_frame, permission_denied_frame, sync_status_body,
        };
        let update = [
            0x01, 0x01, 0x05, 0x00, 0x04, 0x01, 0x01, 0x74, 0x02, 0x61, 0x62, 0x00,
        ];
        let frame = addressed("d", &sync_frame(SYNC_UPDATE, &update));
        assert_eq!(
            parse_hocuspocus(&frame, true, "d"),
            Ok(Incoming::Update(&update[..]))
        );
        // `@hocuspocus/server` sends its step 1 as a sync reply (type 4).
        let mut reply = vec![1, b'd', 4];
        reply.extend_from_slice(&sync_frame(SYNC_STEP1, &[0x00])[1..]);
        assert_eq!(
            parse_hocuspocus(&reply, true, "d"),
            Ok(Incoming::Step1(&[0x00][..]))
        );
        let ok = addressed("d", &sync_status_body(true));
        assert_eq!(
            parse_hocuspocus(&ok, true, "d"),
            Ok(Incoming::SyncStatus(true))
        );
        let refused = addressed("d", &sync_status_body(false));
        assert_eq!(
            parse_hocuspocus(&refused, true, "d"),
            Ok(Incoming::SyncStatus(false))
        );
        assert_eq!(
            parse_hocuspocus(&authenticated_frame("d", false), true, "d"),
            Ok(Incoming::Ignored)
        );
        assert_eq!(
            parse_hocuspocus(&permission_denied_frame("d", "no"), true, "d"),
            Ok(Incoming::PermissionDenied)
        );
        assert_eq!(
            parse_hocuspocus(&close_frame("d", "gone"), true, "d"),
            Ok(Incoming::Closed)
        );
        assert_eq!(parse_hocuspocus(&[PING], true, "d"), Ok(Incoming::Ping));
        // v4 session awareness addresses the document as `name\0session`.
        let session = addressed("d\0s1", &sync_status_body(true));
        assert_eq!(
            parse_hocuspocus(&session, true, "d"),
            Ok(Incoming::SyncStatus(true))
        );
        assert_eq!(
            parse_hocuspocus(&ok, true, "e"),
            Ok(Incoming::OtherDocument)
        );
        let mut trailing = ok.to_vec();
        trailing.push(0);
        assert_eq!(
            parse_hocuspocus(&trailing, true, "d"),
            Err(ProtocolError::TrailingBytes(1))
        );
        assert!(parse_hocuspocus(&[1, b'd', 99], true, "d").is_err());
    }
}
