//! A room's yrs document, behind the few operations a room needs, each encoding its result
//! once as a ready-to-send frame.
//!
//! yrs can still panic on crafted input (see `shared/reference/yrs-hostile-inputs.md`), and a
//! document that panicked mid-transaction may be memory-unsafe. Every call into yrs therefore runs
//! under `catch_unwind`, and a panic is reported as [`DocError::Panicked`] so the room drops this
//! document instead of serving it again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chorus_protocol::StateVector;
use chorus_protocol::message::{SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE, sync_frame};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, ReadTxn, Transact, Update};

/// Key of the room's update observer on its document.
const OBSERVER_KEY: &str = "chorus-room";

/// Why an operation on the document failed.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The update is malformed or does not fit the document; the document is unchanged.
    #[error("invalid update: {0}")]
    Invalid(String),
    /// yrs panicked; the document must be discarded.
    #[error("the document engine panicked")]
    Panicked,
}

/// The document of one room. Owned by the room actor, never shared.
pub struct RoomDoc {
    doc: Doc,
    /// Where the update observer leaves the delta of the transaction that just committed, already
    /// framed as a sync update. Only the room's own thread touches it.
    delta: Arc<Mutex<Option<Bytes>>>,
    /// Sync step 2 with the whole document, for joiners that have none of it. Encoded at most
    /// once per document version, however many clients join.
    full_state: Option<Bytes>,
}

impl RoomDoc {
    /// An empty document.
    ///
    /// # Errors
    /// [`DocError::Invalid`] if the update observer cannot be registered (yrs refuses only while
    /// a transaction is open, which cannot be the case for a new document).
    pub fn new() -> Result<Self, DocError> {
        let doc = Doc::new();
        let delta = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&delta);
        doc.observe_update_v1(OBSERVER_KEY, move |_txn, event| {
            let frame = sync_frame(SYNC_UPDATE, &event.update);
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(frame);
        })
        .map_err(|e| DocError::Invalid(format!("cannot observe document: {e}")))?;
        Ok(Self {
            doc,
            delta,
            full_state: None,
        })
    }

    /// Applies a Yjs v1 update and returns the sync-update frame of what it changed, or `None`
    /// when it brought nothing new.
    ///
    /// # Errors
    /// [`DocError::Invalid`] for an update yrs refuses, [`DocError::Panicked`] if yrs panicked.
    pub fn apply(&mut self, update: &[u8]) -> Result<Option<Bytes>, DocError> {
        let update = Update::decode_v1(update).map_err(|e| DocError::Invalid(e.to_string()))?;
        let applied = guard(|| {
            let mut txn = self.doc.transact_mut();
            txn.apply_update(update)
        })?;
        applied.map_err(|e| DocError::Invalid(e.to_string()))?;
        let delta = self
            .delta
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if delta.is_some() {
            self.full_state = None;
        }
        Ok(delta)
    }

    /// Sync step 1 with the document's state vector: what the server asks a joining client for.
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn step1(&self) -> Result<Bytes, DocError> {
        guard(|| sync_frame(SYNC_STEP1, &self.doc.transact().state_vector().encode_v1()))
    }

    /// Sync step 2 answering a client's state vector: everything the client is missing.
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn step2(&mut self, client_sv: &StateVector) -> Result<Bytes, DocError> {
        let needs_everything = guard(|| {
            let doc_sv = self.doc.transact().state_vector();
            client_sv
                .entries
                .iter()
                .all(|&(client, clock)| clock == 0 || doc_sv.get(&ClientID::new(client)) == 0)
        })?;
        if needs_everything {
            return self.full_state();
        }
        let sv: yrs::StateVector = client_sv
            .entries
            .iter()
            .map(|&(client, clock)| (ClientID::new(client), clock))
            .collect();
        guard(|| {
            sync_frame(
                SYNC_STEP2,
                &self.doc.transact().encode_state_as_update_v1(&sv),
            )
        })
    }

    /// This document's state vector.
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn state_vector(&self) -> Result<StateVector, DocError> {
        guard(|| {
            let sv = self.doc.transact().state_vector();
            sv.iter()
                .map(|(client, &clock)| (client.get(), clock))
                .collect()
        })
    }

    /// True when `other` has seen something of some client that this document has not.
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn lacks_any_of(&self, other: &StateVector) -> Result<bool, DocError> {
        guard(|| {
            let sv = self.doc.transact().state_vector();
            other
                .entries
                .iter()
                .any(|&(client, clock)| sv.get(&ClientID::new(client)) < clock)
        })
    }

    /// The update a peer with state vector `sv` is missing (structs it lacks and the whole delete
    /// set), or `None` when that is nothing at all.
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn diff(&mut self, sv: &StateVector) -> Result<Option<Bytes>, DocError> {
        let payload = sync_payload(&self.step2(sv)?);
        Ok((payload.as_ref() != EMPTY_UPDATE).then_some(payload))
    }

    /// The whole document as a Yjs v1 update, for snapshots. Shares the bytes of the cached
    /// full-state step 2.
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn snapshot(&mut self) -> Result<Bytes, DocError> {
        let frame = self.full_state()?;
        Ok(sync_payload(&frame))
    }

    fn full_state(&mut self) -> Result<Bytes, DocError> {
        if let Some(frame) = &self.full_state {
            return Ok(frame.clone());
        }
        let frame = guard(|| {
            let update = self
                .doc
                .transact()
                .encode_state_as_update_v1(&yrs::StateVector::default());
            sync_frame(SYNC_STEP2, &update)
        })?;
        self.full_state = Some(frame.clone());
        Ok(frame)
    }
}

/// A v1 update with no structs and an empty delete set.
const EMPTY_UPDATE: &[u8] = &[0, 0];

/// The payload of a sync frame made by [`sync_frame`]: it is the frame's tail.
pub(crate) fn sync_payload(frame: &Bytes) -> Bytes {
    let mut decoder = chorus_protocol::lib0::Decoder::new(frame);
    // The frame was encoded by us a moment ago, so these reads cannot fail; fall back to the
    // empty update rather than panic if that ever changes.
    let header = decoder
        .read_var_uint()
        .and_then(|_| decoder.read_var_uint())
        .and_then(|_| decoder.read_var_uint());
    match header {
        Ok(_) => frame.slice(decoder.position()..),
        Err(_) => Bytes::from_static(EMPTY_UPDATE),
    }
}

fn guard<T>(operation: impl FnOnce() -> T) -> Result<T, DocError> {
    catch_unwind(AssertUnwindSafe(operation)).map_err(|_| DocError::Panicked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::{GetString, Text};

    fn edit(doc: &Doc, at: u32, text: &str) -> Vec<u8> {
        let before = doc.transact().state_vector();
        let name = doc.get_or_insert_text("t");
        name.insert(&mut doc.transact_mut(), at, text);
        doc.transact().encode_state_as_update_v1(&before)
    }

    #[test]
    fn applies_updates_and_returns_each_delta_once() {
        let mut room = RoomDoc::new().expect("new doc");
        let client = Doc::with_client_id(7);
        let update = edit(&client, 0, "hello");
        let delta = room.apply(&update).expect("valid").expect("a change");
        assert_eq!(delta[..2], [0, 2]);
        assert_eq!(
            room.apply(&update).expect("valid"),
            None,
            "a duplicate changes nothing"
        );
    }

    #[test]
    fn step2_answers_with_what_the_client_lacks_and_caches_the_full_state() {
        let mut room = RoomDoc::new().expect("new doc");
        let writer = Doc::with_client_id(7);
        room.apply(&edit(&writer, 0, "hello")).expect("apply");
        let full = room.step2(&StateVector::default()).expect("step2");
        let again = room
            .step2(&StateVector::from_iter([(99, 3)]))
            .expect("step2");
        assert_eq!(full.as_ptr(), again.as_ptr(), "encoded once, shared");

        let reader = Doc::with_client_id(8);
        let payload = sync_payload(&full);
        reader
            .transact_mut()
            .apply_update(Update::decode_v1(&payload).expect("decodes"))
            .expect("applies");
        assert_eq!(
            reader
                .get_or_insert_text("t")
                .get_string(&reader.transact()),
            "hello"
        );

        room.apply(&edit(&writer, 5, " world")).expect("apply");
        let diff = room
            .step2(&StateVector::from_iter([(7, 5)]))
            .expect("step2");
        assert!(diff.len() < room.step2(&StateVector::default()).expect("full").len());
    }

    #[test]
    fn malformed_updates_are_refused() {
        let mut room = RoomDoc::new().expect("new doc");
        assert!(matches!(
            room.apply(&[0xff, 0xff]),
            Err(DocError::Invalid(_))
        ));
        assert_eq!(room.snapshot().expect("snapshot").as_ref(), [0, 0]);
    }
}
