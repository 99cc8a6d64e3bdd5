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
//! The [`Config::server`] group (`listen`, `static_dir`) and `log_format` are the host's
//! business and are ignored here; everything else applies. The builder takes the whole
//! [`Config`] or one group at a time ([`ChorusBuilder::limits`], ...), each starting from the
//! `chorus serve` defaults (`LimitsConfig::default()`, ...).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use axum::Router;
use bytes::Bytes;
use chorus_protocol::{DocName, StateVector};
use chorus_store::{SnapshotStore, UpdateLog, VersionStore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::auth_callback::AuthCallback;
use crate::changes::Changes;
use crate::config::{
    AuthConfig, Config, HistoryConfig, LimitsConfig, OperationsConfig, ScaleOutConfig,
    SessionConfig, StorageConfig, WebhookConfig,
};
use crate::error::ApiError;
use crate::history::History;
use crate::hooks::{Hooks, NoHooks};
use crate::quarantine::Quarantine;
use crate::relay::Relay;
use crate::room::registry::Services;
use crate::room::{JoinRefused, Rooms};
use crate::webhook::Webhooks;

pub(crate) mod routes;
mod state;

pub use state::AppState;

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
    versions: Option<Arc<dyn VersionStore>>,
}

impl Chorus {
    /// Starts with [`Config::local`]`("./data")` and no hooks.
    pub fn builder() -> ChorusBuilder {
        ChorusBuilder {
            config: Config::local("./data"),
            hooks: Arc::new(NoHooks),
            backends: None,
            versions: None,
        }
    }

    /// The routes, to merge or nest into the host's router: `/ws/{doc}` (the y-websocket
    /// endpoint), `/hocuspocus` (the Hocuspocus endpoint), `/api/v1/...` (with an API key),
    /// `/healthz`, `/readyz`, `/metrics`.
    pub fn router(&self) -> Router {
        routes::with_state(routes::routes(), self.state.clone())
    }

    /// Cancelled when Chorus starts shutting down: hand it to the host server's graceful
    /// shutdown so both stop together.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Stops: `/readyz` answers 503 for `--drain-delay` (serving goes on meanwhile), then no new
    /// connections, rooms apply what they have queued and save, connections are closed with
    /// 1001, the last change notifications go out. Waits up to `--shutdown-timeout` for each
    /// stage.
    pub async fn stop(self) {
        self.state.drain().await;
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

/// One builder method per settings group: it replaces that group of the [`Config`].
macro_rules! group_setters {
    ($($(#[$doc:meta])* $group:ident: $type:ty,)*) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $group(mut self, $group: $type) -> Self {
            self.config.$group = $group;
            self
        }
    )*};
}

impl ChorusBuilder {
    /// The settings (see [`Config`]; [`Config::local`] gives the defaults).
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    group_setters! {
        /// Where snapshots and the update log are kept (`--data-dir`, `--store`, ...).
        storage: StorageConfig,
        /// Scale-out through Redis (`--redis-url`, ...).
        scale_out: ScaleOutConfig,
        /// Client tokens, the auth callback, origins and the API key.
        auth: AuthConfig,
        /// Connections, rates and sizes.
        limits: LimitsConfig,
        /// The change webhook and the change debounce.
        webhooks: WebhookConfig,
        /// Liveness of connections, presence and rooms.
        sessions: SessionConfig,
        /// Quarantine, draining and shutdown.
        operations: OperationsConfig,
        /// Version history (`--version-interval`, `--version-retention`).
        history: HistoryConfig,
    }

    /// The application's hooks.
    #[must_use]
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.hooks = Arc::new(hooks);
        self
    }

    /// A version store of the host's choice, instead of the one beside the settings' store
    /// (with [`ChorusBuilder::store`] and no version store, versions are kept in memory).
    #[must_use]
    pub fn versions(mut self, versions: Arc<dyn VersionStore>) -> Self {
        self.versions = Some(versions);
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
            versions,
        } = self;
        config.validate()?;
        let custom_store = backends.is_some();
        let backends = match backends {
            Some(backends) => backends,
            None => open_store(&config).await?,
        };
        let versions = match versions {
            Some(versions) => versions,
            // A host that brings its own store and no version store gets versions in memory:
            // the settings' store is not the one it uses.
            None if custom_store => Arc::new(chorus_store::MemoryVersions::new()),
            None => open_versions(&config).await?,
        };
        let quarantine = match &config.operations.quarantine_dir {
            Some(dir) => Some(
                Quarantine::open(dir.clone(), config.operations.quarantine_max).map_err(|e| {
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
        let relay = config
            .scale_out
            .relay_settings()
            .map(|settings| Relay::start(settings, shutdown.clone(), &tracker))
            .transpose()?;
        let auth = token_checks(&config.auth)?;
        let auth_callback = match &config.auth.auth_callback_url {
            Some(url) => Some(Arc::new(
                AuthCallback::new(
                    url.clone(),
                    config.auth.auth_callback_timeout,
                    config.auth.auth_callback_cache,
                )
                .map_err(|e| {
                    anyhow::anyhow!("--auth-callback-url: cannot build an HTTP client ({e})")
                })?,
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
        let webhooks = config
            .webhooks
            .settings()
            .map(Webhooks::new)
            .transpose()
            .context("--webhook-url: cannot build an HTTP client")?;
        let changes = Changes::start(Arc::clone(&hooks), webhooks);
        let settings = config.room_settings();
        let history = History::new(versions, &config.history);
        let services = Services {
            relay: relay.clone(),
            hooks: Arc::clone(&hooks),
            changes: changes.clone(),
            history: history.clone(),
        };
        let state = AppState {
            auth,
            auth_callback,
            hooks,
            changes,
            open_connections: Arc::default(),
            quarantine,
            history,
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
    let store_config = config.store_config()?;
    chorus_store::open(&store_config).await.with_context(|| {
        format!(
            "opening the store {store_config:?} (for files: set --data-dir / CHORUS_DATA_DIR to a \
             writable directory; for Redis: check --store-redis-url)"
        )
    })
}

async fn open_versions(config: &Config) -> anyhow::Result<Arc<dyn VersionStore>> {
    let store_config = config.store_config()?;
    chorus_store::open_versions(&store_config)
        .await
        .with_context(|| format!("opening the version store beside {store_config:?}"))
}

fn token_checks(config: &AuthConfig) -> anyhow::Result<Option<Arc<Authenticator>>> {
    Ok(match (&config.auth_secret, &config.auth_public_key) {
        (Some(secret), _) => Some(Arc::new(Authenticator::hs256(secret.0.as_bytes()))),
        (None, Some(path)) => Some(Arc::new(Authenticator::from_public_key_file(path)?)),
        (None, None) => None,
    })
}
