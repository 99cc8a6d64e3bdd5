//! `--store s3` through the real binary, against moto's S3 API (`./scripts/test.sh` installs
//! it and builds the binary with S3 support). Nothing here is skipped: without moto or such a
//! binary the test fails, saying how to get them.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::helpers::{Process, TestClient, chorus_bin, http, server_doc, start_serving};

const KEY: &str = "s3-test-key";
const BUCKET: &str = "chorus-test";
/// How long moto may take to start listening.
const MOTO_STARTUP: std::time::Duration = std::time::Duration::from_secs(60);

/// moto's S3 server on a free loopback port, killed when dropped.
struct Moto {
    _process: Process,
    endpoint: String,
}

impl Moto {
    /// Starts `$CHORUS_TEST_MOTO` (or `moto_server` from the PATH) and waits until it answers.
    async fn start() -> Self {
        let program =
            std::env::var("CHORUS_TEST_MOTO").unwrap_or_else(|_| "moto_server".to_owned());
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            probe.local_addr().expect("addr").port()
        };
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "this test needs moto's S3 server ({program}: {e}): run ./scripts/test.sh, \
                     or `pip install 'moto[server]'` and point CHORUS_TEST_MOTO at moto_server"
                )
            });
        let moto = Self {
            _process: Process(child),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        // Python takes its time to import moto, the more so on a busy machine.
        let deadline = tokio::time::Instant::now() + MOTO_STARTUP;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{program} did not listen on port {port} within {MOTO_STARTUP:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        moto
    }

    /// Creates `bucket` (moto takes unsigned requests).
    async fn create_bucket(&self, bucket: &str) {
        let addr = self.endpoint.trim_start_matches("http://");
        let response = http(addr, "PUT", &format!("/{bucket}"), &[], b"").await;
        assert_eq!(
            response.status,
            200,
            "creating {bucket}: {}",
            response.text()
        );
    }
}

/// The `chorus` binary built with S3 support: `$CHORUS_S3_BIN` (`./scripts/test.sh` sets it),
/// or the one next to the tests when that is how it was built.
fn s3_chorus_bin() -> PathBuf {
    std::env::var_os("CHORUS_S3_BIN").map_or_else(chorus_bin, PathBuf::from)
}

/// `chorus serve --store s3` on `data_dir` against `moto`, with the API on.
async fn serve_from_s3(moto: &Moto, data_dir: &std::path::Path) -> (Process, String) {
    let mut command = Command::new(s3_chorus_bin());
    command
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1");
    let args = [
        "--store",
        "s3",
        "--s3-bucket",
        BUCKET,
        "--s3-endpoint",
        &moto.endpoint,
        "--s3-allow-http",
        "--api-key",
        KEY,
    ];
    let (process, addr, _logs) = start_serving(command, data_dir, &args).await;
    (process, addr)
}

/// Edited through a WebSocket, saved to S3 at SIGTERM, read back by a new process on a new
/// data directory, so the update log the first one kept on disk cannot be what answers.
#[tokio::test]
async fn a_document_survives_a_restart_in_s3() {
    let moto = Moto::start().await;
    moto.create_bucket(BUCKET).await;

    let first_dir = tempfile::tempdir().expect("dir");
    let (mut server, addr) = serve_from_s3(&moto, first_dir.path()).await;
    let url = format!("ws://{addr}/ws/team/notes");
    let mut alice = TestClient::connect_synced(&url).await;
    let mut bob = TestClient::connect_synced(&url).await;
    alice.type_text("kept in S3").await;
    bob.until("the edit is applied", |c| c.text() == "kept in S3")
        .await;
    server.terminate();
    assert_eq!(server.exit_code().await, Some(0), "a clean shutdown");

    let second_dir = tempfile::tempdir().expect("dir");
    let (_server, addr) = serve_from_s3(&moto, second_dir.path()).await;
    assert_eq!(
        server_doc(&addr, KEY, "team%2Fnotes").await["t"],
        "kept in S3"
    );
    let carol = TestClient::connect_synced(&format!("ws://{addr}/ws/team/notes")).await;
    assert_eq!(carol.text(), "kept in S3");
}
