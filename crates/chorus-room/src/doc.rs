//! A room's yrs document, behind the few operations a room needs, each encoding its result
//! once as a ready-to-send frame.
//!
//! yrs can still panic on crafted input (`docs/hostile-inputs.md`), and a
//! document that panicked mid-transaction may be memory-unsafe. Every call into yrs therefore runs
//! under `catch_unwind`, and a panic is reported as [`DocError::Panicked`] so the room drops this
//! document instead of serving it again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chorus_protocol::StateVector;
use chorus_protocol::SyncFrame;
use chorus_protocol::message::{SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE, sync_frame};
use chorus_protocol::update::{DocIndex, UpdateLimits, split_update_v1, validate_update_v1_in};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, GetString, ReadTxn, Transact, Update, WriteTxn};

use crate::held::{Held, HeldUpdate};

pub mod client;

pub use client::{ClientApplied, ClientUpdateError, DocLimits};

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
    delta: Arc<Mutex<Option<SyncFrame>>>,
    /// Sync step 2 with the whole document, for joiners that have none of it. Encoded at most
    /// once per document version, however many clients join.
    full_state: Option<SyncFrame>,
    /// Caps on client updates ([`RoomDoc::apply_client`]).
    limits: DocLimits,
    /// An upper bound of the encoded document size: the size last measured plus every update
    /// applied since. Measuring means encoding the whole document, so it is done only when this
    /// bound says the limit may be near.
    size_bound: usize,
    /// Structs and delete ranges waiting for missing dependencies after the last update.
    pending: usize,
    /// Parts of trusted updates that follow a hole in the document's clocks
    /// ([`RoomDoc::apply`]), in arrival order.
    waiting: Vec<HeldUpdate>,
    /// Type depth of the document's nested content, so that nesting is bounded across
    /// updates and not only within one (a chain of maps sent a few levels per update would
    /// otherwise make yrs' recursive delete overflow the stack).
    types: DocIndex,
}

impl RoomDoc {
    /// An empty document.
    ///
    /// # Errors
    /// [`DocError::Invalid`] if the update observer cannot be registered (yrs refuses only while
    /// a transaction is open, which cannot be the case for a new document).
    pub fn new() -> Result<Self, DocError> {
        Self::with_limits(DocLimits::UNLIMITED)
    }

    /// An empty document whose client updates are held to `limits`.
    ///
    /// # Errors
    /// As [`RoomDoc::new`].
    pub fn with_limits(limits: DocLimits) -> Result<Self, DocError> {
        let doc = new_document();
        let delta = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&delta);
        doc.observe_update_v1(OBSERVER_KEY, move |_txn, event| {
            let frame = SyncFrame::new(SYNC_UPDATE, &event.update);
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(frame);
        })
        .map_err(|e| DocError::Invalid(format!("cannot observe document: {e}")))?;
        Ok(Self {
            doc,
            delta,
            full_state: None,
            limits,
            size_bound: EMPTY_UPDATE.len(),
            pending: 0,
            waiting: Vec::new(),
            types: DocIndex::default(),
        })
    }

    /// Applies a Yjs v1 update and returns the sync-update frame of what it changed, or `None`
    /// when it brought nothing new.
    ///
    /// # Errors
    /// [`DocError::Invalid`] for an update yrs refuses, [`DocError::Panicked`] if yrs panicked.
    ///
    /// What follows a hole in the update's clocks (another node's update that overtook the one
    /// before it, say) waits inside the document until the hole is filled, as in
    /// [`RoomDoc::apply_client`]; [`RoomDoc::waiting`] tells how many parts wait.
    pub fn apply(&mut self, update: &[u8]) -> Result<Option<SyncFrame>, DocError> {
        let delta = self.apply_trusted(update)?;
        let more = self.retry_waiting()?;
        Ok(join_deltas(delta, more))
    }

    /// Takes out of `held` the first update this document now has every clock for.
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn take_ready<K: Copy + Eq + std::hash::Hash>(
        &self,
        held: &mut Held<K>,
    ) -> Result<Option<(K, Vec<u8>)>, DocError> {
        let sv = guard(|| self.doc.transact().state_vector())?;
        Ok(held.take_ready(|client| sv.get(&ClientID::new(client))))
    }

    /// Parts of trusted updates waiting for clocks the document lacks.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn apply_trusted(&mut self, update: &[u8]) -> Result<Option<SyncFrame>, DocError> {
        let decoded = Update::decode_v1(update).map_err(|e| DocError::Invalid(e.to_string()))?;
        // Trusted content is indexed too, so that client updates nesting into it are measured
        // from its real depth. (It passed this check when it came from a client; if it fails
        // now it is still applied, only not indexed.)
        let sv = guard(|| self.doc.transact().state_vector())?;
        let clock_of = |client: u64| sv.get(&ClientID::new(client));
        let indexed = validate_update_v1_in(
            update,
            &whole_document_limits(),
            &self.types,
            Some(&clock_of),
        );
        if let Ok((summary, _)) = &indexed
            && summary.skips_clocks()
        {
            // yrs would integrate what follows the hole behind a Skip, where Yjs waits, and
            // panics when the hole's content comes later (BlockStore::push, yrs 0.28.1).
            let split = split_update_v1(update, &clock_of)
                .map_err(|error| DocError::Invalid(error.to_string()))?;
            if let Some(later) = split.later {
                if self.waiting.len() >= MAX_WAITING {
                    // Trusted parts are recovered by the next exchange of state vectors (other
                    // nodes) or the clients' next sync step 2; memory is not.
                    tracing::warn!(
                        "too many updates waiting for missing clocks; dropping the oldest"
                    );
                    self.waiting.remove(0);
                }
                self.waiting.push(HeldUpdate {
                    update: later,
                    needs: split.needs,
                });
            }
            return match split.now {
                Some(now) => self.apply_trusted(&now),
                None => Ok(None),
            };
        }
        let delta = self.apply_decoded(decoded)?;
        if let Ok((_, added)) = indexed {
            self.types.absorb(added);
        }
        self.size_bound = self.size_bound.saturating_add(update.len());
        self.pending = self.count_pending()?;
        Ok(delta)
    }

    /// Applies every waiting part whose clocks have arrived, until none can go.
    fn retry_waiting(&mut self) -> Result<Option<SyncFrame>, DocError> {
        let mut delta = None;
        while !self.waiting.is_empty() {
            let sv = guard(|| self.doc.transact().state_vector())?;
            let clock_of = |client: u64| sv.get(&ClientID::new(client));
            let ready = self
                .waiting
                .iter()
                .position(|held| held.is_ready(&clock_of));
            let Some(ready) = ready else { break };
            let held = self.waiting.remove(ready);
            match self.apply_trusted(&held.update) {
                Ok(more) => delta = join_deltas(delta, more),
                // It was checked when it came; if yrs refuses it now, nothing else can use it.
                Err(DocError::Invalid(reason)) => {
                    tracing::warn!(%reason, "dropping a waiting update that does not apply");
                }
                Err(DocError::Panicked) => return Err(DocError::Panicked),
            }
        }
        Ok(delta)
    }

    fn apply_decoded(&mut self, update: Update) -> Result<Option<SyncFrame>, DocError> {
        let applied = guard(|| {
            let mut txn = self.doc.transact_mut();
            let applied = txn.apply_update(update);
            if applied.is_err() && txn.has_missing_updates() {
                // yrs stops at the first struct it refuses (say, a parent that is not a type)
                // and skips its retry of the pending set, although what it integrated before
                // may be what pending structs were waiting for. Retry here, or joiners (whose
                // copy of the state integrates them) and this document disagree. Found by the
                // room fuzz target (`regressions/room-partial-apply-then-pending.bin`).
                if let Some(pending) = txn.prune_pending() {
                    let _ = txn.apply_update(pending);
                }
            }
            applied
        })?;
        if let Err(error) = applied {
            // What yrs integrated before the refused struct stays in the document, so it must
            // reach the others like any change; only a refusal that changed nothing is one.
            let partial = self.take_delta();
            tracing::debug!(%error, partial = partial.is_some(), "yrs refused part of an update");
            return match partial {
                Some(delta) => Ok(Some(delta)),
                None => Err(DocError::Invalid(error.to_string())),
            };
        }
        Ok(self.take_delta())
    }

    /// The delta of the transaction that just committed, if it changed anything.
    fn take_delta(&mut self) -> Option<SyncFrame> {
        let delta = self
            .delta
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if delta.is_some() {
            self.full_state = None;
        }
        // yrs reports a change even for an update that changed nothing visible: logging and
        // relaying `00 00` to every peer would cost a log append and a broadcast each time.
        delta.filter(|frame| frame.payload().as_ref() != EMPTY_UPDATE)
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
    /// Structs still waiting for missing dependencies are not part of it (yrs'
    /// `encode_state_as_update` would add them): a peer could integrate them where this
    /// document has not, or differently, and the two would disagree from then on (FUZZING.md,
    /// findings 4 and 7). Peers get them in the delta of the change that integrates them here.
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn step2(&mut self, client_sv: &StateVector) -> Result<SyncFrame, DocError> {
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
        guard(|| SyncFrame::new(SYNC_STEP2, &self.doc.transact().encode_diff_v1(&sv)))
    }

    /// The text of the root type `name`, as it reads now (for checks and tests).
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn text(&self, name: &str) -> Result<String, DocError> {
        guard(|| {
            let text = self.doc.get_or_insert_text(name);
            text.get_string(&self.doc.transact())
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

    /// True when applying the v1 `update` would change nothing: every struct in it is already
    /// in the document and every deletion already made. This is Yjs's
    /// `snapshotContainsUpdate`, which `@hocuspocus/server` asks of a read-only client's sync
    /// step 2: a client that only says what it already has (its step 2 always repeats the
    /// whole delete set) has no edits to lose. Malformed input contains nothing.
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn contains(&self, update: &[u8]) -> Result<bool, DocError> {
        let sv = guard(|| self.doc.transact().state_vector())?;
        let mut structs_known = true;
        let runs = chorus_protocol::update::clock_runs_v1(update, |run| {
            structs_known &= run.clocks.end <= sv.get(&ClientID::new(run.client));
        });
        if runs.is_err() || !structs_known {
            return Ok(false);
        }
        guard(|| {
            let Ok(update) = Update::decode_v1(update) else {
                return false;
            };
            let known = self.doc.transact().snapshot().delete_set;
            update.delete_set().diff(&known).is_empty()
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
        let payload = self.step2(sv)?.payload();
        Ok((payload.as_ref() != EMPTY_UPDATE).then_some(payload))
    }

    /// The whole document as a Yjs v1 update, for snapshots: the integrated content (sharing
    /// the bytes of the cached full-state step 2) and, unlike what peers get, the structs still
    /// waiting for missing dependencies, so that a restart loses none of them.
    ///
    /// # Errors
    /// [`DocError::Panicked`] if yrs panicked.
    pub fn snapshot(&mut self) -> Result<Bytes, DocError> {
        if self.pending > 0 {
            return guard(|| {
                Bytes::from(
                    self.doc
                        .transact()
                        .encode_state_as_update_v1(&yrs::StateVector::default()),
                )
            });
        }
        Ok(self.full_state()?.payload())
    }

    fn full_state(&mut self) -> Result<SyncFrame, DocError> {
        if let Some(frame) = &self.full_state {
            return Ok(frame.clone());
        }
        let frame = guard(|| {
            let update = self
                .doc
                .transact()
                .encode_diff_v1(&yrs::StateVector::default());
            SyncFrame::new(SYNC_STEP2, &update)
        })?;
        self.full_state = Some(frame.clone());
        Ok(frame)
    }
}

/// Limits for validating what the server already holds: a whole document names any number of
/// clients, its types nest as deep as they were allowed to when they came in, and its encoding
/// may show content yrs collected itself next to live items (so origins are not judged).
pub fn whole_document_limits() -> UpdateLimits {
    UpdateLimits {
        max_clients: usize::MAX,
        max_type_depth: usize::MAX,
        check_origins: false,
        ..UpdateLimits::default()
    }
}

/// Most parts of trusted updates that may wait for missing clocks in one document.
const MAX_WAITING: usize = 4096;

/// What two changes in a row changed, as one frame.
pub(crate) fn join_deltas(
    first: Option<SyncFrame>,
    second: Option<SyncFrame>,
) -> Option<SyncFrame> {
    match second {
        Some(second) => Some(merge_deltas(first, &second)),
        None => first,
    }
}

/// One sync-update frame with what both deltas changed.
pub(crate) fn merge_deltas(first: Option<SyncFrame>, second: &SyncFrame) -> SyncFrame {
    let Some(first) = first else {
        return second.clone();
    };
    match yrs::merge_updates_v1([first.payload().as_ref(), second.payload().as_ref()]) {
        Ok(merged) => SyncFrame::new(SYNC_UPDATE, &merged),
        // Both were encoded by yrs a moment ago; should that ever fail, send the later one
        // and let the others catch up on their next sync.
        Err(_) => second.clone(),
    }
}

/// A v1 update with no structs and an empty delete set.
const EMPTY_UPDATE: &[u8] = &[0, 0];

/// A yrs document that counts text as Yjs does, in UTF-16 code units.
///
/// yrs counts text in UTF-8 bytes by default. A Yjs client may insert between the two halves of
/// a surrogate pair (any index inside an emoji is a valid `Y.Text` index); Yjs and yrs then
/// write U+FFFD into both halves, which turns 4 UTF-8 bytes into 6 while the UTF-16 length
/// stays 2. Counted in bytes, deleting the halves later subtracts more than was added and the
/// type's length underflows (a panic with overflow checks, a wrapped length without); counted
/// in UTF-16 units, as Yjs counts, nothing changes length. The server never edits by index, so
/// the unit is only ever seen by that bookkeeping.
pub fn new_document() -> Doc {
    Doc::with_options(yrs::Options {
        offset_kind: yrs::OffsetKind::Utf16,
        ..yrs::Options::default()
    })
}

pub(crate) fn guard<T>(operation: impl FnOnce() -> T) -> Result<T, DocError> {
    catch_unwind(AssertUnwindSafe(operation)).map_err(|_| DocError::Panicked)
}

#[cfg(test)]
mod tests;
