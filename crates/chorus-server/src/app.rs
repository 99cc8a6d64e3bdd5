//! The standalone server: binds, serves Chorus's routes plus `/` (the home page, or
//! `--static-dir`), and shuts down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use chorus_store::{SnapshotStore, UpdateLog};
use tokio::net::{TcpListener, TcpSocket};
use tower_http::services::ServeDir;

use crate::config::Config;
use crate::embed::{Chorus, ChorusBuilder, routes};

mod home;

/// Kept here for the handlers that name it `crate::app::AppState`; it lives with [`Chorus`].
pub use crate::embed::AppState;

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
        let state = chorus.state().clone();
        let listen = state.config.server.listen;
        let listener = bind(listen).with_context(|| {
            format!(
                "binding {listen} (is another server running? choose another --listen / CHORUS_LISTEN)"
            )
        })?;
        let routes = match &state.config.server.static_dir {
            Some(dir) => routes::routes().fallback_service(ServeDir::new(dir)),
            None => routes::routes().route("/", get(home::page)),
        };
        Ok(Self {
            listener,
            router: routes::with_state(routes, state),
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

    /// Serves until `stop` completes, then shuts down gracefully: readiness turns to 503 and,
    /// after `--drain-delay` of serving as usual, no new connections are accepted, rooms apply
    /// what they have queued, save, and close their connections with 1001.
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
        tracing::info!(%addr, data_dir = %state.config.storage.data_dir.display(), "listening");

        let stopping = state.clone();
        tokio::spawn(async move {
            stop.await;
            tracing::info!("shutting down: flushing rooms and closing connections");
            stopping.drain().await;
        });

        // Gated: a connect burst then leaves less memory behind (see `handshake::gate`).
        let listener = crate::handshake::GatedListener::new(listener, crate::handshake::UNANSWERED);
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
