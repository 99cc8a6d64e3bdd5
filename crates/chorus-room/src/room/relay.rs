//! The room among other nodes: what they publish, and what it tells them.
//!
//! Pub/sub delivers at most once, so the room never trusts it to be complete: it exchanges
//! state vectors when it opens, when the relay reconnects, periodically, and whenever an update
//! from another node overtook one this node missed. Yjs updates are idempotent and commutative,
//! so duplicates and reordering are harmless.

use std::time::Instant;

use bytes::Bytes;
use chorus_protocol::{AwarenessUpdate, StateVector};

use super::RoomCore;
use crate::doc::DocError;
use crate::effect::{Effect, Publish};
use crate::ids::NodeId;
use crate::presence::Owner;

/// What another node published on this room's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A Yjs v1 update its clients made.
    Update(Bytes),
    /// Its clients' awareness states.
    Awareness(Bytes),
    /// Its state vector: it wants what it lacks.
    SyncRequest(Bytes),
}

impl<R> RoomCore<R> {
    /// Applies what another node published. Its updates go to every local connection and the
    /// log, but not back to the relay, nor to change listeners (its node announces them).
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped.
    pub fn remote(
        &mut self,
        origin: NodeId,
        message: Remote,
        now: Instant,
    ) -> Result<(), DocError> {
        match message {
            Remote::Update(update) => {
                let waiting_before = self.doc.waiting();
                match self.doc.apply(&update) {
                    Ok(Some(delta)) => {
                        self.record_change(delta, None, false, now);
                        self.release_held(now)?;
                        self.pump_log();
                    }
                    Ok(None) => {}
                    Err(DocError::Invalid(reason)) => {
                        tracing::warn!(node = %origin, %reason, "ignoring an invalid update from another node");
                    }
                    Err(DocError::Panicked) => return Err(DocError::Panicked),
                }
                if self.doc.waiting() > waiting_before {
                    // It overtook a message this node missed: ask for what is missing now
                    // rather than at the next periodic exchange.
                    self.resync()?;
                }
            }
            Remote::Awareness(update) => match AwarenessUpdate::decode(&update) {
                Ok(update) => {
                    let changed = self
                        .presence
                        .apply(Owner::Remote(origin), update.entries, now);
                    self.queue_presence(changed, false, now);
                }
                Err(error) => {
                    tracing::warn!(node = %origin, %error, "ignoring invalid awareness from another node");
                }
            },
            Remote::SyncRequest(sv) => match StateVector::decode(&sv) {
                Ok(sv) => self.answer_sync(&sv)?,
                Err(error) => {
                    tracing::warn!(node = %origin, %error, "ignoring an invalid sync request");
                }
            },
        }
        Ok(())
    }

    /// A node stopped heartbeating: the presence of its clients goes.
    pub fn node_gone(&mut self, node: NodeId, now: Instant) {
        let removed = self.presence.remove_owner(Owner::Remote(node));
        self.queue_presence(removed, false, now);
    }

    /// Publishes this room's state vector so the other nodes send what it lacks, and tells
    /// them who is connected here. For a room opening, a relay that reconnected, or a message
    /// that may have been lost.
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped.
    pub fn resync(&mut self) -> Result<(), DocError> {
        if !self.around.shared {
            return Ok(());
        }
        let sv = self.doc.state_vector()?.encode();
        self.publish(Publish::SyncRequest(sv.into()));
        let mine = self.presence.local_entries();
        self.publish_presence(&mine);
        Ok(())
    }

    /// Another node announced its state: send it what it lacks, ask for what we lack, and tell
    /// it who is connected here.
    fn answer_sync(&mut self, theirs: &StateVector) -> Result<(), DocError> {
        if !self.around.shared {
            return Ok(());
        }
        if let Some(diff) = self.doc.diff(theirs)? {
            self.publish(Publish::Update(diff));
        }
        if self.doc.lacks_any_of(theirs)? {
            return self.resync();
        }
        let mine = self.presence.local_entries();
        self.publish_presence(&mine);
        Ok(())
    }

    pub(super) fn publish(&mut self, message: Publish) {
        if self.around.shared {
            self.effects.push_back(Effect::Publish(message));
        }
    }
}
