//! The one compare-and-swap save that every shared backend (files, Redis, S3) runs.
//!
//! A backend only says how to read its stored snapshot with a version, how to write one if the
//! version is still the one read, and how to keep a damaged one aside ([`Slot`]); the loop here
//! decides everything else, so every backend merges, retries and treats damage the same way.
//!
//! # A damaged stored snapshot
//! Stored bytes that fail their checksum, or pass it but are not a Yjs update, are never merged
//! (a merge would drop what cannot be decoded) and never overwritten: the backend first keeps
//! them under a sibling name (`<name>.corrupt-<unix ms>`), then the new snapshot is saved in
//! their place. The damage is reported with `tracing::error!` naming the document, where the
//! snapshot was and where it was kept. The save itself succeeds: the caller asked for its
//! snapshot to be stored and it is; an error would make a room retry, and stay dirty, over
//! damage it cannot repair.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chorus_protocol::DocName;
use yrs::Update;
use yrs::updates::decoder::Decode;

use crate::merge::{MergeError, merge_snapshot};
use crate::{StoreError, snapshot_file};

/// Compare-and-swap attempts before a save gives up with [`StoreError::Contended`]. Each loss
/// means another node stored a snapshot of the same document in between, so reaching this takes
/// a storm of writers; the room retries on its next snapshot tick anyway.
const MAX_CAS_ATTEMPTS: u32 = 32;

/// Ceiling of the random pause between two compare-and-swap attempts.
const MAX_CAS_BACKOFF: Duration = Duration::from_millis(50);

/// Where one backend keeps the snapshot of one document.
#[async_trait]
pub(crate) trait Slot: Send + Sync {
    /// What identifies a stored state: a write succeeds only while it is unchanged.
    type Version: Send + Sync;

    /// Where the snapshot lives (a path, key or object), for errors and logs.
    fn location(&self) -> String;

    /// The stored bytes ([`snapshot_file`] format, unchecked) and their version, if any.
    async fn read(&self) -> Result<Option<(Bytes, Self::Version)>, StoreError>;

    /// Writes `frame` if the stored version is still `expected` (`None`: nothing stored);
    /// `false` if another writer came first.
    async fn write(
        &self,
        frame: Bytes,
        expected: Option<&Self::Version>,
    ) -> Result<bool, StoreError>;

    /// Keeps the damaged `stored` bytes (of `version`) under a new sibling name, never
    /// replacing anything.
    async fn keep_aside(
        &self,
        stored: Bytes,
        version: Self::Version,
    ) -> Result<KeptAside<Self::Version>, StoreError>;
}

/// What [`Slot::keep_aside`] did.
pub(crate) enum KeptAside<V> {
    /// Kept at `at`; the next write expects `expect` (the stored version if the damaged bytes
    /// were copied, `None` if they were moved away).
    At { at: String, expect: Option<V> },
    /// The stored snapshot changed meanwhile: nothing was kept, read again.
    Changed,
}

/// Stores `snapshot` as the state of `doc` in `slot`: read, merge, write if unchanged, and over
/// again when another writer came first; see the module docs for damaged snapshots.
///
/// # Errors
/// The backend's error, [`StoreError::Rejected`] if `snapshot` is not a Yjs v1 update,
/// [`StoreError::Contended`] after [`MAX_CAS_ATTEMPTS`] lost races.
pub(crate) async fn save<S: Slot>(
    slot: &S,
    doc: &DocName,
    snapshot: &Bytes,
) -> Result<(), StoreError> {
    let location = slot.location();
    for attempt in 0..MAX_CAS_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt).await;
        }
        let (merged, expected) = match slot.read().await? {
            None => (check_new(doc, snapshot)?, None),
            Some((stored, version)) => match merge_into(doc, &location, &stored, snapshot) {
                Merged::Unchanged => return Ok(()),
                Merged::Into(merged) => (merged, Some(version)),
                Merged::Rejected(error) => return Err(error),
                Merged::Damaged(reason) => {
                    // Refuse a bad new snapshot before touching anything stored.
                    let fresh = check_new(doc, snapshot)?;
                    match slot.keep_aside(stored, version).await? {
                        KeptAside::Changed => continue,
                        KeptAside::At { at, expect } => {
                            tracing::error!(
                                doc = %doc,
                                stored_at = %location,
                                kept_at = %at,
                                %reason,
                                "stored snapshot is damaged; kept it aside and saved the new one without it"
                            );
                            (fresh, expect)
                        }
                    }
                }
            },
        };
        let frame = snapshot_file::encode(doc.as_str(), &merged);
        if slot.write(frame, expected.as_ref()).await? {
            return Ok(());
        }
        tracing::debug!(%location, attempt, "snapshot changed while merging; merging again");
    }
    Err(StoreError::Contended {
        location,
        attempts: MAX_CAS_ATTEMPTS,
    })
}

/// The outcome of merging a new snapshot into stored bytes.
enum Merged {
    /// The stored snapshot already holds it all.
    Unchanged,
    /// Write this.
    Into(Bytes),
    /// The new snapshot cannot be stored.
    Rejected(StoreError),
    /// The stored bytes are damaged, for this reason.
    Damaged(String),
}

fn merge_into(doc: &DocName, location: &str, stored: &Bytes, new: &[u8]) -> Merged {
    let current = match snapshot_file::decode_for(doc, location, stored) {
        Ok(current) => current,
        Err(StoreError::Corrupt { reason, .. }) => return Merged::Damaged(reason),
        Err(other) => return Merged::Rejected(other),
    };
    match merge_snapshot(&current, new) {
        Ok(merged) if merged == current => Merged::Unchanged,
        Ok(merged) => Merged::Into(merged),
        Err(error @ MergeError::New(_)) => Merged::Rejected(rejected(doc, error.to_string())),
        Err(error @ MergeError::Stored { .. }) => Merged::Damaged(error.to_string()),
    }
}

/// The snapshot about to be stored where nothing usable is, once it proves to be a Yjs update
/// (so that a later merge cannot fail on it).
fn check_new(doc: &DocName, snapshot: &Bytes) -> Result<Bytes, StoreError> {
    match Update::decode_v1(snapshot) {
        Ok(_) => Ok(snapshot.clone()),
        Err(error) => Err(rejected(
            doc,
            MergeError::New(error.to_string()).to_string(),
        )),
    }
}

fn rejected(doc: &DocName, reason: String) -> StoreError {
    StoreError::Rejected {
        location: doc.to_string(),
        reason,
    }
}

/// Sleeps a random while before compare-and-swap attempt `attempt`, so competing writers spread
/// instead of colliding again at once.
async fn backoff(attempt: u32) {
    let ceiling = Duration::from_millis(1u64 << attempt.min(6)).min(MAX_CAS_BACKOFF);
    let pause = ceiling.mul_f64(fastrand::f64());
    tokio::time::sleep(pause).await;
}

/// The snapshot of `doc` stored in `slot`, checked.
///
/// # Errors
/// The backend's error, or [`StoreError::Corrupt`] naming the slot if the stored bytes are
/// damaged (they stay as they are until the next save keeps them aside).
pub(crate) async fn load<S: Slot>(slot: &S, doc: &DocName) -> Result<Option<Bytes>, StoreError> {
    match slot.read().await? {
        None => Ok(None),
        Some((stored, _)) => snapshot_file::decode_for(doc, &slot.location(), &stored).map(Some),
    }
}
