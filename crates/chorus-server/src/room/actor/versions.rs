//! The room's side of version history: it notices edits (to start the minute's activity flush
//! and the version clock), takes the core's activity tally once a minute, and encodes the
//! state for a version. All storing runs in background tasks ([`crate::history`]); the room
//! never waits for them.

use chorus_room::{DocError, Identity};
use chorus_store::versions::{VersionId, VersionKind, VersionMeta};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Room;
use crate::history::{NewVersion, current_minute, until_next_minute};

/// How a request for a version is answered: its description, or why it failed.
pub(crate) type VersionReply = oneshot::Sender<Result<VersionMeta, String>>;

/// The deadlines of the room's history work.
#[derive(Debug, Default)]
pub(super) struct HistoryClock {
    /// When the tally of the current minute is stored: by the next minute boundary after the
    /// first accepted update, `None` while nothing was counted.
    flush_at: Option<(Instant, u64)>,
    /// When the next automatic version is made: the interval after the first accepted update
    /// since the last version, `None` while nobody edits.
    version_at: Option<Instant>,
}

impl HistoryClock {
    /// Whether an automatic version is due (the document was edited since the last one).
    pub(super) fn version_pending(&self) -> bool {
        self.version_at.is_some()
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        match (self.flush_at.map(|(at, _)| at), self.version_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What a version request asks for.
#[derive(Debug)]
pub(crate) struct VersionRequest {
    pub kind: VersionKind,
    pub label: Option<String>,
    pub restored_from: Option<VersionId>,
}

impl Room {
    /// After a command: if the core accepted updates and no deadline runs yet, starts the
    /// minute's flush and the version clock. Two comparisons when nothing changed.
    pub(super) fn notice_edits(&mut self) {
        if self.history_clock.flush_at.is_some() || !self.core.has_activity() {
            return;
        }
        let now = Instant::now();
        // At the minute's end, or sooner with a short version interval: other nodes' versions
        // read this node's activity for their authors, so it must be stored well within one
        // interval.
        let mut flush_in = until_next_minute();
        if let Some(interval) = self.ctx.history.interval() {
            flush_in = flush_in.min(interval / 4);
        }
        self.history_clock.flush_at = Some((now + flush_in, current_minute()));
        if self.history_clock.version_at.is_none()
            && let Some(interval) = self.ctx.history.interval()
        {
            self.history_clock.version_at = Some(now + interval);
        }
    }

    /// A history deadline passed: stores the minute's tally, or makes an automatic version.
    pub(super) fn history_due(&mut self) -> Result<(), DocError> {
        let now = Instant::now();
        if self.history_clock.version_at.is_some_and(|at| at <= now) {
            let request = VersionRequest {
                kind: VersionKind::Auto,
                label: None,
                restored_from: None,
            };
            return self.make_version(request, None);
        }
        if let Some((at, minute)) = self.history_clock.flush_at
            && at <= now
        {
            self.history_clock.flush_at = None;
            let tally = self.core.take_activity();
            if !tally.is_empty() {
                let (history, doc) = (self.ctx.history.clone(), self.name.clone());
                self.ctx.tracker.spawn(async move {
                    history.record_activity(&doc, minute, tally).await;
                });
            }
        }
        Ok(())
    }

    /// Encodes the state for a version here (in memory), and stores it in the background with
    /// the activity counted so far; `reply`, if any, gets the result.
    ///
    /// # Errors
    /// [`DocError::Panicked`]: the room must be dropped.
    pub(super) fn make_version(
        &mut self,
        request: VersionRequest,
        reply: Option<VersionReply>,
    ) -> Result<(), DocError> {
        let state = self.core.encode_snapshot()?;
        let state_vector = self.core.doc().state_vector()?.encode();
        let minute = self
            .history_clock
            .flush_at
            .take()
            .map_or_else(current_minute, |(_, minute)| minute);
        self.history_clock.version_at = None;
        let tally = self.core.take_activity();
        let version = NewVersion {
            kind: request.kind,
            label: request.label,
            restored_from: request.restored_from,
            state,
            state_vector: state_vector.into(),
        };
        let (history, doc) = (self.ctx.history.clone(), self.name.clone());
        self.ctx.tracker.spawn(async move {
            let recorded = history.record_version(&doc, version, minute, tally).await;
            match (recorded, reply) {
                (Ok(Some(meta)), Some(reply)) => {
                    let _ = reply.send(Ok(meta));
                }
                (Ok(None), Some(reply)) => {
                    // Only automatic versions are skipped, and they have no reply.
                    let _ = reply.send(Err("the version was not recorded".into()));
                }
                (Err(error), reply) => {
                    crate::metrics::get().store_errors.increment(1);
                    tracing::error!(%doc, %error, "recording a version failed");
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(error.to_string()));
                    }
                }
                (Ok(_), None) => {}
            }
        });
        Ok(())
    }

    /// Stores what the tally holds now; for a room about to unload or shut down.
    pub(super) async fn flush_activity(&mut self) {
        let minute = self
            .history_clock
            .flush_at
            .take()
            .map_or_else(current_minute, |(_, minute)| minute);
        let tally = self.core.take_activity();
        if !tally.is_empty() {
            self.ctx
                .history
                .record_activity(&self.name, minute, tally)
                .await;
        }
    }
}

/// The identity the HTTP API's writes are attributed to when the caller names none.
pub(crate) fn api_identity(named: Option<&str>) -> Identity {
    named.map_or_else(|| Identity::new("api"), Identity::new)
}
