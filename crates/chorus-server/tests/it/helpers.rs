//! A real server on 127.0.0.1:0 and real WebSocket clients speaking y-websocket through
//! `chorus-protocol`, each with its own yrs document.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use chorus_protocol::message::{SYNC_STEP2, SYNC_UPDATE, sync_frame};
use chorus_protocol::{AwarenessEntry, AwarenessUpdate, Message, StateVector, SyncMessage};
use chorus_server::{Application, Config};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

/// How long a test waits for something that should happen almost at once.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts a server with default settings on a fresh data directory.
pub async fn spawn_app() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |_| {}).await;
    (app, dir)
}

/// Starts a server on `data_dir` with settings adjusted by `configure`.
pub async fn spawn_app_with(data_dir: PathBuf, configure: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        chorus_server::telemetry::init(chorus_server::LogFormat::Text);
    }
    let mut config = Config::local(&data_dir);
    configure(&mut config);
    let app = Application::build(config).await.expect("server builds");
    let addr = app.local_addr().expect("bound address");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    pub fn ws_url(&self, doc: &str) -> String {
        format!("ws://{}/ws/{doc}", self.addr)
    }

    /// Graceful shutdown, as on SIGTERM; returns once the server has exited.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task did not panic")
                .expect("server shut down cleanly");
        }
    }

    /// A plain HTTP GET; returns the status code and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = http(self.addr, "GET", path, &[], b"").await;
        (response.status, response.text())
    }
}

/// An HTTP answer, read to its end.
pub struct HttpResponse {
    pub status: u16,
    /// Header lines, names lowercased: `content-type: application/json`.
    headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of header `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics, showing the body, when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "an answer {} whose body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), with `headers` as given:
/// raw enough to send what a client library would refuse to (invalid paths, bad bodies).
pub async fn http(
    addr: impl tokio::net::ToSocketAddrs,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    // A server may answer (413) and stop reading before a large body is through; its answer
    // is still there to read.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the headers end");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = response[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw = &raw[line_end + 2 + size + 2..];
    }
    out
}

/// The Prometheus page of the server at `addr`.
pub async fn scrape(addr: impl tokio::net::ToSocketAddrs) -> String {
    http(addr, "GET", "/metrics", &[], b"").await.text()
}

/// Waits until the Prometheus page of the server at `addr` satisfies `check`.
pub async fn until_metrics(addr: &str, what: &str, check: impl Fn(&str) -> bool) {
    let check = &check;
    eventually(what, || {
        let addr = addr.to_owned();
        async move { check(&scrape(&addr).await) }
    })
    .await;
}

/// The value of the sample whose name-and-labels line is `series` (0 when absent).
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The content of `doc` as the server holds it, through `GET /api/v1/docs/{doc}` with API key
/// `key` (the document's name percent-encoded by the caller where needed).
pub async fn server_doc(
    addr: impl tokio::net::ToSocketAddrs,
    key: &str,
    doc: &str,
) -> serde_json::Value {
    let bearer = format!("Bearer {key}");
    let response = http(
        addr,
        "GET",
        &format!("/api/v1/docs/{doc}"),
        &[("Authorization", &bearer)],
        b"",
    )
    .await;
    assert_eq!(response.status, 200, "reading {doc}: {}", response.text());
    response.json()
}

/// What the `fs` store under `dir` holds for `doc`, read as a server would: the snapshot, and
/// how many records its update log has.
pub async fn stored_state(dir: &std::path::Path, doc: &str) -> (Option<Bytes>, usize) {
    use chorus_store::{SnapshotStore as _, UpdateLog as _};
    let name = chorus_protocol::DocName::parse(doc).expect("a document name");
    let store = chorus_store::FsStore::open(dir).expect("store opens");
    let snapshot = store.load(&name).await.expect("snapshot readable");
    let log = chorus_store::FsLog::open(dir, chorus_store::FsyncPolicy::Always).expect("log opens");
    let records = log.read(&name).await.expect("log readable").len();
    (snapshot, records)
}

/// The text "t" of a Yjs v1 update (a snapshot, a state from a hook).
pub fn text_of(state: &[u8]) -> String {
    let doc = Doc::new();
    let text = doc.get_or_insert_text("t");
    doc.transact_mut()
        .apply_update(Update::decode_v1(state).expect("a Yjs v1 update"))
        .expect("applies");
    text.get_string(&doc.transact())
}

/// The messages of a file of `u32` little-endian lengths, each followed by that many bytes
/// (the corpus's `conn-NNN.bin`, the quarantine's `frames.bin`); `what` names it in failures.
pub fn length_prefixed(bytes: &[u8], what: &str) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .unwrap_or_else(|| panic!("{what}: truncated length"));
        let len = usize::try_from(u32::from_le_bytes(*len)).expect("a u32 fits");
        assert!(tail.len() >= len, "{what}: truncated message");
        let (frame, tail) = tail.split_at(len);
        frames.push(frame.to_vec());
        rest = tail;
    }
    frames
}

/// Serves `router` on a free loopback port (receivers of webhooks, auth backends, host apps).
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A read-only `reader` tries an edit and is told it was refused (y-protocols' permission
/// denied); then `writer` edits once more and the reader receives it, so whatever the server
/// did with the refused edit has had time to show.
pub async fn refused_edit_then_writer_edit(reader: &mut TestClient, writer: &mut TestClient) {
    reader.type_text(" + sneaky").await;
    reader
        .until("the reader is told its edit was refused", |c| {
            c.received.iter().any(|f| f.starts_with(&[2, 0]))
        })
        .await;
    writer.type_text("!").await;
    reader
        .until("the writer's next edit arrives", |c| c.text().contains('!'))
        .await;
}

/// The HTTP status a WebSocket upgrade request gets: 101 when it is accepted.
pub async fn upgrade_status(
    request: impl tokio_tungstenite::tungstenite::client::IntoClientRequest + Unpin,
) -> u16 {
    upgrade_answer(request).await.0
}

/// The HTTP status and body a WebSocket upgrade request gets: 101 and no body when it is
/// accepted.
pub async fn upgrade_answer(
    request: impl tokio_tungstenite::tungstenite::client::IntoClientRequest + Unpin,
) -> (u16, String) {
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => (101, String::new()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (response.status().as_u16(), body)
        }
        Err(other) => panic!("unexpected failure: {other}"),
    }
}

/// Polls `condition` until it holds, or panics after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A y-websocket client with its own document, like a browser tab.
pub struct TestClient {
    socket: Socket,
    pub doc: Doc,
    /// Awareness states this client has seen, by client id (JSON text).
    pub awareness: HashMap<u64, String>,
    /// Set when the server closed the connection.
    pub closed: Option<Option<CloseFrame>>,
    /// Whether the server has answered our step 1.
    pub synced: bool,
    /// Frames received, in order (for protocol-level assertions).
    pub received: Vec<Bytes>,
    /// Sync updates received.
    pub updates_received: usize,
}

impl TestClient {
    /// Connects and sends sync step 1, as y-websocket does on open.
    pub async fn connect(url: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket handshake");
        let mut client = Self {
            socket,
            // Text counted in UTF-16 units, as a Yjs client counts it: with yrs' default (UTF-8
            // bytes) a cut inside an emoji, which Yjs clients may write, breaks the replica.
            doc: Doc::with_options(yrs::Options {
                offset_kind: yrs::OffsetKind::Utf16,
                ..yrs::Options::default()
            }),
            awareness: HashMap::new(),
            closed: None,
            synced: false,
            received: Vec::new(),
            updates_received: 0,
        };
        let sv = client.doc.transact().state_vector().encode_v1();
        let step1 = Message::Sync(SyncMessage::Step1(
            StateVector::decode(&sv).expect("yrs state vectors decode"),
        ));
        client.send_raw(step1.encode()).await;
        client
    }

    /// Moves to a new connection (another node, after a drain), keeping the document: the server
    /// asks for what it lacks with its step 1, which uploads edits made in between.
    pub async fn reconnect(&mut self, url: &str) {
        let fresh = Self::connect(url).await;
        self.socket = fresh.socket;
        self.closed = None;
        self.synced = false;
        let sv = self.doc.transact().state_vector().encode_v1();
        let step1 = Message::Sync(SyncMessage::Step1(
            StateVector::decode(&sv).expect("yrs state vectors decode"),
        ));
        self.send_raw(step1.encode()).await;
        self.until("synced again", |c| c.synced).await;
    }

    /// Connects and waits until the server's step 2 arrived.
    pub async fn connect_synced(url: &str) -> Self {
        let mut client = Self::connect(url).await;
        client.until("synced", |c| c.synced).await;
        client
    }

    pub async fn send_raw(&mut self, frame: impl Into<Bytes>) {
        self.socket
            .send(WsMessage::Binary(frame.into()))
            .await
            .expect("send");
    }

    pub async fn send_ws(&mut self, message: WsMessage) {
        let _ = self.socket.send(message).await;
    }

    /// Inserts `text` at the end of the shared text "t" and sends the update; returns the size
    /// of the message sent.
    pub async fn type_text(&mut self, text: &str) -> usize {
        let frame = self.edit(text);
        let len = frame.len();
        self.send_raw(frame).await;
        len
    }

    /// [`TestClient::type_text`] for a client whose server may be going away: false when the
    /// update could not be sent (the edit stays in the local document, as with a real client,
    /// and its next sync step 2 carries it).
    pub async fn try_type_text(&mut self, text: &str) -> bool {
        let frame = self.edit(text);
        self.socket.send(WsMessage::Binary(frame)).await.is_ok()
    }

    /// Appends `text` to the local document; returns the update message that carries it.
    fn edit(&mut self, text: &str) -> Bytes {
        let update = {
            let shared = self.doc.get_or_insert_text("t");
            let mut txn = self.doc.transact_mut();
            let end = shared.len(&txn);
            shared.insert(&mut txn, end, text);
            txn.encode_update_v1()
        };
        sync_frame(SYNC_UPDATE, &update)
    }

    pub fn text(&self) -> String {
        let shared = self.doc.get_or_insert_text("t");
        shared.get_string(&self.doc.transact())
    }

    pub async fn set_awareness(&mut self, client: u64, clock: u32, state: &str) {
        let update = AwarenessUpdate {
            entries: vec![AwarenessEntry {
                client,
                clock,
                state: Bytes::copy_from_slice(state.as_bytes()),
            }],
        };
        self.send_raw(Message::Awareness(update).encode()).await;
    }

    /// Processes frames until `condition` holds; panics after [`PATIENCE`].
    pub async fn until(&mut self, what: &str, condition: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !condition(self) {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(remaining, self.socket.next()).await {
                Err(_) => panic!("timed out waiting until {what}"),
                Ok(None) | Ok(Some(Err(_))) => {
                    self.closed.get_or_insert(None);
                    assert!(condition(self), "connection ended before {what}");
                    return;
                }
                Ok(Some(Ok(frame))) => self.process(frame).await,
            }
        }
    }

    /// Waits until the server closes the connection and returns its close code, if it sent one.
    pub async fn closed_code(&mut self) -> Option<u16> {
        self.until("the server closed the connection", |c| c.closed.is_some())
            .await;
        self.closed
            .clone()
            .flatten()
            .map(|frame| u16::from(frame.code))
    }

    /// The reason of the close frame the server sent, once it has closed the connection.
    pub fn closed_reason(&self) -> Option<String> {
        self.closed
            .clone()
            .flatten()
            .map(|frame| frame.reason.to_string())
    }

    async fn process(&mut self, frame: WsMessage) {
        match frame {
            WsMessage::Binary(bytes) => {
                self.received.push(bytes.clone());
                match Message::decode(&bytes).expect("the server sends valid messages") {
                    Message::Sync(SyncMessage::Step1(sv)) => {
                        let sv = yrs::StateVector::decode_v1(&sv.encode()).expect("valid sv");
                        let diff = self.doc.transact().encode_state_as_update_v1(&sv);
                        self.send_raw(sync_frame(SYNC_STEP2, &diff)).await;
                    }
                    Message::Sync(SyncMessage::Step2(update)) => {
                        self.apply(&update);
                        self.synced = true;
                    }
                    Message::Sync(SyncMessage::Update(update)) => {
                        self.updates_received += 1;
                        self.apply(&update);
                    }
                    Message::Awareness(update) => {
                        for entry in update.entries {
                            let state = String::from_utf8(entry.state.to_vec()).expect("utf8");
                            if state == "null" {
                                self.awareness.remove(&entry.client);
                            } else {
                                self.awareness.insert(entry.client, state);
                            }
                        }
                    }
                    Message::Auth(_) | Message::QueryAwareness | Message::Durable(_) => {}
                }
            }
            WsMessage::Close(frame) => self.closed = Some(frame),
            _ => {}
        }
    }

    fn apply(&mut self, update: &[u8]) {
        let update = Update::decode_v1(update).expect("the server sends valid updates");
        self.doc
            .transact_mut()
            .apply_update(update)
            .expect("update applies");
    }

    /// The raw socket, for tests that misbehave on purpose.
    pub fn socket(&mut self) -> &mut Socket {
        &mut self.socket
    }
}

/// The `chorus` binary: `CHORUS_BIN`, or the one built next to this test binary.
pub fn chorus_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CHORUS_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("chorus"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p chorus-cli` first (./scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A `chorus` process, killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// Sends SIGTERM, as an orchestrator draining the node would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM delivered");
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the server did not exit");
    }
}

/// Starts `chorus serve` on port 0 with `extra` arguments; returns it with its address.
pub async fn start_chorus(data_dir: &std::path::Path, extra: &[&str]) -> (Process, String) {
    let (process, addr, _logs) = start_chorus_logged(data_dir, extra, None).await;
    (process, addr)
}

/// Every log line a server printed so far.
pub type Logs = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// As [`start_chorus`], keeping its log lines, with `RUST_LOG` set to `filter` if given.
pub async fn start_chorus_logged(
    data_dir: &std::path::Path,
    extra: &[&str],
    filter: Option<&str>,
) -> (Process, String, Logs) {
    let mut command = Command::new(chorus_bin());
    if let Some(filter) = filter {
        command.env("RUST_LOG", filter);
    }
    start_serving(command, data_dir, extra).await
}

/// Runs `command` (a `chorus` binary, with whatever environment it needs) as `serve` on port 0
/// with `extra` arguments; returns it with its address and its log lines. A server that does
/// not start fails the test with what it printed.
pub async fn start_serving(
    mut command: Command,
    data_dir: &std::path::Path,
    extra: &[&str],
) -> (Process, String, Logs) {
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chorus starts");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let process = Process(child);
    let mut lines =
        BufReader::new(tokio::process::ChildStdout::from_std(stdout).expect("async stdout"))
            .lines();
    let logs = Logs::default();
    // Startup errors go to stderr: kept beside the log lines, for the failure message.
    let errors = tokio::spawn(async move {
        let mut errors = String::new();
        let mut stderr = tokio::process::ChildStderr::from_std(stderr).expect("async stderr");
        let _ = stderr.read_to_string(&mut errors).await;
        errors
    });
    let addr = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            logs.lock().expect("not poisoned").push(line.clone());
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if json["fields"]["message"] == "listening" {
                return json["fields"]["addr"].as_str().map(str::to_owned);
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some(addr) = addr else {
        drop(process);
        let errors = errors.await.unwrap_or_default();
        panic!(
            "the server did not log its address; its output:\n{}\n{errors}",
            logs.lock().expect("not poisoned").join("\n")
        );
    };
    // Keep draining the logs so the server never blocks on a full pipe.
    let kept = std::sync::Arc::clone(&logs);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().expect("not poisoned").push(line);
        }
    });
    (process, addr, logs)
}
