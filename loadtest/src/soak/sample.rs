//! What a soak samples over time: the server's memory and descriptors from `/proc`, its
//! loaded rooms and connections from its `/metrics`, and the generator's own view.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::procfs::{self, Pid};

/// How long one scrape of `/metrics` may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest `/metrics` response read.
const MAX_METRICS_BYTES: usize = 8 * 1024 * 1024;

/// The gauge of rooms loaded in memory (`crates/chorus-server/src/metrics.rs`).
pub const ROOMS_GAUGE: &str = "chorus_rooms";

/// The gauge of open client connections.
pub const CONNECTIONS_GAUGE: &str = "chorus_connections";

/// The gauge of tasks alive on the server's runtime, set when `/metrics` is scraped (the scrape's
/// own connection task included, in every sample alike).
pub const TASKS_GAUGE: &str = "chorus_tasks";

/// Where the soak is when a sample is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Before any client connected.
    Baseline,
    /// Churn, not judged yet.
    WarmUp,
    /// Churn, judged.
    Load,
    /// Every client has left; waiting for the server to let go.
    Leave,
}

impl Stage {
    /// The name used in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Baseline => "baseline",
            Stage::WarmUp => "warm-up",
            Stage::Load => "load",
            Stage::Leave => "leave",
        }
    }
}

/// One sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Seconds since the soak started.
    pub t_s: f64,
    /// Where the soak was.
    pub stage: Stage,
    /// Server resident memory, KiB (`VmRSS`).
    pub rss_kib: Option<u64>,
    /// The anonymous part of it, KiB (`RssAnon`: the heap and stacks, without the executable's
    /// pages, which fault in as code paths first run).
    pub anon_rss_kib: Option<u64>,
    /// Server open file descriptors (sockets included).
    pub fds: Option<u64>,
    /// Rooms the server holds in memory (`chorus_rooms`).
    pub rooms: Option<u64>,
    /// Connections the server holds (`chorus_connections`).
    pub connections: Option<u64>,
    /// Tasks alive on the server's runtime (`chorus_tasks`; `None` for a server without it).
    pub tasks: Option<u64>,
    /// Connections the generator holds open.
    pub clients_open: u64,
    /// Visits started so far.
    pub visits: u64,
    /// Updates sent so far.
    pub updates_sent: u64,
}

/// The header line of the CSV.
pub const CSV_HEADER: &str =
    "t_s,stage,rss_kib,anon_rss_kib,fds,rooms,connections,tasks,clients_open,visits,updates_sent";

impl Sample {
    /// One CSV line (no newline); unknown values are empty.
    pub fn csv(&self) -> String {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        format!(
            "{:.1},{},{},{},{},{},{},{},{},{},{}",
            self.t_s,
            self.stage.name(),
            opt(self.rss_kib),
            opt(self.anon_rss_kib),
            opt(self.fds),
            opt(self.rooms),
            opt(self.connections),
            opt(self.tasks),
            self.clients_open,
            self.visits,
            self.updates_sent
        )
    }
}

/// The server as the sampler sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerView {
    /// From `/proc/PID/status`.
    pub rss_kib: Option<u64>,
    /// From `/proc/PID/status`.
    pub anon_rss_kib: Option<u64>,
    /// From `/proc/PID/fd`.
    pub fds: Option<u64>,
    /// From `/metrics`.
    pub rooms: Option<u64>,
    /// From `/metrics`.
    pub connections: Option<u64>,
    /// From `/metrics`, if the server exports it.
    pub tasks: Option<u64>,
}

/// Reads the server's figures: `/proc` when `pid` is known, `/metrics` when `metrics_url` is.
/// A figure that cannot be read is `None` (a scrape that fails leaves both gauges out; a gauge
/// missing from a scrape that worked is 0).
pub async fn server_view(pid: Option<u32>, metrics_url: Option<&str>) -> ServerView {
    let mut view = ServerView {
        rss_kib: pid.and_then(|pid| procfs::rss_kib(Pid::Other(pid))),
        anon_rss_kib: pid.and_then(|pid| procfs::anon_rss_kib(Pid::Other(pid))),
        fds: pid.and_then(|pid| procfs::open_fds(Pid::Other(pid))),
        ..ServerView::default()
    };
    if let Some(url) = metrics_url
        && let Ok(Ok(text)) = tokio::time::timeout(SCRAPE_TIMEOUT, http_get(url)).await
    {
        // The exporter leaves out a gauge that was never set: before the first room or
        // connection, a server that answers holds none.
        view.rooms = Some(gauge(&text, ROOMS_GAUGE).unwrap_or(0));
        view.connections = Some(gauge(&text, CONNECTIONS_GAUGE).unwrap_or(0));
        // Set at every scrape when the server has it: missing means it does not.
        view.tasks = gauge(&text, TASKS_GAUGE);
    }
    view
}

/// The `/metrics` URL of the server whose WebSocket endpoint is `ws_url` (same host and port).
///
/// # Errors
/// `ws_url` is not a `ws://HOST:PORT/…` URL.
pub fn metrics_url_for(ws_url: &str) -> anyhow::Result<String> {
    let uri: Uri = ws_url
        .parse()
        .with_context(|| format!("parsing {ws_url}"))?;
    ensure!(uri.scheme_str() == Some("ws"), "{ws_url}: only ws:// URLs");
    let authority = uri.authority().context("the URL has no host")?;
    Ok(format!("http://{authority}/metrics"))
}

/// The value of an unlabelled gauge in Prometheus text format, as a whole number.
pub fn gauge(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        let value: f64 = value.split_ascii_whitespace().next()?.parse().ok()?;
        (value >= 0.0).then_some(value.round() as u64)
    })
}

/// A plain HTTP/1.1 GET of `url` (`http://` only); the body of a 200 response.
async fn http_get(url: &str) -> anyhow::Result<String> {
    let uri: Uri = url.parse().with_context(|| format!("parsing {url}"))?;
    ensure!(uri.scheme_str() == Some("http"), "{url}: only http:// URLs");
    let host = uri.host().context("the URL has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut stream = TcpStream::connect((host, port)).await?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    (&mut stream)
        .take(MAX_METRICS_BYTES as u64)
        .read_to_end(&mut response)
        .await?;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = parsed.parse(&response)? else {
        bail!("incomplete response from {url}");
    };
    ensure!(parsed.code == Some(200), "{url}: HTTP {:?}", parsed.code);
    let chunked = parsed.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    let body = &response[head..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The body of a chunked transfer encoding.
fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size line without its end")?;
        let size_text = std::str::from_utf8(&body[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).context("a bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        ensure!(body.len() >= size + 2, "a chunk cut short");
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_gauges_only() {
        let text = "# TYPE chorus_rooms gauge\nchorus_rooms 12\nchorus_rooms_loaded_total 99\n\
                    chorus_connections 3.0\n";
        assert_eq!(gauge(text, ROOMS_GAUGE), Some(12));
        assert_eq!(gauge(text, CONNECTIONS_GAUGE), Some(3));
        assert_eq!(gauge(text, "chorus_missing"), None);
    }

    #[test]
    fn metrics_live_beside_the_websocket_endpoint() {
        assert_eq!(
            metrics_url_for("ws://127.0.0.1:8080/ws").expect("valid"),
            "http://127.0.0.1:8080/metrics"
        );
        assert!(metrics_url_for("http://h/ws").is_err());
    }

    #[test]
    fn dechunks_bodies() {
        let body = b"5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n";
        assert_eq!(dechunk(body).expect("valid"), b"hello world");
        assert!(dechunk(b"5\r\nhel").is_err());
    }
}
