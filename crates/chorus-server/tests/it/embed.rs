//! Chorus nested in a host axum application, with every hook overridden.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_server::hooks::{
    Access, ConnectRequest, ConnectionInfo, Denied, DocChange, HookError, Hooks,
};
use chorus_server::{Chorus, Config};
use yrs::{Doc, ReadTxn, Text, Transact};

use crate::helpers::{TestClient, eventually, http, text_of, upgrade_status};

#[derive(Default)]
struct Recorder {
    changes: Mutex<Vec<DocChange>>,
    stored: Mutex<Vec<(String, usize)>>,
    loads: AtomicUsize,
    connects: AtomicUsize,
    disconnects: AtomicUsize,
}

/// Tokens are user names: `editor` writes, `viewer` reads, `intruder` is refused; no token
/// leaves the decision to the server (open here).
struct HostHooks(Arc<Recorder>);

#[async_trait::async_trait]
impl Hooks for HostHooks {
    async fn authenticate(&self, request: &ConnectRequest<'_>) -> Result<Option<Access>, Denied> {
        match request.token {
            Some("editor") => Ok(Some(Access::WRITE)),
            Some("viewer") => Ok(Some(Access::READ)),
            Some(_) => Err(Denied::unauthorized("unknown session")),
            None => Ok(None),
        }
    }

    async fn load(&self, doc: &DocName) -> Result<Option<Bytes>, HookError> {
        self.0.loads.fetch_add(1, Ordering::SeqCst);
        match doc.as_str() {
            "template" => {
                let doc = Doc::new();
                let text = doc.get_or_insert_text("t");
                let mut txn = doc.transact_mut();
                text.insert(&mut txn, 0, "from the host database");
                Ok(Some(Bytes::from(
                    txn.encode_state_as_update_v1(&Default::default()),
                )))
            }
            "broken" => Err("the host database is down".into()),
            "garbage" => Ok(Some(Bytes::from_static(&[0xff, 0xff, 0xff]))),
            _ => Ok(None),
        }
    }

    async fn on_change(&self, change: &DocChange) {
        self.0
            .changes
            .lock()
            .expect("not poisoned")
            .push(change.clone());
    }

    async fn store(&self, doc: &DocName, state: &Bytes) -> Result<(), HookError> {
        self.0
            .stored
            .lock()
            .expect("not poisoned")
            .push((doc.as_str().to_owned(), state.len()));
        Ok(())
    }

    async fn on_connect(&self, _info: &ConnectionInfo) {
        self.0.connects.fetch_add(1, Ordering::SeqCst);
    }

    async fn on_disconnect(&self, _info: &ConnectionInfo) {
        self.0.disconnects.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_host_app_nests_chorus_and_its_hooks_take_part() {
    let dir = tempfile::tempdir().expect("temp dir");
    let recorder = Arc::new(Recorder::default());
    let mut config = Config::local(dir.path());
    config.webhooks.change_debounce = Duration::from_millis(100);
    let chorus = Chorus::builder()
        .config(config)
        .hooks(HostHooks(Arc::clone(&recorder)))
        .build()
        .await
        .expect("chorus builds");
    let host = Router::new()
        .route("/hello", get(|| async { "host route" }))
        .nest("/collab", chorus.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let stop = chorus.shutdown_token();
    let server = tokio::spawn(async move {
        axum::serve(listener, host)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    let url = |doc: &str, token: &str| format!("ws://{addr}/collab/ws/{doc}?token={token}");

    // The host's own routes still answer.
    assert_eq!(
        http(addr, "GET", "/hello", &[], b"").await.text(),
        "host route"
    );
    assert_eq!(
        http(addr, "GET", "/collab/healthz", &[], b"").await.status,
        200
    );
    assert_eq!(
        upgrade_status(url("template", "intruder").as_str()).await,
        401
    );

    // The load hook gave the initial content; the editor edits, the viewer only reads.
    let mut editor = TestClient::connect_synced(&url("template", "editor")).await;
    assert_eq!(editor.text(), "from the host database");
    let mut viewer = TestClient::connect_synced(&url("template", "viewer")).await;
    editor.type_text(", edited").await;
    viewer
        .until("the viewer sees the edit", |v| {
            v.text() == "from the host database, edited"
        })
        .await;
    viewer.type_text(" by the viewer").await;

    // Change hook: debounced, with the whole state, from the editor's change only.
    eventually("the change hook saw the edit", || {
        let seen = recorder
            .changes
            .lock()
            .expect("not poisoned")
            .iter()
            .any(|c| {
                c.doc.as_str() == "template"
                    && text_of(&c.state) == "from the host database, edited"
            });
        async move { seen }
    })
    .await;

    // A load hook that fails, or returns something that is not an update, refuses (1011).
    let mut broken = TestClient::connect(&url("broken", "editor")).await;
    assert_eq!(broken.closed_code().await, Some(1011));
    let mut garbage = TestClient::connect(&url("garbage", "editor")).await;
    assert_eq!(garbage.closed_code().await, Some(1011));

    // Server-side read and write through the library.
    let update = {
        let doc = Doc::new();
        let text = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, "server says hi. ");
        txn.encode_update_v1()
    };
    chorus
        .write_update("template", Bytes::from(update))
        .await
        .expect("write accepted");
    editor
        .until("the editor gets the server's write", |e| {
            e.text().contains("server says hi. ")
        })
        .await;
    let state = chorus.read_update("template", None).await.expect("read");
    assert_eq!(text_of(&state), editor.text());
    assert!(
        chorus
            .write_update("template", Bytes::from_static(&[1, 2, 3]))
            .await
            .is_err()
    );

    drop(editor);
    drop(viewer);
    drop(broken);
    drop(garbage);
    chorus.stop().await;
    server.await.expect("no panic").expect("served");

    let stored = recorder.stored.lock().expect("not poisoned").clone();
    assert!(
        stored
            .iter()
            .any(|(doc, len)| doc == "template" && *len > 0),
        "the store hook saw the final snapshot: {stored:?}"
    );
    assert_eq!(
        recorder.connects.load(Ordering::SeqCst),
        recorder.disconnects.load(Ordering::SeqCst),
        "every connect has its disconnect"
    );
    assert!(recorder.connects.load(Ordering::SeqCst) >= 2);
    // "template" was loaded from the hook once; after the save the store has it.
    let loads_before = recorder.loads.load(Ordering::SeqCst);
    let chorus = Chorus::builder()
        .config(Config::local(dir.path()))
        .hooks(HostHooks(Arc::clone(&recorder)))
        .build()
        .await
        .expect("rebuilds");
    let state = chorus.read_update("template", None).await.expect("read");
    assert!(text_of(&state).contains("from the host database, edited"));
    assert_eq!(
        recorder.loads.load(Ordering::SeqCst),
        loads_before,
        "a stored document is not asked of the load hook again"
    );
    chorus.stop().await;
}
