//! Version history over HTTP: list, make, read, compare and restore versions of a document, and
//! its activity timeline.
//!
//! Unlike the rest of `/api/v1`, these routes also serve browsers (the web demo's history
//! panel): a request that does not present the API key is let in exactly as the document's
//! WebSocket would let it in (the `authenticate` hook, a client token as `Authorization: Bearer
//! <token>`, the auth callback, or nobody asked on an open server). Reading needs read access;
//! making a version and restoring need write access, and are attributed to the caller's
//! identity. Anything such a caller could do here it could already do over the WebSocket (read
//! the document, edit it back to an earlier content by hand), so this adds no power; earlier
//! content it could not see live is the one thing it gains, which is what history is for.
//!
//! Rendering a version as JSON, comparing two and computing a restore are CPU work on whole
//! documents: they run on the blocking pool, never on a room's task or the async workers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chorus_protocol::DocName;
use chorus_room::Identity;
use chorus_store::StoreError;
use chorus_store::versions::{ActivityRecord, Version, VersionId, VersionKind, VersionMeta};
use serde::{Deserialize, Serialize};

use super::constant_time_eq;
use super::extract::Api;
use crate::access;
use crate::app::AppState;
use crate::auth::Mode;
use crate::error::ApiError;
use crate::room::actor_versions::{VersionRequest, api_identity};

/// Versions per page when the request names no `limit`.
const DEFAULT_PAGE: usize = 50;
/// Largest page.
const MAX_PAGE: usize = 500;
/// Longest label, bytes.
const MAX_LABEL: usize = 200;
/// Header naming who an API write or restore is attributed to (`api` without it).
pub(crate) const AUTHOR_HEADER: &str = "x-chorus-author";
/// Longest identity accepted from that header, bytes.
const MAX_AUTHOR: usize = 200;
/// The id that names the live document in a diff (`/versions/{id}/diff/current`).
const CURRENT: &str = "current";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageQuery {
    limit: Option<usize>,
    /// The last id of the previous page.
    cursor: Option<String>,
}

/// One page of versions, newest first.
#[derive(Serialize)]
pub(super) struct VersionPage {
    versions: Vec<VersionMeta>,
    /// Pass as `?cursor=` for the next (older) page; `null` on the last one.
    next_cursor: Option<String>,
}

fn store_error(error: StoreError) -> ApiError {
    ApiError::Internal(error.to_string())
}

fn version_id(id: String) -> Result<VersionId, ApiError> {
    VersionId::parse(id).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Who a write is attributed to: the `X-Chorus-Author` header, else `api`.
pub(crate) fn author(headers: &HeaderMap) -> Result<Identity, ApiError> {
    match headers.get(AUTHOR_HEADER) {
        None => Ok(api_identity(None)),
        Some(value) => {
            let name = value
                .to_str()
                .ok()
                .filter(|v| !v.is_empty() && v.len() <= MAX_AUTHOR)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "{AUTHOR_HEADER} must be 1 to {MAX_AUTHOR} bytes of visible ASCII"
                    ))
                })?;
            Ok(api_identity(Some(name)))
        }
    }
}

/// Who is asking, once let in: the backend with the API key, or a client.
struct Caller {
    doc: DocName,
    /// Whom a version or restore made by this request is attributed to.
    identity: Identity,
}

/// Lets a request in with the API key, or else as the document's WebSocket would (see the module
/// docs), needing `need` on the document.
///
/// # Errors
/// 400 for a bad document name or `X-Chorus-Author`; 401/403 as for the WebSocket; 403 when a
/// read-only client asks to write.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    doc: String,
    need: Mode,
) -> Result<Caller, ApiError> {
    let doc = DocName::parse(doc)?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let is_key = match (&state.config.auth.api_key, bearer) {
        (Some(key), Some(presented)) => constant_time_eq(presented.as_bytes(), key.0.as_bytes()),
        _ => false,
    };
    if is_key {
        return Ok(Caller {
            identity: author(headers)?,
            doc,
        });
    }
    let admitted = access::admit(state, &doc, bearer, headers).await?;
    if need == Mode::Write && admitted.access.mode == Mode::Read {
        return Err(ApiError::Forbidden(
            "read-only access: making or restoring a version needs write access",
        ));
    }
    Ok(Caller {
        identity: admitted.identity(),
        doc,
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, chorus_history::HistoryError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("reading the document history: {e}")))
}

async fn load(state: &AppState, doc: &DocName, id: &VersionId) -> Result<Version, ApiError> {
    state
        .history
        .store()
        .get(doc, id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("document {doc} has no version {id}")))
}

/// `GET /api/v1/docs/{doc}/versions[?limit=&cursor=]`: versions, newest first.
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path(doc)): Api<Path<String>>,
    query: Result<Api<Query<PageQuery>>, ApiError>,
) -> Result<Json<VersionPage>, ApiError> {
    let doc = caller(&state, &headers, doc, Mode::Read).await?.doc;
    let Api(Query(query)) = query?;
    let limit = super::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let before = query.cursor.map(version_id).transpose()?;
    let mut versions = state
        .history
        .store()
        .list(&doc)
        .await
        .map_err(store_error)?;
    versions.reverse();
    let mut page: Vec<VersionMeta> = versions
        .into_iter()
        .filter(|v| before.as_ref().is_none_or(|before| &v.id < before))
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next_cursor = more
        .then(|| page.last().map(|v| v.id.to_string()))
        .flatten();
    Ok(Json(VersionPage {
        versions: page,
        next_cursor,
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewVersionBody {
    label: Option<String>,
}

/// `POST /api/v1/docs/{doc}/versions` (body `{"label": "..."}`, or empty): records the
/// document as it is now; 201 with the version's description.
pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path(doc)): Api<Path<String>>,
    Api(body): Api<Bytes>,
) -> Result<Response, ApiError> {
    let doc = caller(&state, &headers, doc, Mode::Write).await?.doc;
    let body: NewVersionBody = if body.iter().all(u8::is_ascii_whitespace) {
        NewVersionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!("the body must be JSON {{\"label\": \"...\"}}: {e}"))
        })?
    };
    if body.label.as_ref().is_some_and(|l| l.len() > MAX_LABEL) {
        return Err(ApiError::BadRequest(format!(
            "a label is at most {MAX_LABEL} bytes"
        )));
    }
    let meta = record(&state, &doc, VersionKind::Requested, body.label, None).await?;
    Ok((StatusCode::CREATED, Json(meta)).into_response())
}

/// Asks the document's room to record a version and waits until it is stored.
async fn record(
    state: &AppState,
    doc: &DocName,
    kind: VersionKind,
    label: Option<String>,
    restored_from: Option<VersionId>,
) -> Result<VersionMeta, ApiError> {
    state
        .rooms
        .with_room(doc, |room| {
            let request = VersionRequest {
                kind,
                label: label.clone(),
                restored_from: restored_from.clone(),
            };
            async move { room.version(request).await }
        })
        .await?
        .map_err(|e| ApiError::Internal(format!("recording a version: {e}")))
}

/// A version with its content.
#[derive(Serialize)]
struct VersionContent {
    version: VersionMeta,
    content: serde_json::Value,
}

/// `GET /api/v1/docs/{doc}/versions/{id}`: the description and content as JSON, or with
/// `Accept: application/octet-stream` the state as a binary Yjs v1 update.
pub(super) async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path((doc, id))): Api<Path<(String, String)>>,
) -> Result<Response, ApiError> {
    let doc = caller(&state, &headers, doc, Mode::Read).await?.doc;
    let version = load(&state, &doc, &version_id(id)?).await?;
    let binary = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/octet-stream"));
    if binary {
        return Ok((
            [(header::CONTENT_TYPE, "application/octet-stream")],
            version.state,
        )
            .into_response());
    }
    let state_bytes = version.state.clone();
    let content = blocking(move || chorus_history::content_json(&state_bytes)).await?;
    Ok(Json(VersionContent {
        version: version.meta,
        content,
    })
    .into_response())
}

/// `GET /api/v1/docs/{doc}/versions/{a}/diff/{b}`: what changed from `a` to `b` (`b` may be
/// `current`: the live document).
pub(super) async fn diff(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path((doc, a, b))): Api<Path<(String, String, String)>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let doc = caller(&state, &headers, doc, Mode::Read).await?.doc;
    let from = load(&state, &doc, &version_id(a)?).await?;
    let to = if b == CURRENT {
        state.read_doc(&doc, None).await?
    } else {
        load(&state, &doc, &version_id(b)?).await?.state
    };
    let changes = blocking(move || chorus_history::diff(&from.state, &to)).await?;
    let json = serde_json::to_value(changes).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json))
}

/// What a restore did.
#[derive(Serialize)]
struct Restored {
    /// The version whose content the document now has.
    restored_from: VersionId,
    /// The content the restore replaced, kept first.
    before: VersionMeta,
    /// The version recorded right after the restore.
    version: VersionMeta,
}

/// `POST /api/v1/docs/{doc}/versions/{id}/restore`: makes the live document's content equal to
/// the version's with one forward update, applied like any edit (connected clients on every
/// node receive it and can undo it; history is not rewritten), attributed to the caller (a
/// client's identity, or for the backend `X-Chorus-Author`, else `api`); then records a version
/// "restored from" it.
///
/// The update is computed against the document as read just before: an edit that lands in
/// between is kept beside the restored content (CRDT merge), not lost.
pub(super) async fn restore(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path((doc, id))): Api<Path<(String, String)>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Caller { doc, identity } = caller(&state, &headers, doc, Mode::Write).await?;
    let id = version_id(id)?;
    let target = load(&state, &doc, &id).await?;
    // What the restore replaces is kept first: edits made since the last version would
    // otherwise be reachable only through the CRDT's history, which gc removes, so a mistaken
    // restore could not be taken back.
    let before = record(
        &state,
        &doc,
        VersionKind::Requested,
        Some(format!("before restoring {id}")),
        None,
    )
    .await?;
    let current = state.read_doc(&doc, None).await?;
    // A client id of its own, like a Yjs client's: 32 random bits.
    let client = u64::from(fastrand::u32(..));
    let update =
        blocking(move || chorus_history::restore_update(&current, &target.state, client)).await?;
    let update = Bytes::from(update);
    // Not validated like a client's update: the server encoded it itself, from states it holds.
    state
        .rooms
        .with_room(&doc, |room| {
            let (update, identity) = (update.clone(), identity.clone());
            async move { room.write(update, identity).await }
        })
        .await?
        .map_err(|refused| ApiError::Internal(format!("applying the restore: {refused}")))?;
    let version = record(&state, &doc, VersionKind::Restored, None, Some(id.clone())).await?;
    let json = serde_json::to_value(Restored {
        restored_from: id,
        before,
        version,
    })
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ActivityQuery {
    /// Start (inclusive): RFC 3339 or Unix milliseconds.
    from: Option<String>,
    /// End (exclusive): RFC 3339 or Unix milliseconds.
    to: Option<String>,
    /// Only this identity.
    by: Option<String>,
}

/// One minute of one identity's edits.
#[derive(Serialize)]
struct ActivityEntry {
    /// Start of the minute, RFC 3339.
    minute: String,
    identity: String,
    updates: u64,
    bytes: u64,
}

/// Totals of one identity over the range.
#[derive(Serialize)]
struct ActivityTotal {
    identity: String,
    updates: u64,
    bytes: u64,
    /// Minutes with at least one edit.
    minutes: u64,
}

#[derive(Serialize)]
pub(super) struct ActivityPage {
    activity: Vec<ActivityEntry>,
    totals: Vec<ActivityTotal>,
}

fn parse_time(name: &str, value: &str) -> Result<u64, ApiError> {
    if let Ok(ms) = value.parse::<u64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(value)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{name} must be RFC 3339 (2026-12-07T10:00:00Z) or Unix milliseconds"
            ))
        })
}

/// `GET /api/v1/docs/{doc}/activity[?from=&to=&by=]`: who edited, when and how much, per
/// minute, oldest first, with totals per identity.
pub(super) async fn activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    Api(Path(doc)): Api<Path<String>>,
    query: Result<Api<Query<ActivityQuery>>, ApiError>,
) -> Result<Json<ActivityPage>, ApiError> {
    let doc = caller(&state, &headers, doc, Mode::Read).await?.doc;
    let Api(Query(query)) = query?;
    let from = query
        .from
        .as_deref()
        .map(|v| parse_time("from", v))
        .transpose()?;
    let to = query
        .to
        .as_deref()
        .map(|v| parse_time("to", v))
        .transpose()?;
    let records: Vec<ActivityRecord> = state
        .history
        .store()
        .activity(&doc)
        .await
        .map_err(store_error)?
        .into_iter()
        .filter(|r| from.is_none_or(|from| r.minute * 60_000 + 59_999 >= from))
        .filter(|r| to.is_none_or(|to| r.minute * 60_000 < to))
        .filter(|r| query.by.as_ref().is_none_or(|by| &r.identity == by))
        .collect();
    let mut totals: std::collections::BTreeMap<&str, ActivityTotal> = Default::default();
    for r in &records {
        let total = totals.entry(&r.identity).or_insert_with(|| ActivityTotal {
            identity: r.identity.clone(),
            updates: 0,
            bytes: 0,
            minutes: 0,
        });
        total.updates += r.updates;
        total.bytes += r.bytes;
        total.minutes += 1;
    }
    let totals = totals.into_values().collect();
    let activity = records
        .iter()
        .map(|r| ActivityEntry {
            minute: humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.minute * 60),
            )
            .to_string(),
            identity: r.identity.clone(),
            updates: r.updates,
            bytes: r.bytes,
        })
        .collect();
    Ok(Json(ActivityPage { activity, totals }))
}
