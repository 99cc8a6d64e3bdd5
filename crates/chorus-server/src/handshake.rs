//! The WebSocket opening handshake (RFC 6455 §4.2) over hyper's upgrade, giving the connection
//! tokio-tungstenite's stream itself.
//!
//! axum's `WebSocketUpgrade` does the same but hides the stream behind a `Message` type that
//! cannot send one message as several frames. Chorus needs that: tungstenite copies every frame
//! whole into the connection's write buffer, and that buffer never shrinks, so a 20 MB sync
//! step 2 sent to 150 joiners as single frames cost 150 copies (2.7 GB) plus a quadratic
//! `memmove` as the kernel took each copy in pieces. `ws` sends such messages as continuation
//! frames instead. The checks and rejections here are axum's (405, 400, 426), so clients see no
//! difference.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

mod gate;

pub(crate) use gate::{GatedListener, UNANSWERED};

/// An upgraded connection.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A valid WebSocket upgrade request, ready to be answered with `101 Switching Protocols`.
pub(crate) struct WsUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a WebSocket upgrade (the status and body axum gives).
#[derive(Debug)]
pub(crate) struct NotUpgrade(StatusCode, &'static str);

impl IntoResponse for NotUpgrade {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = NotUpgrade;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.version > Version::HTTP_11 {
            // The server does not enable HTTP/2 extended CONNECT, so this is not a WebSocket.
            return Err(NotUpgrade(
                StatusCode::BAD_REQUEST,
                "WebSocket upgrades need HTTP/1.1",
            ));
        }
        if parts.method != Method::GET {
            return Err(NotUpgrade(
                StatusCode::METHOD_NOT_ALLOWED,
                "Request method must be `GET`",
            ));
        }
        if !header_contains(&parts.headers, header::CONNECTION, "upgrade") {
            return Err(NotUpgrade(
                StatusCode::BAD_REQUEST,
                "Connection header did not include 'upgrade'",
            ));
        }
        if !header_eq(&parts.headers, header::UPGRADE, "websocket") {
            return Err(NotUpgrade(
                StatusCode::BAD_REQUEST,
                "`Upgrade` header did not include 'websocket'",
            ));
        }
        if !header_eq(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(NotUpgrade(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Version` header did not include '13'",
            ));
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return Err(NotUpgrade(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ));
        };
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(NotUpgrade(
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ));
        };
        Ok(Self { key, on_upgrade })
    }
}

impl WsUpgrade {
    /// Answers `101 Switching Protocols` and, once hyper hands the connection over, runs
    /// `callback` with it (in a task of its own).
    pub(crate) fn on_upgrade<C, Fut>(self, config: WebSocketConfig, callback: C) -> Response
    where
        C: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                // The client went away during the handshake: there is nobody to serve.
                return;
            };
            let socket = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            // A task of its own: the task holding the upgrade also holds room for every state of
            // the handshake, more than twice the size of the connection's future, for as long as
            // it runs. Spawned anew, an idle connection costs only what serving it needs.
            tokio::spawn(callback(socket));
        });
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            // Base64 is always a valid header value.
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

fn header_eq(headers: &HeaderMap, key: HeaderName, value: &'static str) -> bool {
    headers
        .get(&key)
        .is_some_and(|h| h.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

fn header_contains(headers: &HeaderMap, key: HeaderName, value: &'static str) -> bool {
    headers
        .get(&key)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.to_ascii_lowercase().contains(value))
}
