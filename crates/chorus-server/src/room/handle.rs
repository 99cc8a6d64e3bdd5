//! The only way into a room: a cloneable handle that sends [`RoomCmd`]s to its actor.

use bytes::Bytes;
use chorus_protocol::{DocName, Message, StateVector};
use tokio::sync::{mpsc, oneshot};

use crate::conn::{ConnId, Peer};
use crate::relay::{Body, NodeId};

/// Commands a room's actor takes, in the order they were sent.
#[derive(Debug)]
pub(crate) enum RoomCmd {
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
    /// A server-side read: what a peer with state vector `since` lacks (everything if `None`),
    /// as one Yjs v1 update.
    Read {
        since: Option<StateVector>,
        reply: oneshot::Sender<Result<Bytes, String>>,
    },
    /// A server-side write (the HTTP API): applied, logged and relayed like a client's update;
    /// answered once it is durable.
    Write {
        update: Bytes,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Delete the document (the HTTP API): connections are closed with 4404, the other nodes
    /// drop their rooms, nothing is saved, and the snapshot and update log are deleted; answered
    /// once they are.
    Delete {
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// What another node published on this room's channel.
    Remote { origin: NodeId, body: Body },
    /// Messages between nodes may have been lost: exchange state vectors again.
    RelayResync,
    /// A node stopped heartbeating: the presence of its clients goes.
    NodeGone(NodeId),
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
    pub(crate) fn new(name: DocName, cmd_tx: mpsc::Sender<RoomCmd>, generation: u64) -> Self {
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

    pub(crate) fn sender(&self) -> mpsc::Sender<RoomCmd> {
        self.cmd_tx.clone()
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
    ) -> Result<Result<Bytes, String>, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.cmd_tx
            .send(RoomCmd::Read { since, reply })
            .await
            .map_err(|_| RoomGone)?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Applies a Yjs v1 update as the server; returns once it is durable.
    ///
    /// # Errors
    /// [`RoomGone`] when the room stopped; the inner error when the update was refused.
    pub(crate) async fn write(&self, update: Bytes) -> Result<Result<(), String>, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.cmd_tx
            .send(RoomCmd::Write { update, reply })
            .await
            .map_err(|_| RoomGone)?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Deletes the document; returns once its snapshot and log are gone.
    ///
    /// # Errors
    /// [`RoomGone`] when the room stopped; the inner error when the store failed.
    pub(crate) async fn delete(&self) -> Result<Result<(), String>, RoomGone> {
        let (reply, answer) = oneshot::channel();
        self.cmd_tx
            .send(RoomCmd::Delete { reply })
            .await
            .map_err(|_| RoomGone)?;
        answer.await.map_err(|_| RoomGone)
    }

    /// Tells the room a connection has gone. A room that has stopped needs no telling.
    pub(crate) async fn leave(&self, conn: ConnId) {
        let _ = self.cmd_tx.send(RoomCmd::Leave { conn }).await;
    }
}
