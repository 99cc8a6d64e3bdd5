//! Hooks: how an application that embeds Chorus takes part in its life cycle.
//!
//! Every method has a default that does nothing (or defers to the server's own settings), so an
//! implementation overrides only what it needs:
//!
//! ```
//! use chorus_server::hooks::{DocChange, Hooks};
//!
//! struct AuditLog;
//!
//! #[async_trait::async_trait]
//! impl Hooks for AuditLog {
//!     async fn on_change(&self, change: &DocChange) {
//!         println!("{} is now {} bytes", change.doc, change.state.len());
//!     }
//! }
//! ```
//!
//! Hooks never run on a room's task: a slow hook delays the connection it concerns (for
//! [`Hooks::authenticate`] and the connect/disconnect hooks) or the background work it belongs
//! to (a snapshot, a change notification), never the other people in the document.

use std::time::SystemTime;

use async_trait::async_trait;
use axum::http::HeaderMap;
use bytes::Bytes;
use chorus_protocol::DocName;

use crate::auth::Mode;
use crate::conn::ConnId;

/// A WebSocket connection asking to open a document, before the upgrade.
#[derive(Debug)]
pub struct ConnectRequest<'a> {
    /// The document it asks for.
    pub doc: &'a DocName,
    /// The `token` query parameter (`WebsocketProvider`'s `params: { token }`), if any.
    pub token: Option<&'a str>,
    /// The request headers (cookies, `Origin`, ...).
    pub headers: &'a HeaderMap,
}

/// What a connection is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// Read only, or read and write.
    pub mode: Mode,
    /// The connection is closed with 4403 at this moment, if set.
    pub expires_at: Option<SystemTime>,
    /// Who the connection's edits are attributed to in the document's history; `None` means
    /// `anonymous`. Set it with [`Access::as_identity`].
    pub identity: Option<String>,
}

impl Access {
    /// Read and write, without expiry.
    pub const WRITE: Self = Self {
        mode: Mode::Write,
        expires_at: None,
        identity: None,
    };
    /// Read only, without expiry.
    pub const READ: Self = Self {
        mode: Mode::Read,
        expires_at: None,
        identity: None,
    };

    /// The same access, with edits attributed to `identity` (a user id, an email: whatever
    /// the application wants the history to show).
    #[must_use]
    pub fn as_identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }
}

/// A refused connection: it gets the status before the upgrade, with `message` in the JSON body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    /// 401 (who are you?), 403 (not you) or 503 (cannot decide now).
    pub status: u16,
    /// Shown to the client; never put secrets here.
    pub message: String,
}

impl Denied {
    /// 401: the caller did not prove who it is.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: 401,
            message: message.into(),
        }
    }

    /// 403: the caller may not open this document.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: 403,
            message: message.into(),
        }
    }
}

/// A document changed: sent at most once per debounce period per document (see
/// `--change-debounce`), by the node where the change was made.
#[derive(Debug, Clone)]
pub struct DocChange {
    /// The document.
    pub doc: DocName,
    /// Its whole state after the change, as a Yjs v1 update (`Y.applyUpdate` reads it).
    pub state: Bytes,
    /// When the room produced this notification.
    pub at: SystemTime,
}

/// A connection that joined or left a document.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The document.
    pub doc: DocName,
    /// Unique within this process.
    pub conn: ConnId,
    /// What it was granted.
    pub mode: Mode,
}

/// A stateless message a Hocuspocus client sent for a document (`provider.sendStateless`).
#[derive(Debug, Clone)]
pub struct StatelessMessage {
    /// The document.
    pub doc: DocName,
    /// The connection (one document's session on the socket) that sent it.
    pub conn: ConnId,
    /// What it says; Chorus gives it no meaning.
    pub payload: String,
}

/// Why a hook could not do its work; logged and counted, never shown to clients.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// The hooks of an embedding application. See the [module docs](self).
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    /// Decides what a connection may do, before the WebSocket upgrade.
    ///
    /// `Ok(None)` (the default) leaves the decision to the server's own settings: the token
    /// check with `--auth-secret` / `--auth-public-key`, the `--auth-callback-url`, or an open
    /// server. `Ok(Some(access))` grants, `Err(denied)` refuses with its status.
    ///
    /// # Errors
    /// [`Denied`] to refuse the connection.
    async fn authenticate(&self, request: &ConnectRequest<'_>) -> Result<Option<Access>, Denied> {
        let _ = request;
        Ok(None)
    }

    /// The initial content of a document the store knows nothing about (e.g. from the
    /// application's own database), as a Yjs v1 update; `None` starts it empty. What it returns
    /// is validated like a client's update and saved at once, so it is asked once per document.
    ///
    /// With several nodes, two of them loading a new document at the same moment may both ask;
    /// return the same bytes every time (an update encoded once and kept) so the copies merge
    /// instead of duplicating content.
    ///
    /// # Errors
    /// A failure refuses the connections waiting for the document (1011); they may retry.
    async fn load(&self, doc: &DocName) -> Result<Option<Bytes>, HookError> {
        let _ = doc;
        Ok(None)
    }

    /// A document changed (debounced). Runs in the background; notifications for one document
    /// may coalesce while the previous one is still being handled, but the last one always
    /// carries the latest state.
    async fn on_change(&self, change: &DocChange) {
        let _ = change;
    }

    /// A snapshot of `doc` was saved to the store; `state` is what was saved (a Yjs v1 update).
    /// Use it to keep a copy in the application's own database. Runs in the background task of
    /// the snapshot, after the store write.
    ///
    /// # Errors
    /// Logged and counted; the snapshot itself stays saved.
    async fn store(&self, doc: &DocName, state: &Bytes) -> Result<(), HookError> {
        let _ = (doc, state);
        Ok(())
    }

    /// A connection joined a document. Runs on that connection's task before its first message
    /// is read.
    async fn on_connect(&self, info: &ConnectionInfo) {
        let _ = info;
    }

    /// A connection left a document (closed by either side).
    async fn on_disconnect(&self, info: &ConnectionInfo) {
        let _ = info;
    }

    /// A Hocuspocus client sent a stateless message. Runs on that client's socket task, before
    /// the message goes to the document's other Hocuspocus clients on every node (which
    /// happens whatever this hook does). Messages from the HTTP API do not come here.
    async fn on_stateless(&self, message: &StatelessMessage) {
        let _ = message;
    }

    /// Whether [`Hooks::on_change`] is worth calling: a room encodes its whole state for each
    /// notification, which is wasted when nobody listens. Defaults to `true`.
    fn wants_changes(&self) -> bool {
        true
    }
}

/// The hooks of a server that embeds nothing: every default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

#[async_trait]
impl Hooks for NoHooks {
    fn wants_changes(&self) -> bool {
        false
    }
}
