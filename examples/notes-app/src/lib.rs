//! "Notes", a small product that adds live collaboration by embedding Chorus.
//!
//! The product has its own users (sessions in a map), its own database (a map of saved notes)
//! and its own routes. Chorus is nested under `/collab`, and its [`Hooks`] tie it to the product:
//!
//! - **authenticate**: the `?token=` a browser passes (`WebsocketProvider`'s `params`) is a
//!   session id of the product; editors write, guests read, anyone else gets 401;
//! - **load**: a note Chorus has never seen starts from the product's database (new notes get a
//!   title line);
//! - **store**: every saved snapshot is copied into the product's database;
//! - **on_change**: an activity feed the product shows at `/activity`;
//! - **on_connect / on_disconnect**: who is online, at `/online`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_server::Chorus;
use chorus_server::auth::Mode;
use chorus_server::hooks::{
    Access, ConnectRequest, ConnectionInfo, Denied, DocChange, HookError, Hooks,
};
use yrs::{Doc, Text, Transact};

/// The product's own data: sessions, saved notes, activity, who is online.
#[derive(Default)]
pub struct Product {
    /// Session id → (user name, may edit).
    pub sessions: Mutex<HashMap<String, (String, bool)>>,
    /// Note name → its last saved state (a Yjs v1 update).
    pub database: Mutex<HashMap<String, Bytes>>,
    /// "note changed, N bytes" lines, newest last.
    pub activity: Mutex<Vec<String>>,
    /// Note name → connections open on it.
    pub online: Mutex<HashMap<String, usize>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single map or vector operation.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Product {
    /// Logs a user in; returns the session id the browser will send as `?token=`.
    pub fn login(&self, user: &str, can_edit: bool) -> String {
        let session = format!("session-{user}-{:x}", std::process::id());
        lock(&self.sessions).insert(session.clone(), (user.to_owned(), can_edit));
        session
    }
}

/// The hooks that tie Chorus to the product.
pub struct NotesHooks(pub Arc<Product>);

#[async_trait::async_trait]
impl Hooks for NotesHooks {
    async fn authenticate(&self, request: &ConnectRequest<'_>) -> Result<Option<Access>, Denied> {
        let session = request
            .token
            .ok_or_else(|| Denied::unauthorized("log in first"))?;
        match lock(&self.0.sessions).get(session) {
            Some((_, true)) => Ok(Some(Access::WRITE)),
            Some((_, false)) => Ok(Some(Access::READ)),
            None => Err(Denied::unauthorized("unknown or expired session")),
        }
    }

    async fn load(&self, doc: &DocName) -> Result<Option<Bytes>, HookError> {
        if let Some(saved) = lock(&self.0.database).get(doc.as_str()) {
            return Ok(Some(saved.clone()));
        }
        // A new note starts with its title. Chorus saves it at once, so this runs once.
        let note = Doc::new();
        let text = note.get_or_insert_text("t");
        let mut txn = note.transact_mut();
        text.insert(&mut txn, 0, &format!("# {doc}\n"));
        Ok(Some(Bytes::from(txn.encode_update_v1())))
    }

    async fn store(&self, doc: &DocName, state: &Bytes) -> Result<(), HookError> {
        lock(&self.0.database).insert(doc.as_str().to_owned(), state.clone());
        Ok(())
    }

    async fn on_change(&self, change: &DocChange) {
        lock(&self.0.activity).push(format!(
            "{} changed, {} bytes",
            change.doc,
            change.state.len()
        ));
    }

    async fn on_connect(&self, info: &ConnectionInfo) {
        *lock(&self.0.online)
            .entry(info.doc.as_str().to_owned())
            .or_default() += 1;
        tracing::info!(doc = %info.doc, editor = info.mode == Mode::Write, "joined");
    }

    async fn on_disconnect(&self, info: &ConnectionInfo) {
        let mut online = lock(&self.0.online);
        if let Some(count) = online.get_mut(info.doc.as_str()) {
            *count = count.saturating_sub(1);
        }
    }
}

/// The product's router: its own pages plus Chorus under `/collab`.
pub fn router(chorus: &Chorus, product: Arc<Product>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { "Notes: open /collab/ws/<note>?token=<session>" }),
        )
        .route("/activity", get(activity))
        .route("/online/{note}", get(online))
        .with_state(product)
        .nest("/collab", chorus.router())
}

async fn activity(State(product): State<Arc<Product>>) -> Json<Vec<String>> {
    Json(lock(&product.activity).clone())
}

async fn online(State(product): State<Arc<Product>>, Path(note): Path<String>) -> Json<usize> {
    Json(lock(&product.online).get(&note).copied().unwrap_or(0))
}
