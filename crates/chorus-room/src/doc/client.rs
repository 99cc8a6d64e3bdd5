//! What a client's update must pass before it reaches the document: the document's limits,
//! the validator's second pass against what the document holds, and holding what follows a
//! hole in the clocks (the numbered path in the crate's top comment, step 4).

use chorus_protocol::update::{
    Split, UpdateError, UpdateLimits, split_update_v1, validate_update_v1, validate_update_v1_in,
};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ClientID, ReadTxn, Transact, Update, WriteTxn};

use super::{DocError, RoomDoc, guard, merge_deltas, whole_document_limits};
use crate::held::HeldUpdate;
use chorus_protocol::SyncFrame;

/// What one document may cost, whatever its clients send. Fake client ids, structs that wait
/// forever for dependencies that never come, and sheer size are free for an attacker and cost
/// the server on every later edit and every join (`docs/hostile-inputs.md`,
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
    pub delta: Option<SyncFrame>,
    /// Whether `delta` may hold more than the sender sent: structs of other clients that were
    /// waiting in yrs' pending set and integrated with it. Then the sender must get the delta
    /// too, or it never learns them.
    pub sender_may_lack: bool,
    /// Parts of other nodes' updates that were waiting for clocks ([`RoomDoc::waiting`]) and
    /// integrated after it: every connection needs them, the sender included.
    pub released: Option<SyncFrame>,
    /// What of it waits for clocks the document lacks, in the order it must be applied.
    pub held: Vec<HeldUpdate>,
}

impl ClientApplied {
    fn only_held(update: HeldUpdate) -> Self {
        Self {
            held: vec![update],
            ..Self::default()
        }
    }
}

impl RoomDoc {
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
        #[cfg(feature = "fault-injection")]
        guard(|| crate::fault::check(update))?;
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
                    return Ok(ClientApplied::only_held(HeldUpdate {
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
            self.size_bound = self.full_state()?.payload().len();
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
        Ok(ClientApplied {
            delta,
            sender_may_lack: pending_before > 0,
            released: self.retry_waiting()?,
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
    pub(super) fn pending_parts(&self) -> Result<[Option<Vec<u8>>; 2], DocError> {
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
    pub(super) fn count_pending(&self) -> Result<usize, DocError> {
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
}

/// The close reason for an update the validator refused against the document (1008).
fn refusal_reason(error: &UpdateError) -> &'static str {
    match error {
        UpdateError::TypeTooDeep { .. } => "shared types nested too deep",
        _ => "update over a limit",
    }
}
