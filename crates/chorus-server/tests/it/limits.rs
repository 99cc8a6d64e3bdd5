//! Per-connection rules and connection limits.

use std::time::Duration;

use chorus_protocol::{AwarenessEntry, AwarenessUpdate, Message};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use crate::helpers::{TestApp, TestClient, server_doc, spawn_app, spawn_app_with};

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

const KEY: &str = "limits-test-key";

/// What a flood cost: how long from the writer's connection until the server had all of it,
/// and the size of each message sent, in order.
struct Flood {
    took: Duration,
    sizes: Vec<usize>,
}

/// Sends `updates` (text appended to "t") from one writer as fast as its socket takes them,
/// each followed by a presence update when `with_presence` is set (so that no two updates
/// arrive back to back and get merged into one message, see `chorus_server::burst`). Checks
/// that a reader receives every update, that the server's document ends with all of them and
/// that the writer is still connected.
async fn flood(app: &TestApp, updates: &[String], with_presence: bool) -> Flood {
    let mut reader = TestClient::connect_synced(&app.ws_url("doc")).await;
    let start = Instant::now();
    let mut writer = TestClient::connect_synced(&app.ws_url("doc")).await;
    let mut sizes = Vec::new();
    for (clock, text) in (0..).zip(updates) {
        sizes.push(writer.type_text(text).await);
        if with_presence {
            let state = format!(r#"{{"n":{clock}}}"#);
            let presence = AwarenessUpdate {
                entries: vec![AwarenessEntry {
                    client: 4,
                    clock,
                    state: state.clone().into(),
                }],
            };
            let frame = Message::Awareness(presence).encode();
            sizes.push(frame.len());
            writer.send_raw(frame).await;
        }
    }
    let expected: String = updates.concat();
    reader
        .until("every update of the flood arrived", |c| {
            c.text() == expected
        })
        .await;
    let took = start.elapsed();
    assert_eq!(
        server_doc(app.addr, KEY, "doc").await["t"],
        expected.as_str(),
        "the server's document has every update"
    );
    // An answer to the writer proves its connection survived the flood.
    let next_clock = u32::try_from(updates.len()).expect("a short flood");
    writer.set_awareness(4, next_clock, "{}").await;
    writer
        .until("the writer's presence is echoed", |c| {
            c.awareness.get(&4).is_some_and(|s| s == "{}")
        })
        .await;
    assert_eq!(
        writer.closed, None,
        "the writer was slowed down, not closed"
    );
    Flood { took, sizes }
}

/// The least time a token bucket of `rate` per second, full at `burst`, needs before it lets
/// the last of `costs` through: the connection reads a message only once it is out of debt, so
/// everything before the last has been paid for, less the burst it started with.
fn least_time(costs: &[usize], rate: f64, burst: f64) -> Duration {
    let before_last: usize = costs.iter().rev().skip(1).sum();
    Duration::from_secs_f64(((before_last as f64 - burst) / rate).max(0.0))
}

#[tokio::test]
async fn a_client_sending_too_many_messages_is_slowed_down_not_closed() {
    const RATE: u32 = 50;
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.limits.max_messages_per_second = RATE;
        c.auth.api_key = Some(chorus_server::config::Secret(KEY.into()));
    })
    .await;
    // 260 messages against a burst of 100 at 50 a second.
    let updates: Vec<String> = (0..130).map(|i| format!("{i};")).collect();
    let flood = flood(&app, &updates, true).await;
    let messages = vec![1; flood.sizes.len()];
    let least = least_time(&messages, f64::from(RATE), f64::from(RATE * 2));
    assert!(
        flood.took >= least,
        "{} messages went through in {:?}; the rate allows no less than {least:?}",
        messages.len(),
        flood.took
    );
    let calm = TestClient::connect_synced(&app.ws_url("doc")).await;
    assert!(calm.synced, "other connections are unaffected");
    app.stop().await;
}

#[tokio::test]
async fn a_client_sending_too_many_bytes_is_slowed_down_not_closed() {
    const RATE: u64 = 8192;
    let dir = tempfile::tempdir().expect("dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.limits.max_bytes_per_second = RATE;
        c.limits.max_message_bytes = 8192;
        c.auth.api_key = Some(chorus_server::config::Secret(KEY.into()));
    })
    .await;
    // 36 KB against a burst of 8 KiB at 8 KiB a second.
    let updates: Vec<String> = (0..6).map(|i| format!("{i}").repeat(6000)).collect();
    let flood = flood(&app, &updates, false).await;
    let least = least_time(&flood.sizes, RATE as f64, 8192.0);
    assert!(
        flood.took >= least,
        "{} bytes went through in {:?}; the rate allows no less than {least:?}",
        flood.sizes.iter().sum::<usize>(),
        flood.took
    );
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
