//! Documents: read, write, list and delete.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chorus_protocol::{DocName, StateVector, UpdateLimits, validate_update_v1};
use serde::Deserialize;

use super::authorized;
use crate::app::AppState;
use crate::error::ApiError;
use crate::export::doc_to_json;
use crate::room::JoinRefused;

#[derive(Deserialize)]
pub(super) struct SinceQuery {
    /// A v1 state vector, base64: only what a holder of it lacks is returned.
    sv: Option<String>,
}

/// `GET /api/v1/docs/{doc}`: the content as JSON.
pub(super) async fn read_json(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(doc): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let doc = authorized(&state, &headers, doc)?;
    let update = read(&state, &doc, None).await?;
    let json = tokio::task::spawn_blocking(move || doc_to_json(&update))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Internal)?;
    Ok(Json(json))
}

/// `GET /api/v1/docs/{doc}/update[?sv=...]`: the state (or a diff) as a binary Yjs v1 update.
pub(super) async fn read_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(doc): Path<String>,
    Query(query): Query<SinceQuery>,
) -> Result<Response, ApiError> {
    let doc = authorized(&state, &headers, doc)?;
    let since = match query.sv {
        Some(sv) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(sv.as_bytes())
                .map_err(|e| ApiError::BadRequest(format!("sv is not base64: {e}")))?;
            Some(
                StateVector::decode(&bytes)
                    .map_err(|e| ApiError::BadRequest(format!("sv is not a state vector: {e}")))?,
            )
        }
        None => None,
    };
    let update = read(&state, &doc, since).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], update).into_response())
}

/// `POST /api/v1/docs/{doc}/update`: applies a binary Yjs v1 update; connected clients on every
/// node receive it. Answers once the update is durable.
pub(super) async fn write_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(doc): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let doc = authorized(&state, &headers, doc)?;
    validate_update_v1(&body, &UpdateLimits::default())
        .map_err(|e| ApiError::BadRequest(format!("not an acceptable Yjs v1 update: {e}")))?;
    let outcome = state
        .rooms
        .with_room(&doc, |room| {
            let body = body.clone();
            async move { room.write(body).await }
        })
        .await
        .map_err(refused)?;
    outcome.map_err(ApiError::BadRequest)?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

async fn read(
    state: &AppState,
    doc: &DocName,
    since: Option<StateVector>,
) -> Result<Bytes, ApiError> {
    state
        .rooms
        .with_room(doc, |room| {
            let since = since.clone();
            async move { room.read(since).await }
        })
        .await
        .map_err(refused)?
        .map_err(ApiError::Internal)
}

fn refused(refused: JoinRefused) -> ApiError {
    match refused {
        JoinRefused::ShuttingDown => ApiError::ShuttingDown,
        JoinRefused::RoomFull | JoinRefused::LoadFailed => {
            ApiError::Internal("the document could not be loaded".into())
        }
    }
}
