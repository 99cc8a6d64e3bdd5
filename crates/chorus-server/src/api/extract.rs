//! [`Api`]: axum's extractors with their refusals answered in the API's JSON error form.
//!
//! axum answers a path, query string or body its extractors cannot read with a `text/plain`
//! body (`Invalid URL: ...` for a `%ff` in a document name). API clients parse every error as
//! `{ "error", "message" }`, so handlers take `Api<Path<..>>`, `Api<Query<..>>` and
//! `Api<Bytes>` instead, and the refusal goes through [`ApiError`] like every other one.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;

use crate::error::ApiError;

/// Extracts `E`; a refusal becomes an [`ApiError`] (status and message kept).
pub(crate) struct Api<E>(pub E);

impl<S, E> FromRequestParts<S> for Api<E>
where
    S: Send + Sync,
    E: FromRequestParts<S>,
    ApiError: From<E::Rejection>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        E::from_request_parts(parts, state)
            .await
            .map(Api)
            .map_err(ApiError::from)
    }
}

// The same again for extractors that consume the body (`Bytes`): axum keeps the two kinds
// apart so that only the last argument of a handler may take the body.
impl<S, E> FromRequest<S> for Api<E>
where
    S: Send + Sync,
    E: FromRequest<S>,
    ApiError: From<E::Rejection>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        E::from_request(request, state)
            .await
            .map(Api)
            .map_err(ApiError::from)
    }
}
