//! Write-ahead: nothing leaves the room before the updates it carries are in the update log.
//!
//! Applied updates wait in `unlogged`; whatever the room would send because of them (the delta
//! to the other connections, a sync step 2 that contains them, the answer to a server write)
//! waits beside them. One append is in flight at a time; everything that arrives meanwhile goes
//! into the next one, so under load one fsync covers many updates (group commit). When an
//! append completes, what waited for it is released, in order.

use std::mem;

use bytes::Bytes;

use crate::ids::ConnId;

/// Something the room sends once the updates it depends on are durable.
#[derive(Debug, PartialEq)]
pub(crate) enum Outgoing<R> {
    /// A delta for every connection but `except`; `payload` (the same bytes) goes to the other
    /// nodes when `publish`.
    Broadcast {
        frame: Bytes,
        payload: Bytes,
        except: Option<ConnId>,
        publish: bool,
    },
    /// A frame for one connection (a sync step 2).
    Reply { conn: ConnId, frame: Bytes },
    /// A durable acknowledgement for one connection: unlike a reply, it is never sent for an
    /// append that was abandoned.
    Durable { conn: ConnId, frame: Bytes },
    /// The answer to a server-side write.
    Ack(R),
}

/// The room's side of its update log: what is logged, what waits, and what is in flight.
#[derive(Debug)]
pub(crate) struct WriteAhead<R> {
    unlogged: Vec<Bytes>,
    waiting: Vec<Outgoing<R>>,
    in_flight: Vec<Outgoing<R>>,
    appending: bool,
    /// Sequence number of the last record known to be in the log.
    logged_through: u64,
}

impl<R> Default for WriteAhead<R> {
    fn default() -> Self {
        Self {
            unlogged: Vec::new(),
            waiting: Vec::new(),
            in_flight: Vec::new(),
            appending: false,
            logged_through: 0,
        }
    }
}

impl<R> WriteAhead<R> {
    /// Records that the log holds records through `seq` (a loading room's replay).
    pub(crate) fn replayed_through(&mut self, seq: u64) {
        self.logged_through = self.logged_through.max(seq);
    }

    /// Last record a snapshot taken now is sure to cover.
    pub(crate) fn logged_through(&self) -> u64 {
        self.logged_through
    }

    /// An applied update and what to send because of it.
    pub(crate) fn push_update(&mut self, update: Bytes, then: Outgoing<R>) {
        self.unlogged.push(update);
        self.waiting.push(then);
    }

    /// A frame that may contain updates not yet logged: returned at once if everything applied
    /// is durable, held back otherwise.
    pub(crate) fn push_reply(&mut self, reply: Outgoing<R>) -> Option<Outgoing<R>> {
        if !self.appending && self.waiting.is_empty() {
            return Some(reply);
        }
        self.waiting.push(reply);
        None
    }

    /// A frame that depends on nothing but what is applied so far (a durable acknowledgement):
    /// when nothing waits, every applied update is logged or in the append in flight, so it
    /// rides that append (or goes at once when none runs); otherwise it waits with the rest.
    pub(crate) fn push_after_applied(&mut self, item: Outgoing<R>) -> Option<Outgoing<R>> {
        if !self.waiting.is_empty() {
            self.waiting.push(item);
            None
        } else if self.appending {
            self.in_flight.push(item);
            None
        } else {
            Some(item)
        }
    }

    /// The next batch to append, unless an append is already running; and what can go out at
    /// once (replies that depended on nothing unlogged).
    pub(crate) fn start(&mut self) -> (Option<Vec<Bytes>>, Vec<Outgoing<R>>) {
        if self.appending {
            return (None, Vec::new());
        }
        if self.unlogged.is_empty() {
            return (None, mem::take(&mut self.waiting));
        }
        self.appending = true;
        self.in_flight = mem::take(&mut self.waiting);
        (Some(mem::take(&mut self.unlogged)), Vec::new())
    }

    /// Whether an append is in flight.
    pub(crate) fn is_appending(&self) -> bool {
        self.appending
    }

    /// Records the append in flight as done (through `seq`, when it succeeded) and returns what
    /// waited for it.
    ///
    /// An append only fails when the server is shutting down (the driver retries otherwise);
    /// what it carried is then sent anyway, since the clients that sent those updates still
    /// hold them and upload them again when they reconnect.
    pub(crate) fn finish(&mut self, seq: Option<u64>) -> Vec<Outgoing<R>> {
        self.appending = false;
        if let Some(seq) = seq {
            self.logged_through = self.logged_through.max(seq);
        }
        mem::take(&mut self.in_flight)
    }

    /// For a deleted document: forgets everything not yet logged, what waits for it, and what
    /// waits for the append in flight (server writes among it are answered "room gone" and
    /// retried on the next room).
    pub(crate) fn forget(&mut self) {
        self.unlogged.clear();
        self.waiting.clear();
        self.in_flight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(n: u8) -> Outgoing<u8> {
        Outgoing::Ack(n)
    }

    fn acks(items: Vec<Outgoing<u8>>) -> Vec<u8> {
        items
            .into_iter()
            .map(|item| match item {
                Outgoing::Ack(n) => n,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_reply_goes_at_once_when_nothing_is_unlogged() {
        let mut log = WriteAhead::default();
        assert!(matches!(log.push_reply(reply(1)), Some(Outgoing::Ack(1))));
    }

    #[test]
    fn what_arrives_during_an_append_goes_into_the_next_one() {
        let mut log = WriteAhead::default();
        log.push_update(Bytes::from_static(b"a"), reply(1));
        let (batch, ready) = log.start();
        assert_eq!(batch.map(|b| b.len()), Some(1));
        assert!(ready.is_empty());
        log.push_update(Bytes::from_static(b"b"), reply(2));
        log.push_update(Bytes::from_static(b"c"), reply(3));
        assert!(log.push_reply(reply(4)).is_none(), "waits behind b and c");
        assert_eq!(log.start().0, None, "one append at a time");
        assert_eq!(acks(log.finish(Some(5))), [1]);
        assert_eq!(log.logged_through(), 5);
        let (batch, _) = log.start();
        assert_eq!(batch.map(|b| b.len()), Some(2), "group commit");
        assert_eq!(acks(log.finish(Some(7))), [2, 3, 4]);
        assert_eq!(log.start(), (None, Vec::new()));
    }

    #[test]
    fn an_acknowledgement_rides_the_append_that_holds_what_it_follows() {
        let mut log = WriteAhead::default();
        log.push_update(Bytes::from_static(b"a"), reply(1));
        let _ = log.start();
        assert!(log.push_after_applied(reply(2)).is_none(), "a is in flight");
        log.push_update(Bytes::from_static(b"b"), reply(3));
        assert!(log.push_after_applied(reply(4)).is_none(), "b waits");
        assert_eq!(acks(log.finish(Some(1))), [1, 2]);
        let _ = log.start();
        assert_eq!(acks(log.finish(Some(2))), [3, 4]);
        assert!(matches!(
            log.push_after_applied(reply(5)),
            Some(Outgoing::Ack(5))
        ));
    }

    #[test]
    fn a_failed_append_releases_without_advancing() {
        let mut log = WriteAhead::default();
        log.replayed_through(3);
        log.push_update(Bytes::from_static(b"a"), reply(1));
        let _ = log.start();
        assert_eq!(acks(log.finish(None)), [1]);
        assert_eq!(log.logged_through(), 3);
    }
}
