//! HTTP errors: one enum, one place that decides the status code.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chorus_protocol::DocNameError;

/// An error answered over HTTP as `{ "error": <code>, "message": <text> }`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The document name in the path is not acceptable.
    #[error("invalid document name: {0}")]
    InvalidDocName(#[from] DocNameError),
    /// No valid token.
    #[error("{0}")]
    Unauthorized(#[from] crate::auth::AuthError),
    /// Valid credentials, but not for this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A request the API cannot use.
    #[error("{0}")]
    BadRequest(String),
    /// A body larger than the server reads.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// No such route or resource.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("this route does not take this method; see GET /api/v1/openapi.json")]
    MethodNotAllowed,
    /// The server is not set up for this request (e.g. minting tokens without `--auth-secret`).
    #[error("{0}")]
    NotConfigured(&'static str),
    /// Missing or wrong API key.
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    BadApiKey,
    /// Something failed on the server; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
    /// The node holds as many connections as it may.
    #[error("this server is at its connection limit; try another or later")]
    Overloaded,
    /// Refused by a hook or the auth callback, with their status.
    #[error("{0}")]
    Denied(#[from] crate::hooks::Denied),
    /// The server is draining and takes no new connections.
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidDocName(_) => (StatusCode::BAD_REQUEST, "invalid_document_name"),
            ApiError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::BadApiKey => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotConfigured(_) => (StatusCode::CONFLICT, "not_configured"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Unauthorized(crate::auth::AuthError::WrongDocument) => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Denied(denied) => match denied.status {
                401 => (StatusCode::UNAUTHORIZED, "unauthorized"),
                503 => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                _ => (StatusCode::FORBIDDEN, "forbidden"),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        }
        let body = serde_json::json!({ "error": code, "message": self.to_string() });
        (status, Json(body)).into_response()
    }
}

/// A refusal of one of axum's extractors, with the status it chose: client mistakes keep their
/// message, anything else is an internal error (a route whose handler does not fit its path).
fn rejected(status: StatusCode, message: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(message),
        status if status.is_client_error() => ApiError::BadRequest(message),
        _ => ApiError::Internal(message),
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        rejected(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        rejected(rejection.status(), rejection.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        rejected(rejection.status(), rejection.body_text())
    }
}
