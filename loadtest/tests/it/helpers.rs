//! Starting servers and running the load generator as child processes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to print its listening line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for one load generator invocation (its own flags keep it far shorter).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// How often a running child is checked for exit.
const POLL: Duration = Duration::from_millis(50);

/// A server process; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    _data_dir: Option<TempDir>,
}

impl Server {
    /// `ws://ADDR/ws`, the endpoint documents hang off.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `ws://ADDR/hocuspocus`, the socket URL of Chorus's Hocuspocus endpoint.
    pub fn hocuspocus_url(&self) -> String {
        format!("ws://{}/hocuspocus", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn target_dir_binary(name: &str) -> PathBuf {
    let loadtest = PathBuf::from(env!("CARGO_BIN_EXE_chorus-loadtest"));
    loadtest
        .parent()
        .expect("the binary lives in a directory")
        .join(name)
}

/// The `chorus` binary: `CHORUS_BIN`, or next to this crate's binaries.
pub fn chorus_bin() -> PathBuf {
    let path =
        std::env::var_os("CHORUS_BIN").map_or_else(|| target_dir_binary("chorus"), PathBuf::from);
    assert!(
        path.is_file(),
        "chorus binary not found at {}: run `cargo build -p chorus-cli` (same profile as the tests) or set CHORUS_BIN",
        path.display()
    );
    path
}

/// Starts `command`, waits for its `{"fields":{"message":"listening","addr":..}}` line and
/// keeps draining its stdout so a chatty server never blocks on a full pipe.
fn spawn_listening(mut command: Command, data_dir: Option<TempDir>) -> Server {
    let quiet = std::env::var_os("TEST_LOG").is_none();
    command.stdout(Stdio::piped());
    if quiet {
        command.stderr(Stdio::null());
    }
    let mut child = command.spawn().expect("server starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !quiet {
                eprintln!("server: {line}");
            }
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if json["fields"]["message"] == "listening"
                && let Some(addr) = json["fields"]["addr"]
                    .as_str()
                    .and_then(|a| a.parse::<SocketAddr>().ok())
            {
                let _ = addr_tx.send(addr);
            }
        }
    });
    let addr = match addr_rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok(addr) => addr,
        Err(e) => {
            let _ = child.kill();
            panic!("server printed no listening line: {e}");
        }
    };
    Server {
        child,
        addr,
        _data_dir: data_dir,
    }
}

/// `chorus serve` on a fresh data directory.
pub fn start_chorus() -> Server {
    start_chorus_with(&[])
}

/// `chorus serve` on a fresh data directory, with extra flags.
pub fn start_chorus_with(extra: &[&str]) -> Server {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(chorus_bin());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir.path());
    spawn_listening(command, Some(data_dir))
}

/// The bare relay, with extra flags.
pub fn start_relay(extra: &[&str]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bare-relay"));
    command.args(["--listen", "127.0.0.1:0"]).args(extra);
    spawn_listening(command, None)
}

/// What one load generator invocation produced.
pub struct Outcome {
    pub status: ExitStatus,
    pub report: serde_json::Value,
    pub stderr: String,
}

/// Runs `chorus-loadtest <args> --json` and parses its report.
pub fn loadtest(args: &[&str]) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus-loadtest"))
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chorus-loadtest starts");
    let started = Instant::now();
    while child
        .try_wait()
        .expect("waiting for chorus-loadtest")
        .is_none()
    {
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            panic!("chorus-loadtest {args:?} ran longer than {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(POLL);
    }
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); status {}, stdout {:?}, stderr {stderr}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        )
    });
    Outcome {
        status: output.status,
        report,
        stderr,
    }
}

/// A counter from the report, failing the test if it is missing.
/// Fails the test, with the report and the generator's stderr, unless the run exited 0.
pub fn assert_succeeded(out: &Outcome) {
    assert!(
        out.status.success(),
        "status {}: {:#}\n{}",
        out.status,
        out.report,
        out.stderr
    );
}

/// Fails the test unless some updates were delivered, each exactly once to every other user.
pub fn assert_all_delivered(r: &serde_json::Value) {
    assert!(count(r, "/updates/delivered") > 0, "{r:#}");
    assert_eq!(
        count(r, "/updates/delivered"),
        count(r, "/updates/expected"),
        "{r:#}"
    );
    assert_eq!(count(r, "/updates/lost"), 0, "{r:#}");
    assert_eq!(count(r, "/updates/duplicated"), 0, "{r:#}");
}

pub fn count(report: &serde_json::Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing from {report:#}"))
}
