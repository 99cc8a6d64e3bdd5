//! Frames that arrive for a document before it is authenticated.
//!
//! A provider sends its token and, without waiting, its sync step 1 and awareness; those wait
//! here until the token is checked. The queue is bounded per socket, as Hocuspocus bounds it
//! since advisory GHSA-xwhh-v746-pj9m: an unauthenticated client must not make the server hold
//! more than a few megabytes, or open documents without end. Past a bound the socket is closed
//! with 4205.

use std::collections::HashMap;

use chorus_protocol::hocuspocus::HocusMessage;

/// Bytes of frames a socket may have waiting for authentication, over all its documents.
pub(super) const MAX_QUEUED_BYTES: usize = 5 * 1024 * 1024;
/// Frames a socket may have waiting for authentication, over all its documents.
pub(super) const MAX_QUEUED_MESSAGES: usize = 1_000;
/// Documents a socket may have waiting for authentication at once.
pub(super) const MAX_PENDING_DOCUMENTS: usize = 100;

/// A bound was passed: the socket is closed with 4205.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Overflow(pub &'static str);

/// The documents of one socket that are not authenticated yet, and what waits for them.
#[derive(Debug, Default)]
pub(super) struct PreAuth {
    pending: HashMap<String, Pending>,
    bytes: usize,
    messages: usize,
}

#[derive(Debug, Default)]
struct Pending {
    queued: Vec<HocusMessage>,
    bytes: usize,
    /// A token is being checked; a second one waits in the queue like any frame.
    authenticating: bool,
}

impl PreAuth {
    /// Whether a token for `address` is being checked.
    pub(super) fn is_authenticating(&self, address: &str) -> bool {
        self.pending
            .get(address)
            .is_some_and(|pending| pending.authenticating)
    }

    /// Marks a token for `address` as being checked.
    ///
    /// # Errors
    /// [`Overflow`] when the address is new and [`MAX_PENDING_DOCUMENTS`] are pending.
    pub(super) fn start_authenticating(&mut self, address: &str) -> Result<(), Overflow> {
        self.entry(address)?.authenticating = true;
        Ok(())
    }

    /// Queues `message` (a frame of `len` bytes) for `address`.
    ///
    /// # Errors
    /// [`Overflow`] past any of the three bounds; nothing is queued then.
    pub(super) fn push(
        &mut self,
        address: &str,
        message: HocusMessage,
        len: usize,
    ) -> Result<(), Overflow> {
        if self.bytes + len > MAX_QUEUED_BYTES {
            return Err(Overflow("too many bytes queued before authentication"));
        }
        if self.messages + 1 > MAX_QUEUED_MESSAGES {
            return Err(Overflow("too many messages queued before authentication"));
        }
        let pending = self.entry(address)?;
        pending.queued.push(message);
        pending.bytes += len;
        self.bytes += len;
        self.messages += 1;
        Ok(())
    }

    /// Forgets `address`: its authentication ended (either way) or the provider left. Returns
    /// what was queued, in order, and whether a token was being checked.
    pub(super) fn take(&mut self, address: &str) -> Option<(Vec<HocusMessage>, bool)> {
        let pending = self.pending.remove(address)?;
        self.bytes -= pending.bytes;
        self.messages -= pending.queued.len();
        Some((pending.queued, pending.authenticating))
    }

    fn entry(&mut self, address: &str) -> Result<&mut Pending, Overflow> {
        if !self.pending.contains_key(address) {
            if self.pending.len() >= MAX_PENDING_DOCUMENTS {
                return Err(Overflow("too many documents waiting for authentication"));
            }
            self.pending.insert(address.to_owned(), Pending::default());
        }
        // Inserted just above when missing.
        self.pending
            .get_mut(address)
            .ok_or(Overflow("pending document vanished"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stateless(n: usize) -> HocusMessage {
        HocusMessage::Stateless(n.to_string())
    }

    #[test]
    fn queued_frames_come_back_in_order_and_free_their_share() {
        let mut queue = PreAuth::default();
        queue.start_authenticating("a").expect("room");
        queue.push("a", stateless(1), 10).expect("room");
        queue.push("a", stateless(2), 10).expect("room");
        assert!(queue.is_authenticating("a"));
        let (queued, authenticating) = queue.take("a").expect("pending");
        assert_eq!(queued, [stateless(1), stateless(2)]);
        assert!(authenticating);
        assert_eq!((queue.bytes, queue.messages), (0, 0));
        assert!(!queue.is_authenticating("a"));
    }

    #[test]
    fn the_byte_bound_counts_every_document() {
        let mut queue = PreAuth::default();
        queue
            .push("a", stateless(1), MAX_QUEUED_BYTES - 1)
            .expect("room");
        assert!(queue.push("b", stateless(2), 2).is_err());
        queue
            .push("b", stateless(2), 1)
            .expect("exactly at the bound");
    }

    #[test]
    fn the_message_bound_counts_every_document() {
        let mut queue = PreAuth::default();
        for n in 0..MAX_QUEUED_MESSAGES {
            queue
                .push(&format!("d{}", n % 10), stateless(n), 1)
                .expect("room");
        }
        assert!(queue.push("d0", stateless(0), 1).is_err());
        queue.take("d0");
        queue.push("d0", stateless(0), 1).expect("room again");
    }

    #[test]
    fn at_most_a_hundred_documents_wait() {
        let mut queue = PreAuth::default();
        for n in 0..MAX_PENDING_DOCUMENTS {
            queue.start_authenticating(&format!("d{n}")).expect("room");
        }
        assert!(queue.start_authenticating("one more").is_err());
        assert!(queue.push("one more", stateless(0), 1).is_err());
        queue
            .push("d0", stateless(0), 1)
            .expect("a pending one may queue");
    }
}
