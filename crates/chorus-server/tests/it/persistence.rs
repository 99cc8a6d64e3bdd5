use std::time::Duration;

use crate::helpers::{TestClient, eventually, spawn_app_with};

/// Settings under which nothing but the snapshot written at shutdown outlives the process: the
/// update log is kept in memory, no periodic snapshot comes within the test (an hour) and the
/// room never goes idle (which would save it too).
fn only_the_shutdown_flush_saves(config: &mut chorus_server::Config) {
    config.storage.update_log = Some(chorus_server::config::LogKind::Memory);
    config.storage.snapshot_interval = Duration::from_secs(3600);
    config.sessions.room_idle_timeout = Duration::from_secs(3600);
}

#[tokio::test]
async fn a_restarted_server_still_has_the_document() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), only_the_shutdown_flush_saves).await;
    let mut alice = TestClient::connect_synced(&app.ws_url("kept")).await;
    let mut bob = TestClient::connect_synced(&app.ws_url("kept")).await;
    alice.type_text("survives a restart").await;
    bob.until("bob has it", |c| c.text() == "survives a restart")
        .await;
    let snapshot = dir.path().join("kept.snap");
    assert!(!snapshot.exists(), "nothing is saved before the shutdown");

    app.stop().await;
    assert_eq!(
        alice.closed_code().await,
        Some(1001),
        "clients are told the server is going away"
    );
    assert!(snapshot.exists(), "the shutdown flush wrote the snapshot");

    let app = spawn_app_with(dir.path().into(), only_the_shutdown_flush_saves).await;
    let carol = TestClient::connect_synced(&app.ws_url("kept")).await;
    assert_eq!(carol.text(), "survives a restart");
    app.stop().await;
}

#[tokio::test]
async fn an_idle_room_is_saved_and_unloaded_and_comes_back_from_its_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.storage.snapshot_interval = Duration::from_secs(3600);
        c.sessions.room_idle_timeout = Duration::from_millis(100);
    })
    .await;
    let mut alice = TestClient::connect_synced(&app.ws_url("idle")).await;
    alice.type_text("saved on unload").await;
    // Make sure the update was applied before leaving: a second client sees it.
    let mut bob = TestClient::connect(&app.ws_url("idle")).await;
    bob.until("applied", |c| c.text() == "saved on unload")
        .await;
    drop(alice);
    drop(bob);

    let snapshot = dir.path().join("idle.snap");
    eventually("the idle room saved its snapshot", || {
        let exists = snapshot.exists();
        async move { exists }
    })
    .await;

    let carol = TestClient::connect_synced(&app.ws_url("idle")).await;
    assert_eq!(carol.text(), "saved on unload");
    app.stop().await;
}

#[tokio::test]
async fn changes_are_snapshotted_after_the_interval_without_a_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.storage.snapshot_interval = Duration::from_millis(50)
    })
    .await;
    let mut alice = TestClient::connect_synced(&app.ws_url("periodic")).await;
    alice.type_text("periodic").await;
    let snapshot = dir.path().join("periodic.snap");
    eventually(
        "the snapshot was written while the client is still connected",
        || {
            let exists = snapshot.exists();
            async move { exists }
        },
    )
    .await;
    let store = chorus_store::FsStore::open(dir.path()).expect("open store");
    let name = chorus_protocol::DocName::parse("periodic").expect("name");
    let bytes = chorus_store::SnapshotStore::load(&store, &name)
        .await
        .expect("readable")
        .expect("present");
    assert!(bytes.len() > 2, "the snapshot holds the edit");
    drop(alice);
    app.stop().await;
}
