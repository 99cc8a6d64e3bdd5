//! How many updates per second one document's file update log takes, under each fsync policy.
//!
//! ```text
//! cargo run --release -p chorus-store --example log_bench -- [DIR] [SECONDS] [PRODUCERS]
//! ```
//!
//! `DIR` (default `.`) must be on the disk you care about: a tmpfs makes fsync free. Scenarios,
//! each for `SECONDS` (default 3) on a fresh log in a temporary directory inside `DIR`:
//! - `always, batch of 1`: one update per append, each append fsynced: the naive room.
//! - `always, group commit`: `PRODUCERS` (default 64) tasks each submit one update and wait
//!   until it is durable; one committer appends everything that arrived while the previous
//!   append was in flight as one batch (one fsync). This is what a room should do.
//! - `interval 1s, batch of 1`: one update per append, fsynced by the background thread.
//!
//! Updates are real Yjs updates, one typed character each (the mean size is printed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_store::{FsLog, FsyncPolicy, UpdateLog};
use tokio::sync::{mpsc, oneshot};
use yrs::{Doc, Text, Transact};

/// Distinct updates generated up front and then cycled: the log never looks inside them.
const POOL: usize = 4096;
/// Largest batch the committer takes at once.
const MAX_BATCH: usize = 4096;

struct Outcome {
    appended: u64,
    appends: u64,
    elapsed: Duration,
}

fn updates() -> Vec<Bytes> {
    let doc = Doc::with_client_id(1);
    let text = doc.get_or_insert_text("t");
    (0..POOL)
        .map(|i| {
            let mut txn = doc.transact_mut();
            let ch = char::from(b'a' + (i % 26) as u8);
            text.push(&mut txn, &ch.to_string());
            Bytes::from(txn.encode_update_v1())
        })
        .collect()
}

async fn one_per_append(log: &FsLog, pool: &[Bytes], run_for: Duration) -> Outcome {
    let doc = DocName::parse("bench").expect("valid name");
    let start = Instant::now();
    let mut appended = 0;
    while start.elapsed() < run_for {
        let update = &pool[appended as usize % pool.len()];
        log.append(&doc, std::slice::from_ref(update))
            .await
            .expect("append");
        appended += 1;
    }
    Outcome {
        appended,
        appends: appended,
        elapsed: start.elapsed(),
    }
}

async fn group_commit(
    log: Arc<FsLog>,
    pool: Arc<Vec<Bytes>>,
    producers: usize,
    run_for: Duration,
) -> Outcome {
    let doc = DocName::parse("bench").expect("valid name");
    let (tx, mut rx) = mpsc::channel::<(Bytes, oneshot::Sender<u64>)>(producers * 2);
    let start = Instant::now();
    let deadline = start + run_for;
    let committer = tokio::spawn(async move {
        let mut appends = 0u64;
        let mut appended = 0u64;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let updates: Vec<Bytes> = batch.iter().map(|(u, _)| u.clone()).collect();
            let last = log.append(&doc, &updates).await.expect("append");
            appends += 1;
            appended += batch.len() as u64;
            let first_seq = last + 1 - batch.len() as u64;
            for (i, (_, ack)) in batch.into_iter().enumerate() {
                let _ = ack.send(first_seq + i as u64);
            }
        }
        (appends, appended)
    });
    let workers: Vec<_> = (0..producers)
        .map(|p| {
            let (tx, pool) = (tx.clone(), Arc::clone(&pool));
            tokio::spawn(async move {
                let mut i = p;
                while Instant::now() < deadline {
                    let (ack_tx, ack_rx) = oneshot::channel();
                    tx.send((pool[i % pool.len()].clone(), ack_tx))
                        .await
                        .expect("committer alive");
                    ack_rx.await.expect("acknowledged");
                    i += producers;
                }
            })
        })
        .collect();
    drop(tx);
    for worker in workers {
        worker.await.expect("producer");
    }
    let (appends, appended) = committer.await.expect("committer");
    Outcome {
        appended,
        appends,
        elapsed: start.elapsed(),
    }
}

fn report(name: &str, outcome: &Outcome) {
    let secs = outcome.elapsed.as_secs_f64();
    println!(
        "{name:<28} {:>12.0} updates/s {:>10.0} appends/s {:>8.1} updates/append {:>10} updates in {secs:.1}s",
        outcome.appended as f64 / secs,
        outcome.appends as f64 / secs,
        outcome.appended as f64 / outcome.appends.max(1) as f64,
        outcome.appended,
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".to_owned());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let producers: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let run_for = Duration::from_secs(seconds);
    let pool = Arc::new(updates());
    let mean = pool.iter().map(Bytes::len).sum::<usize>() / pool.len();
    println!("one document, {mean}-byte updates, {seconds}s per scenario, logs under {dir}");

    let scratch = tempfile::tempdir_in(&dir).expect("temporary directory");
    let open =
        |name: &str, policy| FsLog::open(scratch.path().join(name), policy).expect("open log");

    let log = open("always-1", FsyncPolicy::Always);
    report(
        "always, batch of 1",
        &one_per_append(&log, &pool, run_for).await,
    );

    let log = Arc::new(open("always-group", FsyncPolicy::Always));
    let outcome = group_commit(log, Arc::clone(&pool), producers, run_for).await;
    report(&format!("always, group commit ({producers})"), &outcome);

    let log = open("interval", FsyncPolicy::Interval(Duration::from_secs(1)));
    report(
        "interval 1s, batch of 1",
        &one_per_append(&log, &pool, run_for).await,
    );
    log.flush().await.expect("flush");
}
