//! What waits for a deadline: the presence batch, change notices, snapshots, the presence
//! sweep, the periodic resync with other nodes, and unloading an idle room.

use std::collections::HashMap;
use std::time::Instant;

use chorus_protocol::AwarenessEntry;
use chorus_protocol::awareness::encode_entries;

use super::RoomCore;
use crate::doc::DocError;
use crate::effect::{Effect, Publish, Snapshot};
use crate::presence;
use crate::settings::{
    CHANGE_MAX_DELAY_FACTOR, PRESENCE_BATCH, PRESENCE_SWEEP_EVERY, RoomSettings, Surroundings,
};

/// What [`RoomCore::wake`] found due besides its own work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Nothing more: wait for the next deadline.
    Continue,
    /// The room has been empty for the idle timeout: unload it
    /// ([`RoomCore::final_snapshot`], then leave the registry).
    Unload,
}

/// The room's deadlines and what waits for them.
#[derive(Debug)]
pub(super) struct Timers {
    /// Changes not yet covered by a stored snapshot.
    dirty: bool,
    /// When the next snapshot is due; set by the first change after a snapshot.
    snapshot_due: Option<Instant>,
    /// A snapshot write is in flight (at most one per room).
    saving: bool,
    /// When the room unloads if still nobody is connected; `None` while someone is.
    idle_deadline: Option<Instant>,
    /// Awareness changes waiting for the next batch, latest per client: for local connections,
    /// and for the other nodes (only changes made by this node's connections).
    presence_batch: HashMap<u64, AwarenessEntry>,
    presence_to_publish: HashMap<u64, AwarenessEntry>,
    /// When the pending batch goes out.
    presence_due: Option<Instant>,
    /// Changes made here that listeners have not heard of: when the first one happened and
    /// when they will be announced.
    unannounced_since: Option<Instant>,
    change_due: Option<Instant>,
    next_sweep: Instant,
    /// The next periodic state-vector exchange, for a room shared with other nodes.
    next_resync: Option<Instant>,
}

impl Timers {
    pub(super) fn new(settings: &RoomSettings, around: Surroundings, now: Instant) -> Self {
        Self {
            dirty: false,
            snapshot_due: None,
            saving: false,
            idle_deadline: Some(now + settings.idle_timeout),
            presence_batch: HashMap::new(),
            presence_to_publish: HashMap::new(),
            presence_due: None,
            unannounced_since: None,
            change_due: None,
            next_sweep: now + PRESENCE_SWEEP_EVERY,
            next_resync: around.shared.then(|| now + settings.relay_resync_interval),
        }
    }

    /// The document changed: a snapshot is due `snapshot_interval` after the first unsaved
    /// change.
    pub(super) fn changed(&mut self, settings: &RoomSettings, now: Instant) {
        self.dirty = true;
        self.snapshot_due
            .get_or_insert(now + settings.snapshot_interval);
    }

    /// A change listeners must hear of: `change_debounce` after the last change, and no later
    /// than a few periods after the first.
    pub(super) fn unannounced(&mut self, settings: &RoomSettings, now: Instant) {
        let debounce = settings.change_debounce;
        let first = *self.unannounced_since.get_or_insert(now);
        let latest = first + debounce * CHANGE_MAX_DELAY_FACTOR;
        self.change_due = Some((now + debounce).min(latest));
    }

    /// A deleted or failed room saves nothing and announces nothing more.
    pub(super) fn forget_changes(&mut self) {
        self.dirty = false;
        self.snapshot_due = None;
        self.unannounced_since = None;
        self.change_due = None;
    }

    pub(super) fn occupied(&mut self) {
        self.idle_deadline = None;
    }

    pub(super) fn emptied(&mut self, settings: &RoomSettings, now: Instant) {
        self.idle_deadline = Some(now + settings.idle_timeout);
    }

    pub(super) fn queue_presence(
        &mut self,
        entries: Vec<AwarenessEntry>,
        publish: bool,
        now: Instant,
    ) {
        for entry in entries {
            if publish {
                self.presence_to_publish.insert(entry.client, entry.clone());
            }
            self.presence_batch.insert(entry.client, entry);
        }
        self.presence_due.get_or_insert(now + PRESENCE_BATCH);
    }

    fn next(&self) -> Option<Instant> {
        let snapshot = self.snapshot_due.filter(|_| !self.saving);
        [
            snapshot,
            self.idle_deadline,
            self.presence_due,
            self.change_due,
            Some(self.next_sweep),
            self.next_resync,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl<R> RoomCore<R> {
    /// When the room next needs [`RoomCore::wake`].
    pub fn deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Does whatever is due at `now`: sends the presence batch, expires presence, announces a
    /// change, starts a snapshot ([`Effect::Save`]), resyncs with other nodes; and says when the
    /// room should unload.
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped.
    pub fn wake(&mut self, now: Instant) -> Result<Wake, DocError> {
        if self.timers.presence_due.is_some_and(|due| due <= now) {
            self.flush_presence();
        }
        if self.timers.next_sweep <= now {
            self.timers.next_sweep = now + PRESENCE_SWEEP_EVERY;
            let expired = self.presence.expire(now, self.settings.awareness_timeout);
            for (entry, local) in expired {
                self.queue_presence(vec![entry], local, now);
            }
        }
        if self.timers.change_due.is_some_and(|due| due <= now) {
            self.announce()?;
        }
        if !self.timers.saving && self.timers.snapshot_due.is_some_and(|due| due <= now) {
            let snapshot = self.snapshot()?;
            self.timers.saving = true;
            self.effects.push_back(Effect::Save(snapshot));
        }
        if let Some(due) = self.timers.next_resync
            && due <= now
        {
            self.timers.next_resync = Some(now + self.settings.relay_resync_interval);
            self.resync()?;
        }
        let idle = self.peers.is_empty() && self.timers.idle_deadline.is_some_and(|d| d <= now);
        Ok(if idle { Wake::Unload } else { Wake::Continue })
    }

    /// The snapshot write in flight is done. A failed one leaves the room dirty, to try again
    /// `snapshot_interval` later.
    pub fn snapshot_saved(&mut self, saved: bool, now: Instant) {
        self.timers.saving = false;
        if !saved {
            self.timers.changed(&self.settings, now);
        }
    }

    /// Whether the room holds changes no snapshot has saved.
    pub fn is_dirty(&self) -> bool {
        self.timers.dirty
    }

    /// The whole document as a snapshot, which from now on counts as saved; see
    /// [`RoomCore::snapshot_saved`] for a failed write.
    pub(super) fn snapshot(&mut self) -> Result<Snapshot, DocError> {
        self.timers.snapshot_due = None;
        let state = self.doc.snapshot()?;
        self.timers.dirty = false;
        Ok(Snapshot {
            state,
            covered: self.log.logged_through(),
        })
    }

    /// Tells the listeners the document changed, with its whole state, if they have not heard.
    pub(super) fn announce(&mut self) -> Result<(), DocError> {
        self.timers.change_due = None;
        if self.timers.unannounced_since.take().is_some() {
            let state = self.doc.snapshot()?;
            self.effects.push_back(Effect::Announce(state));
        }
        Ok(())
    }

    /// Sends the batch to every connection, the sender of each change included: y-websocket
    /// clients count their own echoed renewals as liveness and reconnect after 30 s without any
    /// message. Then publishes this node's share to the other nodes.
    fn flush_presence(&mut self) {
        self.timers.presence_due = None;
        let batch: Vec<AwarenessEntry> =
            self.timers.presence_batch.drain().map(|(_, e)| e).collect();
        if !batch.is_empty() {
            self.effects.push_back(Effect::Broadcast {
                frame: presence::frame(&batch),
                except: None,
            });
        }
        let mine: Vec<AwarenessEntry> = self
            .timers
            .presence_to_publish
            .drain()
            .map(|(_, e)| e)
            .collect();
        self.publish_presence(&mine);
    }

    /// Tells the other nodes about presence changes of this node's own connections.
    pub(super) fn publish_presence(&mut self, entries: &[AwarenessEntry]) {
        if self.around.shared && !entries.is_empty() {
            let update = encode_entries(entries.iter());
            self.publish(Publish::Awareness(update.into()));
        }
    }

    /// Starts the idle period again: an unload that could not finish (a failed save, a
    /// connection that arrived meanwhile) is tried again one idle timeout later.
    pub fn postpone_unload(&mut self, now: Instant) {
        if self.peers.is_empty() {
            self.timers.emptied(&self.settings, now);
        }
    }
}
