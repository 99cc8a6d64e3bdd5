//! Who may open a document, decided before the WebSocket upgrade: the embedding application's
//! [`Hooks::authenticate`](crate::hooks::Hooks::authenticate) first; when it has no opinion, the
//! server's own setting — signed tokens, the auth callback, or nothing (an open server).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use chorus_protocol::DocName;
use chorus_room::Identity;

use crate::app::AppState;
use crate::auth::Mode;
use crate::auth_callback::AuthCallback;
use crate::conn::{CloseSignal, close_code};
use crate::error::ApiError;
use crate::hooks::{Access, ConnectRequest};

/// What a connection was let in with.
pub(crate) struct Admitted {
    pub access: Access,
    /// Set when the auth callback granted it: the callback is asked again every
    /// `--auth-callback-cache`, so a revoked permission closes the connection (4403).
    pub recheck: Option<Arc<AuthCallback>>,
}

impl Admitted {
    /// Who the connection's edits are attributed to: what the token, the callback or the hook
    /// named, else `anonymous`.
    pub fn identity(&self) -> Identity {
        self.access
            .identity
            .as_deref()
            .map_or_else(Identity::anonymous, Identity::new)
    }
}

/// What `token` grants on `doc`.
///
/// # Errors
/// The refusal to answer before the upgrade (401, 403 or 503).
pub(crate) async fn admit(
    state: &AppState,
    doc: &DocName,
    token: Option<&str>,
    headers: &HeaderMap,
) -> Result<Admitted, ApiError> {
    let request = ConnectRequest {
        doc,
        token,
        headers,
    };
    if let Some(access) = state.hooks.authenticate(&request).await? {
        return Ok(Admitted {
            access,
            recheck: None,
        });
    }
    if let Some(tokens) = &state.auth {
        let claims = tokens.authorize(token, doc)?;
        return Ok(Admitted {
            access: Access {
                mode: claims.mode,
                expires_at: Some(UNIX_EPOCH + Duration::from_secs(claims.exp)),
                identity: claims.sub,
            },
            recheck: None,
        });
    }
    if let Some(callback) = &state.auth_callback {
        return Ok(Admitted {
            access: callback.check(token, doc).await?,
            recheck: Some(Arc::clone(callback)),
        });
    }
    Ok(Admitted {
        access: Access::WRITE,
        recheck: None,
    })
}

/// Asks the auth callback again every `period` while the connection lives; closes it with
/// 4403 when the answer no longer grants `mode`. A callback that cannot be reached keeps the
/// connection: an outage of the backend must not disconnect everyone.
pub(crate) async fn recheck_until_closed(
    callback: Arc<AuthCallback>,
    period: Duration,
    token: Option<String>,
    doc: DocName,
    mode: Mode,
    close: CloseSignal,
) {
    loop {
        tokio::select! {
            _ = close.closed() => return,
            () = tokio::time::sleep(period) => {}
        }
        match callback.check(token.as_deref(), &doc).await {
            Ok(access) if access.mode == mode || mode == Mode::Read => {}
            Err(denied) if denied.status == 503 => {}
            Ok(_) | Err(_) => {
                tracing::info!(%doc, "the auth callback revoked this connection's access");
                close.close(close_code::FORBIDDEN, "access revoked");
                return;
            }
        }
    }
}

/// The tokio instant at which `at` is reached (now, if it has passed).
pub(crate) fn deadline(at: SystemTime) -> tokio::time::Instant {
    let left = at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::Instant::now() + left
}
