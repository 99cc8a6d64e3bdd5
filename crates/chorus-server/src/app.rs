//! The application: shared state, the router, binding and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::{any, get};
use axum::{Json, Router};
use chorus_store::{SnapshotStore, UpdateLog};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::relay::{Relay, RelaySettings};
use crate::room::{RoomSettings, Rooms};
use crate::ws;

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
    /// WebSocket connections open now, against `--max-connections`.
    pub open_connections: Arc<std::sync::atomic::AtomicUsize>,
    ready: Arc<AtomicBool>,
}

/// A bound, not yet running server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Validates `config`, opens the data directory and binds the listening socket.
    ///
    /// # Errors
    /// Invalid settings (every problem listed), an unusable data directory, or a port that
    /// cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config
            .validate()
            .map_err(|problems| anyhow::anyhow!("invalid configuration:\n{problems}"))?;
        let store_config = config
            .store_config()
            .map_err(|problem| anyhow::anyhow!("invalid configuration:\n{problem}"))?;
        let backends = chorus_store::open(&store_config).await.with_context(|| {
            format!(
                "opening the store {store_config:?} (for files: set --data-dir / CHORUS_DATA_DIR to a \
                 writable directory; for Redis: check --store-redis-url)"
            )
        })?;
        Self::build_with_store(config, backends).await
    }

    /// As [`Application::build`], with a snapshot store and update log of the caller's choice.
    ///
    /// # Errors
    /// Invalid settings or a port that cannot be bound.
    pub async fn build_with_store(
        config: Config,
        backends: (Arc<dyn SnapshotStore>, Arc<dyn UpdateLog>),
    ) -> anyhow::Result<Self> {
        config
            .validate()
            .map_err(|problems| anyhow::anyhow!("invalid configuration:\n{problems}"))?;
        let listener = bind(config.listen).with_context(|| {
            format!(
                "binding {} (is another server running? choose another --listen / CHORUS_LISTEN)",
                config.listen
            )
        })?;
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let settings = RoomSettings {
            snapshot_interval: config.snapshot_interval,
            idle_timeout: config.room_idle_timeout,
            awareness_timeout: config.awareness_timeout,
            relay_resync_interval: config.relay_resync_interval,
            max_peers: config.max_connections_per_room,
        };
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
        let auth = match (&config.auth_secret, &config.auth_public_key) {
            (Some(secret), _) => Some(Arc::new(Authenticator::hs256(secret.0.as_bytes()))),
            (None, Some(path)) => Some(Arc::new(
                Authenticator::from_public_key_file(path).map_err(|e| anyhow::anyhow!(e))?,
            )),
            (None, None) => None,
        };
        match &auth {
            Some(auth) => tracing::info!(algorithm = ?auth.algorithm(), "client tokens required"),
            None => tracing::warn!(
                "no --auth-secret or --auth-public-key: the server is open, anyone who can reach \
                 it may read and edit every document"
            ),
        }
        let state = AppState {
            auth,
            open_connections: Arc::default(),
            rooms: Rooms::new(
                backends,
                relay.clone(),
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
        Ok(Self {
            listener,
            router: router(state.clone()),
            state,
        })
    }

    /// The address the server listens on (useful with port 0).
    ///
    /// # Errors
    /// If the socket cannot report its address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` completes, then shuts down gracefully: readiness turns to 503, no new
    /// connections are accepted, rooms apply what they have queued, save, and close their
    /// connections with 1001.
    ///
    /// # Errors
    /// If serving fails.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            state,
        } = self;
        let addr = listener.local_addr().context("reading the bound address")?;
        tracing::info!(%addr, data_dir = %state.config.data_dir.display(), "listening");

        let shutdown = state.shutdown.clone();
        let ready = Arc::clone(&state.ready);
        tokio::spawn(async move {
            stop.await;
            tracing::info!("shutting down: flushing rooms and closing connections");
            ready.store(false, Ordering::SeqCst);
            shutdown.cancel();
        });

        axum::serve(listener, router)
            .with_graceful_shutdown(state.shutdown.clone().cancelled_owned())
            .await
            .context("serving HTTP")?;

        state.tracker.close();
        let timeout = state.config.shutdown_timeout;
        if tokio::time::timeout(timeout, state.tracker.wait())
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
        Ok(())
    }
}

/// Pending connections the kernel queues before `accept`. The usual 128 overflows when hundreds
/// of clients reconnect at once (after a deploy), and every overflowed client waits a full second
/// for its SYN to be retried.
const LISTEN_BACKLOG: u32 = 4096;

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .route("/ws", any(ws::missing_doc))
        .route("/ws/", any(ws::missing_doc))
        .route("/ws/{*doc}", any(ws::upgrade))
        .merge(crate::api::routes());
    if let Some(dir) = &state.config.static_dir {
        router = router.fallback_service(ServeDir::new(dir));
    }
    router
        .layer(
            // The span names the path only: query strings can carry tokens.
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                tracing::debug_span!("http", method = %request.method(), path = %request.uri().path())
            }),
        )
        .with_state(state)
}

/// Prometheus text format.
async fn metrics_page() -> Result<String, StatusCode> {
    crate::metrics::install()
        .map(|handle| handle.render())
        .ok_or(StatusCode::NOT_FOUND)
}

async fn healthz() -> StatusCode {
    StatusCode::OK
}

/// 503 only while shutting down. A Redis outage is reported but keeps the node ready: it still
/// serves its own clients, and taking every node out of rotation would turn a relay outage into
/// a full one.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let redis = match &state.relay {
        None => "disabled",
        Some(relay) if relay.is_connected() => "connected",
        Some(_) => "disconnected",
    };
    let (status, text) = if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    };
    (
        status,
        Json(serde_json::json!({ "status": text, "redis": redis })),
    )
}
