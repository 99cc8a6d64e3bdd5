//! Chorus inside another axum application.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use chorus_server::{Chorus, Config};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let chorus = Chorus::builder()
//!     .config(Config::local("./data"))
//!     .build()
//!     .await?;
//! let app = Router::new()
//!     .route("/", get(|| async { "my product" }))
//!     // Clients connect to ws://host/collab/ws/<document>.
//!     .nest("/collab", chorus.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let stop = chorus.shutdown_token();
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move { stop.cancelled().await })
//!     .await?;
//! chorus.stop().await;
//! # Ok(()) }
//! ```
//!
//! The `listen`, `static_dir` and `log_format` settings of the [`Config`] are the host's
//! business and are ignored here; everything else applies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use axum::Router;
use bytes::Bytes;
use chorus_protocol::{DocName, StateVector, UpdateLimits, validate_update_v1};
use chorus_store::{SnapshotStore, UpdateLog};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{AppState, router};
use crate::auth::Authenticator;
use crate::auth_callback::AuthCallback;
use crate::changes::Changes;
use crate::config::Config;
use crate::error::ApiError;
use crate::hooks::{Hooks, NoHooks};
use crate::quarantine::Quarantine;
use crate::relay::{Relay, RelaySettings};
use crate::room::held::HeldLimits;
use crate::room::registry::Services;
use crate::room::{DocLimits, JoinRefused, RoomSettings, Rooms};
use crate::webhook::{WebhookSettings, Webhooks};

/// A running Chorus: its rooms, connections and background work. Serve [`Chorus::router`]
/// from any axum server; call [`Chorus::stop`] when done.
pub struct Chorus {
    state: AppState,
}

/// Sets up a [`Chorus`]; from [`Chorus::builder`].
pub struct ChorusBuilder {
    config: Config,
    hooks: Arc<dyn Hooks>,
    backends: Option<(Arc<dyn SnapshotStore>, Arc<dyn UpdateLog>)>,
}

impl Chorus {
    /// Starts with [`Config::local`]`("./data")` and no hooks.
    pub fn builder() -> ChorusBuilder {
        ChorusBuilder {
            config: Config::local("./data"),
            hooks: Arc::new(NoHooks),
            backends: None,
        }
    }

    /// The routes, to merge or nest into the host's router: `/ws/{doc}` (the y-websocket
    /// endpoint), `/api/v1/...` (with an API key), `/healthz`, `/readyz`, `/metrics`.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Cancelled when Chorus starts shutting down: hand it to the host server's graceful
    /// shutdown so both stop together.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Stops: no new connections, rooms apply what they have queued and save, connections are
    /// closed with 1001, the last change notifications go out. Waits up to
    /// `--shutdown-timeout` for each stage.
    pub async fn stop(self) {
        self.state.begin_shutdown();
        self.state.finish_shutdown().await;
    }

    /// The whole document, or what a holder of the v1 state vector `since` lacks, as a Yjs v1
    /// update.
    ///
    /// # Errors
    /// A bad name or state vector, or a document that cannot be loaded.
    pub async fn read_update(&self, doc: &str, since: Option<&[u8]>) -> Result<Bytes, ApiError> {
        let doc = DocName::parse(doc)?;
        let since = since
            .map(StateVector::decode)
            .transpose()
            .map_err(|e| ApiError::BadRequest(format!("not a state vector: {e}")))?;
        self.state.read_doc(&doc, since).await
    }

    /// Applies a Yjs v1 update as the server: connected clients (on every node) receive it.
    /// Returns once it is durable.
    ///
    /// # Errors
    /// An update the validator or the document refuses, or a document that cannot be loaded.
    pub async fn write_update(&self, doc: &str, update: Bytes) -> Result<(), ApiError> {
        self.state.write_doc(&DocName::parse(doc)?, update).await
    }

    /// Deletes a document: its connections on every node are closed with 4404, its snapshot
    /// and update log are removed.
    ///
    /// # Errors
    /// A bad name, or a document that cannot be loaded or deleted.
    pub async fn delete(&self, doc: &str) -> Result<(), ApiError> {
        self.state
            .rooms
            .delete(&DocName::parse(doc)?)
            .await?
            .map_err(|error| ApiError::Internal(error.to_string()))
    }

    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }
}

impl From<JoinRefused> for ApiError {
    fn from(refused: JoinRefused) -> Self {
        match refused {
            JoinRefused::ShuttingDown => ApiError::ShuttingDown,
            JoinRefused::RoomFull | JoinRefused::LoadFailed => {
                ApiError::Internal("the document could not be loaded".into())
            }
        }
    }
}

impl ChorusBuilder {
    /// The settings (see [`Config`]; [`Config::local`] gives the defaults).
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The application's hooks.
    #[must_use]
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.hooks = Arc::new(hooks);
        self
    }

    /// A snapshot store and update log of the host's choice, instead of those the settings
    /// name (`--store`, `--update-log`).
    #[must_use]
    pub fn store(mut self, snapshots: Arc<dyn SnapshotStore>, log: Arc<dyn UpdateLog>) -> Self {
        self.backends = Some((snapshots, log));
        self
    }

    /// Validates the settings, opens the store, connects the relay and starts the background
    /// work.
    ///
    /// # Errors
    /// Every invalid setting (each naming the setting and the fix), or a store that cannot be
    /// opened.
    pub async fn build(self) -> anyhow::Result<Chorus> {
        let Self {
            config,
            hooks,
            backends,
        } = self;
        config
            .validate()
            .map_err(|problems| anyhow::anyhow!("invalid configuration:\n{problems}"))?;
        let backends = match backends {
            Some(backends) => backends,
            None => open_store(&config).await?,
        };
        let quarantine = match &config.quarantine_dir {
            Some(dir) => Some(
                Quarantine::open(dir.clone(), config.quarantine_max).map_err(|e| {
                    anyhow::anyhow!(
                        "--quarantine-dir (CHORUS_QUARANTINE_DIR) {}: {e}; give a directory this \
                     process may create and write",
                        dir.display()
                    )
                })?,
            ),
            None => None,
        };
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let relay = match &config.redis_url {
            Some(url) => Some(Relay::start(
                RelaySettings {
                    url: url.clone(),
                    cluster: config.redis_cluster,
                    prefix: config.redis_prefix.clone(),
                    heartbeat_interval: config.node_timeout / 5,
                    node_timeout: config.node_timeout,
                },
                shutdown.clone(),
                &tracker,
            )?),
            None => None,
        };
        let auth = token_checks(&config)?;
        let auth_callback = match &config.auth_callback_url {
            Some(url) => Some(Arc::new(
                AuthCallback::new(
                    url.clone(),
                    config.auth_callback_timeout,
                    config.auth_callback_cache,
                )
                .map_err(|e| anyhow::anyhow!(e))?,
            )),
            None => None,
        };
        match (&auth, &auth_callback) {
            (Some(auth), _) => {
                tracing::info!(algorithm = ?auth.algorithm(), "client tokens required")
            }
            (None, Some(_)) => tracing::info!("connections authorized by the auth callback"),
            (None, None) => tracing::warn!(
                "no --auth-secret, --auth-public-key or --auth-callback-url: unless an embedding \
                 application's hook decides, anyone who can reach the server may read and edit \
                 every document"
            ),
        }
        let webhooks = match &config.webhook_url {
            Some(url) => Some(
                Webhooks::new(WebhookSettings {
                    url: url.clone(),
                    secret: config
                        .webhook_secret
                        .as_ref()
                        .map(|s| s.0.as_bytes().to_vec()),
                    include_content: config.webhook_include_content,
                    max_attempts: config.webhook_max_attempts,
                    timeout: config.webhook_timeout,
                })
                .context("--webhook-url: cannot build an HTTP client")?,
            ),
            None => None,
        };
        let changes = Changes::start(Arc::clone(&hooks), webhooks);
        let settings = RoomSettings {
            snapshot_interval: config.snapshot_interval,
            idle_timeout: config.room_idle_timeout,
            awareness_timeout: config.awareness_timeout,
            relay_resync_interval: config.relay_resync_interval,
            max_peers: config.max_connections_per_room,
            change_debounce: config.change_debounce,
            doc_limits: DocLimits {
                max_bytes: config.max_document_bytes,
                max_clients: config.max_document_clients,
                max_clients_per_connection: config.max_clients_per_connection,
                max_pending: config.max_pending_structs,
            },
            // Held updates wait for missing dependencies as yrs' pending structs do, so the
            // same setting bounds them, per connection. A client out of step holds what it
            // typed during a reconnect, or a sync step 2 with holes: a few updates, at most one
            // message's worth of bytes (twice, for the step 2 that may come with it).
            held_limits: HeldLimits {
                max_updates: config.max_pending_structs,
                max_bytes: config.max_message_bytes.saturating_mul(2),
            },
        };
        let services = Services {
            relay: relay.clone(),
            hooks: Arc::clone(&hooks),
            changes: changes.clone(),
        };
        let state = AppState {
            auth,
            auth_callback,
            hooks,
            changes,
            open_connections: Arc::default(),
            quarantine,
            rooms: Rooms::new(
                backends,
                services,
                settings,
                shutdown.clone(),
                tracker.clone(),
            ),
            relay,
            config: Arc::new(config),
            shutdown,
            tracker,
            ready: Arc::new(AtomicBool::new(true)),
        };
        Ok(Chorus { state })
    }
}

async fn open_store(
    config: &Config,
) -> anyhow::Result<(Arc<dyn SnapshotStore>, Arc<dyn UpdateLog>)> {
    let store_config = config
        .store_config()
        .map_err(|problem| anyhow::anyhow!("invalid configuration:\n{problem}"))?;
    chorus_store::open(&store_config).await.with_context(|| {
        format!(
            "opening the store {store_config:?} (for files: set --data-dir / CHORUS_DATA_DIR to a \
             writable directory; for Redis: check --store-redis-url)"
        )
    })
}

fn token_checks(config: &Config) -> anyhow::Result<Option<Arc<Authenticator>>> {
    Ok(match (&config.auth_secret, &config.auth_public_key) {
        (Some(secret), _) => Some(Arc::new(Authenticator::hs256(secret.0.as_bytes()))),
        (None, Some(path)) => Some(Arc::new(
            Authenticator::from_public_key_file(path).map_err(|e| anyhow::anyhow!(e))?,
        )),
        (None, None) => None,
    })
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

    /// Validates and applies a Yjs v1 update as the server; returns once it is durable.
    pub(crate) async fn write_doc(&self, doc: &DocName, update: Bytes) -> Result<(), ApiError> {
        validate_update_v1(&update, &UpdateLimits::default())
            .map_err(|e| ApiError::BadRequest(format!("not an acceptable Yjs v1 update: {e}")))?;
        self.rooms
            .with_room(doc, |room| {
                let update = update.clone();
                async move { room.write(update).await }
            })
            .await?
            .map_err(|refused| ApiError::BadRequest(refused.to_string()))
    }

    /// Readiness turns to 503 and everything is told to stop.
    pub(crate) fn begin_shutdown(&self) {
        self.ready.store(false, Ordering::SeqCst);
        self.shutdown.cancel();
    }

    /// Waits for rooms and connections, then for the last change notifications.
    pub(crate) async fn finish_shutdown(&self) {
        self.tracker.close();
        let timeout = self.config.shutdown_timeout;
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
