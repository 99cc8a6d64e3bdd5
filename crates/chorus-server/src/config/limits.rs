//! How much one node, room, connection and document may take.

use clap::Args;

use super::setting;
use crate::room::DocLimits;
use crate::room::held::HeldLimits;

/// Smallest outbox: a joiner gets sync step 1, awareness and the answer to its step 1 at once.
const MIN_OUTBOX_CAPACITY: usize = 8;

/// Connections, rates and sizes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitsConfig {
    /// Connections this node accepts; beyond it new ones get HTTP 503.
    #[arg(long, env = "CHORUS_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// Connections one room accepts; beyond it new ones are closed with 1013.
    #[arg(long, env = "CHORUS_MAX_CONNECTIONS_PER_ROOM", default_value_t = 2_000)]
    pub max_connections_per_room: usize,

    /// Messages per second one connection may send (bursts of twice that); a faster client is
    /// slowed down: its socket is not read until it is back under the rate.
    // 1,000 rather than the 200 of when going over closed the connection (#15): the limit now
    // only shares the server out, it no longer has to catch abuse. What bounds it is the readers:
    // each message becomes a frame in every other connection's outbox (--outbox-capacity, 1,024
    // frames, then 1013). Measured with a reader in the writer's own process, so reading nothing
    // during the writer's one-second loop of 10,240 inserts: at 1,000 (bursts of 2,000) the
    // outbox and the socket buffers absorbed it; at 2,000 the reader was closed with 1013. The
    // loop then takes about 8 s instead of 50 s, well inside the 30 s after which a y-websocket
    // client that hears nothing drops its connection.
    #[arg(long, env = "CHORUS_MAX_MESSAGES_PER_SECOND", default_value_t = 1_000)]
    pub max_messages_per_second: u32,

    /// Bytes per second one connection may send (bursts up to --max-message-bytes); a faster
    /// client is slowed down: its socket is not read until it is back under the rate.
    // Unchanged by #15: a 10 MiB document typed in pieces fits in the burst, and an outbox is
    // counted in frames, which the message rate bounds.
    #[arg(long, env = "CHORUS_MAX_BYTES_PER_SECOND", default_value_t = 4 * 1024 * 1024)]
    pub max_bytes_per_second: u64,

    /// Largest WebSocket message accepted, in bytes; bigger ones close the connection (1009).
    #[arg(long, env = "CHORUS_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Largest size, in bytes (Yjs v1 encoding), clients may grow one document to; an update
    /// past it is refused and its sender closed with 1008.
    #[arg(long, env = "CHORUS_MAX_DOCUMENT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_document_bytes: usize,

    /// Most distinct client ids that may write to one document (every browser session is a new
    /// one; fake ones make yrs slow down for everybody); beyond: close 1008.
    #[arg(long, env = "CHORUS_MAX_DOCUMENT_CLIENTS", default_value_t = 65_536)]
    pub max_document_clients: usize,

    /// Most client ids new to a document that one connection may bring (a reconnecting
    /// client's offline edits name a few; a client inventing ids to fill the document's quota
    /// names thousands); beyond: close 1008.
    #[arg(
        long,
        env = "CHORUS_MAX_CLIENTS_PER_CONNECTION",
        default_value_t = chorus_protocol::update::DEFAULT_MAX_CLIENTS
    )]
    pub max_clients_per_connection: usize,

    /// Most structs and delete ranges one document keeps waiting for missing dependencies
    /// (an update adding more is dropped and its sender closed with 1008), and most updates
    /// one connection may have held back until the clocks they follow arrive.
    #[arg(long, env = "CHORUS_MAX_PENDING_STRUCTS", default_value_t = 10_000)]
    pub max_pending_structs: usize,

    /// Messages queued for one connection before it counts as too slow and is disconnected
    /// (it resynchronises when it reconnects).
    #[arg(long, env = "CHORUS_OUTBOX_CAPACITY", default_value_t = 1024)]
    pub outbox_capacity: usize,
}

impl LimitsConfig {
    /// What one document may hold.
    pub fn doc_limits(&self) -> DocLimits {
        DocLimits {
            max_bytes: self.max_document_bytes,
            max_clients: self.max_document_clients,
            max_clients_per_connection: self.max_clients_per_connection,
            max_pending: self.max_pending_structs,
        }
    }

    /// What one connection may have held back.
    pub fn held_limits(&self) -> HeldLimits {
        // Held updates wait for missing dependencies as yrs' pending structs do, so the same
        // setting bounds them, per connection. A client out of step holds what it typed during
        // a reconnect, or a sync step 2 with holes: a few updates, at most one message's worth
        // of bytes (twice, for the step 2 that may come with it).
        HeldLimits {
            max_updates: self.max_pending_structs,
            max_bytes: self.max_message_bytes.saturating_mul(2),
        }
    }

    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.outbox_capacity < MIN_OUTBOX_CAPACITY {
            problems.push(format!(
                "{} must be at least {MIN_OUTBOX_CAPACITY}: a joining client is sent several \
                 messages at once",
                setting("outbox-capacity")
            ));
        }
        if self.max_message_bytes < 1024 {
            problems.push(format!(
                "{} must be at least 1024; clients send whole offline edits in one message",
                setting("max-message-bytes")
            ));
        }
        for (name, value) in [
            ("max-connections", self.max_connections as u64),
            (
                "max-connections-per-room",
                self.max_connections_per_room as u64,
            ),
            (
                "max-messages-per-second",
                u64::from(self.max_messages_per_second),
            ),
            ("max-bytes-per-second", self.max_bytes_per_second),
        ] {
            if value == 0 {
                problems.push(format!("{} must be at least 1", setting(name)));
            }
        }
    }
}
