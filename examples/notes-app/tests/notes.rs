//! The Notes example over real HTTP and WebSockets on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chorus_example_notes::{NotesHooks, Product, router};
use chorus_protocol::message::{SYNC_UPDATE, sync_frame};
use chorus_protocol::{Message, StateVector, SyncMessage};
use chorus_server::{Chorus, Config};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Text, Transact, Update};

const PATIENCE: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A y-websocket client reduced to what the test needs.
struct Client {
    socket: Socket,
    doc: Doc,
}

impl Client {
    async fn connect(url: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("handshake");
        let mut client = Self {
            socket,
            doc: Doc::new(),
        };
        let step1 = Message::Sync(SyncMessage::Step1(StateVector::default()));
        client.send(step1.encode()).await;
        client.until(|c| !c.text().is_empty()).await;
        client
    }

    async fn send(&mut self, frame: impl Into<bytes::Bytes>) {
        self.socket
            .send(WsMessage::Binary(frame.into()))
            .await
            .expect("send");
    }

    fn text(&self) -> String {
        let text = self.doc.get_or_insert_text("t");
        text.get_string(&self.doc.transact())
    }

    async fn type_text(&mut self, s: &str) {
        let update = {
            let text = self.doc.get_or_insert_text("t");
            let mut txn = self.doc.transact_mut();
            let end = text.len(&txn);
            text.insert(&mut txn, end, s);
            txn.encode_update_v1()
        };
        self.send(sync_frame(SYNC_UPDATE, &update)).await;
    }

    /// Applies what arrives until `done` holds.
    async fn until(&mut self, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !done(self) {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("in time")
                .expect("open")
                .expect("frame");
            let WsMessage::Binary(bytes) = frame else {
                continue;
            };
            if let Ok(Message::Sync(SyncMessage::Step2(update) | SyncMessage::Update(update))) =
                Message::decode(&bytes)
            {
                let update = Update::decode_v1(&update).expect("valid update");
                self.doc
                    .transact_mut()
                    .apply_update(update)
                    .expect("applies");
            }
        }
    }
}

async fn get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn notes_embeds_chorus_with_its_users_and_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let product = Arc::new(Product::default());
    let alice = product.login("alice", true);
    let bob = product.login("bob", false);
    let mut config = Config::local(dir.path());
    config.webhooks.change_debounce = Duration::from_millis(100);
    let chorus = Chorus::builder()
        .config(config)
        .hooks(NotesHooks(Arc::clone(&product)))
        .build()
        .await
        .expect("builds");
    let app = router(&chorus, Arc::clone(&product));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = chorus.shutdown_token();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    let url = |note: &str, session: &str| format!("ws://{addr}/collab/ws/{note}?token={session}");

    assert!(
        get(addr, "/").await.contains("Notes"),
        "the product's own page"
    );
    let refused = tokio_tungstenite::connect_async(
        url("plans", "stolen")
            .into_client_request()
            .expect("request"),
    )
    .await;
    assert!(
        matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 401),
        "an unknown session is refused: {refused:?}"
    );

    // A new note starts with the title the product's load hook gives it.
    let mut editor = Client::connect(&url("plans", &alice)).await;
    assert_eq!(editor.text(), "# plans\n");
    let mut guest = Client::connect(&url("plans", &bob)).await;
    assert!(get(addr, "/online/plans").await.ends_with("2"));
    editor.type_text("ship it").await;
    guest.until(|g| g.text() == "# plans\nship it").await;

    // The guest reads only: its edit never reaches the editor or the database.
    guest.type_text(" (guest was here)").await;
    eventually("the activity feed shows the change", async || {
        get(addr, "/activity").await.contains("plans changed")
    })
    .await;

    drop(editor);
    drop(guest);
    chorus.stop().await;
    server.await.expect("no panic").expect("served");

    // The final snapshot went into the product's database through the store hook.
    let saved = product
        .database
        .lock()
        .expect("not poisoned")
        .get("plans")
        .cloned()
        .expect("saved in the product's database");
    let copy = Doc::new();
    let text = copy.get_or_insert_text("t");
    copy.transact_mut()
        .apply_update(Update::decode_v1(&saved).expect("valid"))
        .expect("applies");
    assert_eq!(text.get_string(&copy.transact()), "# plans\nship it");
}
