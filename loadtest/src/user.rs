//! One simulated user of a `run`: connect, sync, then type and/or send presence while counting
//! and timing what arrives from the others.
//!
//! A user reads its socket through [`crate::wire`]: every read takes what the kernel holds, and
//! each message is looked at in place ([`crate::incoming`]), so a delivery costs no allocation
//! and no decoding beyond the struct headers that tell which clocks an update covers (or, for
//! presence, the entry headers). Only a user that keeps a document (a typist, or any user with
//! `--verify`) applies what it receives.
//!
//! With `--protocol hocuspocus` a user does what `@hocuspocus/provider` does on its own socket:
//! a token message, then the same sync and awareness messages, each prefixed with the document
//! name. The server answers every update and sync step 2 with a sync status, in order; a typist
//! matches each status to the oldest update still waiting for one, which gives the ack latency
//! (from send to status) beside the delivery latency.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use chorus_protocol::AwarenessEntry;
use chorus_protocol::awareness::encode_entries;
use chorus_protocol::hocuspocus::PONG;
use chorus_protocol::message::{SYNC_STEP1, SYNC_UPDATE, awareness_frame, sync_frame};
use chorus_protocol::update::{ClockRun, clock_runs_v1};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, watch};
use tokio::time::MissedTickBehavior;
use yrs::{Doc, Text, TextRef, Transact};

use crate::cli::Protocol;
use crate::client;
use crate::framing::{Framing, PROVIDER_VERSION};
use crate::incoming::{self, Incoming};
use crate::ledger::{DeliveryTally, IdMap, RoomLedger, SentLog};
use crate::recorder::{Kind, Sample, SampleBuffer, SharedRecorder};
use crate::update_id::first_struct_id;
use crate::wire::{self, Conn, Drained};

/// How long a user waits for its close handshake at the end; the run is over by then.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the run is; users follow it through a `watch` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Users connect; nobody sends.
    Connect,
    /// Typists type and presence users move their cursors, from `start` on.
    Load {
        /// When the first ticks are due.
        start: Instant,
    },
    /// Senders stop; receivers keep reading until every delivery is in.
    Drain,
    /// Close the connections.
    Stop,
}

/// What a user is and where it connects.
#[derive(Debug, Clone)]
pub struct UserSpec {
    /// Room index.
    pub room: usize,
    /// The Yjs client id of the user's document and presence.
    pub client: u64,
    /// Index of the server URL it connects to.
    pub node: usize,
    /// The WebSocket URL: y-websocket, the document's; Hocuspocus, the socket's.
    pub url: String,
    /// The document name (Hocuspocus frames carry it).
    pub doc: String,
    /// Its update log, if it types.
    pub typist: Option<Arc<SentLog>>,
    /// Its presence log, if it sends presence.
    pub presence: Option<Arc<SentLog>>,
    /// When to start connecting, from the run's epoch (ramp-up).
    pub connect_at: Duration,
}

/// Settings every user of a run shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Updates per second per typist.
    pub rate: f64,
    /// Presence updates per second per presence user.
    pub presence_rate: f64,
    /// Characters per update.
    pub update_chars: usize,
    /// Updates per typing tick, sent in one write.
    pub burst: u32,
    /// Keep a document and apply everything received.
    pub verify: bool,
    /// Connect + handshake limit.
    pub handshake_timeout: Duration,
    /// The protocol users speak.
    pub protocol: Protocol,
    /// Hocuspocus: the token sent before syncing.
    pub token: String,
}

/// Run-wide counters, read live by the progress line and at the end by the report.
#[derive(Debug, Default)]
pub struct Counters {
    /// Handshakes completed.
    pub synced: AtomicU64,
    /// Connections that failed to connect or sync.
    pub failed: AtomicU64,
    /// Connections that ended before the run did.
    pub disconnected: AtomicU64,
    /// Updates sent by typists.
    pub updates_sent: AtomicU64,
    /// Deliveries the senders expect: each update times the other synced users of its room.
    pub updates_expected: AtomicU64,
    /// First deliveries of updates to users other than their sender.
    pub updates_delivered: AtomicU64,
    /// Repeated deliveries of an update to the same user.
    pub updates_duplicated: AtomicU64,
    /// Updates echoed back to their sender (the interface forwards to the others only).
    pub updates_echoed: AtomicU64,
    /// Updates that match nobody's log (another client wrote them).
    pub updates_unknown: AtomicU64,
    /// First deliveries that came inside another sent update (the server merged a burst): a
    /// burst of N merged into one counts N − 1.
    pub updates_merged: AtomicU64,
    /// Users that may still send. The drain waits for this to reach zero before comparing
    /// deliveries with expectations: a tick that raced the phase change may still be sending.
    pub senders_active: AtomicU64,
    /// Presence states sent.
    pub presence_sent: AtomicU64,
    /// Presence deliveries the senders expect (without any server-side coalescing).
    pub presence_expected: AtomicU64,
    /// Presence states received by users other than their sender, newer than the last seen.
    pub presence_delivered: AtomicU64,
    /// Presence states received that were not newer than the last one seen from that client.
    pub presence_stale: AtomicU64,
    /// Presence states echoed back to their sender.
    pub presence_echoed: AtomicU64,
    /// Presence states from clients no user sent.
    pub presence_unknown: AtomicU64,
    /// Frames that did not decode, or updates yrs refused.
    pub malformed: AtomicU64,
    /// Permission-denied messages received.
    pub denied: AtomicU64,
    /// Hocuspocus: sync statuses the typists' updates call for (one per update).
    pub acks_expected: AtomicU64,
    /// Hocuspocus: sync statuses received for updates, applied or refused.
    pub acks_received: AtomicU64,
    /// Hocuspocus: sync statuses that refused an update (`SyncStatus(0)`).
    pub acks_refused: AtomicU64,
    /// Hocuspocus: sync statuses with nothing sent left to answer.
    pub acks_unmatched: AtomicU64,
    /// WebSocket payload bytes sent.
    pub bytes_sent: AtomicU64,
    /// WebSocket payload bytes received.
    pub bytes_received: AtomicU64,
}

/// Adds `n` to a shared counter (relaxed: counters are only read once the run is over).
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// State every user of a run shares.
#[derive(Debug)]
pub struct Shared {
    /// Time zero of the run; all timestamps are nanoseconds since it.
    pub epoch: Instant,
    /// Run settings.
    pub settings: Settings,
    /// Counters.
    pub counters: Counters,
    /// Delivery latency.
    pub recorder: SharedRecorder,
    /// Handshake durations (microseconds).
    pub handshakes: Mutex<Histogram<u64>>,
    /// How late typing and presence ticks fire (microseconds): a busy generator shows here.
    pub schedule_lag: Mutex<Histogram<u64>>,
    /// Limits handshakes in flight.
    pub connect_gate: Semaphore,
    /// Synced users per room, set before the load starts.
    pub room_synced: Vec<AtomicU64>,
}

impl Shared {
    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

fn record_micros(histogram: &Mutex<Histogram<u64>>, elapsed: Duration) {
    let micros = (elapsed.as_micros() as u64).max(1);
    histogram
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .saturating_record(micros);
}

/// What a user ends with.
#[derive(Debug)]
pub struct Outcome {
    /// Who it was.
    pub spec: UserSpec,
    /// It completed the handshake.
    pub synced: bool,
    /// Why it failed or ended early.
    pub error: Option<String>,
    /// Which updates it received how often.
    pub tally: DeliveryTally,
    /// The last presence clock seen from each other client.
    pub presence_seen: IdMap<u32>,
    /// Its document, when it kept one.
    pub doc: Option<Doc>,
    /// Hocuspocus: its updates still waiting for a sync status when it stopped.
    pub acks_pending: u64,
}

/// Runs one user until the run stops. Never panics on what the server sends.
pub async fn run_user(
    spec: UserSpec,
    ledger: Arc<RoomLedger>,
    shared: Arc<Shared>,
    phase: watch::Receiver<Phase>,
) -> Outcome {
    let mut user = User::new(spec, ledger, shared);
    let error = user.run(phase).await.err().map(|e| format!("{e:#}"));
    user.flush();
    Outcome {
        spec: user.spec,
        synced: user.synced,
        error,
        tally: user.tally,
        presence_seen: user.presence_seen,
        doc: user.doc.map(|(doc, _)| doc),
        acks_pending: user.acks.iter().filter(|sent| sent.is_some()).count() as u64,
    }
}
struct User {
    spec: UserSpec,
    ledger: Arc<RoomLedger>,
    shared: Arc<Shared>,
    doc: Option<(Doc, TextRef)>,
    handshake: Handshake,
    synced: bool,
    tally: DeliveryTally,
    presence_seen: IdMap<u32>,
    presence_clock: u32,
    update_samples: SampleBuffer,
    presence_samples: SampleBuffer,
    ack_samples: SampleBuffer,
    counts: LocalCounts,
    chunk: String,
    /// Hocuspocus: what the next sync statuses answer, oldest first: an update's send time,
    /// or `None` for our sync step 2 (acknowledged too, but not a typist's update).
    acks: VecDeque<Option<u64>>,
    /// How its messages go on the wire.
    framing: Framing,
}

/// How far the sync handshake is.
#[derive(Debug, Default)]
struct Handshake {
    /// When the TCP connect started.
    started: Option<Instant>,
    /// The server's step 1 arrived (and was answered).
    got_step1: bool,
    /// The server's step 2 arrived.
    got_step2: bool,
}

/// The counters every delivery touches, added up per batch of frames read and then added to
/// the shared [`Counters`] once: atomics written from both cores on every frame were a
/// visible share of the generator's CPU.
#[derive(Debug, Default)]
struct LocalCounts {
    bytes_received: u64,
    updates_delivered: u64,
    updates_merged: u64,
    presence_delivered: u64,
}

impl LocalCounts {
    fn flush(&mut self, counters: &Counters) {
        let Self {
            bytes_received,
            updates_delivered,
            updates_merged,
            presence_delivered,
        } = std::mem::take(self);
        for (counter, n) in [
            (&counters.bytes_received, bytes_received),
            (&counters.updates_delivered, updates_delivered),
            (&counters.updates_merged, updates_merged),
            (&counters.presence_delivered, presence_delivered),
        ] {
            if n > 0 {
                add(counter, n);
            }
        }
    }
}

impl User {
    fn new(spec: UserSpec, ledger: Arc<RoomLedger>, shared: Arc<Shared>) -> Self {
        let keep_doc = spec.typist.is_some() || shared.settings.verify;
        let doc = keep_doc.then(|| {
            let doc = Doc::with_client_id(spec.client);
            let text = doc.get_or_insert_text("t");
            (doc, text)
        });
        let letter = char::from(b'a' + (spec.client % 26) as u8);
        let chunk = std::iter::repeat_n(letter, shared.settings.update_chars.max(1)).collect();
        let settings = &shared.settings;
        let framing = Framing::new(settings.protocol, &spec.doc, &settings.token);
        Self {
            spec,
            ledger,
            shared,
            doc,
            handshake: Handshake::default(),
            synced: false,
            tally: DeliveryTally::default(),
            presence_seen: IdMap::default(),
            presence_clock: 0,
            update_samples: SampleBuffer::new(Kind::Update),
            presence_samples: SampleBuffer::new(Kind::Presence),
            ack_samples: SampleBuffer::new(Kind::Ack),
            counts: LocalCounts::default(),
            chunk,
            acks: VecDeque::new(),
            framing,
        }
    }

    fn flush(&mut self) {
        self.counts.flush(&self.shared.counters);
        self.update_samples.flush(&self.shared.recorder);
        self.presence_samples.flush(&self.shared.recorder);
        self.ack_samples.flush(&self.shared.recorder);
    }

    fn hocuspocus(&self) -> bool {
        self.shared.settings.protocol == Protocol::Hocuspocus
    }

    /// Queues a y-websocket-shaped message (`varUint(type) • payload`) for the server, in the
    /// run's protocol: as is, or prefixed with the document name.
    fn queue(&self, out: &mut Vec<u8>, body: &[u8]) {
        let prefix = self.framing.prefix();
        add(
            &self.shared.counters.bytes_sent,
            (prefix.len() + body.len()) as u64,
        );
        if prefix.is_empty() {
            wire::queue_binary(out, body);
        } else {
            wire::queue_binary(out, &self.framing.frame(body));
        }
    }

    async fn run(&mut self, phase: watch::Receiver<Phase>) -> anyhow::Result<()> {
        let shared = Arc::clone(&self.shared);
        tokio::time::sleep_until((shared.epoch + self.spec.connect_at).into()).await;
        let mut conn = match self.connect().await {
            Ok(conn) => conn,
            Err(e) => {
                add(&shared.counters.failed, 1);
                return Err(e);
            }
        };
        let result = self.session(&mut conn, phase).await;
        if result.is_err() {
            add(&shared.counters.disconnected, 1);
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close()).await;
        result
    }

    async fn connect(&mut self) -> anyhow::Result<Conn> {
        let shared = Arc::clone(&self.shared);
        // The semaphore is never closed, so acquiring only fails if it were; treat as an error.
        let _permit = shared.connect_gate.acquire().await?;
        client::handshake_within(shared.settings.handshake_timeout, self.handshake()).await
    }

    /// Does what `WebsocketProvider` does (see [`crate::client`]): sends step 1 on open,
    /// answers the server's step 1, and is synced once the server's step 2 is in as well.
    /// Frames that arrive meanwhile (presence, updates) are handled as they come. A Hocuspocus
    /// user sends its token first, in the same write, as the provider does on open.
    async fn handshake(&mut self) -> anyhow::Result<Conn> {
        self.handshake.started = Some(Instant::now());
        let mut conn = Conn::connect(&self.spec.url, self.doc.is_some()).await?;
        if let Some(token) = self.framing.token_frame(Some(PROVIDER_VERSION)) {
            add(&self.shared.counters.bytes_sent, token.len() as u64);
            wire::queue_binary(conn.out(), &token);
        }
        let step1 = sync_frame(
            SYNC_STEP1,
            &client::local_state_vector(self.doc.as_ref().map(|(doc, _)| doc)),
        );
        self.send(&mut conn, &step1)
            .await
            .context("sending step 1")?;
        while !self.synced {
            conn.read().await.context("reading during the handshake")?;
            self.read_frames(&mut conn)?;
            conn.flush().await.context("sending step 2")?;
        }
        Ok(conn)
    }

    async fn session(
        &mut self,
        conn: &mut Conn,
        mut phase: watch::Receiver<Phase>,
    ) -> anyhow::Result<()> {
        let current = *phase.borrow_and_update();
        // One long-lived wait for the next phase: a `changed()` made afresh on every turn of
        // the loop below would join and leave the channel's waiter list, which every user
        // shares, once per frame read.
        let mut phases = Box::pin(futures_util::stream::unfold(phase, |mut rx| async move {
            rx.changed().await.ok()?;
            let phase = *rx.borrow_and_update();
            Some((phase, rx))
        }));
        // Until the load starts: keep reading (the server may send presence, and pings need us
        // to poll the socket).
        let start = match current {
            Phase::Load { start } => start,
            Phase::Drain | Phase::Stop => return Ok(()),
            Phase::Connect => loop {
                tokio::select! {
                    next = phases.next() => match next {
                        Some(Phase::Connect) => {}
                        Some(Phase::Load { start }) => break start,
                        Some(Phase::Drain | Phase::Stop) | None => return Ok(()),
                    },
                    read = conn.read() => self.receive(conn, read).await?,
                }
            },
        };

        let settings = self.shared.settings.clone();
        let mut typing = ticker(start, settings.rate, self.spec.typist.is_some());
        let mut presence = ticker(start, settings.presence_rate, self.spec.presence.is_some());
        let shared = Arc::clone(&self.shared);
        let mut sending = SendingGuard::new(
            &shared.counters.senders_active,
            typing.is_some() || presence.is_some(),
        );
        loop {
            tokio::select! {
                next = phases.next() => match next {
                    Some(Phase::Connect | Phase::Load { .. }) => {}
                    Some(Phase::Drain) => sending.stop(),
                    Some(Phase::Stop) | None => return Ok(()),
                },
                read = conn.read() => self.receive(conn, read).await?,
                due = tick(&mut typing), if sending.active() && typing.is_some() => {
                    self.note_lag(due);
                    self.type_once(conn).await?;
                }
                due = tick(&mut presence), if sending.active() && presence.is_some() => {
                    self.note_lag(due);
                    self.move_cursor(conn).await?;
                }
            }
        }
    }

    fn note_lag(&self, due: tokio::time::Instant) {
        record_micros(&self.shared.schedule_lag, due.elapsed());
    }

    /// Handles what one read brought in and sends what it calls for (pongs, a step 2).
    async fn receive(&mut self, conn: &mut Conn, read: anyhow::Result<()>) -> anyhow::Result<()> {
        read?;
        self.read_frames(conn)?;
        conn.flush().await
    }

    /// Handles every complete frame read so far.
    fn read_frames(&mut self, conn: &mut Conn) -> anyhow::Result<()> {
        let drained = conn.drain(|message, out| self.handle(message, out));
        self.counts.flush(&self.shared.counters);
        match drained? {
            Drained::Open => Ok(()),
            Drained::Closed(code) if self.synced => {
                anyhow::bail!("server closed the connection: code {code:?}")
            }
            Drained::Closed(code) => {
                anyhow::bail!("server closed the connection during the handshake: code {code:?}")
            }
        }
    }

    fn handle(&mut self, message: wire::Message<'_>, out: &mut Vec<u8>) -> anyhow::Result<()> {
        self.counts.bytes_received += message.len as u64;
        let parsed = if self.hocuspocus() {
            incoming::parse_hocuspocus(message.bytes, message.whole, &self.spec.doc)
        } else {
            incoming::parse(message.bytes, message.whole)
        };
        match parsed {
            // Updates always come whole ([`wire`] cuts only a step 2 short).
            Ok(Incoming::Update(update)) => self.on_update(update),
            Ok(Incoming::Step2(update)) => {
                if message.whole {
                    self.apply(update);
                }
                self.handshake.got_step2 = true;
            }
            Ok(Incoming::Step1(sv)) => {
                let reply = client::step2_reply(self.doc.as_ref().map(|(doc, _)| doc), sv)?;
                self.queue(out, &reply);
                if self.hocuspocus() {
                    // The server acknowledges our step 2 too, in turn with our updates.
                    self.acks.push_back(None);
                }
                self.handshake.got_step1 = true;
            }
            Ok(Incoming::Awareness(payload)) => self.on_awareness(payload),
            Ok(Incoming::PermissionDenied) => add(&self.shared.counters.denied, 1),
            Ok(Incoming::Ignored) => {}
            Ok(Incoming::SyncStatus(applied)) => self.on_sync_status(applied),
            Ok(Incoming::Ping) => {
                add(&self.shared.counters.bytes_sent, 1);
                wire::queue_binary(out, &[PONG]);
            }
            Ok(Incoming::Closed) => anyhow::bail!("the server closed the document's session"),
            Ok(Incoming::OtherDocument) => add(&self.shared.counters.malformed, 1),
            Err(e) if !self.synced => {
                anyhow::bail!("malformed frame from the server during the handshake: {e}")
            }
            Err(_) => add(&self.shared.counters.malformed, 1),
        }
        if !self.synced && self.handshake.got_step1 && self.handshake.got_step2 {
            self.on_synced();
        }
        Ok(())
    }

    fn on_synced(&mut self) {
        let shared = &self.shared;
        if let Some(started) = self.handshake.started {
            record_micros(&shared.handshakes, started.elapsed());
        }
        self.synced = true;
        // Before the counter the orchestrator waits on, so the room's count is final when the
        // load starts.
        add(&shared.room_synced[self.spec.room], 1);
        add(&shared.counters.synced, 1);
    }

    fn apply(&mut self, update: &[u8]) {
        if let Some((doc, _)) = &self.doc
            && client::apply_update(doc, update).is_err()
        {
            add(&self.shared.counters.malformed, 1);
        }
    }

    /// A document update. Every sent update it holds counts as delivered at the time this one
    /// was read: a server may have merged several updates of one sender into it, so the clocks
    /// its structs cover are looked up, not only its first struct's.
    fn on_update(&mut self, update: &[u8]) {
        let received_ns = self.shared.now_ns();
        self.apply(update);
        let mut found = 0u64;
        let mut first_deliveries = 0u64;
        let mut echoed = false;
        let mut unknown = 0u64;
        let runs = clock_runs_v1(update, |ClockRun { client, clocks }| {
            if client == self.spec.client {
                echoed = true;
                return;
            }
            let Some(log) = self.ledger.updates.get(&client) else {
                unknown += 1;
                return;
            };
            let before = found;
            log.for_each_in(clocks, |index, sent_ns| {
                found += 1;
                if self.tally.record(client, index) {
                    first_deliveries += 1;
                    self.counts.updates_delivered += 1;
                    let sample = Sample {
                        sent_ns,
                        received_ns,
                        cross_node: log.node != self.spec.node,
                    };
                    self.update_samples.push(sample, &self.shared.recorder);
                } else {
                    add(&self.shared.counters.updates_duplicated, 1);
                }
            });
            if found == before {
                unknown += 1;
            }
        });
        let counters = &self.shared.counters;
        if runs.is_err() {
            add(&counters.malformed, 1);
        }
        if echoed {
            add(&counters.updates_echoed, 1);
        }
        if unknown > 0 {
            add(&counters.updates_unknown, unknown);
        }
        if first_deliveries > 1 {
            self.counts.updates_merged += first_deliveries - 1;
        }
    }

    /// A Hocuspocus sync status: the answer to the oldest of our updates (or our step 2)
    /// still waiting for one.
    fn on_sync_status(&mut self, applied: bool) {
        let received_ns = self.shared.now_ns();
        let counters = &self.shared.counters;
        match self.acks.pop_front() {
            None => add(&counters.acks_unmatched, 1),
            Some(None) => {}
            Some(Some(sent_ns)) => {
                add(&counters.acks_received, 1);
                if applied {
                    let sample = Sample {
                        sent_ns,
                        received_ns,
                        cross_node: false,
                    };
                    self.ack_samples.push(sample, &self.shared.recorder);
                } else {
                    add(&counters.acks_refused, 1);
                }
            }
        }
    }

    /// An awareness update `incoming::parse` has checked.
    fn on_awareness(&mut self, payload: &[u8]) {
        let received_ns = self.shared.now_ns();
        let counters = &self.shared.counters;
        for entry in incoming::awareness_entries(payload).map_while(Result::ok) {
            if entry.removal {
                continue;
            }
            if entry.client == self.spec.client {
                add(&counters.presence_echoed, 1);
                continue;
            }
            let Some((log, sent_ns)) = self
                .ledger
                .presence
                .get(&entry.client)
                .and_then(|log| log.find(entry.clock).map(|(_, sent)| (log, sent)))
            else {
                add(&counters.presence_unknown, 1);
                continue;
            };
            let last = self.presence_seen.entry(entry.client).or_insert(0);
            if entry.clock <= *last {
                add(&counters.presence_stale, 1);
                continue;
            }
            *last = entry.clock;
            self.counts.presence_delivered += 1;
            let sample = Sample {
                sent_ns,
                received_ns,
                cross_node: log.node != self.spec.node,
            };
            self.presence_samples.push(sample, &self.shared.recorder);
        }
    }

    /// Others in the room who should receive what this user sends.
    fn receivers(&self) -> u64 {
        let synced = self.shared.room_synced[self.spec.room].load(Ordering::Relaxed);
        synced.saturating_sub(1)
    }

    /// Sends one tick's updates: `--burst` of them, each its own transaction, in one write.
    async fn type_once(&mut self, conn: &mut Conn) -> anyhow::Result<()> {
        let (Some((doc, text)), Some(log)) = (&self.doc, &self.spec.typist) else {
            return Ok(());
        };
        let counters = &self.shared.counters;
        for _ in 0..self.shared.settings.burst {
            let update = {
                let mut txn = doc.transact_mut();
                let len = text.len(&txn);
                // With --verify the documents hold everyone's text: insert anywhere, so
                // concurrent edits interleave the way real ones do. Otherwise append to our
                // own text.
                let at = if self.shared.settings.verify {
                    fastrand::u32(0..=len)
                } else {
                    len
                };
                text.insert(&mut txn, at, &self.chunk);
                txn.encode_update_v1()
            };
            let id = first_struct_id(&update)?
                .ok_or_else(|| anyhow::anyhow!("yrs produced an update without structs"))?;
            let frame = sync_frame(SYNC_UPDATE, &update);
            let sent_ns = self.shared.now_ns();
            log.record(id.clock, sent_ns);
            add(&counters.updates_sent, 1);
            add(&counters.updates_expected, self.receivers());
            if self.hocuspocus() {
                self.acks.push_back(Some(sent_ns));
                add(&counters.acks_expected, 1);
            }
            self.queue(conn.out(), &frame);
        }
        conn.flush().await
    }

    async fn move_cursor(&mut self, conn: &mut Conn) -> anyhow::Result<()> {
        let Some(log) = self.spec.presence.clone() else {
            return Ok(());
        };
        self.presence_clock += 1;
        let at = fastrand::u32(0..10_000);
        let state = format!(
            r#"{{"user":{{"name":"user-{}"}},"cursor":{{"anchor":{at},"head":{at}}}}}"#,
            self.spec.client
        );
        let entry = AwarenessEntry {
            client: self.spec.client,
            clock: self.presence_clock,
            state: Bytes::from(state),
        };
        let frame = awareness_frame(&encode_entries([entry].iter()));
        log.record(self.presence_clock, self.shared.now_ns());
        let counters = &self.shared.counters;
        add(&counters.presence_sent, 1);
        add(&counters.presence_expected, self.receivers());
        self.send(conn, &frame).await
    }

    async fn send(&self, conn: &mut Conn, frame: &[u8]) -> anyhow::Result<()> {
        self.queue(conn.out(), frame);
        conn.flush().await
    }
}
/// Counts this user in [`Counters::senders_active`] until it stops sending or its session ends.
struct SendingGuard<'a>(Option<&'a AtomicU64>);

impl<'a> SendingGuard<'a> {
    fn new(active: &'a AtomicU64, sends: bool) -> Self {
        if sends {
            active.fetch_add(1, Ordering::Relaxed);
        }
        Self(sends.then_some(active))
    }

    fn active(&self) -> bool {
        self.0.is_some()
    }

    fn stop(&mut self) {
        if let Some(active) = self.0.take() {
            // Release: whoever sees the decrement also sees this user's last `updates_expected`
            // and `presence_expected` increments.
            active.fetch_sub(1, Ordering::Release);
        }
    }
}

impl Drop for SendingGuard<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A ticker for `rate` events per second, or none when disabled. Each user's first tick falls at
/// a random point of the first period, so a room's senders do not fire in lockstep; missed ticks
/// fire in a burst (open-loop load: a slow server does not lower the offered rate).
fn ticker(start: Instant, rate: f64, enabled: bool) -> Option<tokio::time::Interval> {
    if !enabled || !rate.is_finite() || rate <= 0.0 {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / rate);
    let first = start + period.mul_f64(fastrand::f64());
    let mut interval = tokio::time::interval_at(first.into(), period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    Some(interval)
}

/// The next tick of an enabled ticker (only polled when it is `Some`).
async fn tick(ticker: &mut Option<tokio::time::Interval>) -> tokio::time::Instant {
    match ticker {
        Some(interval) => interval.tick().await,
        None => std::future::pending().await,
    }
}
