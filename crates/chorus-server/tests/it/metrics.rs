//! `/metrics` of a real `chorus` process after real traffic (the recorder is process-wide, so
//! this test gets a process of its own).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{TestClient, eventually};

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

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `chorus serve` on port 0 and returns it with its address.
async fn start_chorus(data_dir: &std::path::Path) -> (Process, String) {
    let mut child = Command::new(chorus_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chorus starts");
    let stdout = child.stdout.take().expect("stdout");
    let process = Process(child);
    let mut lines =
        BufReader::new(tokio::process::ChildStdout::from_std(stdout).expect("async stdout"))
            .lines();
    let addr = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
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
    .flatten()
    .expect("the server logs its address");
    // Keep draining the logs so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (process, addr)
}

async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

/// The value of the sample whose name-and-labels line starts with `series`.
fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_real_traffic() {
    let dir = tempfile::tempdir().expect("dir");
    let (_server, addr) = start_chorus(dir.path()).await;
    let url = |doc: &str| format!("ws://{addr}/ws/{doc}");
    let mut alice = TestClient::connect_synced(&url("m")).await;
    let mut bob = TestClient::connect_synced(&url("m")).await;
    let _carol = TestClient::connect_synced(&url("other")).await;
    for i in 0..5 {
        alice.type_text(&i.to_string()).await;
    }
    alice.set_awareness(1, 0, "{}").await;
    bob.until("bob has every edit and alice's presence", |c| {
        c.text() == "01234" && c.awareness.contains_key(&1)
    })
    .await;
    let _ = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/bad%0Aname")).await;

    eventually("the counters add up", || {
        let addr = addr.clone();
        async move {
            let page = scrape(&addr).await;
            value(&page, "chorus_connections") == 3.0
                && value(&page, "chorus_rooms") == 2.0
                && value(&page, r#"chorus_messages_total{direction="in",kind="update"}"#) == 5.0
                // Each update goes to bob only (not back to alice).
                && value(&page, r#"chorus_messages_total{direction="out",kind="update"}"#) == 5.0
                // Every client's step 1 is answered.
                && value(&page, r#"chorus_messages_total{direction="in",kind="sync_step1"}"#) == 3.0
                && value(&page, r#"chorus_messages_total{direction="out",kind="sync_step2"}"#) == 3.0
                // Awareness goes to alice and bob.
                && value(&page, r#"chorus_messages_total{direction="out",kind="awareness"}"#) == 2.0
                && value(&page, r#"chorus_connections_rejected_total{reason="invalid_document_name"}"#) == 1.0
        }
    })
    .await;

    drop(bob);
    eventually("the closed connection is counted", || {
        let addr = addr.clone();
        async move {
            let page = scrape(&addr).await;
            value(&page, "chorus_connections") == 2.0
                && value(&page, r#"chorus_connections_closed_total{code="1001"}"#) == 1.0
        }
    })
    .await;
}
