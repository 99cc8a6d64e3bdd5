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
use crate::auth_callback::AuthCallback;
use crate::changes::Changes;
use crate::config::Config;
use crate::embed::{Chorus, ChorusBuilder};
use crate::hooks::Hooks;
use crate::quarantine::Quarantine;
use crate::relay::Relay;
use crate::room::Rooms;
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
    /// The backend asked about each connection, with `--auth-callback-url`.
    pub auth_callback: Option<Arc<AuthCallback>>,
    /// The embedding application's hooks.
    pub hooks: Arc<dyn Hooks>,
    /// Change notifications, when someone listens.
    pub(crate) changes: Option<Changes>,
    /// WebSocket connections open now, against `--max-connections`.
    pub open_connections: Arc<std::sync::atomic::AtomicUsize>,
    /// Where refused updates are kept, with `--quarantine-dir`.
    pub quarantine: Option<Arc<Quarantine>>,
    pub(crate) ready: Arc<AtomicBool>,
}

/// A bound, not yet running server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    chorus: Chorus,
}

impl Application {
    /// Validates `config`, opens the data directory and binds the listening socket.
    ///
    /// # Errors
    /// Invalid settings (every problem listed), an unusable data directory, or a port that
    /// cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::from_builder(Chorus::builder().config(config)).await
    }

    /// As [`Application::build`], with a snapshot store and update log of the caller's choice.
    ///
    /// # Errors
    /// Invalid settings or a port that cannot be bound.
    pub async fn build_with_store(
        config: Config,
        (snapshots, log): (Arc<dyn SnapshotStore>, Arc<dyn UpdateLog>),
    ) -> anyhow::Result<Self> {
        Self::from_builder(Chorus::builder().config(config).store(snapshots, log)).await
    }

    /// A standalone server around whatever `builder` sets up.
    ///
    /// # Errors
    /// Invalid settings, a store that cannot be opened, or a port that cannot be bound.
    pub async fn from_builder(builder: ChorusBuilder) -> anyhow::Result<Self> {
        let chorus = builder.build().await?;
        let listen = chorus.state().config.listen;
        let listener = bind(listen).with_context(|| {
            format!(
                "binding {listen} (is another server running? choose another --listen / CHORUS_LISTEN)"
            )
        })?;
        Ok(Self {
            listener,
            router: chorus.router(),
            chorus,
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
            chorus,
        } = self;
        let addr = listener.local_addr().context("reading the bound address")?;
        let state = chorus.state().clone();
        tracing::info!(%addr, data_dir = %state.config.data_dir.display(), "listening");

        let stopping = state.clone();
        tokio::spawn(async move {
            stop.await;
            tracing::info!("shutting down: flushing rooms and closing connections");
            stopping.begin_shutdown();
        });

        axum::serve(listener, router)
            .with_graceful_shutdown(state.shutdown.clone().cancelled_owned())
            .await
            .context("serving HTTP")?;
        state.finish_shutdown().await;
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

pub(crate) fn router(state: AppState) -> Router {
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
