//! `GET /api/v1/openapi.json`: the API described in OpenAPI 3.1, written by hand in
//! `openapi.json` beside this file. A generator crate would derive it from the handlers but
//! add macros on every type for five routes; instead, a test holds the file to
//! [`ROUTES`](super::ROUTES) and the live router.

use axum::http::header;
use axum::response::IntoResponse;

/// The description, compiled into the binary.
const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Served without the API key: it describes the API, it grants nothing.
pub(super) async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
