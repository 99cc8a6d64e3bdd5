//! The Hocuspocus endpoint at the protocol level: a raw client on `/hocuspocus` that sends the
//! frames a provider sends, and some no provider sends.

use bytes::Bytes;
use chorus_protocol::hocuspocus::{MSG_CLOSE, MSG_STATELESS, MSG_SYNC_STATUS, PING, PONG};
use chorus_protocol::lib0::{Decoder, write_var_string, write_var_uint};
use chorus_protocol::message::{SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE, sync_frame};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::{Doc, ReadTxn, Text, Transact};

use crate::helpers::{PATIENCE, TestApp, TestClient, spawn_app, stored_state};

/// `varString(address) • body`.
fn frame(address: &str, body: &[u8]) -> Bytes {
    let mut out = Vec::new();
    write_var_string(&mut out, address);
    out.extend_from_slice(body);
    out.into()
}

fn token(address: &str) -> Bytes {
    token_frame(address, "")
}

/// A v4 provider's token message.
fn token_frame(address: &str, token: &str) -> Bytes {
    let mut body = vec![2, 0];
    write_var_string(&mut body, token);
    write_var_string(&mut body, "4.8.0");
    frame(address, &body)
}

/// A frame from the server, split into its address and the rest.
#[derive(Debug)]
struct Received {
    address: String,
    body: Vec<u8>,
}

struct RawHocus {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    doc: Doc,
}

impl RawHocus {
    async fn connect(app: &TestApp) -> Self {
        Self::connect_url(&format!("ws://{}/hocuspocus", app.addr)).await
    }

    async fn connect_url(url: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket handshake");
        Self {
            socket,
            doc: Doc::new(),
        }
    }

    async fn send(&mut self, bytes: Bytes) {
        self.socket
            .send(WsMessage::Binary(bytes))
            .await
            .expect("send");
    }

    /// Sends the token and waits for "authenticated".
    async fn open(&mut self, address: &str) {
        self.send(token(address)).await;
        self.next_of(address, |body| body.starts_with(&[2, 2]))
            .await;
    }

    /// The next frame for `address` whose body `matches`; other frames are skipped.
    async fn next_of(&mut self, address: &str, matches: impl Fn(&[u8]) -> bool) -> Received {
        loop {
            let received = self.next().await.expect("a frame, not a close");
            if received.address == address && matches(&received.body) {
                return received;
            }
        }
    }

    /// The next addressed frame, or the close code.
    async fn next(&mut self) -> Result<Received, Option<u16>> {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("the server answers in time");
            match message {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    // Bare ping and pong frames carry no address.
                    if bytes.as_ref() == [PONG] || bytes.as_ref() == [PING] {
                        return Ok(Received {
                            address: String::new(),
                            body: bytes.to_vec(),
                        });
                    }
                    let mut decoder = Decoder::new(&bytes);
                    let address = decoder.read_var_string().expect("an address").to_owned();
                    let body = decoder.read_rest().to_vec();
                    return Ok(Received { address, body });
                }
                Some(Ok(WsMessage::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => return Err(None),
            }
        }
    }

    async fn closed_code(&mut self) -> Option<u16> {
        loop {
            if let Err(code) = self.next().await {
                return code;
            }
        }
    }

    /// Types `text` into the local document and sends the update for `address`.
    async fn type_text(&mut self, address: &str, text: &str) {
        assert!(self.try_type_text(address, text).await, "sent");
    }

    /// [`RawHocus::type_text`], false when the socket is gone.
    async fn try_type_text(&mut self, address: &str, text: &str) -> bool {
        let update = {
            let shared = self.doc.get_or_insert_text("t");
            let mut txn = self.doc.transact_mut();
            let end = shared.len(&txn);
            shared.insert(&mut txn, end, text);
            txn.encode_update_v1()
        };
        self.socket
            .send(WsMessage::Binary(frame(
                address,
                &sync_frame(SYNC_UPDATE, &update),
            )))
            .await
            .is_ok()
    }
}

fn is_sync_status(applied: u8) -> impl Fn(&[u8]) -> bool {
    move |body| body == [MSG_SYNC_STATUS as u8, applied]
}

#[tokio::test]
async fn the_sync_status_leaves_only_once_the_update_is_in_the_log() {
    let (app, dir) = spawn_app().await;
    let mut client = RawHocus::connect(&app).await;
    client.open("durable").await;
    for (round, word) in ["one", "two", "three"].into_iter().enumerate() {
        client.type_text("durable", word).await;
        client.next_of("durable", is_sync_status(1)).await;
        // The acknowledgement came: the record must be readable from the log already.
        let (_, records) = stored_state(dir.path(), "durable").await;
        assert!(records > round, "after ack {round}: {records} records");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_frame_closes_the_socket_with_1007() {
    let (app, _dir) = spawn_app().await;
    let mut client = RawHocus::connect(&app).await;
    client.open("doc").await;
    // A sync update announcing 2^32 - 1 bytes, well addressed.
    client
        .send(frame("doc", &[0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f]))
        .await;
    assert_eq!(client.closed_code().await, Some(1007));

    // An address longer than the frame.
    let mut other = RawHocus::connect(&app).await;
    other.send(Bytes::from_static(&[40, b'x'])).await;
    assert_eq!(other.closed_code().await, Some(1007));
    app.stop().await;
}

#[tokio::test]
async fn an_update_the_room_refuses_closes_the_socket_and_gets_no_sync_status() {
    let (app, _dir) = spawn_app().await;
    let mut client = RawHocus::connect(&app).await;
    client.open("doc").await;
    // Well framed and well addressed; the update inside is garbage.
    client
        .send(frame("doc", &sync_frame(SYNC_UPDATE, &[0xff, 0xff, 0xff])))
        .await;
    loop {
        match client.next().await {
            Ok(received) => assert!(
                !received.body.starts_with(&[MSG_SYNC_STATUS as u8]),
                "no sync status for a refused update: {received:?}"
            ),
            Err(code) => {
                assert_eq!(code, Some(1007));
                break;
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn broadcast_stateless_from_a_client_is_refused_with_1008() {
    let (app, _dir) = spawn_app().await;
    let mut client = RawHocus::connect(&app).await;
    client.open("doc").await;
    let mut body = vec![6];
    write_var_string(&mut body, "to everyone");
    client.send(frame("doc", &body)).await;
    assert_eq!(client.closed_code().await, Some(1008));
    // Before authentication too.
    let mut early = RawHocus::connect(&app).await;
    early.send(frame("doc", &body)).await;
    assert_eq!(early.closed_code().await, Some(1008));
    app.stop().await;
}

#[tokio::test]
async fn too_many_messages_before_authentication_close_with_4205() {
    let (app, _dir) = spawn_app().await;
    let mut client = RawHocus::connect(&app).await;
    for _ in 0..1000 {
        client.send(frame("doc", &[3])).await;
    }
    // Exactly at the bound: still open, and the token still opens the document.
    client.open("doc").await;
    let mut flood = RawHocus::connect(&app).await;
    for _ in 0..1001 {
        flood.send(frame("doc", &[3])).await;
    }
    assert_eq!(flood.closed_code().await, Some(4205));
    app.stop().await;
}

#[tokio::test]
async fn too_many_bytes_or_documents_before_authentication_close_with_4205() {
    let (app, _dir) = spawn_app().await;
    let mut bytes = RawHocus::connect(&app).await;
    let mut body = Vec::new();
    write_var_uint(&mut body, MSG_STATELESS);
    write_var_string(&mut body, &"x".repeat(1024 * 1024));
    for _ in 0..6 {
        bytes.send(frame("doc", &body)).await;
    }
    assert_eq!(bytes.closed_code().await, Some(4205));

    let mut documents = RawHocus::connect(&app).await;
    for n in 0..101 {
        documents.send(frame(&format!("doc-{n}"), &[3])).await;
    }
    assert_eq!(documents.closed_code().await, Some(4205));
    app.stop().await;
}

#[tokio::test]
async fn closing_one_document_leaves_the_others_open() {
    let (app, _dir) = spawn_app().await;
    let mut client = RawHocus::connect(&app).await;
    client.open("a").await;
    client.open("b").await;
    client.send(frame("a", &[MSG_CLOSE as u8])).await;
    // b is still served.
    client.type_text("b", "still open").await;
    client.next_of("b", is_sync_status(1)).await;
    let watcher = TestClient::connect_synced(&app.ws_url("b")).await;
    assert_eq!(watcher.text(), "still open");
    // a's session is gone: a new token opens it again (an open session would ignore it).
    client.open("a").await;
    app.stop().await;
}

#[tokio::test]
async fn a_ping_gets_a_pong_and_an_opened_document_syncs() {
    let (app, _dir) = spawn_app().await;
    let mut client = RawHocus::connect(&app).await;
    client.send(Bytes::from_static(&[PING])).await;
    let pong = client.next().await.expect("a pong");
    assert_eq!(pong.body, [PONG]);
    client.send(token("doc")).await;
    let mut step1 = false;
    let mut sent_step1 = false;
    // The server's step 1 comes after "authenticated"; our own step 1 gets a step 2.
    while !step1 {
        let received = client.next().await.expect("frames");
        assert_eq!(received.address, "doc");
        if received.body.starts_with(&[0, SYNC_STEP1 as u8]) {
            step1 = true;
        }
        if received.body.starts_with(&[2, 2]) && !sent_step1 {
            let sv = client.doc.transact().state_vector();
            let sv = yrs::updates::encoder::Encode::encode_v1(&sv);
            client
                .send(frame("doc", &sync_frame(SYNC_STEP1, &sv)))
                .await;
            sent_step1 = true;
        }
    }
    client
        .next_of("doc", |body| body.starts_with(&[0, 1]))
        .await;
    app.stop().await;
}

/// The same guarantee for y-websocket clients that ask for it (message type 100).
#[tokio::test]
async fn a_y_websocket_client_may_ask_for_a_durable_acknowledgement() {
    use chorus_protocol::message::durable_frame;
    let (app, dir) = spawn_app().await;
    let mut client = TestClient::connect_synced(&app.ws_url("asks")).await;
    for id in 1..=3u64 {
        client.type_text(&format!("edit {id} ")).await;
        client.send_raw(durable_frame(id)).await;
        let expected = durable_frame(id);
        client
            .until("the acknowledgement", |c| c.received.contains(&expected))
            .await;
        let (_, records) = stored_state(dir.path(), "asks").await;
        assert!(records as u64 >= id, "after ack {id}: {records} records");
    }
    // A client that never asks never gets one.
    let quiet = TestClient::connect_synced(&app.ws_url("asks")).await;
    assert!(quiet.received.iter().all(|frame| frame[0] != 100));
    app.stop().await;
}

#[derive(Default)]
struct Heard {
    stateless: std::sync::Mutex<Vec<(String, String)>>,
}

/// Tokens are user names: `editor` writes, anything else is refused.
struct HostHooks(std::sync::Arc<Heard>);

#[async_trait::async_trait]
impl chorus_server::Hooks for HostHooks {
    async fn authenticate(
        &self,
        request: &chorus_server::hooks::ConnectRequest<'_>,
    ) -> Result<Option<chorus_server::hooks::Access>, chorus_server::hooks::Denied> {
        match request.token {
            // Edits are attributed to whom the application says.
            Some("editor") => Ok(Some(
                chorus_server::hooks::Access::WRITE.as_identity("user-42"),
            )),
            _ => Err(chorus_server::hooks::Denied::unauthorized(
                "unknown session",
            )),
        }
    }

    async fn on_stateless(&self, message: &chorus_server::hooks::StatelessMessage) {
        self.0
            .stateless
            .lock()
            .expect("not poisoned")
            .push((message.doc.as_str().to_owned(), message.payload.clone()));
    }
}

/// Nested under a host's prefix, the endpoint is `<prefix>/hocuspocus`; the `authenticate` hook
/// decides per document, a refusal can be retried on the same socket, and stateless messages
/// reach `on_stateless` and the document's other clients.
#[tokio::test]
async fn an_embedding_application_authenticates_and_hears_stateless_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let heard = std::sync::Arc::new(Heard::default());
    let mut config = chorus_server::Config::local(dir.path());
    config.auth.api_key = Some(chorus_server::config::Secret("host-key".into()));
    let chorus = chorus_server::Chorus::builder()
        .config(config)
        .hooks(HostHooks(std::sync::Arc::clone(&heard)))
        .build()
        .await
        .expect("chorus builds");
    let host = axum::Router::new().nest("/collab", chorus.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = chorus.shutdown_token();
    let server = tokio::spawn(async move {
        axum::serve(listener, host)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    let url = format!("ws://{addr}/collab/hocuspocus");

    let mut sender = RawHocus::connect_url(&url).await;
    sender.send(token_frame("notes", "intruder")).await;
    let denied = sender
        .next_of("notes", |body| body.starts_with(&[2, 1]))
        .await;
    assert!(
        String::from_utf8_lossy(&denied.body).contains("unknown session"),
        "{denied:?}"
    );
    sender.send(token_frame("notes", "editor")).await;
    sender
        .next_of("notes", |body| body.starts_with(&[2, 2]))
        .await;
    let mut listener = RawHocus::connect_url(&url).await;
    listener.send(token_frame("notes", "editor")).await;
    listener
        .next_of("notes", |body| body.starts_with(&[2, 2]))
        .await;

    let mut body = Vec::new();
    write_var_uint(&mut body, MSG_STATELESS);
    write_var_string(&mut body, "hello");
    sender.send(frame("notes", &body)).await;
    listener.next_of("notes", |b| b == body.as_slice()).await;
    assert_eq!(
        *heard.stateless.lock().expect("not poisoned"),
        [("notes".to_owned(), "hello".to_owned())]
    );

    // The hook's identity is the author of the Hocuspocus client's edits.
    sender.type_text("notes", "typed").await;
    sender.next_of("notes", is_sync_status(1)).await;
    let made = crate::helpers::http(
        addr,
        "POST",
        "/collab/api/v1/docs/notes/versions",
        &[("Authorization", "Bearer host-key")],
        b"",
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(made.json()["authors"], serde_json::json!(["user-42"]));

    chorus.stop().await;
    let _ = server.await;
}

/// A socket that gets no document let in within `--peer-timeout` is closed with 4408, however
/// much it sends meanwhile; one that did lives on.
#[tokio::test]
async fn a_socket_with_no_document_let_in_times_out_with_4408() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = crate::helpers::spawn_app_with(dir.path().into(), |c| {
        c.sessions.ping_interval = std::time::Duration::from_millis(200);
        c.sessions.peer_timeout = std::time::Duration::from_millis(800);
    })
    .await;
    let mut idle = RawHocus::connect(&app).await;
    let mut admitted = RawHocus::connect(&app).await;
    admitted.open("doc").await;
    let chatty = async {
        // Queued frames keep arriving, but none is a token.
        loop {
            idle.send(frame("doc", &[3])).await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    // The admitted one reads (tungstenite answers the server's pings while it does).
    let listening = async {
        loop {
            let _ = admitted.next().await;
        }
    };
    tokio::select! {
        () = chatty => unreachable!(),
        () = listening => unreachable!(),
        () = tokio::time::sleep(std::time::Duration::from_millis(1500)) => {}
    }
    assert_eq!(idle.closed_code().await, Some(4408));
    admitted.type_text("doc", "alive").await;
    admitted.next_of("doc", is_sync_status(1)).await;
    app.stop().await;
}

#[tokio::test]
async fn query_awareness_is_answered_with_every_state() {
    let (app, _dir) = spawn_app().await;
    let mut present = TestClient::connect_synced(&app.ws_url("doc")).await;
    present
        .set_awareness(7, 1, r#"{"user":{"name":"ada"}}"#)
        .await;
    let mut asker = RawHocus::connect(&app).await;
    asker.open("doc").await;
    let is_awareness = |body: &[u8]| body.first() == Some(&1);
    // The room's own greeting, then the answer to the question.
    asker.next_of("doc", is_awareness).await;
    asker.send(frame("doc", &[3])).await;
    let answer = asker.next_of("doc", is_awareness).await;
    assert!(
        String::from_utf8_lossy(&answer.body).contains("ada"),
        "{answer:?}"
    );
    app.stop().await;
}

/// An update log whose appends wait while its gate is shut, so a test decides when the edits
/// in flight become durable (and so acknowledged).
struct GatedLog {
    inner: chorus_store::MemoryLog,
    open: tokio::sync::watch::Sender<bool>,
    waiting: std::sync::atomic::AtomicUsize,
}

impl GatedLog {
    fn new() -> Self {
        Self {
            inner: chorus_store::MemoryLog::new(),
            open: tokio::sync::watch::Sender::new(true),
            waiting: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }

    fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl chorus_store::UpdateLog for GatedLog {
    async fn append(
        &self,
        doc: &chorus_protocol::DocName,
        updates: &[Bytes],
    ) -> Result<u64, chorus_store::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut open = self.open.subscribe();
        self.waiting.fetch_add(1, SeqCst);
        let _ = open.wait_for(|open| *open).await;
        self.waiting.fetch_sub(1, SeqCst);
        self.inner.append(doc, updates).await
    }

    async fn read(
        &self,
        doc: &chorus_protocol::DocName,
    ) -> Result<Vec<(u64, Bytes)>, chorus_store::StoreError> {
        self.inner.read(doc).await
    }

    async fn truncate(
        &self,
        doc: &chorus_protocol::DocName,
        through: u64,
    ) -> Result<(), chorus_store::StoreError> {
        self.inner.truncate(doc, through).await
    }

    async fn delete(&self, doc: &chorus_protocol::DocName) -> Result<(), chorus_store::StoreError> {
        self.inner.delete(doc).await
    }

    async fn list(&self) -> Result<Vec<chorus_protocol::DocName>, chorus_store::StoreError> {
        self.inner.list().await
    }
}

/// Shutdown: the rooms store what they applied and release its sync statuses before they close
/// their sessions (1001), so every edit that reached a room is acknowledged as well as stored.
/// The edits' appends are held at a gate until the shutdown has begun: a socket that closed at
/// once, or a session that dropped what its room queued before the goodbye, loses their sync
/// statuses, and this test fails.
#[tokio::test]
async fn at_shutdown_every_stored_edit_is_acknowledged_before_the_close() {
    use chorus_store::{SnapshotStore as _, UpdateLog as _};
    const HELD: usize = 20;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = std::sync::Arc::new(GatedLog::new());
    let snapshots = std::sync::Arc::new(chorus_store::MemoryStore::new());
    let chorus = chorus_server::Chorus::builder()
        .config(chorus_server::Config::local(dir.path()))
        .store(snapshots.clone(), log.clone())
        .build()
        .await
        .expect("chorus builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = chorus.shutdown_token();
    let router = chorus.router();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    let mut client = RawHocus::connect_url(&format!("ws://{addr}/hocuspocus")).await;
    client.open("held").await;
    client.type_text("held", "<start>").await;
    client.next_of("held", is_sync_status(1)).await;

    log.set_open(false);
    for n in 0..HELD {
        client.type_text("held", &format!("<{n}>")).await;
    }
    crate::helpers::eventually("an append waits at the gate", || async {
        log.waiting() > 0
    })
    .await;
    // Every held edit has reached the room (a read answers from its document, not the log).
    let last = format!("<{}>", HELD - 1);
    crate::helpers::eventually("the room has applied every edit", || async {
        let Ok(state) = chorus.read_update("held", None).await else {
            return false;
        };
        crate::helpers::text_of(&state).contains(&last)
    })
    .await;
    let cancelled = chorus.shutdown_token();
    let stopping = tokio::spawn(chorus.stop());
    crate::helpers::eventually("the shutdown has begun", || async {
        cancelled.is_cancelled()
    })
    .await;
    // Time for a socket that does not wait for its rooms to close early; one that waits stays
    // open until the gate opens, however long that takes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    log.set_open(true);

    let mut acknowledged = 0;
    let code = loop {
        match client.next().await {
            Ok(received) if received.body == [MSG_SYNC_STATUS as u8, 1] => acknowledged += 1,
            Ok(_) => {}
            Err(code) => break code,
        }
    };
    assert_eq!(code, Some(1001));
    stopping.await.expect("stopped");
    let _ = server.await;

    let name = chorus_protocol::DocName::parse("held").expect("a name");
    let stored = Doc::new();
    let snapshot = snapshots.load(&name).await.expect("snapshot readable");
    let records = log.read(&name).await.expect("log readable");
    for update in snapshot
        .into_iter()
        .chain(records.into_iter().map(|(_, u)| u))
    {
        stored
            .transact_mut()
            .apply_update(yrs::updates::decoder::Decode::decode_v1(&update).expect("decodes"))
            .expect("applies");
    }
    let text = yrs::GetString::get_string(&stored.get_or_insert_text("t"), &stored.transact());
    let stored_edits = (0..HELD)
        .filter(|n| text.contains(&format!("<{n}>")))
        .count();
    assert_eq!(
        stored_edits, HELD,
        "every edit that reached the room is stored: {text}"
    );
    assert_eq!(acknowledged, HELD, "and acknowledged before the close");
}

#[tokio::test]
async fn an_oversized_frame_closes_the_socket_with_1009() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = crate::helpers::spawn_app_with(dir.path().into(), |c| {
        c.limits.max_message_bytes = 64 * 1024
    })
    .await;
    let mut client = RawHocus::connect(&app).await;
    client.open("doc").await;
    let mut body = Vec::new();
    write_var_uint(&mut body, MSG_STATELESS);
    write_var_string(&mut body, &"x".repeat(100 * 1024));
    client.send(frame("doc", &body)).await;
    assert_eq!(client.closed_code().await, Some(1009));
    app.stop().await;
}

/// The next sync status for `address`, whatever it says.
async fn next_sync_status(client: &mut RawHocus, address: &str) -> Vec<u8> {
    client
        .next_of(address, |body| {
            body.first() == Some(&(MSG_SYNC_STATUS as u8))
        })
        .await
        .body
}

/// As `@hocuspocus/server` answers a read-only provider: a sync step 2 that only repeats what
/// the document has (no structs it lacks, only deletions it made: Yjs always sends the whole
/// delete set) is acknowledged, so the provider does not show unsaved changes it does not
/// have; one with an edit of its own gets sync status 0, and the edit goes nowhere.
#[tokio::test]
async fn a_read_only_step2_is_acknowledged_only_when_it_adds_nothing() {
    use crate::auth::{SECRET, now, token};
    let dir = tempfile::tempdir().expect("temp dir");
    let app = crate::helpers::spawn_app_with(dir.path().into(), |c| {
        c.auth.auth_secret = Some(chorus_server::config::Secret(SECRET.to_owned()));
    })
    .await;
    let later = now() + 60;
    let mut writer = RawHocus::connect(&app).await;
    writer
        .send(token_frame("ro", &token(SECRET, "ro", "write", later)))
        .await;
    writer.next_of("ro", |body| body.starts_with(&[2, 2])).await;
    writer.type_text("ro", "hello world").await;
    assert_eq!(next_sync_status(&mut writer, "ro").await, [8, 1]);
    let update = {
        let text = writer.doc.get_or_insert_text("t");
        let mut txn = writer.doc.transact_mut();
        yrs::Text::remove_range(&text, &mut txn, 0, 6);
        txn.encode_update_v1()
    };
    writer
        .send(frame("ro", &sync_frame(SYNC_UPDATE, &update)))
        .await;
    assert_eq!(next_sync_status(&mut writer, "ro").await, [8, 1]);

    // A reader that holds the same document, deletion included.
    let mut reader = RawHocus::connect(&app).await;
    let everything = writer
        .doc
        .transact()
        .encode_state_as_update_v1(&yrs::StateVector::default());
    reader
        .doc
        .transact_mut()
        .apply_update(yrs::updates::decoder::Decode::decode_v1(&everything).expect("decodes"))
        .expect("applies");
    reader
        .send(token_frame("ro", &token(SECRET, "ro", "read", later)))
        .await;
    let scope = reader.next_of("ro", |body| body.starts_with(&[2, 2])).await;
    assert!(scope.body.ends_with(b"readonly"), "{scope:?}");
    let server_sv = writer.doc.transact().state_vector();
    let nothing_new = reader.doc.transact().encode_state_as_update_v1(&server_sv);
    assert_ne!(nothing_new, [0, 0], "the delete set comes along");
    reader
        .send(frame("ro", &sync_frame(SYNC_STEP2, &nothing_new)))
        .await;
    assert_eq!(
        next_sync_status(&mut reader, "ro").await,
        [8, 1],
        "nothing to lose"
    );

    reader.type_text("ro", "!").await;
    assert_eq!(next_sync_status(&mut reader, "ro").await, [8, 0]);
    let with_edit = reader.doc.transact().encode_state_as_update_v1(&server_sv);
    reader
        .send(frame("ro", &sync_frame(SYNC_STEP2, &with_edit)))
        .await;
    assert_eq!(
        next_sync_status(&mut reader, "ro").await,
        [8, 0],
        "an edit it may not make"
    );
    let check = TestClient::connect_synced(&format!(
        "{}?token={}",
        app.ws_url("ro"),
        token(SECRET, "ro", "read", later)
    ))
    .await;
    assert_eq!(check.text(), "world", "the read-only edit went nowhere");
    app.stop().await;
}

/// `--quarantine-dir` keeps a refused Hocuspocus update with what its session sent before it,
/// as y-websocket bodies (the honest corpus' format), exactly as for a y-websocket connection.
#[tokio::test]
async fn a_refused_hocuspocus_update_is_kept_in_the_quarantine() {
    let dir = tempfile::tempdir().expect("data dir");
    let quarantine = tempfile::tempdir().expect("quarantine dir");
    let kept_in = quarantine.path().to_owned();
    let app = crate::helpers::spawn_app_with(dir.path().into(), move |c| {
        c.operations.quarantine_dir = Some(kept_in);
    })
    .await;
    let mut client = RawHocus::connect(&app).await;
    client.open("evidence").await;
    client.type_text("evidence", "fine").await;
    client.next_of("evidence", is_sync_status(1)).await;
    // "x" at clock 0 of client 9 right of clock 5 of client 9: no encoder writes that.
    let forged = vec![0, 2, 10, 1, 1, 9, 0, 0x84, 9, 5, 1, b'x', 0];
    client.send(frame("evidence", &forged)).await;
    assert_eq!(client.closed_code().await, Some(1007));

    crate::helpers::eventually("the refusal is written", || async {
        std::fs::read_dir(quarantine.path())
            .map(|entries| {
                entries
                    .flatten()
                    .any(|entry| entry.path().join("refusal.json").exists())
            })
            .unwrap_or(false)
    })
    .await;
    let kept = std::fs::read_dir(quarantine.path())
        .expect("dir")
        .flatten()
        .map(|entry| entry.path())
        .next()
        .expect("one entry");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kept.join("refusal.json")).expect("refusal.json"))
            .expect("json");
    assert_eq!(summary["doc"], "evidence");
    assert_eq!(summary["code"], 1007);
    let sent = crate::helpers::length_prefixed(
        &std::fs::read(kept.join("frames.bin")).expect("frames.bin"),
        "frames.bin",
    );
    assert_eq!(sent.last(), Some(&forged), "the refused update comes last");
    assert!(
        sent.iter().any(|m| m.starts_with(&[0, 2])) && sent.len() >= 2,
        "the honest edit comes before it: {sent:?}"
    );
    app.stop().await;
}

/// Updates a provider sent back to back (a script inserting in a loop) reach the room merged
/// into one, as on the y-websocket path (`chorus_server::burst`): a reader gets far fewer
/// frames than were sent, and the whole text; the sender still gets one sync status per update,
/// since the provider counts them one by one.
#[tokio::test]
async fn a_burst_of_hocuspocus_updates_is_merged_and_each_update_acknowledged() {
    const UPDATES: usize = 200;
    let (app, _dir) = spawn_app().await;
    let mut reader = TestClient::connect_synced(&app.ws_url("burst")).await;
    let mut writer = RawHocus::connect(&app).await;
    writer.open("burst").await;
    let mut expected = String::new();
    for n in 0..UPDATES {
        let word = format!("{n} ");
        expected.push_str(&word);
        let update = {
            let shared = writer.doc.get_or_insert_text("t");
            let mut txn = writer.doc.transact_mut();
            let end = shared.len(&txn);
            shared.insert(&mut txn, end, &word);
            txn.encode_update_v1()
        };
        // Buffered, then written at once: the server reads them back to back.
        writer
            .socket
            .feed(WsMessage::Binary(frame(
                "burst",
                &sync_frame(SYNC_UPDATE, &update),
            )))
            .await
            .expect("feed");
    }
    writer.socket.flush().await.expect("flush");
    let mut acknowledged = 0;
    while acknowledged < UPDATES {
        let status = next_sync_status(&mut writer, "burst").await;
        assert_eq!(status, [8, 1]);
        acknowledged += 1;
    }
    reader
        .until("the reader has every edit", |c| c.text() == expected)
        .await;
    let frames = reader
        .received
        .iter()
        .filter(|f| f.starts_with(&[0, 2]))
        .count();
    assert!(
        frames <= UPDATES / 4,
        "{frames} update frames for {UPDATES} updates: not merged"
    );
    app.stop().await;
}
