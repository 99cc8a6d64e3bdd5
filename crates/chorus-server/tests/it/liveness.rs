//! Dead peers: `--ping-interval` and `--peer-timeout` against a client that stops answering.

use std::time::Duration;

use tokio::time::Instant;

use crate::helpers::{TestClient, spawn_app_with};

const PING_INTERVAL: Duration = Duration::from_millis(100);
const PEER_TIMEOUT: Duration = Duration::from_millis(600);

/// A client whose socket is never read again answers no ping (tungstenite sends pongs only as
/// it reads), like a laptop that went to sleep: the server drops it and the others see its
/// presence go, while a client that keeps reading stays connected long past the timeout.
#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped_and_its_presence_removed() {
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.sessions.ping_interval = PING_INTERVAL;
        c.sessions.peer_timeout = PEER_TIMEOUT;
    })
    .await;
    let mut silent = TestClient::connect_synced(&app.ws_url("room")).await;
    silent.set_awareness(31, 0, r#"{"name":"asleep"}"#).await;
    let mut watcher = TestClient::connect_synced(&app.ws_url("room")).await;
    watcher
        .until("the watcher sees the silent peer", |c| {
            c.awareness.contains_key(&31)
        })
        .await;

    // From here on `silent` is neither read nor written.
    watcher
        .until("the silent peer's presence is removed", |c| {
            !c.awareness.contains_key(&31)
        })
        .await;

    // The watcher answers every ping (each one wakes `until`, so time is checked between them)
    // and outlives several timeouts.
    let outlived = Instant::now() + PEER_TIMEOUT * 3;
    watcher
        .until("three peer timeouts have passed", |_| {
            Instant::now() >= outlived
        })
        .await;
    assert_eq!(watcher.closed, None, "a peer that answers pings is kept");
    watcher.set_awareness(32, 0, "{}").await;
    watcher
        .until("the watcher's own presence is echoed", |c| {
            c.awareness.contains_key(&32)
        })
        .await;

    // What the silent client would read if it woke up: the server's close.
    assert_eq!(silent.closed_code().await, Some(1001));
    assert_eq!(
        silent.closed_reason().as_deref(),
        Some("no pong or message in time")
    );
    app.stop().await;
}
