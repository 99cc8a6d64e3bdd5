//! `soak`: hours of churn against one server (connections and rooms opening and closing,
//! documents growing, presence on) while its memory, descriptors, loaded rooms and connections
//! are sampled; then every client leaves and the server must let go of what they held.
//!
//! The rooms are `--rooms` slots. Each slot's room lives `--room-life`, then its clients leave
//! and the slot moves to its next name; the slots are staggered, so some room closes every few
//! seconds. A slot cycles through `--names-per-room` names, so a name comes back after the server
//! has unloaded it: the room is loaded again from storage and its document keeps growing. In a
//! room, `--users-per-room` clients come and go: each visit lasts about `--visit` (±50 %).
//!
//! - [`visit`]: one client's visit.
//! - [`sample`]: what is sampled, from `/proc` and `/metrics`.
//! - [`verdict`]: the pass/fail criteria.
//! - [`chart`]: the SVG chart.

pub mod chart;
pub mod sample;
pub mod verdict;
pub mod visit;

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde::Serialize;
use tokio::time::Instant;

use crate::cli::SoakArgs;
use crate::client::doc_url;
use crate::progress::Live;
use sample::{Sample, Stage};
use verdict::{ChurnTotals, Limits, Verdict};
use visit::{Visit, VisitCounters};

/// Exit code of a soak whose verdict is FAIL.
pub const FAILED: u8 = 4;

/// Shortest visit worth making: a room about to close is left alone until its next name.
const MIN_VISIT: Duration = Duration::from_secs(1);

/// Longest pause before a client that left comes back (random below this).
const RECONNECT_GAP: Duration = Duration::from_millis(500);

/// After the clients left, the server is sampled at least this often.
const LEAVE_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The report of a soak.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Server endpoint.
    pub url: String,
    /// Churn time, seconds.
    pub duration_s: f64,
    /// Warm-up (not judged), seconds.
    pub warmup_s: f64,
    /// Time from the last client leaving to the last sample, seconds.
    pub leave_s: f64,
    /// Room slots, each with this many clients coming and going.
    pub rooms: usize,
    /// Clients per room slot.
    pub users_per_room: usize,
    /// Samples taken.
    pub samples: usize,
    /// Visits started.
    pub visits: u64,
    /// Document updates sent.
    pub updates_sent: u64,
    /// Presence states sent.
    pub presence_sent: u64,
    /// The visits' outcomes.
    pub churn: ChurnTotals,
    /// What was allowed.
    pub limits: Limits,
    /// Pass or fail, criterion by criterion.
    pub verdict: Verdict,
    /// The samples, as CSV.
    pub csv: String,
    /// The chart.
    pub chart: String,
}

impl SoakReport {
    /// Human-readable report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "soak: {} room slots × {} users, churn {:.0} s (warm-up {:.0} s), then {:.0} s after the clients left; {} samples",
            self.rooms,
            self.users_per_room,
            self.duration_s,
            self.warmup_s,
            self.leave_s,
            self.samples
        );
        let _ = writeln!(
            out,
            "churn: {} visits ({} completed, {} failed, {} dropped), {} updates, {} presence states sent",
            self.visits,
            self.churn.completed,
            self.churn.failed,
            self.churn.dropped,
            self.updates_sent,
            self.presence_sent
        );
        for line in self.verdict.lines() {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "csv:   {}", self.csv);
        let _ = writeln!(out, "chart: {}", self.chart);
        out
    }
}

/// Runs `soak` and prints its report; exit code [`FAILED`] when the verdict is FAIL.
///
/// # Errors
/// Invalid flags, or the CSV or chart could not be written.
pub async fn command(args: SoakArgs) -> anyhow::Result<ExitCode> {
    let report = execute(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.verdict.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED)
    })
}

fn validate(args: &SoakArgs) -> anyhow::Result<()> {
    ensure!(
        args.rooms >= 1 && args.users_per_room >= 1 && args.names_per_room >= 1,
        "--rooms, --users-per-room and --names-per-room must be at least 1"
    );
    ensure!(
        args.warmup < args.duration,
        "--warmup must be shorter than --duration: only what follows it is judged"
    );
    ensure!(
        args.room_life > MIN_VISIT && args.visit >= MIN_VISIT,
        "--room-life must be over 1s and --visit at least 1s"
    );
    ensure!(
        !args.sample_every.is_zero(),
        "--sample-every must be positive"
    );
    for rate in [args.rate, args.presence_rate] {
        ensure!(rate.is_finite() && rate >= 0.0, "rates must be numbers ≥ 0");
    }
    Ok(())
}

/// What every churning client follows.
struct Plan {
    url: String,
    prefix: String,
    started: Instant,
    load_end: Instant,
    rooms: usize,
    names_per_room: usize,
    typists: usize,
    rate: f64,
    update_chars: usize,
    presence_rate: f64,
    visit: Duration,
    room_life: Duration,
    handshake_timeout: Duration,
}

struct Sampler<'a> {
    started: Instant,
    pid: Option<u32>,
    metrics_url: &'a str,
    counters: &'a VisitCounters,
}

impl Sampler<'_> {
    async fn take(&self, stage: Stage) -> Sample {
        let server = sample::server_view(self.pid, Some(self.metrics_url)).await;
        let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        Sample {
            t_s: self.started.elapsed().as_secs_f64(),
            stage,
            rss_kib: server.rss_kib,
            anon_rss_kib: server.anon_rss_kib,
            fds: server.fds,
            rooms: server.rooms,
            connections: server.connections,
            tasks: server.tasks,
            clients_open: get(&self.counters.open),
            visits: get(&self.counters.started),
            updates_sent: get(&self.counters.updates_sent),
        }
    }
}

/// Runs the soak and returns its report, without printing it.
///
/// # Errors
/// Invalid flags, or the CSV or chart could not be written.
pub async fn execute(args: &SoakArgs) -> anyhow::Result<SoakReport> {
    validate(args)?;
    let metrics_url = match &args.metrics_url {
        Some(url) => url.clone(),
        None => sample::metrics_url_for(&args.url)?,
    };
    let counters = Arc::new(VisitCounters::default());
    let started = Instant::now();
    let plan = Arc::new(Plan {
        url: args.url.clone(),
        prefix: args
            .doc_prefix
            .clone()
            .unwrap_or_else(|| format!("soak-{:08x}", fastrand::u32(..))),
        started,
        load_end: started + args.duration,
        rooms: args.rooms,
        names_per_room: args.names_per_room,
        typists: args.typists,
        rate: args.rate,
        update_chars: args.update_chars,
        presence_rate: args.presence_rate,
        visit: args.visit,
        room_life: args.room_life,
        handshake_timeout: args.handshake_timeout,
    });
    let sampler = Sampler {
        started,
        pid: args.server_pid,
        metrics_url: &metrics_url,
        counters: &counters,
    };
    let mut samples = vec![sampler.take(Stage::Baseline).await];
    ensure!(
        samples[0].rooms.is_some(),
        "no answer from {metrics_url}: is the server up? (--metrics-url)"
    );

    let live = Live::start(!args.no_progress, {
        let counters = Arc::clone(&counters);
        move || {
            let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            format!(
                "soak | open {} | visits {} completed {} failed {} dropped {} | updates {}",
                get(&counters.open),
                get(&counters.started),
                get(&counters.completed),
                get(&counters.failed),
                get(&counters.dropped),
                get(&counters.updates_sent)
            )
        }
    });
    let clients: Vec<_> = (0..args.rooms)
        .flat_map(|slot| (0..args.users_per_room).map(move |user| (slot, user)))
        .map(|(slot, user)| {
            tokio::spawn(churn(Arc::clone(&plan), slot, user, Arc::clone(&counters)))
        })
        .collect();

    let warm_end = started + args.warmup;
    let mut next = started + args.sample_every;
    while next < plan.load_end {
        tokio::time::sleep_until(next).await;
        let stage = if Instant::now() < warm_end {
            Stage::WarmUp
        } else {
            Stage::Load
        };
        samples.push(sampler.take(stage).await);
        next += args.sample_every;
    }
    tokio::time::sleep_until(plan.load_end).await;
    samples.push(sampler.take(Stage::Load).await);
    for client in clients {
        // A client task that panicked only stops its own churn; the counters say the rest.
        let _ = client.await;
    }
    live.finish();

    // The clients have left: wait for the server to unload their rooms and close their files.
    let left = Instant::now();
    let baseline = samples[0];
    let step = args.sample_every.min(LEAVE_SAMPLE_EVERY);
    loop {
        let sample = sampler.take(Stage::Leave).await;
        samples.push(sample);
        let back = at_most(sample.rooms, baseline.rooms, 0)
            && at_most(sample.connections, baseline.connections, 0)
            && at_most(sample.fds, baseline.fds, args.fd_slack)
            && at_most(sample.tasks, baseline.tasks, 0);
        if back || left.elapsed() >= args.settle {
            break;
        }
        tokio::time::sleep(step).await;
    }

    let churn = ChurnTotals {
        completed: counters.completed.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        dropped: counters.dropped.load(Ordering::Relaxed),
    };
    let limits = Limits {
        rss_growth_percent: args.rss_growth_limit,
        fd_slack: args.fd_slack,
    };
    let verdict = verdict::judge(&samples, limits, churn);
    write_csv(&args.csv, &samples)?;
    let title = format!(
        "soak: {} rooms × {} users, {} churn",
        args.rooms,
        args.users_per_room,
        humantime::format_duration(args.duration)
    );
    chart::write(&args.chart, &samples, &title)?;
    Ok(SoakReport {
        url: args.url.clone(),
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        leave_s: left.elapsed().as_secs_f64(),
        rooms: args.rooms,
        users_per_room: args.users_per_room,
        samples: samples.len(),
        visits: counters.started.load(Ordering::Relaxed),
        updates_sent: counters.updates_sent.load(Ordering::Relaxed),
        presence_sent: counters.presence_sent.load(Ordering::Relaxed),
        churn,
        limits,
        verdict,
        csv: args.csv.display().to_string(),
        chart: args.chart.display().to_string(),
    })
}

/// `now` is back to `before` (+ `slack`); a figure never measured does not hold the wait up,
/// one that could no longer be read does.
fn at_most(now: Option<u64>, before: Option<u64>, slack: u64) -> bool {
    match (now, before) {
        (Some(now), Some(before)) => now <= before + slack,
        (None, Some(_)) => false,
        (_, None) => true,
    }
}

fn write_csv(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    let mut text = String::from(sample::CSV_HEADER);
    text.push('\n');
    for sample in samples {
        text.push_str(&sample.csv());
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// One client position of one room slot: visit after visit until the churn ends.
async fn churn(plan: Arc<Plan>, slot: usize, user: usize, counters: Arc<VisitCounters>) {
    // Staggered, so the slots' rooms do not all close at once.
    let offset = plan.room_life.mul_f64(slot as f64 / plan.rooms as f64);
    loop {
        let now = Instant::now();
        if now + MIN_VISIT > plan.load_end {
            return;
        }
        let since = now.duration_since(plan.started) + offset;
        let generation = (since.as_secs_f64() / plan.room_life.as_secs_f64()) as u32;
        let room_end = plan.started + (plan.room_life * (generation + 1)).saturating_sub(offset);
        let until = (now + plan.visit.mul_f64(0.5 + fastrand::f64()))
            .min(room_end)
            .min(plan.load_end);
        if until.duration_since(now) < MIN_VISIT {
            tokio::time::sleep_until(until).await;
            continue;
        }
        let name = format!(
            "{}-{slot}-{}",
            plan.prefix,
            generation as usize % plan.names_per_room
        );
        let visit = Visit {
            url: doc_url(&plan.url, &name),
            until,
            rate: if user < plan.typists { plan.rate } else { 0.0 },
            update_chars: plan.update_chars,
            presence_rate: plan.presence_rate,
            handshake_timeout: plan.handshake_timeout,
        };
        visit::run(visit, &counters).await;
        tokio::time::sleep(RECONNECT_GAP.mul_f64(fastrand::f64())).await;
    }
}
