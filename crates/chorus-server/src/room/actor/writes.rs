//! The room's background writes: log appends (retried until they land), snapshots through the
//! store's compaction, and the application's store hook.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_room::Snapshot;
use chorus_store::{SnapshotStore, StoreError, UpdateLog};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::hooks::Hooks;
use crate::metrics;

/// Longest pause between two attempts to append a batch the log refused.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(1);

/// A background write: an append returns the last sequence number, a snapshot nothing.
pub(super) type Task<T> = JoinHandle<Result<T, StoreError>>;

/// The outcome of a background write, logged if it failed: `Err` when its task (or the
/// future, for appends) did not finish.
pub(super) fn finished<T, E: std::fmt::Display>(
    what: &str,
    result: Result<Result<T, StoreError>, E>,
) -> Option<T> {
    match result {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            tracing::error!(%error, "{what} failed");
            metrics::get().store_errors.increment(1);
            None
        }
        Err(unfinished) => {
            tracing::error!(error = %unfinished, "{what} did not finish");
            None
        }
    }
}

/// Appends one batch, retrying with backoff while the log fails: fan-out waits rather than send
/// what is not durable. Gives up only at shutdown.
pub(super) async fn append_until_done(
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

/// Saves a snapshot through the store's one compaction, timed for the metrics.
pub(super) async fn save_compacted(
    store: &dyn SnapshotStore,
    log: &dyn UpdateLog,
    name: &DocName,
    snapshot: Snapshot,
) -> Result<Bytes, StoreError> {
    let started = std::time::Instant::now();
    let saved =
        chorus_store::ops::save_compacted(store, log, name, snapshot.state, snapshot.covered).await;
    metrics::snapshot_written(started.elapsed());
    saved
}

pub(super) async fn timed_save(
    store: &dyn SnapshotStore,
    name: &DocName,
    snapshot: Bytes,
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let saved = store.save(name, snapshot).await;
    metrics::snapshot_written(started.elapsed());
    saved
}

/// Hands a saved snapshot to the application's [`Hooks::store`]; a failure is logged and
/// counted, the snapshot stays saved.
pub(super) async fn call_store_hook(hooks: &dyn Hooks, name: &DocName, saved: &Bytes) {
    if let Err(error) = hooks.store(name, saved).await {
        tracing::error!(%error, "the store hook failed");
        metrics::get().store_errors.increment(1);
    }
}
