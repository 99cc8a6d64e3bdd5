//! Several nodes sharing rooms through a real Redis.

use std::path::PathBuf;
use std::time::Duration;

use crate::helpers::{TestApp, TestClient, eventually, spawn_app_with};

/// The Redis the tests use: `CHORUS_TEST_REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("CHORUS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Fails (never skips) when Redis is not there, saying how to get one.
pub async fn require_redis() {
    let reachable = async {
        let client = redis::Client::open(redis_url()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    if tokio::time::timeout(Duration::from_secs(3), reachable)
        .await
        .ok()
        .flatten()
        .is_none()
    {
        panic!(
            "these tests need Redis at {} (set CHORUS_TEST_REDIS_URL): start one with \
             `redis-server --daemonize yes` (apt-get install redis-server), or run ./scripts/test.sh",
            redis_url()
        );
    }
}

/// A channel prefix no other test shares.
pub fn unique_prefix() -> String {
    format!("test-{:016x}", fastrand::u64(..))
}

async fn node(dir: PathBuf, prefix: &str) -> TestApp {
    let prefix = prefix.to_owned();
    spawn_app_with(dir, move |c| {
        c.scale_out.redis_url = Some(redis_url());
        c.scale_out.redis_prefix = prefix;
        c.scale_out.node_timeout = Duration::from_secs(2);
    })
    .await
}

/// Two nodes sharing the test Redis under a fresh prefix, each with its own data directory.
async fn two_nodes() -> (TestApp, TestApp, [tempfile::TempDir; 2]) {
    let prefix = unique_prefix();
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let a = node(dirs[0].path().into(), &prefix).await;
    let b = node(dirs[1].path().into(), &prefix).await;
    (a, b, dirs)
}

#[tokio::test]
async fn an_edit_on_one_node_reaches_a_client_on_another() {
    require_redis().await;
    let (a, b, _dirs) = two_nodes().await;

    let mut alice = TestClient::connect_synced(&a.ws_url("shared")).await;
    let mut bob = TestClient::connect_synced(&b.ws_url("shared")).await;
    alice.type_text("from a").await;
    bob.until("bob on B sees alice's edit", |c| c.text() == "from a")
        .await;
    bob.type_text(", from b").await;
    alice
        .until("alice on A sees bob's edit", |c| {
            c.text() == "from a, from b"
        })
        .await;

    // Another document on the same nodes stays separate.
    let other = TestClient::connect_synced(&b.ws_url("other")).await;
    assert_eq!(other.text(), "");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_node_that_loads_a_room_later_receives_what_it_lacks() {
    require_redis().await;
    let (a, b, _dirs) = two_nodes().await;
    let mut alice = TestClient::connect_synced(&a.ws_url("history")).await;
    alice.type_text("written before B had the room").await;
    // B has its own empty data dir: only the relay's state-vector exchange can fill it.
    let mut bob = TestClient::connect(&b.ws_url("history")).await;
    bob.until("bob gets the history", |c| {
        c.text() == "written before B had the room"
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn awareness_crosses_nodes_and_is_removed_when_the_client_leaves() {
    require_redis().await;
    let (a, b, _dirs) = two_nodes().await;
    let mut alice = TestClient::connect_synced(&a.ws_url("presence")).await;
    let mut bob = TestClient::connect_synced(&b.ws_url("presence")).await;
    alice.set_awareness(21, 1, r#"{"user":"alice"}"#).await;
    bob.until("bob sees alice", |c| c.awareness.contains_key(&21))
        .await;
    bob.set_awareness(22, 1, r#"{"user":"bob"}"#).await;
    alice
        .until("alice sees bob", |c| c.awareness.contains_key(&22))
        .await;

    // A newcomer on B learns about alice on A.
    let mut carol = TestClient::connect(&b.ws_url("presence")).await;
    carol
        .until("carol sees alice", |c| c.awareness.contains_key(&21))
        .await;

    drop(alice);
    bob.until("alice's presence is removed on B", |c| {
        !c.awareness.contains_key(&21)
    })
    .await;
    carol
        .until("for carol too", |c| !c.awareness.contains_key(&21))
        .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn readiness_reports_the_redis_state() {
    require_redis().await;
    let dir = tempfile::tempdir().expect("dir");
    let a = node(dir.path().into(), &unique_prefix()).await;
    eventually("the relay connects", || {
        let a = &a;
        async move { a.get("/readyz").await.1.contains(r#""redis":"connected""#) }
    })
    .await;
    a.stop().await;

    let dir = tempfile::tempdir().expect("dir");
    let single = spawn_app_with(dir.path().into(), |_| {}).await;
    let (status, body) = single.get("/readyz").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""redis":"disabled""#), "{body}");
    single.stop().await;
}

#[tokio::test]
async fn two_nodes_saving_one_room_to_one_store_lose_neither_side() {
    require_redis().await;
    let store_prefix = format!("{}:", unique_prefix());
    // No relay between the nodes: each holds only its own clients' edits, so a snapshot write
    // that replaced instead of merging would lose the other node's.
    let configure = |store_prefix: String| {
        move |c: &mut chorus_server::Config| {
            c.storage.store = chorus_server::config::StoreKind::Redis;
            c.storage.store_redis_url = Some(redis_url());
            c.storage.store_prefix = store_prefix;
            c.storage.snapshot_interval = Duration::from_millis(5);
        }
    };
    let (dir_a, dir_b, dir_c) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = spawn_app_with(dir_a.path().into(), configure(store_prefix.clone())).await;
    let b = spawn_app_with(dir_b.path().into(), configure(store_prefix.clone())).await;
    let mut on_a = TestClient::connect_synced(&a.ws_url("shared-store")).await;
    let mut on_b = TestClient::connect_synced(&b.ws_url("shared-store")).await;
    for i in 0..30 {
        on_a.type_text(&format!("[a{i}]")).await;
        on_b.type_text(&format!("[b{i}]")).await;
    }
    let mut watcher_a = TestClient::connect(&a.ws_url("shared-store")).await;
    let mut watcher_b = TestClient::connect(&b.ws_url("shared-store")).await;
    watcher_a
        .until("a applied its edits", |c| c.text().contains("[a29]"))
        .await;
    watcher_b
        .until("b applied its edits", |c| c.text().contains("[b29]"))
        .await;
    // Both nodes flush their snapshots of the same room into the same store at once.
    tokio::join!(a.stop(), b.stop());

    let c = spawn_app_with(dir_c.path().into(), configure(store_prefix.clone())).await;
    let reader = TestClient::connect_synced(&c.ws_url("shared-store")).await;
    let text = reader.text();
    let missing: Vec<String> = (0..30)
        .flat_map(|i| [format!("[a{i}]"), format!("[b{i}]")])
        .filter(|marker| !text.contains(marker.as_str()))
        .collect();
    assert!(missing.is_empty(), "the stored document lacks {missing:?}");
    c.stop().await;
}
