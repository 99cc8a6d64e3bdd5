use chorus_protocol::Message;

use crate::helpers::{TestClient, spawn_app};

#[tokio::test]
async fn awareness_reaches_everyone_including_the_sender_and_goes_when_the_client_leaves() {
    let (app, _dir) = spawn_app().await;
    let mut alice = TestClient::connect_synced(&app.ws_url("doc")).await;
    let mut bob = TestClient::connect_synced(&app.ws_url("doc")).await;

    alice
        .set_awareness(11, 1, r#"{"user":{"name":"alice"}}"#)
        .await;
    bob.until("bob sees alice", |c| c.awareness.contains_key(&11))
        .await;
    alice
        .until("alice gets her own state back", |c| {
            c.awareness.contains_key(&11)
        })
        .await;
    assert_eq!(bob.awareness[&11], r#"{"user":{"name":"alice"}}"#);

    // A newcomer is told who is already here.
    let mut carol = TestClient::connect(&app.ws_url("doc")).await;
    carol
        .until("carol sees alice", |c| c.awareness.contains_key(&11))
        .await;

    drop(alice);
    bob.until("alice's state is removed", |c| {
        !c.awareness.contains_key(&11)
    })
    .await;
    carol
        .until("for everyone", |c| !c.awareness.contains_key(&11))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn an_explicit_removal_is_broadcast_and_the_client_may_come_back_with_the_same_clock() {
    let (app, _dir) = spawn_app().await;
    let mut alice = TestClient::connect_synced(&app.ws_url("doc")).await;
    let mut bob = TestClient::connect_synced(&app.ws_url("doc")).await;
    alice.set_awareness(5, 0, "{}").await;
    bob.until("bob sees alice", |c| c.awareness.contains_key(&5))
        .await;
    alice.set_awareness(5, 0, "null").await;
    bob.until("removal arrives", |c| !c.awareness.contains_key(&5))
        .await;
    alice.set_awareness(5, 0, r#"{"back":true}"#).await;
    bob.until("alice is back", |c| {
        c.awareness.get(&5).is_some_and(|s| s.contains("back"))
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn query_awareness_is_answered_with_every_state() {
    let (app, _dir) = spawn_app().await;
    let mut alice = TestClient::connect_synced(&app.ws_url("doc")).await;
    alice.set_awareness(1, 0, r#"{"a":1}"#).await;
    alice.until("echo", |c| c.awareness.contains_key(&1)).await;
    let mut bob = TestClient::connect_synced(&app.ws_url("doc")).await;
    bob.until("bob sees alice", |c| c.awareness.contains_key(&1))
        .await;
    bob.awareness.clear();
    bob.send_raw(Message::QueryAwareness.encode()).await;
    bob.until("the answer", |c| c.awareness.contains_key(&1))
        .await;
    app.stop().await;
}
