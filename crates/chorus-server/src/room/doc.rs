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
use chorus_protocol::update::{
    DocIndex, Split, UpdateError, UpdateLimits, split_update_v1, validate_update_v1,
    validate_update_v1_in,
};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc, ReadTxn, Transact, Update, WriteTxn};

use super::held::{Held, HeldUpdate};

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

/// Why a client's update was not applied ([`RoomDoc::apply_client`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientUpdateError {
    /// The update would take the document past one of its [`DocLimits`]; the document is
    /// unchanged. The sender is closed with 1008 (policy violation).
    #[error("{detail}")]
    OverLimit {
        /// The limit, as a short stable name (close reason, log, metric label).
        rule: &'static str,
        /// Short reason for the close frame.
        reason: &'static str,
        /// The limit that was hit, for the log.
        detail: String,
    },
    /// The validator refused the update against the document (bytes no Yjs or yrs encoder
    /// writes, see `chorus-protocol/RULES.md`); the document is unchanged. The sender is
    /// closed with 1007 (invalid payload).
    #[error("{detail}")]
    Refused {
        /// The rule ([`UpdateError::rule`]).
        rule: &'static str,
        /// What it found, for the log.
        detail: String,
    },
    /// Malformed, or yrs panicked: as for [`RoomDoc::apply`].
    #[error(transparent)]
    Doc(#[from] DocError),
}

/// What became of a client's update ([`RoomDoc::apply_client`]).
#[derive(Debug, Default)]
pub struct ClientApplied {
    /// The sync-update frame of what it changed, as [`RoomDoc::apply`] returns it.
    pub delta: Option<Bytes>,
    /// What of it waits for clocks the document lacks, in the order it must be applied.
    pub held: Vec<HeldUpdate>,
}

impl ClientApplied {
    fn held(update: HeldUpdate) -> Self {
        Self {
            delta: None,
            held: vec![update],
        }
    }
}

/// What one document may cost, whatever its clients send. Fake client ids, structs that wait
/// forever for dependencies that never come, and sheer size are free for an attacker and cost
/// the server on every later edit and every join (`shared/reference/yrs-hostile-inputs.md`,
/// H3–H6 and H10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocLimits {
    /// Largest size of the document's full state (Yjs v1 encoding, what every joiner
    /// downloads and every snapshot stores) that a client update may grow it to.
    pub max_bytes: usize,
    /// Most distinct client ids that may have written to the document.
    pub max_clients: usize,
    /// Most client ids new to the document that one connection may bring over its lifetime,
    /// so that a client cannot fill the document's quota a few ids per update.
    pub max_clients_per_connection: usize,
    /// Most structs and delete ranges that may wait for missing dependencies
    /// (yrs' pending update and pending delete set together).
    pub max_pending: usize,
}

impl DocLimits {
    /// No limits: for what the server already trusts (its own snapshots and log, other nodes,
    /// the HTTP API).
    pub const UNLIMITED: Self = Self {
        max_bytes: usize::MAX,
        max_clients: usize::MAX,
        max_clients_per_connection: usize::MAX,
        max_pending: usize::MAX,
    };
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
            let frame = sync_frame(SYNC_UPDATE, &event.update);
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
    pub fn apply(&mut self, update: &[u8]) -> Result<Option<Bytes>, DocError> {
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

    fn apply_trusted(&mut self, update: &[u8]) -> Result<Option<Bytes>, DocError> {
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
    fn retry_waiting(&mut self) -> Result<Option<Bytes>, DocError> {
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

    /// Applies a client's update like [`RoomDoc::apply`], unless it would take the document
    /// past its [`DocLimits`], and holds back what cannot be applied yet:
    ///
    /// * what follows a hole in the update's clocks (it starts past the document's clock for
    ///   one of its clients, or holds Skip structs) is returned in [`ClientApplied::held`],
    ///   with the clocks it waits for, and so is an update with an item whose origins the
    ///   document does not hold yet; Yjs keeps such structs pending, and the room keeps them
    ///   the same way (`room/held.rs`) rather than let yrs integrate them behind a hole;
    /// * an update naming client ids new to the document beyond `max_clients` (or beyond
    ///   `max_clients_per_connection`, counting the new ids the sender's earlier updates
    ///   brought, which `introduced` carries and this call increases), one that could
    ///   grow the encoded document past `max_bytes` (its current size plus the update's), and
    ///   one that nests shared types deeper than the validator's type-depth limit counted from
    ///   the document's root is refused before yrs applies it;
    /// * whether structs will wait for missing dependencies only yrs knows, so that cap is
    ///   checked after applying: what the update added to the pending set is dropped again
    ///   (the earlier pending state is restored), and the update is refused if it changed
    ///   nothing else. If part of it did integrate, that part is kept and returned as usual
    ///   (it is valid content the others must get) and only its unintegrable rest is dropped.
    ///
    /// # Errors
    /// [`ClientUpdateError::OverLimit`] with the reason (the document is unchanged), or a
    /// [`DocError`] as for [`RoomDoc::apply`].
    pub fn apply_client(
        &mut self,
        update: &[u8],
        introduced: &mut usize,
    ) -> Result<ClientApplied, ClientUpdateError> {
        // The validator again, now against what the document holds (type depth, characters
        // earlier updates wrote, the order of its clients' runs, its clocks); its index learns
        // the update only once it is applied.
        let limits = UpdateLimits {
            max_clients: usize::MAX,
            ..UpdateLimits::default()
        };
        let sv = guard(|| self.doc.transact().state_vector())?;
        let clock_of = |client: u64| sv.get(&ClientID::new(client));
        let (summary, added) =
            match validate_update_v1_in(update, &limits, &self.types, Some(&clock_of)) {
                Ok(checked) => checked,
                Err(UpdateError::OriginsAheadOfDocument {
                    needs_client,
                    needs_clock,
                    ..
                }) => {
                    // The origins may be behind a hole of this very update: cut at the holes
                    // first, so that the part before them is not held for what comes after.
                    let split = split_update_v1(update, &clock_of)
                        .map_err(|error| DocError::Invalid(error.to_string()))?;
                    if split.later.is_some() {
                        return self.apply_split(split, introduced);
                    }
                    return Ok(ClientApplied::held(HeldUpdate {
                        update: update.to_vec(),
                        needs: vec![(needs_client, needs_clock)],
                    }));
                }
                Err(error) if error.is_policy() => {
                    return Err(ClientUpdateError::OverLimit {
                        rule: error.rule(),
                        reason: refusal_reason(&error),
                        detail: error.to_string(),
                    });
                }
                Err(error) => {
                    return Err(ClientUpdateError::Refused {
                        rule: error.rule(),
                        detail: error.to_string(),
                    });
                }
            };
        if summary.skips_clocks() {
            let split = split_update_v1(update, &clock_of)
                .map_err(|error| DocError::Invalid(error.to_string()))?;
            return self.apply_split(split, introduced);
        }
        let decoded = Update::decode_v1(update).map_err(|e| DocError::Invalid(e.to_string()))?;
        let max_clients = self.limits.max_clients;
        let (known, new) = guard(|| {
            let new = decoded
                .state_vector()
                .iter()
                .filter(|(client, _)| sv.get(client) == 0)
                .count();
            (sv.len(), new)
        })?;
        if new > 0 && known.saturating_add(new) > max_clients {
            return Err(ClientUpdateError::OverLimit {
                rule: "too_many_document_clients",
                reason: "too many client ids in the document",
                detail: format!("the document may have at most {max_clients} client ids"),
            });
        }
        let per_connection = self.limits.max_clients_per_connection;
        if new > 0 && introduced.saturating_add(new) > per_connection {
            return Err(ClientUpdateError::OverLimit {
                rule: "too_many_clients_per_connection",
                reason: "too many client ids from one connection",
                detail: format!(
                    "one connection may bring at most {per_connection} client ids new to the document"
                ),
            });
        }
        let max_bytes = self.limits.max_bytes;
        if self.size_bound.saturating_add(update.len()) > max_bytes {
            self.size_bound = sync_payload(&self.full_state()?).len();
            if self.size_bound.saturating_add(update.len()) > max_bytes {
                return Err(ClientUpdateError::OverLimit {
                    rule: "document_too_large",
                    reason: "document too large",
                    detail: format!("the document may not grow past {max_bytes} bytes"),
                });
            }
        }
        let pending_before = self.pending;
        let restore = if pending_before > 0 {
            Some(self.pending_parts()?)
        } else {
            None
        };
        let mut delta = self.apply_decoded(decoded)?;
        self.size_bound = self.size_bound.saturating_add(update.len());
        self.pending = self.count_pending()?;
        let max_pending = self.limits.max_pending;
        if self.pending > max_pending && self.pending > pending_before {
            guard(|| self.doc.transact_mut().prune_pending())?;
            for part in restore.into_iter().flatten().flatten() {
                // The old pending state may now integrate: keep what that changes as well.
                if let Some(more) = self.apply(&part)? {
                    delta = Some(merge_deltas(delta, &more));
                }
            }
            self.pending = self.count_pending()?;
            if delta.is_none() {
                // Nothing of it is in the document, so nothing of it goes into the index.
                return Err(ClientUpdateError::OverLimit {
                    rule: "too_many_pending",
                    reason: "too many structs waiting for missing dependencies",
                    detail: format!(
                        "more than {max_pending} structs would wait for missing dependencies"
                    ),
                });
            }
        }
        self.types.absorb(added);
        *introduced = introduced.saturating_add(new);
        let more = self.retry_waiting()?;
        Ok(ClientApplied {
            delta: join_deltas(delta, more),
            held: Vec::new(),
        })
    }

    /// Applies the part of a split update that can go now, and holds the rest.
    fn apply_split(
        &mut self,
        split: Split,
        introduced: &mut usize,
    ) -> Result<ClientApplied, ClientUpdateError> {
        let later = split.later.map(|update| HeldUpdate {
            update,
            needs: split.needs,
        });
        let mut applied = match split.now {
            // The part before the holes has none, so it is not split again.
            Some(now) => self.apply_client(&now, introduced)?,
            None => ClientApplied::default(),
        };
        applied.held.extend(later);
        Ok(applied)
    }

    /// The pending update and pending delete set as Yjs v1 updates, to re-apply later.
    fn pending_parts(&self) -> Result<[Option<Vec<u8>>; 2], DocError> {
        guard(|| {
            let txn = self.doc.transact();
            let store = txn.store();
            let structs = store.pending_update().map(|p| p.update.encode_v1());
            let deletes = store.pending_ds().map(|ds| {
                let mut update = vec![0]; // no structs, then the delete set
                update.extend(ds.encode_v1());
                update
            });
            [structs, deletes]
        })
    }

    /// Structs and delete ranges waiting for missing dependencies.
    fn count_pending(&self) -> Result<usize, DocError> {
        let has_pending = guard(|| self.doc.transact().has_missing_updates())?;
        if !has_pending {
            return Ok(0);
        }
        // yrs' encoding of what it holds, counted by the validator (which needs no document).
        let unbounded = whole_document_limits();
        Ok(self
            .pending_parts()?
            .iter()
            .flatten()
            .map(|part| {
                validate_update_v1(part, &unbounded)
                    .map_or(part.len() / 2, |s| s.structs + s.delete_ranges)
            })
            .sum())
    }

    fn apply_decoded(&mut self, update: Update) -> Result<Option<Bytes>, DocError> {
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
    fn take_delta(&mut self) -> Option<Bytes> {
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
        delta.filter(|frame| sync_payload(frame).as_ref() != EMPTY_UPDATE)
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
        guard(|| sync_frame(SYNC_STEP2, &self.doc.transact().encode_diff_v1(&sv)))
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
                .encode_diff_v1(&yrs::StateVector::default());
            sync_frame(SYNC_STEP2, &update)
        })?;
        self.full_state = Some(frame.clone());
        Ok(frame)
    }
}

/// The close reason for an update the validator refused against the document (1008).
fn refusal_reason(error: &UpdateError) -> &'static str {
    match error {
        UpdateError::TypeTooDeep { .. } => "shared types nested too deep",
        _ => "update over a limit",
    }
}

/// Limits for validating what the server already holds: a whole document names any number of
/// clients, its types nest as deep as they were allowed to when they came in, and its encoding
/// may show content yrs collected itself next to live items (so origins are not judged).
fn whole_document_limits() -> UpdateLimits {
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
fn join_deltas(first: Option<Bytes>, second: Option<Bytes>) -> Option<Bytes> {
    match second {
        Some(second) => Some(merge_deltas(first, &second)),
        None => first,
    }
}

/// One sync-update frame with what both deltas changed.
fn merge_deltas(first: Option<Bytes>, second: &Bytes) -> Bytes {
    let Some(first) = first else {
        return second.clone();
    };
    match yrs::merge_updates_v1([sync_payload(&first).as_ref(), sync_payload(second).as_ref()]) {
        Ok(merged) => sync_frame(SYNC_UPDATE, &merged),
        // Both were encoded by yrs a moment ago; should that ever fail, send the later one
        // and let the others catch up on their next sync.
        Err(_) => second.clone(),
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

/// A yrs document that counts text as Yjs does, in UTF-16 code units.
///
/// yrs counts text in UTF-8 bytes by default. A Yjs client may insert between the two halves of
/// a surrogate pair (any index inside an emoji is a valid `Y.Text` index); Yjs and yrs then
/// write U+FFFD into both halves, which turns 4 UTF-8 bytes into 6 while the UTF-16 length
/// stays 2. Counted in bytes, deleting the halves later subtracts more than was added and the
/// type's length underflows (a panic with overflow checks, a wrapped length without); counted
/// in UTF-16 units, as Yjs counts, nothing changes length. The server never edits by index, so
/// the unit is only ever seen by that bookkeeping.
pub(crate) fn new_document() -> Doc {
    Doc::with_options(yrs::Options {
        offset_kind: yrs::OffsetKind::Utf16,
        ..yrs::Options::default()
    })
}

fn guard<T>(operation: impl FnOnce() -> T) -> Result<T, DocError> {
    catch_unwind(AssertUnwindSafe(operation)).map_err(|_| DocError::Panicked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::types::ToJson;
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

    /// An update by `client` writing `text` into root text `root`, as a new replica would.
    fn write_as(client: u64, root: &str, text: &str) -> Vec<u8> {
        let doc = Doc::with_client_id(client);
        let shared = doc.get_or_insert_text(root);
        shared.insert(&mut doc.transact_mut(), 0, text);
        doc.transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    }

    /// "o" by `client` at clock 0, right of clock 3 of `origin`: it must wait for `origin`.
    fn after_missing_origin(client: u8, origin: u8) -> Vec<u8> {
        vec![1, 1, client, 0, 0x84, origin, 3, 1, b'o', 0]
    }

    impl RoomDoc {
        /// [`RoomDoc::apply_client`] for a connection that sends just this update.
        fn apply_client_alone(
            &mut self,
            update: &[u8],
        ) -> Result<Option<Bytes>, ClientUpdateError> {
            self.apply_client(update, &mut 0).map(|applied| {
                assert!(applied.held.is_empty(), "nothing held: {:?}", applied.held);
                applied.delta
            })
        }
    }

    fn limited(limits: DocLimits) -> RoomDoc {
        RoomDoc::with_limits(limits).expect("new doc")
    }

    fn over_limit(result: Result<Option<Bytes>, ClientUpdateError>) -> &'static str {
        match result {
            Err(ClientUpdateError::OverLimit { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn one_connection_may_bring_only_so_many_new_clients_over_several_updates() {
        let mut room = limited(DocLimits {
            max_clients_per_connection: 2,
            ..DocLimits::UNLIMITED
        });
        let mut introduced = 0;
        room.apply_client(&write_as(1, "t", "a"), &mut introduced)
            .expect("first client");
        room.apply_client(&write_as(2, "t", "b"), &mut introduced)
            .expect("second client");
        let before = room.state_vector().expect("sv");
        let refused = room
            .apply_client(&write_as(3, "t", "c"), &mut introduced)
            .map(|applied| applied.delta);
        assert_eq!(
            over_limit(refused),
            "too many client ids from one connection"
        );
        assert_eq!(room.state_vector().expect("sv"), before, "nothing applied");
        assert_eq!(introduced, 2);
        // Another connection has its own allowance.
        room.apply_client(&write_as(3, "t", "c"), &mut 0)
            .expect("another connection");
        // Ids the document already has cost nothing.
        let again = write_as(1, "u", "d");
        let mut more = 0;
        room.apply_client(&write_as(4, "t", "e"), &mut more)
            .expect("new");
        room.apply_client(&write_as(5, "t", "f"), &mut more)
            .expect("new");
        assert_eq!(more, 2);
        let _ = room.apply_client(&again, &mut more);
        assert_eq!(more, 2, "a known client id is not new");
    }

    #[test]
    fn an_update_naming_too_many_new_clients_is_refused_and_changes_nothing() {
        let mut room = limited(DocLimits {
            max_clients: 2,
            ..DocLimits::UNLIMITED
        });
        room.apply_client_alone(&write_as(1, "t", "a"))
            .expect("first client");
        room.apply_client_alone(&write_as(2, "t", "b"))
            .expect("second client");
        let before = room.snapshot().expect("snapshot");
        let reason = over_limit(room.apply_client_alone(&write_as(3, "t", "c")));
        assert!(reason.contains("client ids"), "{reason}");
        assert_eq!(room.snapshot().expect("snapshot"), before);
        // Known clients may go on writing.
        let more = Doc::with_client_id(1);
        let shared = more.get_or_insert_text("t");
        more.transact_mut()
            .apply_update(Update::decode_v1(&before).expect("decodes"))
            .expect("applies");
        let sv = more.transact().state_vector();
        shared.insert(&mut more.transact_mut(), 0, "x");
        let next = more.transact().encode_state_as_update_v1(&sv);
        assert!(
            room.apply_client_alone(&next)
                .expect("known client")
                .is_some()
        );
    }

    #[test]
    fn an_update_growing_the_document_past_its_size_is_refused_and_changes_nothing() {
        let mut room = limited(DocLimits {
            max_bytes: 1000,
            ..DocLimits::UNLIMITED
        });
        room.apply_client_alone(&write_as(1, "t", &"a".repeat(400)))
            .expect("fits");
        let before = room.snapshot().expect("snapshot");
        let reason = over_limit(room.apply_client_alone(&write_as(2, "t", &"b".repeat(700))));
        assert!(reason.contains("too large"), "{reason}");
        assert_eq!(room.snapshot().expect("snapshot"), before);
        room.apply_client_alone(&write_as(3, "t", &"c".repeat(300)))
            .expect("still fits");
        // The server's own writes (snapshots, log, other nodes) are not limited.
        room.apply(&write_as(4, "t", &"d".repeat(2000)))
            .expect("trusted");
    }

    #[test]
    fn structs_waiting_for_missing_dependencies_are_capped_and_dropped_again() {
        let mut room = limited(DocLimits {
            max_pending: 3,
            ..DocLimits::UNLIMITED
        });
        room.apply_client_alone(&write_as(1, "t", "hello"))
            .expect("base");
        for client in 10..13 {
            assert_eq!(
                room.apply_client_alone(&after_missing_origin(client, client + 10))
                    .expect("under the cap"),
                None,
                "nothing integrates yet"
            );
        }
        assert_eq!(room.pending, 3);
        let before = room.snapshot().expect("snapshot");
        let reason = over_limit(room.apply_client_alone(&after_missing_origin(13, 23)));
        assert!(reason.contains("missing dependencies"), "{reason}");
        assert_eq!(room.pending, 3, "the refused update's structs were dropped");
        assert_eq!(room.snapshot().expect("snapshot"), before);
        // What was pending before still integrates once its dependency arrives.
        room.apply_client_alone(&write_as(20, "t", "abcd"))
            .expect("dependency");
        assert_eq!(room.pending, 2);
    }

    /// Applies `update` for a connection and returns what was held.
    fn held_of(room: &mut RoomDoc, update: &[u8]) -> Vec<HeldUpdate> {
        room.apply_client(update, &mut 0).expect("not refused").held
    }

    #[test]
    fn an_update_past_the_documents_clock_is_held_until_the_clocks_before_it_arrive() {
        let mut room = limited(DocLimits::UNLIMITED);
        room.apply_client_alone(&write_as(1, "t", "hello"))
            .expect("base");
        let before = room.snapshot().expect("snapshot");
        // "gap" at clock 10 of client 1, which the document has up to clock 5.
        let gap = [1, 1, 1, 10, 0x84, 1, 9, 3, b'g', b'a', b'p', 0];
        let held = held_of(&mut room, &gap);
        assert_eq!(
            held,
            vec![HeldUpdate {
                update: gap.to_vec(),
                needs: vec![(1, 10)]
            }]
        );
        assert_eq!(
            room.snapshot().expect("snapshot"),
            before,
            "nothing applied"
        );
        // Clocks 5..10 arrive ("world"), then the held update goes in like any other.
        let world = [1, 1, 1, 5, 0x84, 1, 4, 5, b'w', b'o', b'r', b'l', b'd', 0];
        room.apply_client_alone(&world).expect("the missing clocks");
        room.apply_client_alone(&held[0].update)
            .expect("in step now")
            .expect("a change");
        assert_eq!(
            room.doc
                .get_or_insert_text("t")
                .get_string(&room.doc.transact()),
            "helloworldgap"
        );
    }

    #[test]
    fn a_trusted_update_past_the_documents_clock_waits_inside_the_document() {
        // Another node's update that overtook the one before it: yrs would integrate it behind
        // a hole and panic when the hole's content came (BlockStore::push).
        let mut room = RoomDoc::new().expect("new doc");
        room.apply(&write_as(1, "t", "hello")).expect("base");
        let gap = [1, 1, 1, 10, 0x84, 1, 9, 3, b'g', b'a', b'p', 0];
        assert_eq!(room.apply(&gap).expect("not refused"), None, "nothing yet");
        assert_eq!(room.waiting(), 1);
        let world = [1, 1, 1, 5, 0x84, 1, 4, 5, b'w', b'o', b'r', b'l', b'd', 0];
        let delta = room.apply(&world).expect("the hole").expect("a change");
        assert_eq!(room.waiting(), 0);
        let text = |doc: &Doc| doc.get_or_insert_text("t").get_string(&doc.transact());
        assert_eq!(text(&room.doc), "helloworldgap");
        // One delta carries both, so peers get the waiting part too.
        let peer = Doc::new();
        peer.transact_mut()
            .apply_update(Update::decode_v1(&write_as(1, "t", "hello")).expect("decodes"))
            .expect("applies");
        peer.transact_mut()
            .apply_update(Update::decode_v1(&sync_payload(&delta)).expect("decodes"))
            .expect("applies");
        assert_eq!(text(&peer), "helloworldgap");
    }

    #[test]
    fn a_skip_inside_an_update_applies_what_comes_before_it_and_holds_the_rest() {
        let mut room = limited(DocLimits::UNLIMITED);
        room.apply_client_alone(&write_as(1, "t", "hello"))
            .expect("base");
        // "!" right after the document's clock, a hole of 3, "?" after it.
        let skip = [
            1, 3, 1, 5, 0x84, 1, 4, 1, b'!', 0x0a, 3, 0x84, 1, 8, 1, b'?', 0,
        ];
        let held = held_of(&mut room, &skip);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].needs, vec![(1, 9)]);
        let text = |room: &RoomDoc| {
            room.doc
                .get_or_insert_text("t")
                .get_string(&room.doc.transact())
        };
        assert_eq!(text(&room), "hello!");
        // The hole: clocks 6..9 ("abc").
        room.apply_client_alone(&[1, 1, 1, 6, 0x84, 1, 5, 3, b'a', b'b', b'c', 0])
            .expect("the hole");
        room.apply_client_alone(&held[0].update)
            .expect("in step now");
        assert_eq!(text(&room), "hello!abc?");
    }

    #[test]
    fn an_update_straddling_the_documents_clock_applies_its_new_tail() {
        let mut room = limited(DocLimits::UNLIMITED);
        let hello = write_as(1, "t", "hello");
        room.apply_client_alone(&hello).expect("base");
        // Clocks 3..8 of client 1: "lo" the document holds, "abc" it does not. The tail
        // integrates right of clock 4, as Yjs does with a struct it partly knows.
        let straddling = [1, 1, 1, 3, 0x84, 1, 2, 5, b'l', b'o', b'a', b'b', b'c', 0];
        room.apply_client_alone(&straddling)
            .expect("not refused")
            .expect("a change");
        assert_eq!(
            room.doc
                .get_or_insert_text("t")
                .get_string(&room.doc.transact()),
            "helloabc"
        );
        // All of it again (a client's step 2 racing its own update) changes nothing.
        assert_eq!(room.apply_client_alone(&hello).expect("a resend"), None);
    }

    #[test]
    fn an_item_whose_origins_the_document_lacks_is_held_until_they_arrive() {
        let mut room = limited(DocLimits::UNLIMITED);
        room.apply_client_alone(&write_as(1, "t", "abcdefgh"))
            .expect("base");
        // "x" by client 2 between clocks 9 and 2 of client 1, which the document has up to 8.
        let ahead = [1, 1, 2, 0, 0xc4, 1, 9, 1, 2, 1, b'x', 0];
        let held = held_of(&mut room, &ahead);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].needs, vec![(1, 10)]);
    }

    #[test]
    fn a_cut_inside_an_emoji_reads_as_in_yjs_and_deleting_the_halves_keeps_lengths_sound() {
        // "k😀z" by client 1, then "x" by client 2 with its origins inside the emoji (the exact
        // bytes Yjs 13.6 writes for `text.insert(2, 'x')`), then client 1 deletes all it wrote. Yjs writes
        // U+FFFD into both halves; counted in UTF-8 bytes, deleting them underflowed yrs' text
        // length (a panic in this build, which checks overflow).
        let mut room = limited(DocLimits::UNLIMITED);
        room.apply_client_alone(&[
            1, 1, 1, 0, 4, 1, 1, b't', 6, b'k', 0xf0, 0x9f, 0x98, 0x80, b'z', 0,
        ])
        .expect("the emoji");
        room.apply_client_alone(&[1, 1, 2, 0, 0xc4, 1, 1, 1, 2, 1, b'x', 0])
            .expect("a cut inside it is not refused")
            .expect("a change");
        let text = |doc: &Doc| doc.get_or_insert_text("t").get_string(&doc.transact());
        assert_eq!(text(&room.doc), "k\u{fffd}x\u{fffd}z", "as Yjs reads it");
        let replica = Doc::new();
        let state = room.snapshot().expect("state");
        replica
            .transact_mut()
            .apply_update(Update::decode_v1(&state).expect("decodes"))
            .expect("applies");
        assert_eq!(text(&replica), text(&room.doc));
        room.apply_client_alone(&[0, 1, 1, 1, 0, 4])
            .expect("the delete")
            .expect("a change");
        assert_eq!(text(&room.doc), "x");
        assert_eq!(
            room.doc.get_or_insert_text("t").len(&room.doc.transact()),
            1
        );
        // The fuzz finding that first showed the underflow, through the trusted path.
        let mut trusted = RoomDoc::new().expect("new doc");
        let _ = trusted.apply(include_bytes!(
            "../../../chorus-protocol/fuzz/regressions/yrs-delete-block-len-underflow.bin"
        ));
        trusted.snapshot().expect("still usable");
    }

    /// Replays a file of one-byte-length-prefixed y-websocket frames (the room fuzz target's
    /// format) through the room as one connection, held updates included, and checks that a
    /// joiner built from the room's state reads exactly what the room reads.
    fn replay_as_one_connection(frames: &[u8]) -> RoomDoc {
        let mut room = RoomDoc::new().expect("new doc");
        let mut held: Vec<HeldUpdate> = Vec::new();
        let mut rest = frames;
        while let Some((&len, tail)) = rest.split_first() {
            let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
            rest = tail;
            let Ok(chorus_protocol::Message::Sync(
                chorus_protocol::SyncMessage::Update(update)
                | chorus_protocol::SyncMessage::Step2(update),
            )) = chorus_protocol::Message::decode(&Bytes::copy_from_slice(frame))
            else {
                continue;
            };
            if validate_update_v1(&update, &UpdateLimits::default()).is_err() {
                continue;
            }
            if let Ok(applied) = room.apply_client(&update, &mut 0) {
                held.extend(applied.held);
            }
            while let Some(ready) = held.iter().position(|h| {
                let sv = room.state_vector().expect("sv");
                h.needs.iter().all(|&(client, clock)| {
                    sv.entries
                        .iter()
                        .any(|&(c, have)| c == client && have >= clock)
                })
            }) {
                let update = held.remove(ready).update;
                if let Ok(applied) = room.apply_client(&update, &mut 0) {
                    held.extend(applied.held);
                }
            }
        }
        let joiner = Doc::new();
        let state = room.snapshot().expect("state");
        joiner
            .transact_mut()
            .apply_update(Update::decode_v1(&state).expect("decodes"))
            .expect("applies");
        // Root types made by updates are untyped until read as something: read "t" as text.
        let text = |doc: &Doc| doc.get_or_insert_text("t").get_string(&doc.transact());
        assert_eq!(
            text(&joiner),
            text(&room.doc),
            "a joiner reads the room's text"
        );
        assert_eq!(
            contents(&joiner),
            contents(&room.doc),
            "a joiner reads the room"
        );
        room
    }

    #[test]
    fn items_next_to_collected_content_are_taken_and_read_alike_everywhere() {
        // Both were refused ('update refers to collected content') or forked the room before
        // yrs was patched to collect such items as Yjs does (vendor/yrs/CHORUS-PATCHES.md).
        for frames in [
            &include_bytes!(
                "../../../chorus-protocol/fuzz/regressions/room-origin-in-collected-content.bin"
            )[..],
            &include_bytes!(
                "../../../chorus-protocol/fuzz/regressions/room-pending-item-then-gc-origin.bin"
            )[..],
        ] {
            replay_as_one_connection(frames);
        }
    }

    /// Every root type of `doc` as JSON, by name.
    fn contents(doc: &Doc) -> Vec<(String, String)> {
        let txn = doc.transact();
        let mut roots: Vec<(String, String)> = txn
            .root_refs()
            .map(|(name, value)| (name.to_owned(), format!("{:?}", value.to_json(&txn))))
            .collect();
        roots.sort();
        roots
    }

    #[test]
    fn content_yrs_collects_while_applying_reads_the_same_in_a_replica() {
        // Items whose parents lie inside deleted string content, which yrs collects while
        // applying, and a later item with one of them as its origin (`fuzz/FUZZING.md`, finding
        // 12): whatever the room keeps, a joiner must read the same.
        let update = include_bytes!(
            "../../../chorus-protocol/fuzz/regressions/vta-origin-in-content-yrs-collects.bin"
        );
        for with_seed in [false, true] {
            let mut room = RoomDoc::new().expect("new doc");
            if with_seed {
                room.apply(&write_as(1, "t", "hello")).expect("seed");
            }
            let applied = room.apply_client_alone(update);
            assert!(
                matches!(applied, Ok(Some(_))),
                "the room takes it (seed: {with_seed}): {applied:?}"
            );
            let joined = Doc::new();
            let state = room.snapshot().expect("state");
            joined
                .transact_mut()
                .apply_update(Update::decode_v1(&state).expect("decodes"))
                .expect("applies");
            assert_eq!(contents(&joined), contents(&room.doc), "seed: {with_seed}");
            assert_eq!(
                joined.transact().state_vector(),
                room.doc.transact().state_vector()
            );
        }
    }

    #[test]
    fn what_yrs_applied_before_refusing_a_struct_is_kept_consistent_and_sent() {
        // Two updates from the room fuzz target: the first waits for client 31337; the second
        // brings it but has a struct whose parent is not a type, which yrs refuses midway.
        let input: &[u8] = include_bytes!(
            "../../../chorus-protocol/fuzz/regressions/room-partial-apply-then-pending.bin"
        );
        let mut room = RoomDoc::new().expect("new doc");
        let mut sent = Vec::new();
        let mut rest = input;
        while let Some((&len, tail)) = rest.split_first() {
            let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
            rest = tail;
            if let Ok(chorus_protocol::Message::Sync(
                chorus_protocol::SyncMessage::Update(update)
                | chorus_protocol::SyncMessage::Step2(update),
            )) = chorus_protocol::Message::decode(&Bytes::copy_from_slice(frame))
                && let Ok(Some(delta)) = room.apply(&update)
            {
                sent.push(sync_payload(&delta));
            }
        }
        assert!(!sent.is_empty(), "the partly applied update went out");
        let state_vector = |doc: &Doc| {
            let mut sv: Vec<(u64, u32)> = doc
                .transact()
                .state_vector()
                .iter()
                .filter(|&(_, &clock)| clock > 0)
                .map(|(client, &clock)| (client.get(), clock))
                .collect();
            sv.sort_unstable();
            sv
        };
        let room_sv = state_vector(&room.doc);
        // A joiner built from the room's state, and a peer built from what the room sent.
        let joiner = Doc::with_client_id(1);
        let state = room.snapshot().expect("snapshot");
        joiner
            .transact_mut()
            .apply_update(Update::decode_v1(&state).expect("decodes"))
            .expect("applies");
        assert_eq!(state_vector(&joiner), room_sv);
        let peer = Doc::with_client_id(2);
        for delta in sent {
            let _ = peer
                .transact_mut()
                .apply_update(Update::decode_v1(&delta).expect("decodes"));
        }
        assert_eq!(state_vector(&peer), room_sv);
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
