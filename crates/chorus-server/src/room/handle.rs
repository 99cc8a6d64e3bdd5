//! The only way into a room: a cloneable handle that sends `RoomCmd`s to its actor.

use bytes::Bytes;
use chorus_protocol::{DocName, Message, StateVector};
use chorus_room::{DocError, Identity, WriteRefused};
use chorus_store::versions::VersionMeta;
use tokio::sync::{mpsc, oneshot};

use crate::conn::{ConnId, Peer};
use crate::relay::{Body, Delivery, NodeId};
use crate::room::actor::versions::{VersionReply, VersionRequest};

/// Commands a room's actor takes, in the order they were sent. Only this module builds them:
/// everything outside the room goes through [`RoomHandle`] and [`Mailbox`].
#[derive(Debug)]
pub(super) enum RoomCmd {
    /// A connection enters the room. The room queues sync step 1 and the current awareness
    /// into the peer's outbox before it answers, so they are the first frames the client gets.
    Join {
        conn: ConnId,
        peer: Peer,
        joined: oneshot::Sender<Result<(), JoinRefused>>,
    },
    /// A decoded message from a connection in the room.
    Message { conn: ConnId, msg: Message },
    /// A connection has gone; its awareness states go with it.
    Leave { conn: ConnId },
    /// Send `frame` to `conn` once everything the room applied so far is durable.
    WhenDurable { conn: ConnId, frame: Bytes },
    /// A read-only connection's sync step 2, never applied: answer `known` (as `WhenDurable`
    /// would) when it adds nothing to the document, `unknown` when it carries edits.
    AnswerReadOnly {
        conn: ConnId,
        update: Bytes,
        known: Bytes,
        unknown: Bytes,
    },
    /// A stateless message for the document's Hocuspocus clients here and on the other nodes,
    /// but not for `from` (the sender; `None` for the HTTP API).
    Stateless {
        from: Option<ConnId>,
        payload: String,
    },
    /// A server-side read: what a peer with state vector `since` lacks (everything if `None`),
    /// as one Yjs v1 update.
    Read {
        since: Option<StateVector>,
        reply: oneshot::Sender<Result<Bytes, DocError>>,
    },
    /// A server-side write (the HTTP API): applied, logged and relayed like a client's update;
    /// answered once it is durable.
    Write {
        update: Bytes,
        /// Who the write is attributed to.
        identity: Identity,
        reply: oneshot::Sender<Result<(), WriteRefused>>,
    },
    /// Record a version of the document as it is now (the state is encoded by the room, stored
    /// in the background); answered once it is stored.
    Version {
        request: VersionRequest,
        reply: VersionReply,
    },
    /// Delete the document (the HTTP API): connections are closed with 4404, the other nodes
    /// drop their rooms, nothing is saved, and the snapshot and update log are deleted; answered
    /// once they are.
    Delete {
        reply: oneshot::Sender<Result<(), DeleteFailed>>,
    },
    /// What another node published on this room's channel.
    Remote { origin: NodeId, body: Body },
    /// Messages between nodes may have been lost: exchange state vectors again.
    RelayResync,
    /// A node stopped heartbeating: the presence of its clients goes.
    NodeGone(NodeId),
}

impl From<Delivery> for RoomCmd {
    fn from(delivery: Delivery) -> Self {
        match delivery {
            Delivery::Envelope { origin, body } => Self::Remote { origin, body },
            Delivery::Resync => Self::RelayResync,
            Delivery::NodeGone(node) => Self::NodeGone(node),
        }
    }
}

/// Why a room could not delete its document.
#[derive(Debug, thiserror::Error)]
pub enum DeleteFailed {
    /// The server is stopping; the deletion can be tried again on another node or later.
    #[error("the server is shutting down; try again")]
    ShuttingDown,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] chorus_store::StoreError),
}

/// Why a room turned a connection away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefused {
    /// The document could not be loaded from the store.
    #[error("the document could not be loaded")]
    LoadFailed,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The room holds as many connections as it may.
    #[error("the room is full")]
    RoomFull,
}

/// The room is no longer running (it unloaded, failed or shut down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the room is gone")]
pub struct RoomGone;

/// A cloneable handle to a running room.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    name: DocName,
    /// Bounded by [`ROOM_INBOX_CAPACITY`](super::ROOM_INBOX_CAPACITY): when it is full, the
    /// connections sending to it wait, which pushes back on their sockets; the room never waits.
    cmd_tx: mpsc::Sender<RoomCmd>,
    generation: u64,
}

impl RoomHandle {
    pub(super) fn new(name: DocName, cmd_tx: mpsc::Sender<RoomCmd>, generation: u64) -> Self {
        Self {
            name,
            cmd_tx,
            generation,
        }
    }

    /// The document this room holds.
    pub fn name(&self) -> &DocName {
        &self.name
    }

    /// Where connection `conn` hands its messages to the room.
    pub(crate) fn mailbox(&self, conn: ConnId) -> Mailbox {
        Mailbox {
            conn,
            tx: self.cmd_tx.clone(),
        }
    }

    /// Hands the relay's delivery to the room without waiting. A room whose inbox is full
    /// misses it and catches up at its next resync; a deletion, which a resync does not
    /// repeat, waits for space instead.
    pub(crate) fn deliver(&self, delivery: Delivery) {
        match self.cmd_tx.try_send(delivery.into()) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(
                cmd @ RoomCmd::Remote {
                    body: Body::Deleted,
                    ..
                },
            )) => {
                let tx = self.cmd_tx.clone();
                tokio::spawn(async move { tx.send(cmd).await });
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!(doc = %self.name, "room inbox full; relay message deferred to resync");
                let _ = self.cmd_tx.try_send(RoomCmd::RelayResync);
            }
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// True once the room's actor has stopped taking commands.
    pub(crate) fn is_closed(&self) -> bool {
        self.cmd_tx.is_closed()
    }

    /// Adds a connection to the room.
    ///
    /// # Errors
    /// `Err(None)` when the room is gone (the caller should look it up again), `Err(Some(..))`
    /// when the room refused the connection.
    pub(crate) async fn join(&self, conn: ConnId, peer: Peer) -> Result<(), Option<JoinRefused>> {
        let (joined, answer) = oneshot::channel();
        self.cmd_tx
            .send(RoomCmd::Join { conn, peer, joined })
            .await
            .map_err(|_| None)?;
        match answer.await {
            Ok(result) => result.map_err(Some),
            Err(_) => Err(None),
        }
    }

    /// Reads the document (or what a peer at `since` lacks) as one Yjs v1 update.
    ///
    /// # Errors
    /// [`RoomGone`] when the room stopped; the inner error when the document could not be read.
    pub(crate) async fn read(
        &self,
        since: Option<StateVector>,
    ) -> Result<Result<Bytes, DocError>, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.cmd_tx
            .send(RoomCmd::Read { since, reply })
            .await
            .map_err(|_| RoomGone)?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Applies a Yjs v1 update as the server, attributed to `identity`; returns once it is
    /// durable.
    ///
    /// # Errors
    /// [`RoomGone`] when the room stopped; the inner error when the update was refused.
    pub(crate) async fn write(
        &self,
        update: Bytes,
        identity: Identity,
    ) -> Result<Result<(), WriteRefused>, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.cmd_tx
            .send(RoomCmd::Write {
                update,
                identity,
                reply,
            })
            .await
            .map_err(|_| RoomGone)?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Records a version of the document as it is now; returns once it is stored.
    ///
    /// # Errors
    /// [`RoomGone`] when the room stopped; the inner error when the store failed.
    pub(crate) async fn version(
        &self,
        request: VersionRequest,
    ) -> Result<Result<VersionMeta, String>, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.cmd_tx
            .send(RoomCmd::Version { request, reply })
            .await
            .map_err(|_| RoomGone)?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Deletes the document; returns once its snapshot and log are gone.
    ///
    /// # Errors
    /// [`RoomGone`] when the room stopped; the inner error when the store failed.
    pub(crate) async fn delete(&self) -> Result<Result<(), DeleteFailed>, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.cmd_tx
            .send(RoomCmd::Delete { reply })
            .await
            .map_err(|_| RoomGone)?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Sends a stateless message to the document's Hocuspocus clients on every node (the HTTP
    /// API).
    ///
    /// # Errors
    /// [`RoomGone`] when the room stopped.
    pub(crate) async fn stateless(&self, payload: String) -> Result<(), RoomGone> {
        self.cmd_tx
            .send(RoomCmd::Stateless {
                from: None,
                payload,
            })
            .await
            .map_err(|_| RoomGone)
    }

    /// Tells the room a connection has gone. A room that has stopped needs no telling.
    pub(crate) async fn leave(&self, conn: ConnId) {
        let _ = self.cmd_tx.send(RoomCmd::Leave { conn }).await;
    }
}

/// Where one connection hands its decoded messages to its room, in order. Bounded: when the
/// room's inbox is full the connection waits (see [`Mailbox::reserve`]), which pushes back on
/// its socket.
#[derive(Debug)]
pub(crate) struct Mailbox {
    conn: ConnId,
    tx: mpsc::Sender<RoomCmd>,
}

/// Why a message did not reach the room at once.
#[derive(Debug)]
pub(crate) enum NotDelivered {
    /// The room's inbox is full; here is the message back.
    Full(Message),
    /// The room is gone.
    Gone,
}

/// Space reserved in the room's inbox for one message.
pub(crate) struct Reserved<'a> {
    permit: mpsc::Permit<'a, RoomCmd>,
    conn: ConnId,
}

impl Reserved<'_> {
    /// Hands `msg` over into the reserved space.
    pub(crate) fn send(self, msg: Message) {
        self.permit.send(RoomCmd::Message {
            conn: self.conn,
            msg,
        });
    }
}

impl Mailbox {
    /// Hands `msg` over unless the inbox is full.
    pub(crate) fn try_send(&self, msg: Message) -> Result<(), NotDelivered> {
        let cmd = RoomCmd::Message {
            conn: self.conn,
            msg,
        };
        self.tx.try_send(cmd).map_err(|error| match error {
            mpsc::error::TrySendError::Full(RoomCmd::Message { msg, .. }) => {
                NotDelivered::Full(msg)
            }
            _ => NotDelivered::Gone,
        })
    }

    /// Waits for space for one message.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is handed over until [`Reserved::send`].
    pub(crate) async fn reserve(&self) -> Result<Reserved<'_>, RoomGone> {
        let permit = self.tx.reserve().await.map_err(|_| RoomGone)?;
        Ok(Reserved {
            permit,
            conn: self.conn,
        })
    }

    /// Waits for space, then hands `msg` over.
    pub(crate) async fn send(&self, msg: Message) -> Result<(), RoomGone> {
        self.reserve().await?.send(msg);
        Ok(())
    }

    /// Waits for space, then asks for `frame` once everything applied so far is durable
    /// ([`chorus_room::RoomCore::when_durable`]). Sent after an update, in order, it
    /// acknowledges that update.
    pub(crate) async fn when_durable(&self, frame: Bytes) -> Result<(), RoomGone> {
        let cmd = RoomCmd::WhenDurable {
            conn: self.conn,
            frame,
        };
        self.tx.send(cmd).await.map_err(|_| RoomGone)
    }

    /// Waits for space, then asks the room to answer a read-only connection's sync step 2:
    /// `known` when `update` adds nothing to the document, `unknown` otherwise
    /// ([`chorus_room::RoomCore::answer_read_only`]).
    pub(crate) async fn answer_read_only(
        &self,
        update: Bytes,
        known: Bytes,
        unknown: Bytes,
    ) -> Result<(), RoomGone> {
        let cmd = RoomCmd::AnswerReadOnly {
            conn: self.conn,
            update,
            known,
            unknown,
        };
        self.tx.send(cmd).await.map_err(|_| RoomGone)
    }

    /// Waits for space, then hands over a stateless message for the document's other clients.
    pub(crate) async fn stateless(&self, payload: String) -> Result<(), RoomGone> {
        let cmd = RoomCmd::Stateless {
            from: Some(self.conn),
            payload,
        };
        self.tx.send(cmd).await.map_err(|_| RoomGone)
    }
}
