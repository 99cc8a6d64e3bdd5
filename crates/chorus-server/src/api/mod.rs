//! The HTTP API for servers (`/api/v1`): read, write, list and delete documents and mint client
//! tokens from a backend, behind a bearer API key (`--api-key`). Without a key configured the
//! API answers 403, except the version-history routes, which also let in whoever the
//! document's WebSocket would let in (see `versions`). Every error is JSON `{ "error": <code>, "message": <text> }` (see
//! [`ApiError`]), unknown paths and methods included.
//!
//! # Layout
//! - `docs`: one document (read, write, delete) and the paged list of stored documents.
//! - `extract`: axum's extractors with JSON refusals.
//! - `tokens`: client tokens signed with `--auth-secret`.
//! - `versions`: version history: list, make, read, diff, restore; the activity timeline.
//! - `openapi`: the OpenAPI 3.1 description, the one route that needs no key.

mod docs;
mod extract;
mod openapi;
mod tokens;
mod versions;

use axum::http::{HeaderMap, header};
use axum::routing::{any, get, post};
use chorus_protocol::DocName;

use crate::app::AppState;
use crate::error::ApiError;

/// Every route under `/api/v1` and the methods it answers (HEAD comes with GET). The router is
/// built from the same paths, and a test checks the OpenAPI description and the live router
/// against this table in both directions.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/api/v1/docs", &["GET"]),
    ("/api/v1/docs/{doc}", &["GET", "DELETE"]),
    ("/api/v1/docs/{doc}/update", &["GET", "POST"]),
    ("/api/v1/docs/{doc}/stateless", &["POST"]),
    ("/api/v1/docs/{doc}/versions", &["GET", "POST"]),
    ("/api/v1/docs/{doc}/versions/{id}", &["GET"]),
    ("/api/v1/docs/{doc}/versions/{a}/diff/{b}", &["GET"]),
    ("/api/v1/docs/{doc}/versions/{id}/restore", &["POST"]),
    ("/api/v1/docs/{doc}/activity", &["GET"]),
    ("/api/v1/tokens", &["POST"]),
    ("/api/v1/openapi.json", &["GET"]),
];

/// The routes under `/api/v1`.
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/docs", get(docs::list))
        .route(
            "/api/v1/docs/{doc}",
            get(docs::read_json).delete(docs::delete),
        )
        .route(
            "/api/v1/docs/{doc}/update",
            get(docs::read_update).post(docs::write_update),
        )
        .route("/api/v1/docs/{doc}/stateless", post(docs::send_stateless))
        .route(
            "/api/v1/docs/{doc}/versions",
            get(versions::list).post(versions::create),
        )
        .route("/api/v1/docs/{doc}/versions/{id}", get(versions::read))
        .route(
            "/api/v1/docs/{doc}/versions/{a}/diff/{b}",
            get(versions::diff),
        )
        .route(
            "/api/v1/docs/{doc}/versions/{id}/restore",
            post(versions::restore),
        )
        .route("/api/v1/docs/{doc}/activity", get(versions::activity))
        .route("/api/v1/tokens", post(tokens::mint))
        .route("/api/v1/openapi.json", get(openapi::serve))
        // Without these, unknown API paths would reach the static-file fallback or axum's
        // empty 404, and wrong methods an empty 405: API clients always get JSON.
        .route("/api/v1", any(not_found))
        .route("/api/v1/{*rest}", any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such API route; see GET /api/v1/openapi.json".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Checks the bearer key.
fn check_key(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &state.config.auth.api_key else {
        return Err(ApiError::Forbidden(
            "the HTTP API is off: start the server with --api-key",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), key.0.as_bytes())) {
        return Err(ApiError::BadApiKey);
    }
    Ok(())
}

/// Checks the bearer key and the document name.
fn authorized(state: &AppState, headers: &HeaderMap, doc: String) -> Result<DocName, ApiError> {
    check_key(state, headers)?;
    Ok(DocName::parse(doc)?)
}

/// Compares without stopping at the first difference, so response times say nothing about the key.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A listing's page size: `default` when the request names none, else `requested` if it is
/// between 1 and `max`.
fn page_limit(requested: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match requested {
        None => Ok(default),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::BadRequest(format!(
            "limit is {limit}; it must be between 1 and {max}"
        ))),
    }
}
