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

#[tokio::test]
async fn a_client_sending_too_fast_is_closed_with_1008() {
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| c.max_messages_per_second = 5).await;
    let mut fast = TestClient::connect_synced(&app.ws_url("doc")).await;
    for i in 0..50 {
        fast.set_awareness(4, i, "{}").await;
    }
    assert_eq!(fast.closed_code().await, Some(1008));
    let calm = TestClient::connect_synced(&app.ws_url("doc")).await;
    assert!(calm.synced, "other connections are unaffected");
    app.stop().await;
}

#[tokio::test]
async fn room_and_node_connection_limits() {
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.max_connections_per_room = 2;
        c.max_connections = 3;
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
