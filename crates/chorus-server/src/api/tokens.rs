//! `POST /api/v1/tokens`: client tokens for the WebSocket endpoint, signed with `--auth-secret`,
//! so a backend needs no JWT library of its own.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use chorus_protocol::DocName;
use serde::{Deserialize, Serialize};

use super::check_key;
use super::extract::Api;
use crate::app::AppState;
use crate::auth::{Claims, Mode, TokenMinter};
use crate::error::ApiError;

/// Lifetime of a token when the request names none: a working session; clients fetch a new
/// token when they reconnect after it expired (the server closes them with 4403 at expiry).
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Longest lifetime granted. Tokens cannot be revoked, only outlived, so a leaked one must not
/// stay useful for long.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a backend asks for.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenRequest {
    /// A document name, or a prefix ending in `*` (`*` alone: every document).
    doc: String,
    /// What the holder may do.
    mode: Mode,
    /// Lifetime in seconds, 1 to [`MAX_TTL`]; [`DEFAULT_TTL`] if absent.
    ttl_seconds: Option<u64>,
    /// Who the holder is: the token's `sub`, which the document's history shows as the author
    /// of its edits.
    sub: Option<String>,
}

/// A signed token and when it stops working.
#[derive(Serialize)]
pub(super) struct TokenResponse {
    token: String,
    /// Seconds since the Unix epoch.
    expires_at: u64,
}

/// `POST /api/v1/tokens`.
pub(super) async fn mint(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(body): Api<Bytes>,
) -> Result<Json<TokenResponse>, ApiError> {
    check_key(&state, &headers)?;
    let Some(secret) = &state.config.auth.auth_secret else {
        return Err(ApiError::NotConfigured(
            if state.config.auth.auth_public_key.is_some() {
                "this server verifies tokens with --auth-public-key and holds no private key to \
                 sign them: sign tokens with your private key, or use --auth-secret instead"
            } else if state.config.auth.auth_callback_url.is_some() {
                "this server asks --auth-callback-url about tokens, so your callback decides what \
                 a token is; minting needs --auth-secret instead"
            } else {
                "this server checks no tokens: start it with --auth-secret (at least 32 bytes) \
                 to mint them"
            },
        ));
    };
    // Parsed by hand rather than with axum's `Json`, whose refusals are plain text and which
    // insists on a content type: every refusal here is a JSON 400 naming the problem.
    let request: TokenRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be JSON {{\"doc\", \"mode\": \"read\"|\"write\", \"ttl_seconds\", \"sub\"}}: {e}"
        ))
    })?;
    check_pattern(&request.doc)?;
    let ttl = match request.ttl_seconds {
        None => DEFAULT_TTL,
        Some(secs) if (1..=MAX_TTL.as_secs()).contains(&secs) => Duration::from_secs(secs),
        Some(secs) => {
            return Err(ApiError::BadRequest(format!(
                "ttl_seconds is {secs}; it must be between 1 and {}",
                MAX_TTL.as_secs()
            )));
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| ApiError::Internal(format!("the clock is before 1970: {e}")))?;
    let expires_at = (now + ttl).as_secs();
    let claims = Claims {
        doc: request.doc,
        mode: request.mode,
        exp: expires_at,
        sub: request.sub,
    };
    let token = TokenMinter::hs256(secret.0.as_bytes())
        .mint(&claims)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(TokenResponse { token, expires_at }))
}

/// A document name, or a prefix of one followed by `*`.
fn check_pattern(doc: &str) -> Result<(), ApiError> {
    match doc.strip_suffix('*') {
        Some("") => Ok(()),
        // A prefix must itself be acceptable as (the start of) a name.
        Some(prefix) => DocName::parse(prefix).map(drop).map_err(ApiError::from),
        None => DocName::parse(doc).map(drop).map_err(ApiError::from),
    }
}
