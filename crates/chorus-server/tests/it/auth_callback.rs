//! The auth callback (`--auth-callback-url`), against a backend started by the test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

use crate::helpers::{PATIENCE, TestClient, eventually, serve, spawn_app_with, upgrade_status};

/// The backend behind `--auth-callback-url`: `write-*` tokens write, `read-*` read, the rest
/// are denied; it counts requests.
#[derive(Clone, Default)]
struct Backend {
    requests: Arc<Mutex<Vec<serde_json::Value>>>,
    /// Tokens the backend no longer accepts.
    revoked: Arc<Mutex<Vec<String>>>,
    /// Set: the backend takes requests and never answers, as a backend that is down behind a
    /// load balancer does (the server's time limit ends each request).
    down: Arc<AtomicBool>,
}

impl Backend {
    /// How many requests asked about `token` so far.
    fn asked_about(&self, token: &str) -> usize {
        let requests = self.requests.lock().expect("not poisoned");
        requests.iter().filter(|r| r["token"] == token).count()
    }
}

async fn decide(State(backend): State<Backend>, body: Bytes) -> (StatusCode, String) {
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    backend
        .requests
        .lock()
        .expect("not poisoned")
        .push(request.clone());
    if backend.down.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let token = request["token"].as_str().unwrap_or_default();
    let revoked = backend
        .revoked
        .lock()
        .expect("not poisoned")
        .iter()
        .any(|t| t == token);
    let access = if revoked {
        "deny"
    } else if token.starts_with("write-") {
        "write"
    } else if token.starts_with("read-") {
        "read"
    } else {
        "deny"
    };
    (StatusCode::OK, format!(r#"{{"access":"{access}"}}"#))
}

/// A server whose connections are decided by `backend`, its answers cached for `cache`, each
/// request limited to `timeout`.
async fn app_behind_callback(
    backend: &Backend,
    cache: Duration,
    timeout: Duration,
) -> (crate::helpers::TestApp, tempfile::TempDir) {
    let addr = serve(
        Router::new()
            .route("/auth", post(decide))
            .with_state(backend.clone()),
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.auth.auth_callback_url = Some(format!("http://{addr}/auth").parse().expect("url"));
        c.auth.auth_callback_cache = cache;
        c.auth.auth_callback_timeout = timeout;
    })
    .await;
    (app, dir)
}

#[tokio::test]
async fn the_auth_callback_decides_and_is_cached() {
    let backend = Backend::default();
    let (app, _dir) = app_behind_callback(&backend, Duration::from_secs(600), PATIENCE).await;
    let url = |token: &str| format!("{}?token={token}", app.ws_url("shared"));

    assert_eq!(upgrade_status(url("nobody").as_str()).await, 403);
    assert_eq!(
        upgrade_status(app.ws_url("shared").as_str()).await,
        403,
        "no token"
    );

    let mut writer = TestClient::connect_synced(&url("write-alice")).await;
    let mut reader = TestClient::connect_synced(&url("read-bob")).await;
    writer.type_text("from alice").await;
    reader
        .until("the reader sees the writer", |r| r.text() == "from alice")
        .await;
    reader.type_text(" and bob").await;
    let mut late = TestClient::connect_synced(&url("write-alice")).await;
    late.until("a late joiner synced", |c| c.synced).await;
    assert_eq!(late.text(), "from alice", "the reader's edit was refused");

    let asked = backend.requests.lock().expect("not poisoned").clone();
    assert_eq!(
        asked
            .iter()
            .filter(|r| r["token"] == "write-alice" && r["doc"] == "shared")
            .count(),
        1,
        "the second write-alice connection was answered from the cache: {asked:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_auth_callback_refuses_with_503() {
    // A port nobody listens on: bind, read the port, close.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.auth.auth_callback_url = Some(format!("http://{addr}/auth").parse().expect("url"));
    })
    .await;
    assert_eq!(
        upgrade_status(format!("{}?token=write-x", app.ws_url("doc").as_str())).await,
        503
    );
    app.stop().await;
}

#[tokio::test]
async fn a_permission_the_callback_revokes_closes_the_connection_with_4403() {
    let backend = Backend::default();
    let (app, _dir) = app_behind_callback(&backend, Duration::from_millis(200), PATIENCE).await;
    let url = |token: &str| format!("{}?token={token}", app.ws_url("revocable"));
    let mut kept = TestClient::connect_synced(&url("write-kept")).await;
    let mut revoked = TestClient::connect_synced(&url("write-gone")).await;
    backend
        .revoked
        .lock()
        .expect("not poisoned")
        .push("write-gone".into());
    assert_eq!(revoked.closed_code().await, Some(4403));
    kept.type_text("still here").await;
    let mut check = TestClient::connect_synced(&url("write-kept")).await;
    check
        .until("the kept connection still edits", |c| {
            c.text() == "still here"
        })
        .await;
    app.stop().await;
}

/// A backend that stops answering: connections it already let in stay and keep syncing while
/// their periodic re-checks fail, and new connections get 503 (the door stays shut).
#[tokio::test]
async fn an_unreachable_backend_keeps_existing_connections_and_refuses_new_ones() {
    let backend = Backend::default();
    let (app, _dir) = app_behind_callback(
        &backend,
        Duration::from_millis(200),
        Duration::from_millis(300),
    )
    .await;
    let url = |token: &str| format!("{}?token={token}", app.ws_url("outage"));
    let mut alice = TestClient::connect_synced(&url("write-alice")).await;
    let mut bob = TestClient::connect_synced(&url("write-bob")).await;

    backend.down.store(true, Ordering::SeqCst);
    let before = (
        backend.asked_about("write-alice"),
        backend.asked_about("write-bob"),
    );
    // A re-check is asked only after the previous one ended: the second one since the outage
    // means the first went unanswered, and the connection stayed.
    eventually(
        "both connections were re-checked twice during the outage",
        || {
            let alice = backend.asked_about("write-alice") >= before.0 + 2;
            let bob = backend.asked_about("write-bob") >= before.1 + 2;
            async move { alice && bob }
        },
    )
    .await;
    assert_eq!(upgrade_status(url("write-carol").as_str()).await, 503);

    alice.type_text("during the outage").await;
    bob.until("bob still receives alice's edits", |c| {
        c.text() == "during the outage"
    })
    .await;
    bob.type_text("!").await;
    alice
        .until("and alice bob's", |c| c.text() == "during the outage!")
        .await;
    assert_eq!((alice.closed.clone(), bob.closed.clone()), (None, None));
    app.stop().await;
}
