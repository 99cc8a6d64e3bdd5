//! `GET /` of a server without `--static-dir`: a page saying what the server is, with live
//! counts; with `--static-dir`, the directory's index instead.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestClient, spawn_app, spawn_app_with};

/// One HTTP response, read off a real socket.
pub struct Response {
    pub status: u16,
    head: String,
    pub body: String,
}

impl Response {
    /// The value of header `name`, if the response has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// `GET path` from the server at `addr` (HOST:PORT), as a browser would send it.
pub async fn fetch(addr: &str, path: &str) -> Response {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr} for GET {path}: {e}"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// The number the page shows in the element with id `id`.
fn count(page: &str, id: &str) -> usize {
    let start = format!("id=\"{id}\">");
    let at = page
        .find(&start)
        .unwrap_or_else(|| panic!("no #{id} in:\n{page}"))
        + start.len();
    page[at..]
        .split('<')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("#{id} is not a number in:\n{page}"))
}

#[tokio::test]
async fn the_home_page_says_what_the_server_is_with_live_counts() {
    let (app, _dir) = spawn_app().await;
    let addr = app.addr.to_string();

    let page = fetch(&addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "content-type {:?}",
        page.header("content-type")
    );
    assert!(page.body.contains("<h1>Chorus collaboration server</h1>"));
    assert!(
        page.body.contains(&format!(
            "<span id=\"version\">{}</span>",
            env!("CARGO_PKG_VERSION")
        )),
        "the version is shown"
    );
    assert!(
        page.body.contains(&format!(
            "new WebsocketProvider('ws://{addr}/ws', 'my-doc', ydoc)"
        )),
        "the snippet names this server's WebSocket URL"
    );
    for link in ["/api/v1/openapi.json", "/metrics", "/healthz", "/readyz"] {
        assert!(page.body.contains(&format!("href=\"{link}\"")), "{link}");
    }
    assert_eq!(count(&page.body, "documents"), 0);
    assert_eq!(count(&page.body, "connections"), 0);

    let _first = TestClient::connect_synced(&app.ws_url("home/one")).await;
    let _second = TestClient::connect_synced(&app.ws_url("home/one")).await;
    let _third = TestClient::connect_synced(&app.ws_url("home/two")).await;
    let page = fetch(&addr, "/").await;
    assert_eq!(count(&page.body, "documents"), 2);
    assert_eq!(count(&page.body, "connections"), 3);
    app.stop().await;
}

#[tokio::test]
async fn a_host_header_that_is_not_a_plain_address_stays_out_of_the_page() {
    let (app, _dir) = spawn_app().await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let request = "GET / HTTP/1.1\r\nHost: <script>x</script>\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(!response.contains("<script>"), "the header was copied");
    assert!(response.contains("new WebsocketProvider('ws://HOST:PORT/ws'"));
    app.stop().await;
}

#[tokio::test]
async fn with_a_static_dir_the_root_is_its_index() {
    let data = tempfile::tempdir().expect("dir");
    let site = tempfile::tempdir().expect("dir");
    std::fs::write(site.path().join("index.html"), "<h1>my own demo</h1>").expect("write");
    let static_dir = site.path().to_owned();
    let app = spawn_app_with(data.path().into(), |c| {
        c.server.static_dir = Some(static_dir)
    })
    .await;
    let page = fetch(&app.addr.to_string(), "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("my own demo"), "{}", page.body);
    assert!(!page.body.contains("Chorus collaboration server"));
    app.stop().await;
}
