//! Webhooks, against receivers started by the test on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::helpers::{
    TestClient, eventually, metric, serve, spawn_app_with, start_chorus, until_metrics,
};
use crate::relay::{redis_url, require_redis, unique_prefix};

const SECRET: &str = "webhook-secret-for-tests";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    /// `/hook`, or `/hook/<name>` where nodes are told apart by their URLs.
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn delivery(&self) -> &str {
        header(self, "x-chorus-delivery")
    }

    fn notice(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON notice")
    }
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

    /// Waits until some call satisfies `check`.
    async fn until(&self, what: &str, check: impl Fn(&Received) -> bool) {
        eventually(what, || {
            let found = self.calls().iter().any(&check);
            async move { found }
        })
        .await;
    }
}

async fn record(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    receiver.calls.lock().expect("not poisoned").push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
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
            .route("/hook/{name}", post(record))
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
        c.webhooks.webhook_url = Some(format!("http://{hook}/hook").parse().expect("url"));
        c.webhooks.webhook_secret = Some(chorus_server::config::Secret(SECRET.into()));
        c.webhooks.webhook_include_content = true;
        c.webhooks.change_debounce = Duration::from_millis(800);
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
        c.webhooks.webhook_url = Some(format!("http://{hook}/hook").parse().expect("url"));
        c.webhooks.webhook_timeout = Duration::from_secs(300);
        c.webhooks.change_debounce = Duration::from_millis(50);
        c.operations.shutdown_timeout = Duration::from_secs(1);
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

/// A `chorus` process (its /metrics count only this test's notices) posting with a 100 ms
/// debounce and `--webhook-max-attempts attempts` to a receiver that refuses every notice,
/// and a writer connected to it.
struct Refused {
    receiver: Receiver,
    addr: String,
    writer: TestClient,
    _server: crate::helpers::Process,
    _dir: tempfile::TempDir,
}

impl Refused {
    async fn start(attempts: &str) -> Self {
        let receiver = Receiver::default();
        *receiver.fail_first.lock().expect("not poisoned") = usize::MAX;
        let hook = start_receiver(receiver.clone()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("http://{hook}/hook");
        let args = [
            "--webhook-url",
            url.as_str(),
            "--webhook-include-content",
            "--change-debounce",
            "100ms",
            "--webhook-max-attempts",
            attempts,
        ];
        let (server, addr) = start_chorus(dir.path(), &args).await;
        let writer = TestClient::connect_synced(&format!("ws://{addr}/ws/doc")).await;
        Self {
            receiver,
            addr,
            writer,
            _server: server,
            _dir: dir,
        }
    }

    /// Waits until the process counts `value` notices with `outcome`.
    async fn until_outcome(&self, outcome: &str, value: f64) {
        let series = format!(r#"chorus_webhooks_total{{outcome="{outcome}"}}"#);
        until_metrics(&self.addr, &format!("{value} notices {outcome}"), |page| {
            metric(page, &series) == value
        })
        .await;
    }
}

#[tokio::test]
async fn a_newer_change_supersedes_a_notice_still_retrying() {
    let mut test = Refused::start("8").await;
    test.writer.type_text("one").await;
    test.receiver
        .until("the first notice was refused", |c| {
            c.notice()["content"]["t"] == "one"
        })
        .await;
    let first = test.receiver.calls()[0].delivery().to_owned();

    test.writer.type_text(" two").await;
    test.receiver
        .until("a notice of the newer change arrived", |c| {
            c.notice()["content"]["t"] == "one two"
        })
        .await;
    // The first notice wakes for its next attempt and finds it has been superseded.
    test.until_outcome("superseded", 1.0).await;

    let calls = test.receiver.calls();
    let newer = calls
        .iter()
        .position(|c| c.delivery() != first)
        .expect("the newer notice");
    assert!(
        calls[newer..].iter().all(|c| c.delivery() != first),
        "no attempt of the superseded notice after the newer one: {:?}",
        calls.iter().map(Received::delivery).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn retries_end_after_the_maximum_attempts() {
    let mut test = Refused::start("3").await;
    test.writer.type_text("refused").await;
    test.until_outcome("abandoned", 1.0).await;

    let calls = test.receiver.calls();
    let attempts: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c.delivery(), header(c, "x-chorus-attempt")))
        .collect();
    let first = calls[0].delivery();
    assert_eq!(
        attempts,
        [(first, "1"), (first, "2"), (first, "3")],
        "three attempts of one notice, then no more"
    );
}

/// Edits that never pause for a whole debounce period are still announced, at most five
/// periods after the first.
#[tokio::test]
async fn a_document_edited_without_pause_is_announced_while_edits_go_on() {
    const DEBOUNCE: Duration = Duration::from_secs(1);
    let receiver = Receiver::default();
    let hook = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.webhooks.webhook_url = Some(format!("http://{hook}/hook").parse().expect("url"));
        c.webhooks.change_debounce = DEBOUNCE;
    })
    .await;
    let mut writer = TestClient::connect_synced(&app.ws_url("busy")).await;
    let start = tokio::time::Instant::now();
    let mut last_edit = start;
    let mut longest_gap = Duration::ZERO;
    // Without the cap no notice could come before the edits stop; a generous deadline (six
    // times the cap) ends the test if none does.
    while receiver.calls().is_empty() {
        assert!(
            start.elapsed() < DEBOUNCE * 30,
            "no notice while edits went on for {:?}",
            start.elapsed()
        );
        writer.type_text(".").await;
        let now = tokio::time::Instant::now();
        longest_gap = longest_gap.max(now - last_edit);
        last_edit = now;
        tokio::time::sleep(DEBOUNCE / 10).await;
    }
    assert!(
        longest_gap < DEBOUNCE,
        "the edits paused for {longest_gap:?}, a whole debounce period: the test proves \
         nothing on a machine this busy"
    );
    app.stop().await;
}

/// Two nodes share a room over Redis and post to one receiver, each under its own path: a
/// change is announced by the node it was made on, never by the node it was relayed to.
#[tokio::test]
async fn only_the_node_where_a_change_was_made_announces_it() {
    require_redis().await;
    let receiver = Receiver::default();
    let hook = start_receiver(receiver.clone()).await;
    let prefix = unique_prefix();
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    // The node that relays announces (if it wrongly did) 20 times sooner than the editing node.
    let node = |dir: &tempfile::TempDir, name: &str, debounce: Duration| {
        let (prefix, url) = (prefix.clone(), format!("http://{hook}/hook/{name}"));
        spawn_app_with(dir.path().into(), move |c| {
            c.scale_out.redis_url = Some(redis_url());
            c.scale_out.redis_prefix = prefix;
            c.webhooks.webhook_url = Some(url.parse().expect("url"));
            c.webhooks.webhook_include_content = true;
            c.webhooks.change_debounce = debounce;
        })
    };
    let a = node(&dirs[0], "a", Duration::from_secs(2)).await;
    let b = node(&dirs[1], "b", Duration::from_millis(100)).await;
    let mut on_a = TestClient::connect_synced(&a.ws_url("shared")).await;
    let mut on_b = TestClient::connect_synced(&b.ws_url("shared")).await;

    on_a.type_text("a").await;
    on_b.until("the edit reached node b", |c| c.text() == "a")
        .await;
    receiver
        .until("node a announced its edit", |c| c.path == "/hook/a")
        .await;
    assert!(
        receiver.calls().iter().all(|c| c.path == "/hook/a"),
        "node b announced a change relayed to it"
    );

    // Node b does announce what is edited on it.
    on_b.type_text("b").await;
    receiver
        .until("node b announced its own edit", |c| {
            c.path == "/hook/b" && c.notice()["content"]["t"] == "ab"
        })
        .await;
    a.stop().await;
    b.stop().await;
}
