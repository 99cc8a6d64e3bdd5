//! Documents: read, write, list and delete.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chorus_protocol::{DocName, StateVector};
use serde::{Deserialize, Serialize};

use super::extract::Api;
use super::{authorized, check_key};
use crate::app::AppState;
use crate::error::ApiError;
use crate::export::doc_to_json;

/// Documents per page when the request names no `limit`.
const DEFAULT_PAGE: usize = 100;
/// Largest page: the answer is built in memory and each name may be 512 bytes.
const MAX_PAGE: usize = 1000;

/// Cursors are the last name of the previous page, base64url: opaque to clients, stable while
/// documents come and go (the next page starts after that name, whether it still exists or not).
const CURSOR: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// One page of the document list.
#[derive(Serialize)]
pub(super) struct DocPage {
    docs: Vec<DocEntry>,
    /// Pass as `?cursor=` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

#[derive(Serialize)]
struct DocEntry {
    name: String,
}

/// `GET /api/v1/docs[?limit=&cursor=]`: stored documents in name (byte) order, a page at a
/// time.
///
/// The store lists every name and the page is cut here: fine for thousands of documents, a
/// full scan per page for millions (the store traits have no ranged listing yet).
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Api<Query<ListQuery>>, ApiError>,
) -> Result<Json<DocPage>, ApiError> {
    // The key is checked first: without it, nothing about the query is answered.
    check_key(&state, &headers)?;
    let Api(Query(query)) = query?;
    let limit = super::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let after = query
        .cursor
        .map(|cursor| {
            CURSOR
                .decode(cursor.as_bytes())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| ApiError::BadRequest("cursor is not one this API handed out".into()))
        })
        .transpose()?;
    let names = state
        .rooms
        .stored()
        .await
        .map_err(|e| ApiError::Internal(format!("listing documents: {e}")))?;
    let mut page: Vec<DocName> = names
        .into_iter()
        .filter(|name| after.as_deref().is_none_or(|after| name.as_str() > after))
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next_cursor = more
        .then(|| page.last().map(|last| CURSOR.encode(last.as_str())))
        .flatten();
    Ok(Json(DocPage {
        docs: page
            .into_iter()
            .map(|name| DocEntry {
                name: name.as_str().to_owned(),
            })
            .collect(),
        next_cursor,
    }))
}

#[derive(Deserialize)]
pub(super) struct SinceQuery {
    /// A v1 state vector, base64: only what a holder of it lacks is returned.
    sv: Option<String>,
}

/// `GET /api/v1/docs/{doc}`: the content as JSON.
pub(super) async fn read_json(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path(doc)): Api<Path<String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let doc = authorized(&state, &headers, doc)?;
    let update = state.read_doc(&doc, None).await?;
    let json = tokio::task::spawn_blocking(move || doc_to_json(&update))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json))
}

/// `GET /api/v1/docs/{doc}/update[?sv=...]`: the state (or a diff) as a binary Yjs v1 update.
pub(super) async fn read_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path(doc)): Api<Path<String>>,
    Api(Query(query)): Api<Query<SinceQuery>>,
) -> Result<Response, ApiError> {
    let doc = authorized(&state, &headers, doc)?;
    let since = match query.sv {
        Some(sv) => {
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
    let update = state.read_doc(&doc, since).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], update).into_response())
}

/// `POST /api/v1/docs/{doc}/update`: applies a binary Yjs v1 update; connected clients on every
/// node receive it. Answers once the update is durable. Attributed in the document's history
/// to the `X-Chorus-Author` header, else `api`.
pub(super) async fn write_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path(doc)): Api<Path<String>>,
    Api(body): Api<Bytes>,
) -> Result<Response, ApiError> {
    let doc = authorized(&state, &headers, doc)?;
    let author = super::versions::author(&headers)?;
    state.write_doc_as(&doc, body, author).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/docs/{doc}/stateless`: the body (UTF-8 text) goes to every Hocuspocus
/// client of the document on every node, as the stateless message `provider.on("stateless")`
/// reports. It is not part of the document and is not stored. Answers 204 once this node's
/// room has queued it for its clients and published it to the other nodes.
pub(super) async fn send_stateless(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path(doc)): Api<Path<String>>,
    Api(body): Api<Bytes>,
) -> Result<StatusCode, ApiError> {
    let doc = authorized(&state, &headers, doc)?;
    let payload = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::BadRequest("a stateless message is UTF-8 text".into()))?;
    state
        .rooms
        .with_room(&doc, |room| {
            let payload = payload.clone();
            async move { room.stateless(payload).await }
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/docs/{doc}`: connections to the document, on every node, are closed with
/// 4404 (`close_code::DOCUMENT_DELETED`); its snapshot and update log are deleted. Answers 204
/// once they are; deleting a document that does not exist is not an error. A later read or
/// connection finds an empty document.
pub(super) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path(doc)): Api<Path<String>>,
) -> Result<StatusCode, ApiError> {
    let doc = authorized(&state, &headers, doc)?;
    state
        .rooms
        .delete(&doc)
        .await?
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}
