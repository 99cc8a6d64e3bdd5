//! What every request handler reaches, and the steps of stopping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use chorus_protocol::{DocName, StateVector, UpdateLimits, validate_update_v1};
use chorus_room::Identity;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::auth_callback::AuthCallback;
use crate::changes::Changes;
use crate::config::Config;
use crate::error::ApiError;
use crate::history::History;
use crate::hooks::Hooks;
use crate::quarantine::Quarantine;
use crate::relay::Relay;
use crate::room::Rooms;
use crate::room::actor_versions::api_identity;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The settings the server started with.
    pub config: Arc<Config>,
    /// The rooms of this server.
    pub rooms: Rooms,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Rooms and connections, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// The link to the other nodes, with `--redis-url`.
    pub relay: Option<Relay>,
    /// Token checks, unless the server runs open.
    pub auth: Option<Arc<Authenticator>>,
    /// The backend asked about each connection, with `--auth-callback-url`.
    pub auth_callback: Option<Arc<AuthCallback>>,
    /// The embedding application's hooks.
    pub hooks: Arc<dyn Hooks>,
    /// Change notifications, when someone listens.
    pub(crate) changes: Option<Changes>,
    /// WebSocket connections open now, against `--max-connections`.
    pub open_connections: Arc<AtomicUsize>,
    /// Where refused updates are kept, with `--quarantine-dir`.
    pub quarantine: Option<Arc<Quarantine>>,
    /// Versions and activity.
    pub history: History,
    pub(crate) ready: Arc<AtomicBool>,
}

impl AppState {
    /// What a holder of `since` lacks (everything without it), as one Yjs v1 update.
    pub(crate) async fn read_doc(
        &self,
        doc: &DocName,
        since: Option<StateVector>,
    ) -> Result<Bytes, ApiError> {
        self.rooms
            .with_room(doc, |room| {
                let since = since.clone();
                async move { room.read(since).await }
            })
            .await?
            .map_err(|error| ApiError::Internal(error.to_string()))
    }

    /// Validates and applies a Yjs v1 update as the server, attributed to `api`; returns once
    /// it is durable.
    pub(crate) async fn write_doc(&self, doc: &DocName, update: Bytes) -> Result<(), ApiError> {
        self.write_doc_as(doc, update, api_identity(None)).await
    }

    /// Validates and applies a Yjs v1 update as the server, attributed to `identity`; returns
    /// once it is durable.
    pub(crate) async fn write_doc_as(
        &self,
        doc: &DocName,
        update: Bytes,
        identity: Identity,
    ) -> Result<(), ApiError> {
        validate_update_v1(&update, &UpdateLimits::default())
            .map_err(|e| ApiError::BadRequest(format!("not an acceptable Yjs v1 update: {e}")))?;
        self.rooms
            .with_room(doc, |room| {
                let (update, identity) = (update.clone(), identity.clone());
                async move { room.write(update, identity).await }
            })
            .await?
            .map_err(|refused| ApiError::BadRequest(refused.to_string()))
    }

    /// Whether `/readyz` answers 200.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Readiness turns to 503 at once; everything is told to stop only after `--drain-delay`,
    /// so load balancers that poll `/readyz` stop sending new connections before the listener
    /// closes. Meanwhile the server keeps accepting and serving as usual.
    pub(crate) async fn drain(&self) {
        self.ready.store(false, Ordering::SeqCst);
        let delay = self.config.operations.drain_delay;
        if !delay.is_zero() {
            tracing::info!(
                delay = %humantime::format_duration(delay),
                "draining: /readyz answers 503, connections are still served"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                // Something else started the shutdown: the delay has no one left to serve.
                () = self.shutdown.cancelled() => {}
            }
        }
        self.shutdown.cancel();
    }

    /// Waits for rooms and connections, then for the last change notifications.
    pub(crate) async fn finish_shutdown(&self) {
        self.tracker.close();
        let timeout = self.config.operations.shutdown_timeout;
        if tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::error!(
                timeout = %humantime::format_duration(timeout),
                "rooms or connections did not finish in time; exiting anyway"
            );
        } else {
            tracing::info!("shutdown complete");
        }
        if let Some(changes) = &self.changes {
            changes.close(timeout).await;
        }
    }
}
