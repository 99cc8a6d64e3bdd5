//! A room's awareness table: who is here, their cursors and names, and which connection owns
//! which client id.
//!
//! Awareness is a tiny state-based CRDT (y-protocols `awareness.js`), so the room keeps it itself
//! instead of using yrs' `Awareness`: that gives the room ownership per connection, the 30 s
//! expiry yrs lacks, and removals it can forget once broadcast.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use chorus_protocol::awareness::{AwarenessEntry, NULL_STATE, encode_entries};
use chorus_protocol::message::awareness_frame;
use std::time::Instant;

use crate::ids::{ConnId, NodeId};

/// Who set a client's state, and so takes it along when it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A connection to this node.
    Local(ConnId),
    /// A connection to another node, as relayed.
    Remote(NodeId),
}

#[derive(Debug)]
struct ClientPresence {
    clock: u32,
    state: Bytes,
    owner: Owner,
    renewed: Instant,
}

/// The awareness states of one room.
#[derive(Debug, Default)]
pub struct Presence {
    clients: HashMap<u64, ClientPresence>,
}

impl Presence {
    /// Applies the entries a connection sent and returns those that changed something, ready to
    /// broadcast.
    ///
    /// An entry wins with a newer clock, or with the same clock when it removes the client
    /// (y-protocols' rule: a removal may repeat the last clock). Whoever last set a client's
    /// state owns it, so its states go when it disconnects.
    pub fn apply(
        &mut self,
        owner: Owner,
        entries: Vec<AwarenessEntry>,
        now: Instant,
    ) -> Vec<AwarenessEntry> {
        let mut accepted = Vec::with_capacity(entries.len());
        for entry in entries {
            let current = self.clients.get(&entry.client);
            // A client id held by one local connection cannot be set from another (the owner
            // may be a dead socket not yet detected; the id is free once it is dropped).
            if let (Owner::Local(_), Some(current)) = (owner, current)
                && matches!(current.owner, Owner::Local(_))
                && current.owner != owner
            {
                continue;
            }
            let newer = match current {
                None => !entry.is_removal(),
                Some(current) => {
                    current.clock < entry.clock
                        || (current.clock == entry.clock && entry.is_removal())
                }
            };
            if !newer {
                continue;
            }
            if entry.is_removal() {
                // Forget it once broadcast: a client reconnecting with the same id and clock
                // must be accepted again, not ignored until its next renewal.
                self.clients.remove(&entry.client);
            } else {
                self.clients.insert(
                    entry.client,
                    ClientPresence {
                        clock: entry.clock,
                        state: entry.state.clone(),
                        owner,
                        renewed: now,
                    },
                );
            }
            accepted.push(entry);
        }
        accepted
    }

    /// Removes every state `owner` set and returns the removals to broadcast.
    pub fn remove_owner(&mut self, owner: Owner) -> Vec<AwarenessEntry> {
        self.remove_where(|presence| presence.owner == owner)
    }

    /// Removes states not renewed within `timeout` and returns the removals to broadcast, with
    /// whether each was set by a local connection.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<(AwarenessEntry, bool)> {
        let mut expired = Vec::new();
        self.clients.retain(|&client, presence| {
            if now.duration_since(presence.renewed) < timeout {
                return true;
            }
            let local = matches!(presence.owner, Owner::Local(_));
            expired.push((removal(client, presence.clock), local));
            false
        });
        expired
    }

    /// The states set by this node's own connections, for another node that just arrived.
    pub fn local_entries(&self) -> Vec<AwarenessEntry> {
        self.clients
            .iter()
            .filter(|(_, presence)| matches!(presence.owner, Owner::Local(_)))
            .map(|(&client, presence)| AwarenessEntry {
                client,
                clock: presence.clock,
                state: presence.state.clone(),
            })
            .collect()
    }

    /// An awareness frame with every current state, for a joining or querying client; `None`
    /// when nobody has a state.
    pub fn full_frame(&self) -> Option<Bytes> {
        if self.clients.is_empty() {
            return None;
        }
        let entries: Vec<AwarenessEntry> = self
            .clients
            .iter()
            .map(|(&client, presence)| AwarenessEntry {
                client,
                clock: presence.clock,
                state: presence.state.clone(),
            })
            .collect();
        Some(frame(&entries))
    }

    /// Number of clients with a state.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// True when nobody has a state.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    fn remove_where(
        &mut self,
        mut gone: impl FnMut(&ClientPresence) -> bool,
    ) -> Vec<AwarenessEntry> {
        let mut removed = Vec::new();
        self.clients.retain(|&client, presence| {
            if !gone(presence) {
                return true;
            }
            removed.push(removal(client, presence.clock));
            false
        });
        removed
    }
}

fn removal(client: u64, clock: u32) -> AwarenessEntry {
    AwarenessEntry {
        client,
        clock,
        state: Bytes::from_static(NULL_STATE),
    }
}

/// Encodes entries as one awareness frame.
pub fn frame(entries: &[AwarenessEntry]) -> Bytes {
    awareness_frame(&encode_entries(entries.iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client: u64, clock: u32, state: &'static str) -> AwarenessEntry {
        AwarenessEntry {
            client,
            clock,
            state: Bytes::from_static(state.as_bytes()),
        }
    }

    #[test]
    fn newer_clocks_win_and_removals_may_repeat_the_clock() {
        let now = Instant::now();
        let (a, b) = (Owner::Local(ConnId::next()), Owner::Local(ConnId::next()));
        let mut presence = Presence::default();
        assert_eq!(
            presence.apply(a, vec![entry(1, 3, "{\"n\":1}")], now).len(),
            1
        );
        assert!(
            presence.apply(a, vec![entry(1, 2, "{}")], now).is_empty(),
            "older clock"
        );
        assert!(
            presence.apply(a, vec![entry(1, 3, "{}")], now).is_empty(),
            "same clock"
        );
        assert_eq!(presence.apply(b, vec![entry(2, 0, "{}")], now).len(), 1);
        assert_eq!(presence.apply(a, vec![entry(1, 3, "null")], now).len(), 1);
        assert_eq!(presence.len(), 1);
        // The removed client comes back with the same clock (a reconnect) and is accepted.
        assert_eq!(presence.apply(a, vec![entry(1, 3, "{}")], now).len(), 1);
    }

    #[test]
    fn a_connection_takes_its_states_with_it() {
        let now = Instant::now();
        let a = Owner::Local(ConnId::next());
        let b = Owner::Remote(NodeId(9));
        let mut presence = Presence::default();
        presence.apply(a, vec![entry(1, 0, "{}"), entry(2, 0, "{}")], now);
        presence.apply(b, vec![entry(3, 0, "{}")], now);
        assert_eq!(presence.local_entries().len(), 2);
        let mut removed: Vec<u64> = presence.remove_owner(a).iter().map(|e| e.client).collect();
        removed.sort_unstable();
        assert_eq!(removed, [1, 2]);
        assert_eq!(presence.len(), 1);
    }

    #[test]
    fn unrenewed_states_expire() {
        let start = Instant::now();
        let conn = Owner::Local(ConnId::next());
        let mut presence = Presence::default();
        presence.apply(conn, vec![entry(1, 0, "{}")], start);
        presence.apply(
            conn,
            vec![entry(2, 0, "{}")],
            start + Duration::from_secs(20),
        );
        let expired = presence.expire(start + Duration::from_secs(30), Duration::from_secs(30));
        assert_eq!(expired, vec![(entry(1, 0, "null"), true)]);
        assert!(presence.full_frame().is_some());
    }
}
