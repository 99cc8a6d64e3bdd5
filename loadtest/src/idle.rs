//! `idle`: open N connections spread over rooms, complete the handshake, hold them, and report
//! how many made it and, with `--server-pid`, the server's memory per connection.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::ensure;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::cli::IdleArgs;
use crate::client;
use crate::framing::Framing;
use crate::procfs::{self, Pid};
use crate::progress::Live;
use crate::recorder::micros_histogram;
use crate::report::{LatencySummary, kib};

/// How often the orchestrator checks whether every handshake has finished.
const POLL: Duration = Duration::from_millis(20);
/// Close handshake limit per connection at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Errors listed in the report at most.
const MAX_LISTED: usize = 10;

/// Server memory before and after the connections opened.
#[derive(Debug, Clone, Serialize)]
pub struct ServerMemory {
    /// The server's pid.
    pub pid: u32,
    /// `VmRSS` before connecting, KiB.
    pub rss_kib_before: Option<u64>,
    /// `VmRSS` with every connection open, after `--settle`, KiB.
    pub rss_kib_after: Option<u64>,
    /// (after − before) / synced connections, KiB.
    pub kib_per_connection: Option<f64>,
}

/// The report of `idle`.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Connections attempted.
    pub attempted: u64,
    /// Connections that completed the handshake.
    pub synced: u64,
    /// Connections that failed.
    pub failed: u64,
    /// Synced connections the server closed while they were held.
    pub dropped_while_held: u64,
    /// Rooms they were spread over.
    pub rooms: usize,
    /// Handshake durations.
    pub handshake_ms: LatencySummary,
    /// From the first connect to the last handshake, seconds.
    pub open_all_s: f64,
    /// Server memory, with `--server-pid`.
    pub server: Option<ServerMemory>,
    /// The generator's own memory with every connection open, KiB.
    pub generator_rss_kib: Option<u64>,
    /// The generator's open-file limit.
    pub nofile_limit: Option<u64>,
    /// A few of the errors.
    pub errors: Vec<String>,
}

impl IdleReport {
    /// Human-readable report.
    pub fn render(&self) -> String {
        let mut out = format!(
            "idle: {} of {} connections synced ({} failed) over {} rooms in {:.1} s; {} dropped while held\nhandshake: {}\n",
            self.synced,
            self.attempted,
            self.failed,
            self.rooms,
            self.open_all_s,
            self.dropped_while_held,
            self.handshake_ms.line()
        );
        if let Some(server) = &self.server {
            out += &format!(
                "server {}: rss {} -> {}, {} KiB per connection\n",
                server.pid,
                kib(server.rss_kib_before),
                kib(server.rss_kib_after),
                server
                    .kib_per_connection
                    .map_or_else(|| "?".to_owned(), |k| format!("{k:.1}"))
            );
        }
        out += &format!(
            "generator rss {}, open-file limit {}\n",
            kib(self.generator_rss_kib),
            self.nofile_limit
                .map_or_else(|| "?".to_owned(), |n| n.to_string())
        );
        for error in &self.errors {
            out += &format!("  error: {error}\n");
        }
        out
    }
}

#[derive(Debug, Default)]
struct Counters {
    synced: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// Runs `idle` and prints its report; exit code 3 when some connection failed or dropped.
///
/// # Errors
/// Invalid flags.
pub async fn command(args: IdleArgs) -> anyhow::Result<ExitCode> {
    let report = execute(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.failed > 0 || report.dropped_while_held > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// Opens, measures and closes the connections.
///
/// # Errors
/// Invalid flags.
pub async fn execute(args: &IdleArgs) -> anyhow::Result<IdleReport> {
    ensure!(args.connections >= 1, "--connections must be at least 1");
    ensure!(
        args.users_per_room >= 1,
        "--users-per-room must be at least 1"
    );
    ensure!(
        args.connect_concurrency >= 1,
        "--connect-concurrency must be at least 1"
    );
    let nofile_limit = procfs::raise_nofile_limit().ok();
    let server_pid = args.server_pid.map(Pid::Other);
    let rss_before = server_pid.and_then(procfs::rss_kib);
    let prefix = args
        .doc_prefix
        .clone()
        .unwrap_or_else(|| format!("idle-{:08x}", fastrand::u32(..)));
    let rooms = args.connections.div_ceil(args.users_per_room);

    let counters = Arc::new(Counters::default());
    let handshakes = Arc::new(Mutex::new(micros_histogram(3)));
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    let (stop_tx, stop_rx) = watch::channel(false);
    let total = args.connections as u64;
    let live = Live::start(!args.no_progress, {
        let counters = Arc::clone(&counters);
        move || {
            format!(
                "synced {}/{total} failed {} dropped {}",
                counters.synced.load(Ordering::Relaxed),
                counters.failed.load(Ordering::Relaxed),
                counters.dropped.load(Ordering::Relaxed)
            )
        }
    });

    let started = Instant::now();
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| {
            let framing = Framing::new(
                args.wire.protocol,
                &format!("{prefix}-{}", i / args.users_per_room),
                &args.wire.token,
            );
            let url = framing.socket_url(&args.urls[i % args.urls.len()]);
            tokio::spawn(hold(
                url,
                framing,
                args.handshake_timeout,
                Arc::clone(&gate),
                Arc::clone(&counters),
                Arc::clone(&handshakes),
                stop_rx.clone(),
            ))
        })
        .collect();
    drop(stop_rx);

    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    while get(&counters.synced) + get(&counters.failed) < total {
        tokio::time::sleep(POLL).await;
    }
    let open_all_s = started.elapsed().as_secs_f64();
    // Let the server finish whatever the handshakes left it doing (freeing buffers, room
    // setup) before reading its memory: a measurement pause, not a wait for a condition.
    tokio::time::sleep(args.settle).await;
    let rss_after = server_pid.and_then(procfs::rss_kib);
    let generator_rss_kib = procfs::rss_kib(Pid::Own);
    tokio::time::sleep(args.hold).await;
    let _ = stop_tx.send(true);

    let mut errors = Vec::new();
    for task in tasks {
        if let Ok(Err(error)) = task.await
            && errors.len() < MAX_LISTED
            && !errors.contains(&error)
        {
            errors.push(error);
        }
    }
    live.finish();

    let synced = get(&counters.synced);
    let server = args.server_pid.map(|pid| ServerMemory {
        pid,
        rss_kib_before: rss_before,
        rss_kib_after: rss_after,
        kib_per_connection: match (rss_before, rss_after) {
            (Some(before), Some(after)) if synced > 0 => {
                Some((after as f64 - before as f64) / synced as f64)
            }
            _ => None,
        },
    });
    let handshake_ms =
        LatencySummary::from_histogram(&handshakes.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(IdleReport {
        attempted: total,
        synced,
        failed: get(&counters.failed),
        dropped_while_held: get(&counters.dropped),
        rooms,
        handshake_ms,
        open_all_s,
        server,
        generator_rss_kib,
        nofile_limit,
        errors,
    })
}

async fn hold(
    url: String,
    framing: Framing,
    timeout: Duration,
    gate: Arc<Semaphore>,
    counters: Arc<Counters>,
    handshakes: Arc<Mutex<Histogram<u64>>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let synced = {
        let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
        client::connect_and_sync(&url, &framing, None, timeout).await
    };
    let synced = match synced {
        Ok(synced) => synced,
        Err(e) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            return Err(format!("{e:#}"));
        }
    };
    handshakes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .saturating_record((synced.elapsed.as_micros() as u64).max(1));
    counters.synced.fetch_add(1, Ordering::Relaxed);
    let mut ws = synced.ws;
    // Hold: keep reading, so pings are answered and a server-side close is noticed.
    let result = loop {
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            frame = ws.next() => match frame {
                Some(Ok(WsMessage::Close(close))) => break Err(format!("closed by the server while held: {close:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(format!("error while held: {e}")),
                None => break Err("connection ended while held".to_owned()),
            },
        }
    };
    if result.is_err() {
        counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
    result
}
