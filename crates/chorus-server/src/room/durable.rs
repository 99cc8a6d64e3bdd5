//! Write-ahead for a room: nothing leaves the room before the updates it carries are in the
//! update log.
//!
//! Applied updates wait in `unlogged`; whatever the room would send because of them (the delta
//! to the other connections, a sync step 2 that contains them) waits beside them. One append is
//! in flight at a time; everything that arrives meanwhile goes into the next one, so under load
//! one fsync covers many updates (group commit). When an append completes, what waited for it is
//! released, in order.

use std::future::pending;
use std::mem;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_store::{StoreError, UpdateLog};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::conn::ConnId;
use crate::metrics;

/// Longest pause between two attempts to append a batch the log refused.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Something the room sends once the updates it depends on are durable.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A delta for every connection but `except`, and for the other nodes when `publish`.
    Broadcast {
        frame: Bytes,
        except: Option<ConnId>,
        publish: bool,
    },
    /// A frame for one connection (a sync step 2).
    Reply { conn: ConnId, frame: Bytes },
    /// The answer to a server-side write.
    Ack(tokio::sync::oneshot::Sender<Result<(), String>>),
}

/// The room's side of its update log.
pub(crate) struct Durable {
    log: Arc<dyn UpdateLog>,
    doc: DocName,
    unlogged: Vec<Bytes>,
    waiting: Vec<Outgoing>,
    in_flight: Vec<Outgoing>,
    appending: Option<JoinHandle<Result<u64, StoreError>>>,
    /// Sequence number of the last record known to be in the log.
    logged_through: u64,
}

impl Durable {
    pub(crate) fn new(log: Arc<dyn UpdateLog>, doc: DocName) -> Self {
        Self {
            log,
            doc,
            unlogged: Vec::new(),
            waiting: Vec::new(),
            in_flight: Vec::new(),
            appending: None,
            logged_through: 0,
        }
    }

    /// The records a loading room replays after its snapshot; remembers the last one.
    pub(crate) async fn replay(&mut self) -> Result<Vec<Bytes>, StoreError> {
        let records = self.log.read(&self.doc).await?;
        if let Some((seq, _)) = records.last() {
            self.logged_through = *seq;
        }
        Ok(records.into_iter().map(|(_, update)| update).collect())
    }

    /// Last record a snapshot taken now is sure to cover.
    pub(crate) fn logged_through(&self) -> u64 {
        self.logged_through
    }

    /// The log, for truncation after a snapshot.
    pub(crate) fn log(&self) -> Arc<dyn UpdateLog> {
        Arc::clone(&self.log)
    }

    /// An applied update and what to send because of it.
    pub(crate) fn push_update(&mut self, update: Bytes, then: Outgoing) {
        self.unlogged.push(update);
        self.waiting.push(then);
    }

    /// A frame that may contain updates not yet logged: returned at once if everything applied
    /// is durable, held back otherwise.
    pub(crate) fn push_reply(&mut self, reply: Outgoing) -> Option<Outgoing> {
        if self.appending.is_none() && self.waiting.is_empty() {
            return Some(reply);
        }
        self.waiting.push(reply);
        None
    }

    /// Starts appending what is unlogged, unless an append is already running. Returns what can
    /// go out at once (replies that depended on nothing unlogged).
    pub(crate) fn start(
        &mut self,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Vec<Outgoing> {
        if self.appending.is_some() {
            return Vec::new();
        }
        if self.unlogged.is_empty() {
            return mem::take(&mut self.waiting);
        }
        let batch = mem::take(&mut self.unlogged);
        self.in_flight = mem::take(&mut self.waiting);
        let (log, doc, shutdown) = (Arc::clone(&self.log), self.doc.clone(), shutdown.clone());
        self.appending = Some(tracker.spawn(append_until_done(log, doc, batch, shutdown)));
        Vec::new()
    }

    /// Completes when the append in flight does.
    ///
    /// # Cancel safety
    /// Cancel safe: the append keeps running and is awaited again next time.
    pub(crate) async fn appended(
        &mut self,
    ) -> Result<Result<u64, StoreError>, tokio::task::JoinError> {
        match self.appending.as_mut() {
            Some(task) => task.await,
            None => pending().await,
        }
    }

    /// Records the outcome of the append and returns what waited for it.
    ///
    /// An append only fails when the server is shutting down (it retries otherwise); what it
    /// carried is then sent anyway, since the clients that sent those updates still hold them and
    /// upload them again when they reconnect.
    pub(crate) fn finish(
        &mut self,
        result: Result<Result<u64, StoreError>, tokio::task::JoinError>,
    ) -> Vec<Outgoing> {
        self.appending = None;
        match result {
            Ok(Ok(seq)) => self.logged_through = self.logged_through.max(seq),
            Ok(Err(error)) => tracing::error!(%error, "update log append abandoned at shutdown"),
            Err(join) => tracing::error!(error = %join, "update log append task failed"),
        }
        mem::take(&mut self.in_flight)
    }

    /// For a deleted document: forgets what is not yet logged, and what waited for it (server
    /// writes among it are answered "room gone" and retried on the next room).
    pub(crate) fn forget_unlogged(&mut self) {
        self.unlogged.clear();
        self.waiting.clear();
    }

    /// Waits for the append in flight, if any, so it cannot land after a deletion; what waited
    /// for it is dropped.
    pub(crate) async fn settle(&mut self) {
        if let Some(task) = self.appending.take() {
            let _ = task.await;
        }
        self.in_flight.clear();
    }

    /// Appends everything still unlogged and returns all that waited, for shutdown and unload.
    pub(crate) async fn drain(&mut self) -> Vec<Outgoing> {
        let mut released = Vec::new();
        if let Some(task) = self.appending.take() {
            let result = task.await;
            released.extend(self.finish(result));
        }
        if !self.unlogged.is_empty() {
            let batch = mem::take(&mut self.unlogged);
            match self.log.append(&self.doc, &batch).await {
                Ok(seq) => self.logged_through = self.logged_through.max(seq),
                Err(error) => tracing::error!(%error, "final update log append failed"),
            }
        }
        released.extend(mem::take(&mut self.waiting));
        if let Err(error) = self.log.flush().await {
            tracing::error!(%error, "update log flush failed");
        }
        released
    }
}

/// Appends one batch, retrying with backoff while the log fails: fan-out waits rather than send
/// what is not durable. Gives up only at shutdown.
async fn append_until_done(
    log: Arc<dyn UpdateLog>,
    doc: DocName,
    batch: Vec<Bytes>,
    shutdown: CancellationToken,
) -> Result<u64, StoreError> {
    let mut delay = Duration::from_millis(10);
    loop {
        let started = std::time::Instant::now();
        match log.append(&doc, &batch).await {
            Ok(seq) => {
                metrics::log_appended(started.elapsed(), batch.len());
                return Ok(seq);
            }
            Err(error) => {
                metrics::get().store_errors.increment(1);
                tracing::error!(%error, "update log append failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Err(error),
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}
