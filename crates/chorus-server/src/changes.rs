//! Change notifications: rooms hand over "this document changed" without ever waiting, and one
//! background task passes them to the hooks and the webhooks.
//!
//! Pending notifications are kept one per document, latest wins: a burst of changes to one
//! document while the listeners are slow costs one entry, not a queue, so memory stays bounded by
//! the number of documents and a slow receiver never holds a room back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chorus_protocol::DocName;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hooks::{DocChange, Hooks};
use crate::webhook::Webhooks;

/// Change hooks run at most this many at a time.
const CONCURRENT_HOOKS: usize = 16;

/// The rooms' side: cheap to clone, never blocks.
#[derive(Clone)]
pub(crate) struct Changes {
    inner: Arc<Inner>,
}

struct Inner {
    pending: Mutex<HashMap<DocName, DocChange>>,
    wake: Notify,
    /// Cancelled by [`Changes::close`], once the rooms have stopped.
    closing: CancellationToken,
    /// The delivering task and every hook or webhook call it started.
    tasks: TaskTracker,
}

impl Changes {
    /// Starts the task that delivers notifications to `hooks` (when it wants them) and
    /// `webhooks` (when configured). `None` when nobody listens, so rooms skip the work.
    pub(crate) fn start(hooks: Arc<dyn Hooks>, webhooks: Option<Webhooks>) -> Option<Self> {
        let hooks = hooks.wants_changes().then_some(hooks);
        if hooks.is_none() && webhooks.is_none() {
            return None;
        }
        let changes = Self {
            inner: Arc::new(Inner {
                pending: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                closing: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        };
        let listeners = Listeners {
            hooks,
            webhooks,
            running: Arc::new(Semaphore::new(CONCURRENT_HOOKS)),
            tasks: changes.inner.tasks.clone(),
            closing: changes.inner.closing.clone(),
        };
        changes
            .inner
            .tasks
            .spawn(changes.clone().deliver(listeners));
        Some(changes)
    }

    /// Delivers what is pending, then stops; waits up to `grace` for the calls in flight.
    /// Called at shutdown after the rooms have stopped, so their last changes are included.
    pub(crate) async fn close(&self, grace: std::time::Duration) {
        self.inner.closing.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(grace, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("change hooks or webhooks still running at exit; abandoning them");
        }
    }

    /// Queues a notification, replacing one for the same document not yet delivered.
    pub(crate) fn notify(&self, change: DocChange) {
        self.pending().insert(change.doc.clone(), change);
        self.inner.wake.notify_one();
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<DocName, DocChange>> {
        // Each critical section is one map operation: a poisoned lock holds a consistent map.
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands every pending notification to the listeners until [`Changes::close`], and the
    /// last ones after it.
    async fn deliver(self, listeners: Listeners) {
        loop {
            let stopping = tokio::select! {
                () = self.inner.wake.notified() => false,
                () = self.inner.closing.cancelled() => true,
            };
            let batch: Vec<DocChange> = self.pending().drain().map(|(_, c)| c).collect();
            for change in batch {
                listeners.dispatch(change).await;
            }
            if stopping {
                return;
            }
        }
    }
}

struct Listeners {
    hooks: Option<Arc<dyn Hooks>>,
    webhooks: Option<Webhooks>,
    running: Arc<Semaphore>,
    tasks: TaskTracker,
    closing: CancellationToken,
}

impl Listeners {
    async fn dispatch(&self, change: DocChange) {
        if let Some(webhooks) = &self.webhooks {
            webhooks.send(&change, &self.tasks, &self.closing);
        }
        let Some(hooks) = &self.hooks else { return };
        // Waiting for a permit here is fine: pending changes coalesce behind it.
        let Ok(permit) = Arc::clone(&self.running).acquire_owned().await else {
            return;
        };
        let hooks = Arc::clone(hooks);
        self.tasks.spawn(async move {
            hooks.on_change(&change).await;
            drop(permit);
        });
    }
}
