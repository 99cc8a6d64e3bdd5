//! Webhooks, against receivers started by the test on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::helpers::{TestClient, eventually, serve, spawn_app_with};

const SECRET: &str = "webhook-secret-for-tests";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// What a receiver answers and records.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<Mutex<usize>>,
    /// Never answer (a hung receiver).
    hang: bool,
}

impl Receiver {
    fn calls(&self) -> Vec<Received> {
        self.calls.lock().expect("not poisoned").clone()
    }
}

async fn record(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver
        .calls
        .lock()
        .expect("not poisoned")
        .push(Received { headers, body });
    if receiver.hang {
        std::future::pending::<()>().await;
    }
    let mut failures = receiver.fail_first.lock().expect("not poisoned");
    if *failures > 0 {
        *failures -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::OK
}

async fn start_receiver(receiver: Receiver) -> SocketAddr {
    serve(
        Router::new()
            .route("/hook", post(record))
            .with_state(receiver),
    )
    .await
}

fn header<'a>(call: &'a Received, name: &str) -> &'a str {
    call.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("header {name} present"))
}

fn expected_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[tokio::test]
async fn changes_are_posted_signed_debounced_and_retried() {
    let receiver = Receiver::default();
    *receiver.fail_first.lock().expect("not poisoned") = 2;
    let hook = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.webhook_url = Some(format!("http://{hook}/hook").parse().expect("url"));
        c.webhook_secret = Some(chorus_server::config::Secret(SECRET.into()));
        c.webhook_include_content = true;
        c.change_debounce = Duration::from_millis(800);
    })
    .await;

    let mut writer = TestClient::connect_synced(&app.ws_url("hooked")).await;
    let mut expected = String::new();
    for i in 0..20 {
        let piece = format!("{i},");
        writer.type_text(&piece).await;
        expected.push_str(&piece);
    }
    // Delivered once the two failures are retried: the last call succeeded and carries
    // everything typed.
    eventually("a notice with the whole text was accepted", || {
        let calls = receiver.calls();
        let done = calls.len() >= 3
            && *receiver.fail_first.lock().expect("not poisoned") == 0
            && serde_json::from_slice::<serde_json::Value>(&calls[calls.len() - 1].body)
                .is_ok_and(|n| n["content"]["t"] == expected.as_str());
        async move { done }
    })
    .await;

    let calls = receiver.calls();
    for call in &calls {
        assert_eq!(
            header(call, "x-chorus-signature"),
            expected_signature(&call.body),
            "every notice is signed over its exact body"
        );
        let notice: serde_json::Value = serde_json::from_slice(&call.body).expect("JSON body");
        assert_eq!(notice["event"], "document.changed");
        assert_eq!(notice["doc"], "hooked");
        assert!(notice["size"].as_u64().is_some_and(|s| s > 0));
        assert!(notice["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    // The first notice was refused twice and retried under the same delivery id.
    let first = header(&calls[0], "x-chorus-delivery").to_owned();
    let attempts: Vec<&str> = calls
        .iter()
        .filter(|c| header(c, "x-chorus-delivery") == first)
        .map(|c| header(c, "x-chorus-attempt"))
        .collect();
    assert!(
        attempts.len() >= 3 && attempts[..3] == ["1", "2", "3"],
        "retries of one notice: {attempts:?}"
    );
    // Twenty updates in a burst make one or two notices, not twenty.
    let mut deliveries: Vec<&str> = calls
        .iter()
        .map(|c| header(c, "x-chorus-delivery"))
        .collect();
    deliveries.dedup();
    assert!(
        deliveries.len() < 20,
        "debounced: {} notices for 20 updates",
        deliveries.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_hung_receiver_never_holds_a_room_back() {
    let receiver = Receiver {
        hang: true,
        ..Receiver::default()
    };
    let hook = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.webhook_url = Some(format!("http://{hook}/hook").parse().expect("url"));
        c.webhook_timeout = Duration::from_secs(300);
        c.change_debounce = Duration::from_millis(50);
        c.shutdown_timeout = Duration::from_secs(1);
    })
    .await;
    let mut a = TestClient::connect_synced(&app.ws_url("busy")).await;
    let mut b = TestClient::connect_synced(&app.ws_url("busy")).await;
    a.type_text("first").await;
    eventually("the receiver is hanging on a notice", || {
        let n = receiver.calls().len();
        async move { n >= 1 }
    })
    .await;
    for i in 0..50 {
        a.type_text(&format!(" {i}")).await;
    }
    let expected = a.text();
    b.until("b has every edit while the hook hangs", |b| {
        b.text() == expected
    })
    .await;
    app.stop().await;
}
