//! `join`: one client seeds a large document (real yrs text, in updates under the server's
//! message limit), a checker confirms the server holds all of it, then new clients join one
//! after another (or all at once) and the time from connect to an applied step 2 is measured.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use chorus_protocol::message::{SYNC_UPDATE, sync_frame};
use chorus_protocol::{Message, SyncMessage};
use futures_util::SinkExt;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::{Doc, GetString, ReadTxn, Text, Transact};

use crate::cli::JoinArgs;
use crate::client;
use crate::framing::Framing;
use crate::procfs::{self, Pid};
use crate::recorder::micros_histogram;
use crate::report::{LatencySummary, kib};
use crate::streaming;

/// Pause between checker attempts while the server integrates the seed.
const CHECK_EVERY: Duration = Duration::from_millis(200);
/// How often the server's memory is sampled during the joins.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// Errors listed in the report at most.
const MAX_LISTED: usize = 10;

/// Server memory around the joins.
#[derive(Debug, Clone, Serialize)]
pub struct JoinServerMemory {
    /// The server's pid.
    pub pid: u32,
    /// `VmRSS` before seeding, KiB.
    pub rss_kib_before: Option<u64>,
    /// `VmRSS` once the server held the document, KiB.
    pub rss_kib_seeded: Option<u64>,
    /// Highest `VmRSS` sampled during the joins, KiB.
    pub peak_rss_kib_during_joins: Option<u64>,
    /// `VmHWM` at the end, KiB.
    pub vm_hwm_kib: Option<u64>,
}

/// The report of `join`.
#[derive(Debug, Clone, Serialize)]
pub struct JoinReport {
    /// Document name.
    pub doc: String,
    /// Characters (bytes, ASCII) of text seeded.
    pub doc_chars: usize,
    /// Updates the seeder sent.
    pub seed_updates: usize,
    /// Largest seed frame, bytes.
    pub largest_seed_frame: usize,
    /// Seeding time, seconds.
    pub seed_s: f64,
    /// From the start of seeding until a checker saw the whole document, seconds.
    pub server_has_it_s: f64,
    /// Joiners.
    pub joiners: usize,
    /// All at once.
    pub concurrent: bool,
    /// Joiners that got the whole document.
    pub succeeded: usize,
    /// Joiners that failed or got an incomplete document.
    pub failed: usize,
    /// Size of the step 2 the joiners received, bytes (the largest).
    pub step2_bytes: usize,
    /// Connect to step 2 received.
    pub time_to_step2_ms: LatencySummary,
    /// Connect to step 2 applied to a fresh yrs document.
    pub time_to_applied_ms: LatencySummary,
    /// Server memory, with `--server-pid`.
    pub server: Option<JoinServerMemory>,
    /// A few of the errors.
    pub errors: Vec<String>,
}

impl JoinReport {
    /// Human-readable report.
    pub fn render(&self) -> String {
        let mut out = format!(
            "join: document {} of {:.1} MiB seeded in {} updates (largest frame {} KiB) in {:.2} s; server had it after {:.2} s\n\
             {} joiners{}: {} got the whole document ({} bytes step 2), {} failed\n\
             connect -> step 2 received: {}\nconnect -> step 2 applied:  {}\n",
            self.doc,
            self.doc_chars as f64 / 1048576.0,
            self.seed_updates,
            self.largest_seed_frame / 1024,
            self.seed_s,
            self.server_has_it_s,
            self.joiners,
            if self.concurrent {
                " (all at once)"
            } else {
                " (one after another)"
            },
            self.succeeded,
            self.step2_bytes,
            self.failed,
            self.time_to_step2_ms.line(),
            self.time_to_applied_ms.line(),
        );
        if let Some(s) = &self.server {
            out += &format!(
                "server {}: rss before {}, seeded {}, peak during joins {}, VmHWM {}\n",
                s.pid,
                kib(s.rss_kib_before),
                kib(s.rss_kib_seeded),
                kib(s.peak_rss_kib_during_joins),
                kib(s.vm_hwm_kib)
            );
        }
        for error in &self.errors {
            out += &format!("  error: {error}\n");
        }
        out
    }
}

/// Runs `join` and prints its report; exit code 3 when a joiner failed.
///
/// # Errors
/// Invalid flags, seeding failed, or the server never held the whole document.
pub async fn command(args: JoinArgs) -> anyhow::Result<ExitCode> {
    let report = execute(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.failed > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// Pseudo-random lowercase text: real content rather than one repeated letter, so nothing
/// downstream can shortcut it.
fn text_block(len: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    (0..len).map(|_| char::from(b'a' + rng.u8(0..26))).collect()
}

/// Seeds, confirms, runs the joiners.
///
/// # Errors
/// See [`command`].
pub async fn execute(args: &JoinArgs) -> anyhow::Result<JoinReport> {
    ensure!(
        args.doc_size_mib > 0.0 && args.doc_size_mib.is_finite(),
        "--doc-size-mib must be positive"
    );
    ensure!(args.chunk_kib >= 1, "--chunk-kib must be at least 1");
    let doc_name = args
        .doc
        .clone()
        .unwrap_or_else(|| format!("join-{:08x}", fastrand::u32(..)));
    let doc_chars = (args.doc_size_mib * 1048576.0) as usize;
    let framing = Framing::new(args.wire.protocol, &doc_name, &args.wire.token);
    let seed_url = framing.socket_url(&args.urls[0]);
    let server_pid = args.server_pid.map(Pid::Other);
    let rss_before = server_pid.and_then(procfs::rss_kib);

    // Seed.
    let started = Instant::now();
    let seeder = Doc::with_client_id(fastrand::u64(1..u64::from(u32::MAX)));
    let text = seeder.get_or_insert_text("t");
    let synced =
        client::connect_and_sync(&seed_url, &framing, Some(&seeder), args.handshake_timeout)
            .await
            .context("seeder")?;
    let mut ws = synced.ws;
    let chunk_chars = args.chunk_kib * 1024;
    let block = text_block(chunk_chars);
    let mut seed_updates = 0;
    let mut largest_seed_frame = 0;
    let mut written = 0;
    while written < doc_chars {
        let n = chunk_chars.min(doc_chars - written);
        let update = {
            let mut txn = seeder.transact_mut();
            let len = text.len(&txn);
            text.insert(&mut txn, len, &block[..n]);
            txn.encode_update_v1()
        };
        let frame = framing.frame(&sync_frame(SYNC_UPDATE, &update));
        largest_seed_frame = largest_seed_frame.max(frame.len());
        ws.send(WsMessage::Binary(frame))
            .await
            .context("sending a seed update")?;
        written += n;
        seed_updates += 1;
    }
    let seed_s = started.elapsed().as_secs_f64();

    // Wait until a fresh client gets the whole document from the server.
    let deadline = started + args.seed_timeout;
    let mut last_check = String::from("no check completed");
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        ensure!(
            !remaining.is_zero(),
            "the server did not hold the whole document ({doc_chars} chars) within {}: {last_check}",
            humantime::format_duration(args.seed_timeout),
        );
        match fetch_text_len(&seed_url, &framing, remaining).await {
            Ok(len) if len == doc_chars => break,
            Ok(len) => last_check = format!("the last check saw {len} chars"),
            Err(e) => last_check = format!("the last check failed: {e:#}"),
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
    let server_has_it_s = started.elapsed().as_secs_f64();
    let _ = ws.close(None).await;
    let rss_seeded = server_pid.and_then(procfs::rss_kib);

    // Joins, with the server's memory sampled throughout.
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = server_pid.map(|pid| {
        let peak = Arc::clone(&peak);
        let sampling = Arc::clone(&sampling);
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(rss) = procfs::rss_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(RSS_SAMPLE_EVERY).await;
            }
        })
    });
    let urls: Vec<String> = (0..args.joiners)
        .map(|i| framing.socket_url(&args.urls[i % args.urls.len()]))
        .collect();
    let args_timeout = args.handshake_timeout;
    let results = if args.concurrent {
        // Joiners only stream their step 2 through a CRC (see `streaming`); the first also
        // keeps it, and that one copy is decoded afterwards. Holding and decoding 150 copies of
        // a 20 MB document on the generator's two shared cores would otherwise delay the very
        // reads being timed.
        let tasks: Vec<_> = urls
            .into_iter()
            .enumerate()
            .map(|(i, url)| {
                let framing = framing.clone();
                tokio::spawn(
                    async move { receive_once(&url, &framing, args_timeout, i == 0).await },
                )
            })
            .collect();
        let mut received = Vec::with_capacity(tasks.len());
        for task in tasks {
            received.push(
                task.await
                    .unwrap_or_else(|e| Err(format!("joiner task failed: {e}"))),
            );
        }
        verify_received(received, doc_chars).await
    } else {
        let mut results = Vec::with_capacity(urls.len());
        for url in urls {
            results.push(join_once(&url, &framing, doc_chars, args.handshake_timeout).await);
        }
        results
    };
    sampling.store(false, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        let _ = sampler.await;
    }

    let mut to_step2 = micros_histogram(3);
    let mut to_applied = micros_histogram(3);
    let mut step2_bytes = 0;
    let mut errors = Vec::new();
    let mut succeeded = 0;
    for result in &results {
        match result {
            Ok(join) => {
                succeeded += 1;
                to_step2.saturating_record((join.step2.as_micros() as u64).max(1));
                to_applied.saturating_record((join.applied.as_micros() as u64).max(1));
                step2_bytes = step2_bytes.max(join.step2_bytes);
            }
            Err(e) if errors.len() < MAX_LISTED && !errors.contains(e) => errors.push(e.clone()),
            Err(_) => {}
        }
    }
    Ok(JoinReport {
        doc: doc_name,
        doc_chars,
        seed_updates,
        largest_seed_frame,
        seed_s,
        server_has_it_s,
        joiners: args.joiners,
        concurrent: args.concurrent,
        succeeded,
        failed: results.len() - succeeded,
        step2_bytes,
        time_to_step2_ms: LatencySummary::from_histogram(&to_step2),
        time_to_applied_ms: LatencySummary::from_histogram(&to_applied),
        server: args.server_pid.map(|pid| JoinServerMemory {
            pid,
            rss_kib_before: rss_before,
            rss_kib_seeded: rss_seeded,
            peak_rss_kib_during_joins: Some(peak.load(Ordering::Relaxed)).filter(|&p| p > 0),
            vm_hwm_kib: procfs::peak_rss_kib(Pid::Other(pid)),
        }),
        errors,
    })
}

/// Connects, syncs, applies the server's step 2 to a fresh document; returns its text length.
async fn fetch_text_len(url: &str, framing: &Framing, timeout: Duration) -> anyhow::Result<usize> {
    let synced = client::connect_and_sync(url, framing, None, timeout).await?;
    let mut ws = synced.ws;
    let _ = ws.close(None).await;
    let step2 = synced.step2;
    tokio::task::spawn_blocking(move || text_len_of(&step2)).await?
}

fn text_len_of(update: &[u8]) -> anyhow::Result<usize> {
    let doc = Doc::new();
    client::apply_update(&doc, update)?;
    let txn = doc.transact();
    Ok(txn.get_text("t").map_or(0, |t| t.get_string(&txn).len()))
}

/// A concurrent joiner's step 2, fingerprinted; the first joiner also keeps the message.
struct Received {
    step2: Duration,
    step2_bytes: usize,
    fingerprint: (u32, usize),
    message: Option<Bytes>,
}

async fn receive_once(
    url: &str,
    framing: &Framing,
    timeout: Duration,
    keep: bool,
) -> Result<Received, String> {
    let streamed = streaming::receive_step2(url, framing, timeout, keep)
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok(Received {
        step2: streamed.elapsed,
        step2_bytes: streamed.len,
        fingerprint: (streamed.crc, streamed.len),
        message: streamed.message,
    })
}

/// Decodes the kept step 2 and checks it holds the whole document; every joiner that received
/// those exact bytes (same CRC and length) shares the verdict, and one that received other
/// bytes fails: the document did not change during the joins, so neither may its step 2.
/// "Applied" is the joiner's step 2 time plus that one decode.
async fn verify_received(
    mut received: Vec<Result<Received, String>>,
    expected_chars: usize,
) -> Vec<Result<Joined, String>> {
    let mut verdicts = std::collections::HashMap::new();
    for joined in received.iter_mut().flatten() {
        let Some(message) = joined.message.take() else {
            continue;
        };
        let started = Instant::now();
        let len = tokio::task::spawn_blocking(move || match Message::decode(&message) {
            Ok(Message::Sync(SyncMessage::Step2(update))) => text_len_of(&update),
            Ok(_) => Err(anyhow::anyhow!("the kept message is not a step 2")),
            Err(e) => Err(anyhow::anyhow!("malformed step 2: {e}")),
        })
        .await;
        let verdict = match len {
            Ok(Ok(len)) if len == expected_chars => Ok(started.elapsed()),
            Ok(Ok(len)) => Err(format!(
                "incomplete document: {len} of {expected_chars} chars"
            )),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(e) => Err(e.to_string()),
        };
        verdicts.insert(joined.fingerprint, verdict);
    }
    received
        .into_iter()
        .map(|outcome| {
            let joined = outcome?;
            let decode = verdicts
                .get(&joined.fingerprint)
                .cloned()
                .unwrap_or_else(|| {
                    Err(if verdicts.is_empty() {
                        "the first joiner, which keeps its step 2 for the others, failed".to_owned()
                    } else {
                        format!(
                            "a step 2 unlike the first joiner's (CRC {:08x}, {} bytes)",
                            joined.fingerprint.0, joined.fingerprint.1
                        )
                    })
                })?;
            Ok(Joined {
                step2: joined.step2,
                applied: joined.step2 + decode,
                step2_bytes: joined.step2_bytes,
            })
        })
        .collect()
}

struct Joined {
    step2: Duration,
    applied: Duration,
    step2_bytes: usize,
}

async fn join_once(
    url: &str,
    framing: &Framing,
    expected_chars: usize,
    timeout: Duration,
) -> Result<Joined, String> {
    let started = Instant::now();
    let synced = client::connect_and_sync(url, framing, None, timeout)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let step2_bytes = synced.step2.len();
    let mut ws = synced.ws;
    let step2 = synced.step2;
    // Applying a large document is CPU-bound: keep it off the runtime's workers so other
    // joiners' sockets are still read meanwhile.
    let len = tokio::task::spawn_blocking(move || text_len_of(&step2))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{e:#}"))?;
    let applied = started.elapsed();
    let _ = ws.close(None).await;
    if len != expected_chars {
        return Err(format!(
            "incomplete document: {len} of {expected_chars} chars"
        ));
    }
    Ok(Joined {
        step2: synced.elapsed,
        applied,
        step2_bytes,
    })
}
