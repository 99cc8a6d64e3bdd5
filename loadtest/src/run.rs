//! `run`: R rooms × U users, typists and presence, latency and loss; `--verify` convergence.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::sync::{Semaphore, watch};
use yrs::updates::encoder::Encode;
use yrs::{GetString, ReadTxn, Transact};

use crate::cli::{Protocol, RunArgs};
use crate::client::doc_url;
use crate::ledger::{LossCount, RoomLedger, SentLog};
use crate::procfs::{self, Pid};
use crate::progress::Live;
use crate::recorder::{self, Recorder, Window, micros_histogram};
use crate::report::{
    self, AckReport, ByteReport, ConnectionReport, GeneratorReport, LatencySummary, PresenceReport,
    RunReport, RunSettings, ServerReport, UpdateReport, VerifyReport,
};
use crate::shards::Shards;
use crate::user::{Counters, Outcome, Phase, Settings, Shared, UserSpec, run_user};

/// How often the orchestrator checks whether everyone has connected or every delivery is in.
const POLL: Duration = Duration::from_millis(20);

/// Time between announcing the load and its first ticks, so every user has seen the phase.
const LOAD_LEAD: Duration = Duration::from_millis(100);

/// Errors and problems listed in a report at most.
const MAX_LISTED: usize = 10;

/// CPU share of all cores above which the generator counts as saturated.
const SATURATED_CPU_SHARE: f64 = 0.85;

/// Tick lateness (p99) above which the report warns that the offered load came in bursts.
const LATE_TICK_MS: f64 = 20.0;

/// Runs `run` and prints its report; exit code 2 when `--verify` fails.
///
/// # Errors
/// Invalid flags, no connection at all, or the chart could not be written.
pub async fn command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let report = execute(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(match &report.verify {
        Some(verify) if !verify.ok => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    })
}

fn validate(args: &RunArgs) -> anyhow::Result<()> {
    ensure!(
        args.rooms >= 1 && args.users >= 1,
        "--rooms and --users must be at least 1"
    );
    ensure!(
        args.typists <= args.users,
        "--typists ({}) exceeds --users ({})",
        args.typists,
        args.users
    );
    ensure!(
        args.presence_users.unwrap_or(0) <= args.users,
        "--presence-users exceeds --users"
    );
    ensure!(
        args.rate.is_finite() && args.rate >= 0.0,
        "--rate must be a positive number"
    );
    ensure!(
        args.presence_rate.is_finite() && args.presence_rate >= 0.0,
        "--presence-rate must be a positive number"
    );
    ensure!(
        args.connect_concurrency >= 1,
        "--connect-concurrency must be at least 1"
    );
    ensure!(!args.duration.is_zero(), "--duration must be positive");
    for url in &args.urls {
        ensure!(
            url.starts_with("ws://") || url.starts_with("wss://"),
            "--url {url}: expected ws://HOST:PORT/PATH"
        );
    }
    Ok(())
}

/// A fresh base for client ids: ids stay below 2^32 like the ones yjs generates, and two runs
/// against the same server do not share them.
fn client_base(total: usize) -> anyhow::Result<u64> {
    let span = u64::from(u32::MAX)
        .checked_sub(total as u64)
        .filter(|&s| s > 1);
    let span = span.context("too many users for 32-bit client ids")?;
    Ok(fastrand::u64(1..span))
}

struct Plan {
    specs: Vec<UserSpec>,
    ledgers: Vec<Arc<RoomLedger>>,
    prefix: String,
    presence_users: usize,
}

fn plan(args: &RunArgs) -> anyhow::Result<Plan> {
    let total = args
        .rooms
        .checked_mul(args.users)
        .context("too many users")?;
    let base = client_base(total)?;
    let prefix = args
        .doc_prefix
        .clone()
        .unwrap_or_else(|| format!("lt-{:08x}", fastrand::u32(..)));
    let presence_users = if args.presence_rate > 0.0 {
        args.presence_users.unwrap_or(args.users)
    } else {
        0
    };
    let mut specs = Vec::with_capacity(total);
    let mut ledgers = Vec::with_capacity(args.rooms);
    for room in 0..args.rooms {
        let url_doc = format!("{prefix}-{room}");
        let mut ledger = RoomLedger::default();
        for i in 0..args.users {
            let global = room * args.users + i;
            let client = base + global as u64;
            // Consecutive users of a room go to different nodes, so rooms span nodes.
            let node = global % args.urls.len();
            let typist = (i < args.typists).then(|| Arc::new(SentLog::new(client, node)));
            let presence = (i < presence_users).then(|| Arc::new(SentLog::new(client, node)));
            if let Some(log) = &typist {
                ledger.updates.insert(client, Arc::clone(log));
            }
            if let Some(log) = &presence {
                ledger.presence.insert(client, Arc::clone(log));
            }
            specs.push(UserSpec {
                room,
                client,
                node,
                url: match args.wire.protocol {
                    Protocol::YWebsocket => doc_url(&args.urls[node], &url_doc),
                    // The provider's socket URL is used as given; the name goes in-band.
                    Protocol::Hocuspocus => args.urls[node].clone(),
                },
                doc: url_doc.clone(),
                typist,
                presence,
                connect_at: args.ramp_up.mul_f64(global as f64 / total as f64),
            });
        }
        ledgers.push(Arc::new(ledger));
    }
    Ok(Plan {
        specs,
        ledgers,
        prefix,
        presence_users,
    })
}

fn status_line(shared: &Shared, phase: &watch::Sender<Phase>, total: usize) -> String {
    let c = &shared.counters;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let phase = match *phase.borrow() {
        Phase::Connect => "connecting",
        Phase::Load { start } if Instant::now() < start => "starting",
        Phase::Load { .. } => "load",
        Phase::Drain => "draining",
        Phase::Stop => "stopping",
    };
    let recent_p99 = {
        let recorder = recorder::lock(&shared.recorder);
        let series = &recorder.updates.per_second;
        // The last complete second: the current one is still filling.
        series
            .len()
            .checked_sub(2)
            .and_then(|i| series.get(i))
            .filter(|h| !h.is_empty())
            .map(|h| format!("{:.1} ms", h.value_at_quantile(0.99) as f64 / 1000.0))
            .unwrap_or_else(|| "-".to_owned())
    };
    format!(
        "{phase} | synced {}/{} failed {} | sent {} delivered {}/{} dup {} | p99 last s {} | presence {}",
        get(&c.synced),
        total,
        get(&c.failed),
        get(&c.updates_sent),
        get(&c.updates_delivered),
        get(&c.updates_expected),
        get(&c.updates_duplicated),
        recent_p99,
        get(&c.presence_delivered),
    )
}

struct ServerSample {
    pid: u32,
    rss_before: Option<u64>,
    cpu_start: Option<Duration>,
}

/// Runs the load and returns the report, without printing it.
///
/// # Errors
/// Invalid flags, or not a single connection succeeded.
pub async fn execute(args: &RunArgs) -> anyhow::Result<RunReport> {
    validate(args)?;
    let plan = plan(args)?;
    let total = plan.specs.len();
    let mut servers: Vec<ServerSample> = args
        .server_pids
        .iter()
        .map(|&pid| ServerSample {
            pid,
            rss_before: procfs::rss_kib(Pid::Other(pid)),
            cpu_start: None,
        })
        .collect();

    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        settings: Settings {
            rate: args.rate,
            presence_rate: args.presence_rate,
            update_chars: args.update_chars,
            burst: args.burst,
            verify: args.verify,
            handshake_timeout: args.handshake_timeout,
            protocol: args.wire.protocol,
            token: args.wire.token.clone(),
        },
        counters: Counters::default(),
        recorder: Mutex::new(Recorder::default()),
        handshakes: Mutex::new(micros_histogram(3)),
        schedule_lag: Mutex::new(micros_histogram(3)),
        connect_gate: Semaphore::new(args.connect_concurrency),
        room_synced: (0..args.rooms).map(|_| AtomicU64::new(0)).collect(),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let phase_tx = Arc::new(phase_tx);
    let live = Live::start(!args.no_progress, {
        let shared = Arc::clone(&shared);
        let phase_tx = Arc::clone(&phase_tx);
        move || status_line(&shared, &phase_tx, total)
    });

    let shards = Shards::start(procfs::cores()).context("starting the users' runtimes")?;
    let tasks: Vec<_> = plan
        .specs
        .iter()
        .enumerate()
        .map(|(n, spec)| {
            let ledger = Arc::clone(&plan.ledgers[spec.room]);
            shards.spawn(
                n,
                run_user(spec.clone(), ledger, Arc::clone(&shared), phase_rx.clone()),
            )
        })
        .collect();
    drop(phase_rx);

    let counters = &shared.counters;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    // Every user ends up synced or failed (its handshake has a timeout); the second condition
    // only guards against a user task that died some other way.
    while get(&counters.synced) + get(&counters.failed) < total as u64
        && !tasks.iter().all(|t| t.is_finished())
    {
        tokio::time::sleep(POLL).await;
    }
    if get(&counters.synced) == 0 {
        phase_tx.send_replace(Phase::Stop);
        let outcomes = collect(tasks).await;
        live.finish();
        let first = outcomes
            .iter()
            .find_map(|o| o.error.clone())
            .unwrap_or_default();
        bail!("no connection succeeded; first error: {first}");
    }

    // The load: warm-up, then the measured window.
    let start = Instant::now() + LOAD_LEAD;
    let measure_start = start + args.warmup;
    let measure_end = measure_start + args.duration;
    recorder::lock(&shared.recorder).window = Window {
        load_start_ns: (start - shared.epoch).as_nanos() as u64,
        measure_start_ns: (measure_start - shared.epoch).as_nanos() as u64,
        measure_end_ns: (measure_end - shared.epoch).as_nanos() as u64,
    };
    phase_tx.send_replace(Phase::Load { start });
    tokio::time::sleep_until(measure_start.into()).await;
    let own_cpu_start = procfs::cpu_time(Pid::Own);
    for server in &mut servers {
        server.cpu_start = procfs::cpu_time(Pid::Other(server.pid));
    }
    tokio::time::sleep_until(measure_end.into()).await;
    let own_cpu_end = procfs::cpu_time(Pid::Own);
    let server_cpu_end: Vec<_> = servers
        .iter()
        .map(|s| procfs::cpu_time(Pid::Other(s.pid)))
        .collect();

    // Drain: senders stop; wait for what is still in flight.
    phase_tx.send_replace(Phase::Drain);
    let drain_started = Instant::now();
    let presence_on = args.presence_rate > 0.0 && plan.presence_users > 0;
    let drained = || {
        counters.senders_active.load(Ordering::Acquire) == 0
            && get(&counters.updates_delivered) >= get(&counters.updates_expected)
            && (!presence_on
                || get(&counters.presence_delivered) >= get(&counters.presence_expected))
            // Acks may trail deliveries (with `--fsync 1s` by up to a second): the last
            // measured updates' acks must be in before the histogram is read.
            && get(&counters.acks_received) >= get(&counters.acks_expected)
    };
    while !drained() && drain_started.elapsed() < args.drain_timeout {
        tokio::time::sleep(POLL).await;
    }
    let drain_complete = drained();
    let drain_ms = drain_started.elapsed().as_secs_f64() * 1000.0;
    let servers: Vec<ServerReport> = servers
        .iter()
        .zip(server_cpu_end)
        .map(|(s, cpu_end)| ServerReport {
            pid: s.pid,
            cpu_percent: procfs::cpu_percent(s.cpu_start, cpu_end, args.duration),
            // Filled in with the generator's figure, once the deliveries are counted.
            cpu_us_per_delivery: None,
            rss_kib_before: s.rss_before,
            rss_kib_after: procfs::rss_kib(Pid::Other(s.pid)),
            peak_rss_kib: procfs::peak_rss_kib(Pid::Other(s.pid)),
        })
        .collect();
    phase_tx.send_replace(Phase::Stop);
    let outcomes = collect(tasks).await;
    live.finish();

    let chart = match &args.chart {
        Some(path) => {
            let title = format!(
                "{} rooms × {} users, {} typists at {}/s",
                args.rooms, args.users, args.typists, args.rate
            );
            crate::chart::write_latency_chart(path, &recorder::lock(&shared.recorder), &title)?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let cpu_percent = procfs::cpu_percent(own_cpu_start, own_cpu_end, args.duration);
    Ok(build_report(Inputs {
        args,
        plan: &plan,
        shared: &shared,
        outcomes: &outcomes,
        cpu_percent,
        servers,
        drain_complete,
        drain_ms,
        chart,
    }))
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Outcome>>) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        // A user task that panicked is reported by its absence (it counts as neither synced
        // nor failed), so only successful joins are kept.
        if let Ok(outcome) = task.await {
            outcomes.push(outcome);
        }
    }
    outcomes
}

struct Inputs<'a> {
    args: &'a RunArgs,
    plan: &'a Plan,
    shared: &'a Shared,
    outcomes: &'a [Outcome],
    cpu_percent: Option<f64>,
    servers: Vec<ServerReport>,
    drain_complete: bool,
    drain_ms: f64,
    chart: Option<String>,
}

fn build_report(inputs: Inputs<'_>) -> RunReport {
    let Inputs {
        args,
        plan,
        shared,
        outcomes,
        ..
    } = inputs;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let c = &shared.counters;
    let window_s = args.duration.as_secs_f64();

    let mut loss = LossCount::default();
    let mut presence_missing = 0;
    for outcome in outcomes.iter().filter(|o| o.synced) {
        let ledger = &plan.ledgers[outcome.spec.room];
        loss += outcome.tally.loss(ledger, outcome.spec.client);
        presence_missing += missing_final_presence(outcome, ledger, outcomes);
    }
    let recorder = recorder::lock(&shared.recorder);
    let update_latency = recorder.updates.summary();
    let presence_latency = recorder.presence.summary();
    let ack_latency = recorder.acks.summary();
    let cross_node =
        (args.urls.len() > 1).then(|| LatencySummary::from_histogram(&recorder.updates.cross_node));
    drop(recorder);

    // Both sides' CPU is taken over the measured window, and the deliveries counted are those of
    // updates and presence sent in it: the same ratio the benchmarks give the server.
    let deliveries = update_latency.count + presence_latency.count;
    let per_delivery = |cpu| report::cpu_us_per_delivery(cpu, window_s, deliveries);
    let servers: Vec<ServerReport> = inputs
        .servers
        .into_iter()
        .map(|s| ServerReport {
            cpu_us_per_delivery: per_delivery(s.cpu_percent),
            ..s
        })
        .collect();
    let schedule_lag = LatencySummary::from_histogram(&lock(&shared.schedule_lag));
    let cores = procfs::cores();
    let saturated = inputs
        .cpu_percent
        .is_some_and(|cpu| cpu >= SATURATED_CPU_SHARE * 100.0 * cores as f64);

    let updates = UpdateReport {
        sent: get(&c.updates_sent),
        expected: get(&c.updates_expected),
        delivered: get(&c.updates_delivered),
        deliveries_per_sec: update_latency.count as f64 / window_s,
        lost: loss.lost,
        duplicated: get(&c.updates_duplicated),
        echoed: get(&c.updates_echoed),
        unknown: get(&c.updates_unknown),
        merged: get(&c.updates_merged),
        latency_ms: update_latency,
        cross_node_latency_ms: cross_node,
    };
    let presence = (plan.presence_users > 0).then(|| PresenceReport {
        sent: get(&c.presence_sent),
        expected: get(&c.presence_expected),
        delivered: get(&c.presence_delivered),
        deliveries_per_sec: presence_latency.count as f64 / window_s,
        stale: get(&c.presence_stale),
        echoed: get(&c.presence_echoed),
        unknown: get(&c.presence_unknown),
        final_state_missing: presence_missing,
        latency_ms: presence_latency,
    });
    let acks = (args.wire.protocol == Protocol::Hocuspocus).then(|| AckReport {
        expected: get(&c.acks_expected),
        received: get(&c.acks_received),
        refused: get(&c.acks_refused),
        unmatched: get(&c.acks_unmatched),
        pending: outcomes.iter().map(|o| o.acks_pending).sum(),
        latency_ms: ack_latency,
    });
    let errors = {
        let mut errors: Vec<String> = outcomes.iter().filter_map(|o| o.error.clone()).collect();
        errors.sort();
        errors.dedup();
        errors.truncate(MAX_LISTED);
        errors
    };
    let connections = ConnectionReport {
        attempted: plan.specs.len() as u64,
        synced: get(&c.synced),
        failed: get(&c.failed),
        disconnected: get(&c.disconnected),
        handshake_ms: LatencySummary::from_histogram(&lock(&shared.handshakes)),
        errors,
    };
    let verify = args.verify.then(|| {
        verify(
            plan,
            outcomes,
            &connections,
            &updates,
            presence.as_ref(),
            loss,
        )
    });
    RunReport {
        settings: RunSettings {
            urls: args.urls.clone(),
            protocol: args.wire.protocol,
            rooms: args.rooms,
            users_per_room: args.users,
            typists_per_room: args.typists,
            rate: args.rate,
            burst: args.burst,
            presence_users_per_room: plan.presence_users,
            presence_rate: args.presence_rate,
            warmup_s: args.warmup.as_secs_f64(),
            duration_s: window_s,
            doc_prefix: plan.prefix.clone(),
            verify: args.verify,
        },
        connections,
        updates,
        acks,
        presence,
        bytes: ByteReport {
            sent: get(&c.bytes_sent),
            received: get(&c.bytes_received),
        },
        malformed: get(&c.malformed),
        denied: get(&c.denied),
        drain_complete: inputs.drain_complete,
        drain_ms: inputs.drain_ms,
        generator: GeneratorReport {
            cpu_percent: inputs.cpu_percent,
            cpu_us_per_delivery: per_delivery(inputs.cpu_percent),
            cores,
            saturated,
            ticks_late: schedule_lag.p99_ms > LATE_TICK_MS,
            schedule_lag_ms: schedule_lag,
            rss_kib: procfs::rss_kib(Pid::Own),
        },
        servers,
        verify,
        chart: inputs.chart,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Pairs (this receiver, a synced presence sender of its room) where the receiver's last state
/// from that sender is not the sender's final one.
fn missing_final_presence(receiver: &Outcome, ledger: &RoomLedger, outcomes: &[Outcome]) -> u64 {
    let synced_senders: Vec<u64> = outcomes
        .iter()
        .filter(|o| {
            o.synced && o.spec.room == receiver.spec.room && o.spec.client != receiver.spec.client
        })
        .map(|o| o.spec.client)
        .collect();
    synced_senders
        .iter()
        .filter_map(|client| ledger.presence.get(client))
        .filter(|log| {
            log.last_clock()
                .is_some_and(|last| receiver.presence_seen.get(&log.client) != Some(&last))
        })
        .count() as u64
}

fn verify(
    plan: &Plan,
    outcomes: &[Outcome],
    connections: &ConnectionReport,
    updates: &UpdateReport,
    presence: Option<&PresenceReport>,
    loss: LossCount,
) -> VerifyReport {
    let mut problems = Vec::new();
    if connections.failed > 0 || connections.disconnected > 0 {
        problems.push(format!(
            "{} connections failed and {} dropped: not every user took part",
            connections.failed, connections.disconnected
        ));
    }
    if loss.lost > 0 || updates.duplicated > 0 {
        problems.push(format!(
            "{} deliveries lost and {} duplicated (every update must reach every other user of its room exactly once)",
            loss.lost, updates.duplicated
        ));
    }
    if updates.unknown > 0 {
        problems.push(format!(
            "{} updates matched no typist's log",
            updates.unknown
        ));
    }
    if let Some(p) = presence.filter(|p| p.final_state_missing > 0) {
        problems.push(format!(
            "{} (receiver, sender) pairs never got the sender's final presence state",
            p.final_state_missing
        ));
    }

    // Each room: every synced user's document must have the same state vector and text.
    let mut rooms: HashMap<usize, Vec<&Outcome>> = HashMap::new();
    for outcome in outcomes.iter().filter(|o| o.synced && o.doc.is_some()) {
        rooms.entry(outcome.spec.room).or_default().push(outcome);
    }
    let mut rooms_diverged = 0;
    let mut room_ids: Vec<_> = rooms.keys().copied().collect();
    room_ids.sort_unstable();
    for room in &room_ids {
        let states: Vec<(u64, Vec<u8>, String)> = rooms[room]
            .iter()
            .filter_map(|o| {
                let doc = o.doc.as_ref()?;
                let txn = doc.transact();
                let text = txn
                    .get_text("t")
                    .map(|t| t.get_string(&txn))
                    .unwrap_or_default();
                Some((o.spec.client, txn.state_vector().encode_v1(), text))
            })
            .collect();
        let Some((first_client, first_sv, first_text)) = states.first() else {
            continue;
        };
        let differing: Vec<u64> = states
            .iter()
            .filter(|(_, sv, text)| sv != first_sv || text != first_text)
            .map(|(client, _, _)| *client)
            .collect();
        if !differing.is_empty() {
            rooms_diverged += 1;
            if problems.len() < MAX_LISTED {
                problems.push(format!(
                    "room {}-{room}: {} of {} documents differ from client {first_client}'s ({} chars), e.g. client {}",
                    plan.prefix,
                    differing.len(),
                    states.len(),
                    first_text.len(),
                    differing[0]
                ));
            }
        }
    }
    VerifyReport {
        ok: problems.is_empty() && rooms_diverged == 0,
        rooms_checked: room_ids.len(),
        rooms_diverged,
        problems,
    }
}
