//! `GET /` without `--static-dir`: what this server is, how to connect to it, where the rest is.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::HOST;
use axum::response::Html;

use super::AppState;

/// The page, compiled into the binary; `{{name}}` marks what is filled in per request.
const PAGE: &str = include_str!("home.html");

/// Shown in the snippet when the request names no usable host.
const UNKNOWN_HOST: &str = "HOST:PORT";

/// The page with this server's version and counts as of this request.
pub(super) async fn page(State(state): State<AppState>, headers: HeaderMap) -> Html<String> {
    let connections = state.open_connections.load(Ordering::Relaxed);
    Html(
        PAGE.replace("{{version}}", env!("CARGO_PKG_VERSION"))
            .replace("{{documents}}", &state.rooms.len().to_string())
            .replace("{{connections}}", &connections.to_string())
            .replace("{{host}}", host(&headers)),
    )
}

/// The address the client used, for a snippet it can paste. The `Host` header is the client's
/// to write, so anything but a plain host and port is left out rather than escaped.
fn host(headers: &HeaderMap) -> &str {
    headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or(UNKNOWN_HOST)
}
