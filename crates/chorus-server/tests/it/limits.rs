//! Per-connection rules and connection limits.

use tokio_tungstenite::tungstenite;

use crate::helpers::{TestClient, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_connection_may_only_speak_for_its_own_client_id() {
    let (app, _dir) = spawn_app().await;
    let mut alice = TestClient::connect_synced(&app.ws_url("doc")).await;
    let mut mallory = TestClient::connect_synced(&app.ws_url("doc")).await;
    let mut carol = TestClient::connect_synced(&app.ws_url("doc")).await;
    alice.set_awareness(1, 0, r#"{"name":"alice"}"#).await;
    carol
        .until("carol sees alice", |c| c.awareness.contains_key(&1))
        .await;

    // Mallory's first id is alice's: held by alice's connection, so it is ignored; entries for
    // any other id are dropped (y-websocket clients echo everything they receive).
    mallory.set_awareness(1, 9, r#"{"name":"mallory"}"#).await;
    mallory.set_awareness(1, 10, "null").await;
    mallory.set_awareness(2, 0, r#"{"name":"ghost"}"#).await;
    alice
        .set_awareness(1, 1, r#"{"name":"alice","marker":1}"#)
        .await;
    carol
        .until("alice's next state arrives", |c| {
            c.awareness.get(&1).is_some_and(|s| s.contains("marker"))
        })
        .await;
    assert!(
        carol.awareness[&1].contains("alice"),
        "mallory never set alice's state"
    );
    assert!(!carol.awareness.contains_key(&2), "nor anyone else's");
    app.stop().await;
}

#[tokio::test]
async fn invalid_awareness_states_are_refused() {
    let (app, _dir) = spawn_app().await;
    let mut client = TestClient::connect_synced(&app.ws_url("doc")).await;
    client.set_awareness(3, 0, "{not json").await;
    assert_eq!(client.closed_code().await, Some(1007));
    let mut client = TestClient::connect_synced(&app.ws_url("doc")).await;
    client.set_awareness(3, u32::MAX, "{}").await;
    assert_eq!(
        client.closed_code().await,
        Some(1008),
        "a clock at the maximum would freeze the state"
    );
    app.stop().await;
}

/// Sends `updates` (text appended to "t") from a writer as fast as its socket takes them, and
/// checks that a reader in the room gets all of them and that the writer is still connected.
async fn flood_is_delivered(app: &crate::helpers::TestApp, updates: &[String]) {
    let mut writer = TestClient::connect_synced(&app.ws_url("doc")).await;
    let mut reader = TestClient::connect_synced(&app.ws_url("doc")).await;
    for text in updates {
        writer.type_text(text).await;
    }
    let expected: String = updates.concat();
    reader
        .until("every update of the flood arrived", |c| {
            c.text() == expected
        })
        .await;
    // The echo of the writer's own presence proves its connection survived the flood.
    writer.set_awareness(4, 0, "{}").await;
    writer
        .until("the writer's presence is echoed", |c| {
            c.awareness.contains_key(&4)
        })
        .await;
    assert_eq!(
        writer.closed, None,
        "the writer was slowed down, not closed"
    );
    assert_eq!(writer.text(), expected);
}

#[tokio::test]
async fn a_client_sending_too_many_messages_is_slowed_down_not_closed() {
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| c.limits.max_messages_per_second = 50).await;
    // A burst of 100, then about three seconds at 50 a second.
    let updates: Vec<String> = (0..250).map(|i| format!("{i};")).collect();
    flood_is_delivered(&app, &updates).await;
    let calm = TestClient::connect_synced(&app.ws_url("doc")).await;
    assert!(calm.synced, "other connections are unaffected");
    app.stop().await;
}

#[tokio::test]
async fn a_client_sending_too_many_bytes_is_slowed_down_not_closed() {
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.limits.max_bytes_per_second = 4096;
        c.limits.max_message_bytes = 8192;
    })
    .await;
    // 18 KB against a burst of 8 KiB: the second message puts the connection about a second in
    // debt, the third a second and a half more.
    let updates: Vec<String> = (0..3).map(|i| format!("{i}").repeat(6000)).collect();
    flood_is_delivered(&app, &updates).await;
    app.stop().await;
}

#[tokio::test]
async fn room_and_node_connection_limits() {
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.limits.max_connections_per_room = 2;
        c.limits.max_connections = 3;
    })
    .await;
    let _a = TestClient::connect_synced(&app.ws_url("room")).await;
    let _b = TestClient::connect_synced(&app.ws_url("room")).await;
    let mut c = TestClient::connect(&app.ws_url("room")).await;
    assert_eq!(c.closed_code().await, Some(1013), "the room is full");
    drop(c);
    let _other = TestClient::connect_synced(&app.ws_url("elsewhere")).await;
    match tokio_tungstenite::connect_async(app.ws_url("more")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 503),
        other => panic!(
            "expected 503 at the node limit, got {:?}",
            other.map(|_| ())
        ),
    }
    app.stop().await;
}

#[tokio::test]
async fn requests_for_large_answers_are_rationed() {
    use chorus_protocol::message::{SYNC_STEP1, sync_frame};
    let (app, _dir) = spawn_app().await;
    let mut client = TestClient::connect_synced(&app.ws_url("doc")).await;
    for _ in 0..20 {
        client.send_raw(sync_frame(SYNC_STEP1, &[0])).await;
    }
    // A marker: once its echo is back, every answer that was going to come has come.
    client.set_awareness(5, 0, "{}").await;
    client
        .until("the marker's echo", |c| c.awareness.contains_key(&5))
        .await;
    let step2s = client
        .received
        .iter()
        .filter(|f| f.starts_with(&[0, 1]))
        .count();
    // A burst of four answers (the connect's included); a slow machine may refill one or two.
    assert!(
        (4..=6).contains(&step2s),
        "{step2s} of 21 step 1s were answered"
    );
    app.stop().await;
}
