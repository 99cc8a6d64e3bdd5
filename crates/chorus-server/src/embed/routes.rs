//! Chorus's own routes: the y-websocket endpoint, the HTTP API, health, readiness, metrics.

use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::{any, get};
use axum::{Json, Router};
use tower_http::trace::TraceLayer;

use super::AppState;
use crate::{hocuspocus, ws};

/// The routes, still waiting for their state: a standalone server adds its own `/` first.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .route("/ws", any(ws::missing_doc))
        .route("/ws/", any(ws::missing_doc))
        .route("/ws/{*doc}", any(ws::upgrade))
        .route("/hocuspocus", any(hocuspocus::upgrade))
        .merge(crate::api::routes())
}

/// `routes`, traced and bound to `state`.
pub(crate) fn with_state(routes: Router<AppState>, state: AppState) -> Router {
    routes
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
        .map(|handle| {
            crate::metrics::sample_runtime();
            handle.render()
        })
        .ok_or(StatusCode::NOT_FOUND)
}

async fn healthz() -> StatusCode {
    StatusCode::OK
}

/// 503 from the start of a drain (`--drain-delay`) on. A Redis outage is reported but keeps the
/// node ready: it still serves its own clients, and taking every node out of rotation would turn
/// a relay outage into a full one.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let redis = match &state.relay {
        None => "disabled",
        Some(relay) if relay.is_connected() => "connected",
        Some(_) => "disconnected",
    };
    let (status, text) = if state.is_ready() {
        (StatusCode::OK, "ready")
    } else if state.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    };
    (
        status,
        Json(serde_json::json!({ "status": text, "redis": redis })),
    )
}
