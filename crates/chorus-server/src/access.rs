//! Who may open a document, decided before the WebSocket upgrade: the embedding application's
//! [`Hooks::authenticate`](crate::hooks::Hooks::authenticate) first; when it has no opinion, the
//! server's own setting — signed tokens, the auth callback, or nothing (an open server).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use chorus_protocol::DocName;

use crate::app::AppState;
use crate::error::ApiError;
use crate::hooks::{Access, ConnectRequest};

/// What `token` grants on `doc`.
///
/// # Errors
/// The refusal to answer before the upgrade (401, 403 or 503).
pub(crate) async fn admit(
    state: &AppState,
    doc: &DocName,
    token: Option<&str>,
    headers: &HeaderMap,
) -> Result<Access, ApiError> {
    let request = ConnectRequest {
        doc,
        token,
        headers,
    };
    if let Some(access) = state.hooks.authenticate(&request).await? {
        return Ok(access);
    }
    if let Some(tokens) = &state.auth {
        let claims = tokens.authorize(token, doc)?;
        return Ok(Access {
            mode: claims.mode,
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(claims.exp)),
        });
    }
    if let Some(callback) = &state.auth_callback {
        return Ok(callback.check(token, doc).await?);
    }
    Ok(Access::WRITE)
}

/// The tokio instant at which `at` is reached (now, if it has passed).
pub(crate) fn deadline(at: SystemTime) -> tokio::time::Instant {
    let left = at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::Instant::now() + left
}
