//! Per-connection rules a client must keep: message rates, and what it may say about presence.

use chorus_protocol::AwarenessUpdate;
use serde::de::IgnoredAny;
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
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes `amount` tokens if there are enough.
    pub fn take(&mut self, amount: f64) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens < amount {
            return false;
        }
        self.tokens -= amount;
        true
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
    /// message rate and of `max_message_bytes` (so one whole offline document still fits).
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

    /// Counts one incoming frame of `len` bytes.
    ///
    /// # Errors
    /// 1008 when the connection sends faster than allowed.
    pub fn admit(&mut self, len: usize) -> Result<(), Violation> {
        if !self.messages.take(1.0) {
            return Err((close_code::POLICY, "too many messages per second".into()));
        }
        if !self.bytes.take(len as f64) {
            return Err((close_code::POLICY, "too many bytes per second".into()));
        }
        Ok(())
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

    #[test]
    fn rates_allow_bursts_then_refuse() {
        let mut rules = ConnectionRules::new(10, 1 << 20, 1 << 20);
        let admitted = (0..100).take_while(|_| rules.admit(10).is_ok()).count();
        assert_eq!(admitted, 20, "a burst of twice the rate");
    }
}
