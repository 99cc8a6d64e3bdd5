//! How a room begins (a snapshot, then the update log's records, or the application's initial
//! content) and how it ends (unloaded when idle, stopped at shutdown, deleted, or dropped after
//! a document panic).

use std::time::Instant;

use bytes::Bytes;
use chorus_protocol::{UpdateError, UpdateLimits, validate_update_v1};

use super::RoomCore;
use crate::close_code;
use crate::doc::DocError;
use crate::effect::{Publish, Snapshot};

/// Why a room could not load its document.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The stored snapshot does not apply.
    #[error("the stored snapshot does not apply: {0}")]
    Snapshot(DocError),
    /// An update-log record made the document engine panic.
    #[error("an update-log record crashed the document")]
    Record,
    /// The application's initial content is not an update a client could send.
    #[error("the load hook returned an unacceptable update: {0}")]
    InitialRefused(UpdateError),
    /// The application's initial content does not apply.
    #[error("the load hook returned an update that does not apply: {0}")]
    InitialUnusable(DocError),
}

impl<R> RoomCore<R> {
    /// Applies the stored snapshot of a loading room.
    ///
    /// # Errors
    /// [`LoadError::Snapshot`].
    pub fn load_snapshot(&mut self, snapshot: &[u8]) -> Result<(), LoadError> {
        self.doc.apply(snapshot).map_err(LoadError::Snapshot)?;
        Ok(())
    }

    /// Applies the update log's records after the snapshot, `(sequence number, update)` in log
    /// order. A record that does not apply is skipped; what the log holds goes into the next
    /// snapshot. Returns how many records there were.
    ///
    /// # Errors
    /// [`LoadError::Record`] when one made the document engine panic.
    pub fn replay(&mut self, records: Vec<(u64, Bytes)>, now: Instant) -> Result<usize, LoadError> {
        let count = records.len();
        for (seq, update) in records {
            self.log.replayed_through(seq);
            match self.doc.apply(&update) {
                Ok(_) => {}
                Err(DocError::Invalid(reason)) => {
                    tracing::warn!(%reason, "skipping an update-log record that does not apply");
                }
                Err(DocError::Panicked) => return Err(LoadError::Record),
            }
        }
        if count > 0 {
            self.timers.changed(&self.settings, now);
        }
        Ok(count)
    }

    /// Applies the application's initial content for a document the store knows nothing of,
    /// checked like a client's update; returns the snapshot to save at once, so the
    /// application is asked only once per document.
    ///
    /// # Errors
    /// [`LoadError::InitialRefused`] or [`LoadError::InitialUnusable`].
    pub fn load_initial(&mut self, content: &[u8]) -> Result<Bytes, LoadError> {
        validate_update_v1(content, &UpdateLimits::default()).map_err(LoadError::InitialRefused)?;
        self.doc
            .apply(content)
            .map_err(LoadError::InitialUnusable)?;
        self.doc.snapshot().map_err(LoadError::InitialUnusable)
    }

    /// Before a room ends (unload or shutdown), once no append is in flight: announces a
    /// change listeners have not heard of, and returns the snapshot to save if anything is
    /// unsaved. Should the save fail, report it with [`RoomCore::snapshot_saved`].
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped.
    pub fn final_snapshot(&mut self) -> Result<Option<Snapshot>, DocError> {
        if let Err(error) = self.announce() {
            tracing::warn!(%error, "could not encode the document for its last change notice");
        }
        if !self.is_dirty() {
            return Ok(None);
        }
        self.snapshot().map(Some)
    }

    /// The server is stopping: every connection is closed with 1001.
    pub fn shut_down(&mut self) {
        self.close_all(close_code::GOING_AWAY, "server shutting down");
    }

    /// Deletes the document for the HTTP API: the other nodes are told to drop their rooms,
    /// every connection is closed with 4404, and what is not logged yet is forgotten, with
    /// whatever waited for it (the driver then waits for the append and snapshot in flight
    /// before it empties the store, so neither lands after the deletion).
    pub fn delete(&mut self) {
        self.publish(Publish::Deleted);
        self.deleted_elsewhere();
    }

    /// Another node deleted the document: as [`RoomCore::delete`], without telling anyone.
    pub fn deleted_elsewhere(&mut self) {
        self.close_all(close_code::DOCUMENT_DELETED, "document deleted");
        self.log.forget();
        self.timers.forget_changes();
    }

    /// The document engine panicked: the document may be corrupt, so it is neither saved nor
    /// served again. Every connection is closed with 1011 and reconnects to a reloaded room.
    pub fn fail(&mut self) {
        tracing::error!("document engine panicked; dropping the room without saving");
        self.close_all(
            close_code::INTERNAL_ERROR,
            "document failed; reconnect to reload",
        );
        self.log.forget();
        self.timers.forget_changes();
    }
}
