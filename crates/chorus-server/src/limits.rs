//! Per-connection rules a client must keep: message rates, and what it may say about presence.

use chorus_protocol::AwarenessUpdate;
use serde::de::IgnoredAny;
use std::time::Duration;

use tokio::time::Instant;

use crate::conn::close_code;

/// Largest awareness state (JSON text) one client may have.
pub const MAX_AWARENESS_STATE_BYTES: usize = 16 * 1024;
/// Largest clock step between two states of one client: the client bumps it by one per change,
/// so a leap can only be an attempt to make its state unchangeable (y-protocols ignores lower
/// clocks for ever).
const MAX_CLOCK_STEP: u32 = 1 << 20;

/// Sync step 1 and query-awareness messages answered per second per connection. Each answer can
/// be the whole document or every presence state, so a client asking in a loop would make the
/// server send far more than it receives; one a second (bursts of four) covers reconnects and
/// y-websocket's optional periodic resync.
const ANSWERS_PER_SECOND: f64 = 1.0;
const ANSWER_BURST: f64 = 4.0;

/// A token bucket: `rate` per second, bursts up to `burst`.
///
/// Time comes in as an argument (or from tokio's clock, which tests can pause), so the
/// arithmetic is tested without sleeping.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    /// Goes below zero when [`Bucket::charge`] takes more than there is: a debt the connection
    /// pays back by not reading for a while.
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket. A `rate` below one per second counts as one: the configuration refuses
    /// zero, and a smaller rate would make waits overflow.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate: rate.max(1.0),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// Takes `amount` tokens if there are enough.
    pub fn take(&mut self, amount: f64) -> bool {
        self.refill(Instant::now());
        if self.tokens < amount {
            return false;
        }
        self.tokens -= amount;
        true
    }

    /// Takes `amount` tokens whatever the balance and returns how long until the bucket is out
    /// of debt again (zero if it never went in).
    ///
    /// Taking first and waiting afterwards means an amount larger than the whole burst (one big
    /// message) is never refused and never waits for ever: it leaves a debt that takes
    /// `amount / rate` at most to pay back. The debt is bounded by the largest single amount, as
    /// long as the caller waits before charging again.
    pub fn charge(&mut self, amount: f64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= amount;
        if self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        // Finite and at most `amount` seconds: `rate` is at least one.
        Duration::from_secs_f64(-self.tokens / self.rate)
    }
}

/// What one connection has been allowed so far.
#[derive(Debug)]
pub struct ConnectionRules {
    messages: Bucket,
    bytes: Bucket,
    answers: Bucket,
    /// The awareness client id this connection announced first; the only one it may touch.
    own_client: Option<u64>,
    last_clock: Option<u32>,
}

/// A broken rule, with the close code it earns.
pub type Violation = (u16, String);

impl ConnectionRules {
    /// Rules allowing `messages_per_second` and `bytes_per_second`, with bursts of twice the
    /// message rate and of `max_message_bytes` (so one whole offline document goes through
    /// without a pause). Faster clients are slowed down to these rates, see [`Self::admit`].
    pub fn new(messages_per_second: u32, bytes_per_second: u64, max_message_bytes: usize) -> Self {
        let rate = f64::from(messages_per_second);
        let byte_rate = bytes_per_second as f64;
        Self {
            messages: Bucket::new(rate, (rate * 2.0).max(1.0)),
            bytes: Bucket::new(byte_rate, byte_rate.max(max_message_bytes as f64)),
            answers: Bucket::new(ANSWERS_PER_SECOND, ANSWER_BURST),
            own_client: None,
            last_clock: None,
        }
    }

    /// Counts one incoming frame of `len` bytes, received at `now`, and returns how long the
    /// connection must stop reading before it takes the next one ([`Duration::ZERO`]: go on).
    ///
    /// A client over its rate is slowed down, never refused: the frame it sent is already in
    /// memory (bounded by `--max-message-bytes`) and is processed; the connection then leaves
    /// the socket unread, so TCP makes the sender wait and nothing is lost.
    pub fn admit(&mut self, len: usize, now: Instant) -> Duration {
        let messages = self.messages.charge(1.0, now);
        let bytes = self.bytes.charge(len as f64, now);
        messages.max(bytes)
    }

    /// Counts a frame of `len` bytes that joins a burst merged into one message for the room
    /// (`crate::burst`): its bytes count, but only the burst counts as a message, since the
    /// room handles it as one.
    pub fn admit_in_burst(&mut self, len: usize, now: Instant) -> Duration {
        self.bytes.charge(len as f64, now)
    }

    /// Whether a message that asks for a (possibly large) answer may be answered now; beyond the
    /// rate it is ignored, not refused.
    pub fn may_answer(&mut self) -> bool {
        self.answers.take(1.0)
    }

    /// Keeps only the entries about the connection's own client id (the first it announced) and
    /// checks them: valid JSON under the size limit, no clock leaps.
    ///
    /// Entries about other clients are dropped, not refused: y-websocket clients echo every
    /// awareness change they receive back to the server, so they are routine, but they must never
    /// overwrite what the clients themselves said.
    ///
    /// # Errors
    /// 1008 for a rule broken, 1007 for a state that is not JSON.
    pub fn check_awareness(
        &mut self,
        mut update: AwarenessUpdate,
    ) -> Result<AwarenessUpdate, Violation> {
        if let Some(first) = update.entries.first() {
            self.own_client.get_or_insert(first.client);
        }
        update
            .entries
            .retain(|entry| Some(entry.client) == self.own_client);
        for entry in &update.entries {
            if entry.state.len() > MAX_AWARENESS_STATE_BYTES {
                return Err((close_code::POLICY, "awareness state too large".into()));
            }
            if serde_json::from_slice::<IgnoredAny>(&entry.state).is_err() {
                return Err((
                    close_code::INVALID_PAYLOAD,
                    "awareness state is not JSON".into(),
                ));
            }
            let leap = match self.last_clock {
                Some(last) => entry.clock > last.saturating_add(MAX_CLOCK_STEP),
                None => entry.clock > u32::MAX - MAX_CLOCK_STEP,
            };
            if leap {
                return Err((close_code::POLICY, "awareness clock leap".into()));
            }
            self.last_clock = Some(entry.clock.max(self.last_clock.unwrap_or(0)));
        }
        Ok(update)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use chorus_protocol::AwarenessEntry;

    fn update(client: u64, clock: u32, state: &'static str) -> AwarenessUpdate {
        AwarenessUpdate {
            entries: vec![AwarenessEntry {
                client,
                clock,
                state: Bytes::from_static(state.as_bytes()),
            }],
        }
    }

    #[test]
    fn a_connection_may_only_speak_for_its_first_client_id() {
        let mut rules = ConnectionRules::new(100, 1 << 20, 1 << 20);
        let kept = |r: Result<AwarenessUpdate, Violation>| r.map(|u| u.entries.len());
        assert_eq!(kept(rules.check_awareness(update(7, 0, "{}"))), Ok(1));
        assert_eq!(kept(rules.check_awareness(update(7, 1, "null"))), Ok(1));
        assert_eq!(
            kept(rules.check_awareness(update(8, 0, "{}"))),
            Ok(0),
            "echoes of others are dropped"
        );
    }

    #[test]
    fn states_must_be_small_json_and_clocks_must_not_leap() {
        let mut rules = ConnectionRules::new(100, 1 << 20, 1 << 20);
        assert_eq!(
            rules
                .check_awareness(update(1, 0, "{not json"))
                .map_err(|e| e.0),
            Err(1007)
        );
        let mut rules = ConnectionRules::new(100, 1 << 20, 1 << 20);
        assert_eq!(
            rules
                .check_awareness(update(1, u32::MAX, "{}"))
                .map_err(|e| e.0),
            Err(1008)
        );
        let mut rules = ConnectionRules::new(100, 1 << 20, 1 << 20);
        assert!(rules.check_awareness(update(1, 5, "{}")).is_ok());
        assert_eq!(
            rules
                .check_awareness(update(1, 5 + MAX_CLOCK_STEP + 1, "{}"))
                .map_err(|e| e.0),
            Err(1008)
        );
        let big: &'static str =
            Box::leak(format!("\"{}\"", "x".repeat(MAX_AWARENESS_STATE_BYTES)).into_boxed_str());
        let mut rules = ConnectionRules::new(100, 1 << 20, 1 << 20);
        assert_eq!(
            rules.check_awareness(update(1, 0, big)).map_err(|e| e.0),
            Err(1008)
        );
    }

    #[test]
    fn answers_are_rationed() {
        let mut rules = ConnectionRules::new(100, 1 << 20, 1 << 20);
        let answered = (0..20).filter(|_| rules.may_answer()).count();
        assert_eq!(answered, 4);
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn rates_allow_bursts_then_ask_to_wait() {
        let mut rules = ConnectionRules::new(10, 1 << 20, 1 << 20);
        let t0 = Instant::now();
        let free = (0..100)
            .take_while(|_| rules.admit(10, t0).is_zero())
            .count();
        assert_eq!(
            free, 20,
            "a burst of twice the rate goes through without a wait"
        );
        // The 21st message was taken too; the 22nd and later each add a tenth of a second.
        let wait = rules.admit(10, t0);
        assert!((secs(wait) - 0.2).abs() < 1e-6, "{wait:?}");
        // Once the debt is paid the next message costs its own tenth of a second again.
        let later = t0 + Duration::from_millis(200);
        let wait = rules.admit(10, later);
        assert!((secs(wait) - 0.1).abs() < 1e-6, "{wait:?}");
        // A long idle spell refills the burst, and no further.
        let idle = later + Duration::from_secs(60);
        let free = (0..100)
            .take_while(|_| rules.admit(10, idle).is_zero())
            .count();
        assert_eq!(free, 20);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_are_rationed_and_a_frame_larger_than_the_burst_still_passes() {
        // 1,000 bytes a second, bursts of 2,000 (the largest message).
        let mut rules = ConnectionRules::new(1_000_000, 1_000, 2_000);
        let t0 = Instant::now();
        assert!(rules.admit(2_000, t0).is_zero(), "the whole burst at once");
        let wait = rules.admit(5_000, t0);
        assert!((secs(wait) - 5.0).abs() < 1e-6, "{wait:?}");
        // After the wait the connection goes on at the byte rate: 100 bytes, a tenth of a second.
        let wait = rules.admit(100, t0 + Duration::from_secs(5));
        assert!((secs(wait) - 0.1).abs() < 1e-6, "{wait:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_as_told_keeps_a_flood_at_the_configured_rate() {
        // A client that always has the next message ready: the connection reads, admits and
        // sleeps as told. Paused time advances only by those sleeps.
        let mut rules = ConnectionRules::new(100, 1 << 30, 1 << 20);
        let start = Instant::now();
        for _ in 0..1_200 {
            let wait = rules.admit(1_000, Instant::now());
            tokio::time::sleep(wait).await;
        }
        let elapsed = secs(Instant::now() - start);
        // A burst of 200, then 1,000 more at 100 a second.
        assert!((elapsed - 10.0).abs() < 0.05, "{elapsed} s of virtual time");
    }
}
