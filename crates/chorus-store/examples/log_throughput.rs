//! How many appends per second the file update log takes from many documents at once, the way a
//! server with many rooms uses it: each room has at most one append in flight, so nothing can be
//! batched within a document and durability has to be shared across documents.
//!
//! ```text
//! cargo run --release -p chorus-store --example log_throughput -- \
//!     [--docs 100] [--seconds 5] [--bytes 200] [--fsync always] [--fsync 1s] [--dir DIR]
//! ```
//!
//! One task per document appends one update at a time, as fast as it can, for `--seconds`. Each
//! `--fsync` policy (default: `always`, then `1s`) runs on a fresh log in a temporary directory
//! under `--dir` (default `target/bench-tmp` of the workspace: the disk the server uses; a tmpfs
//! would make fsync free). Prints appends/s, append latency percentiles, the process's CPU time
//! per append (user + system, from `/proc/self/stat`, Linux) and the fsyncs done.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chorus_protocol::DocName;
use chorus_store::{FsLog, FsyncPolicy, UpdateLog};

struct Args {
    docs: usize,
    seconds: u64,
    bytes: usize,
    policies: Vec<FsyncPolicy>,
    dir: PathBuf,
}

/// Why the command line cannot be used.
#[derive(Debug, thiserror::Error)]
enum ArgsError {
    #[error("{0} needs a value")]
    MissingValue(String),
    #[error("{flag}: {source}")]
    Number {
        flag: String,
        source: std::num::ParseIntError,
    },
    #[error("--fsync: {0}")]
    Fsync(#[from] chorus_store::ParseFsyncPolicyError),
    #[error("unknown flag {0}")]
    Unknown(String),
}

fn parse_args() -> Result<Args, ArgsError> {
    let mut args = Args {
        docs: 100,
        seconds: 5,
        bytes: 200,
        policies: Vec::new(),
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            return Err(ArgsError::MissingValue(flag));
        };
        let number = || {
            value.parse::<u64>().map_err(|source| ArgsError::Number {
                flag: flag.clone(),
                source,
            })
        };
        match flag.as_str() {
            "--docs" => args.docs = number()? as usize,
            "--seconds" => args.seconds = number()?,
            "--bytes" => args.bytes = number()? as usize,
            "--fsync" => args.policies.push(value.parse()?),
            "--dir" => args.dir = PathBuf::from(value),
            _ => return Err(ArgsError::Unknown(flag)),
        }
    }
    if args.policies.is_empty() {
        args.policies = vec![
            FsyncPolicy::Always,
            FsyncPolicy::Interval(Duration::from_secs(1)),
        ];
    }
    Ok(args)
}

/// Appends from one document's task until `deadline`; returns each append's latency in µs.
async fn one_document(log: Arc<FsLog>, doc: DocName, bytes: usize, deadline: Instant) -> Vec<u32> {
    let mut latencies = Vec::new();
    let mut payload = vec![0u8; bytes];
    let mut i = 0u64;
    while Instant::now() < deadline {
        // The log never looks inside updates: any non-empty bytes do.
        payload[..8].copy_from_slice(&i.to_le_bytes());
        let update = Bytes::copy_from_slice(&payload);
        let start = Instant::now();
        log.append(&doc, std::slice::from_ref(&update))
            .await
            .expect("append");
        latencies.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
        i += 1;
    }
    latencies
}

/// CPU time this process has used (user + system), where `/proc` tells it.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at its closing parenthesis;
    // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

async fn run(args: &Args, policy: FsyncPolicy) {
    std::fs::create_dir_all(&args.dir).expect("benchmark directory");
    let scratch = tempfile::tempdir_in(&args.dir).expect("temporary directory");
    let log = Arc::new(FsLog::open(scratch.path(), policy).expect("open log"));
    let run_for = Duration::from_secs(args.seconds);
    let start = Instant::now();
    let cpu_at_start = cpu_time();
    let deadline = start + run_for;
    let tasks: Vec<_> = (0..args.docs)
        .map(|d| {
            let doc = DocName::parse(format!("doc-{d}")).expect("valid name");
            tokio::spawn(one_document(Arc::clone(&log), doc, args.bytes, deadline))
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("document task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_time()
        .zip(cpu_at_start)
        .map(|(end, start)| end.saturating_sub(start));
    let stats = log.stats();
    latencies.sort_unstable();
    println!(
        "fsync {:<7} {:>9.0} appends/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  \
         CPU {:>6.1} µs/append  {:>8} appends  {:?}",
        policy.to_string(),
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        cpu.map_or(f64::NAN, |cpu| cpu.as_secs_f64() * 1e6
            / latencies.len().max(1) as f64),
        latencies.len(),
        stats,
    );
    log.flush().await.expect("flush");
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!(
        "{} documents, one task each, {}-byte updates one per append, {}s per policy, under {}",
        args.docs,
        args.bytes,
        args.seconds,
        args.dir.display()
    );
    for &policy in &args.policies {
        run(&args, policy).await;
    }
}
