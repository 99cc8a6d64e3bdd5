//! The bare relay yardstick: the least a y-websocket server can do, to compare real servers to.
//!
//! No CRDT and no storage: each binary frame goes to the other sockets of the same URL path,
//! unchanged. A client's sync step 1 is answered with an empty step 2 (`00 01 02 00 00`) so
//! y-websocket clients count as synced, and every connection first gets an empty step 1
//! (`00 00 01 00`) the way a real server greets it. New clients therefore see nothing that was
//! written before they came: this is a yardstick for fan-out cost, not a usable server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Frames queued per connection. When a socket's queue is full the relay drops that connection
/// (like Chorus does with a slow client) rather than a frame: a silent gap would be a lie.
pub const OUTBOX_CAPACITY: usize = 1024;

/// The server's greeting: sync step 1 with an empty state vector.
const EMPTY_STEP1: &[u8] = &[0x00, 0x00, 0x01, 0x00];
/// The answer to a client's step 1: step 2 with the empty update.
const EMPTY_STEP2: &[u8] = &[0x00, 0x01, 0x02, 0x00, 0x00];

/// tungstenite's (and axum's) default read buffer per connection.
pub const DEFAULT_READ_BUFFER: usize = 128 * 1024;

/// Pending connections the kernel queues before `accept`. tokio's `TcpListener::bind` uses 128,
/// and a burst of connects beyond that overflows the queue: the dropped SYNs are retried after
/// a second, which shows up as one-second handshakes.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// WebSocket read buffer per connection, bytes: the bulk of an idle connection's memory.
    pub read_buffer: usize,
    /// Drop every Nth document update frame (`00 02 …`) instead of forwarding it. Only for
    /// testing that the load generator notices loss; `None` forwards everything.
    pub drop_every: Option<u64>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            read_buffer: DEFAULT_READ_BUFFER,
            drop_every: None,
        }
    }
}

/// Binds `addr` with a [`LISTEN_BACKLOG`]-deep accept queue.
///
/// # Errors
/// The address cannot be bound.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

type Outbox = mpsc::Sender<Bytes>;

#[derive(Debug, Default)]
struct Rooms {
    next_id: AtomicU64,
    updates_seen: AtomicU64,
    rooms: Mutex<HashMap<String, HashMap<u64, Outbox>>>,
}

impl Rooms {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u64, Outbox>>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn join(&self, path: &str, outbox: Outbox) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(path.to_owned())
            .or_default()
            .insert(id, outbox);
        id
    }

    fn leave(&self, path: &str, id: u64) {
        let mut rooms = self.lock();
        if let Some(room) = rooms.get_mut(path) {
            room.remove(&id);
            if room.is_empty() {
                rooms.remove(path);
            }
        }
    }

    /// Sends `frame` to everyone in `path` but `from`; connections whose queue is full are
    /// removed (their writer sees the closed channel and hangs up).
    fn forward(&self, path: &str, from: u64, frame: &Bytes) {
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut(path) else {
            return;
        };
        room.retain(|&id, outbox| id == from || outbox.try_send(frame.clone()).is_ok());
    }
}

/// Accepts connections on `listener` until the task is dropped.
///
/// # Errors
/// Accepting on the listener failed.
pub async fn serve(listener: TcpListener, config: RelayConfig) -> std::io::Result<()> {
    let rooms = Arc::new(Rooms::default());
    loop {
        let (stream, peer) = listener.accept().await?;
        let rooms = Arc::clone(&rooms);
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, rooms, config).await {
                eprintln!("bare-relay: {peer}: {e}");
            }
        });
    }
}

// tungstenite fixes the upgrade callback's error type (an HTTP response); we never return it.
#[allow(clippy::result_large_err)]
async fn connection(
    stream: TcpStream,
    rooms: Arc<Rooms>,
    config: RelayConfig,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    stream.set_nodelay(true)?;
    let mut path = String::new();
    let ws = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        |request: &Request, response: Response| {
            path = request.uri().path().to_owned();
            Ok(response)
        },
        Some(WebSocketConfig::default().read_buffer_size(config.read_buffer)),
    )
    .await?;
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(OUTBOX_CAPACITY);
    // Greet before joining, so the step 1 is the first frame the client sees.
    sink.send(Message::Binary(Bytes::from_static(EMPTY_STEP1)))
        .await?;
    let id = rooms.join(&path, tx.clone());
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.send(Message::Binary(frame)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let result = async {
        while let Some(message) = source.next().await {
            let Message::Binary(frame) = message? else {
                continue;
            };
            match frame.get(..2) {
                Some([0x00, 0x00]) => {
                    if tx.try_send(Bytes::from_static(EMPTY_STEP2)).is_err() {
                        break;
                    }
                }
                Some([0x00, 0x02]) if dropped(&rooms, &config) => {}
                _ => rooms.forward(&path, id, &frame),
            }
        }
        Ok(())
    }
    .await;
    rooms.leave(&path, id);
    drop(tx);
    let _ = writer.await;
    result
}

/// Counts an update frame; true if `--drop-every` says this one goes missing.
fn dropped(rooms: &Rooms, config: &RelayConfig) -> bool {
    let Some(every) = config.drop_every.filter(|&n| n > 0) else {
        return false;
    };
    let n = rooms.updates_seen.fetch_add(1, Ordering::Relaxed) + 1;
    n.is_multiple_of(every)
}
