//! Evidence of refused updates, kept for analysis (`--quarantine-dir`).
//!
//! A rule that fires on an honest client is a bug in the rule (`chorus-protocol/RULES.md`). An
//! operator who sees one fire needs what the client sent, not a log line, to hand it over: with
//! a quarantine directory, each connection keeps its last messages, and when one of its updates
//! is refused they are written out next to the refusal, in the format of the honest corpus
//! (`crates/chorus-server/tests/corpus/honest/README.md`), so a test can replay them.
//!
//! Bounded: at most [`HISTORY_FRAMES`] messages and [`HISTORY_BYTES`] per connection (shared
//! bytes, already in memory, kept a little longer), and at most `--quarantine-max` refusals in
//! the directory; later ones are only counted and logged.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chorus_protocol::DocName;

use crate::conn::{CloseReason, ConnId, close_code};

/// Messages one connection keeps for the evidence.
pub const HISTORY_FRAMES: usize = 64;
/// Bytes of those messages, at most (a single larger message is kept alone).
pub const HISTORY_BYTES: usize = 4 * 1024 * 1024;

/// The last messages one connection sent, oldest first.
#[derive(Debug, Default)]
pub struct History {
    frames: VecDeque<Bytes>,
    bytes: usize,
}

impl History {
    /// Remembers a message the client sent, forgetting the oldest beyond the bounds.
    pub fn record(&mut self, frame: &Bytes) {
        self.frames.push_back(frame.clone());
        self.bytes += frame.len();
        while self.frames.len() > HISTORY_FRAMES
            || (self.bytes > HISTORY_BYTES && self.frames.len() > 1)
        {
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// The messages in the honest corpus' format: each as `u32` little-endian length, then
    /// its bytes.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes + 4 * self.frames.len());
        for frame in &self.frames {
            // A frame is at most --max-message-bytes, far below 4 GiB.
            out.extend_from_slice(&u32::try_from(frame.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(frame);
        }
        out
    }
}

/// Where refused updates are kept, and how many more may be.
#[derive(Debug)]
pub struct Quarantine {
    dir: PathBuf,
    max: usize,
    kept: AtomicUsize,
}

impl Quarantine {
    /// Opens (creating it if needed) the directory; what is already there counts against
    /// `max`.
    ///
    /// # Errors
    /// The I/O error, for a directory that cannot be created or read.
    pub fn open(dir: PathBuf, max: usize) -> io::Result<Arc<Self>> {
        std::fs::create_dir_all(&dir)?;
        let kept = std::fs::read_dir(&dir)?.count();
        Ok(Arc::new(Self {
            dir,
            max,
            kept: AtomicUsize::new(kept),
        }))
    }

    /// Whether a close is the refusal of an update: 1007 or 1008 with a reason that names a
    /// rule (`[rule] …`, as the connection and the room close refused updates).
    pub fn is_refusal(reason: &CloseReason) -> bool {
        matches!(
            reason.code,
            close_code::INVALID_PAYLOAD | close_code::POLICY
        ) && reason.reason.starts_with('[')
    }

    /// Writes the evidence of a refusal in the background: `<dir>/<unix ms>-<conn>/` with
    /// `frames.bin` (what the connection sent last, the refused update at the end) and
    /// `refusal.json`.
    pub fn keep(
        self: &Arc<Self>,
        doc: &DocName,
        conn: ConnId,
        reason: &CloseReason,
        history: History,
    ) {
        if self.kept.fetch_add(1, Ordering::Relaxed) >= self.max {
            tracing::info!(%conn, max = self.max, "quarantine full; refusal not kept");
            return;
        }
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let dir = self.dir.join(format!("{millis}-{conn}"));
        let summary = serde_json::json!({
            "doc": doc.as_str(),
            "conn": conn.to_string(),
            "code": reason.code,
            "reason": reason.reason,
            "time_unix_ms": millis,
            "frames": history.frames.len(),
            "format": "frames.bin: each message as u32 little-endian length, then its bytes; \
                       the refused update is the last update message",
        });
        tokio::task::spawn_blocking(move || {
            let written = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("frames.bin"), history.encode()))
                .and_then(|()| {
                    std::fs::write(
                        dir.join("refusal.json"),
                        serde_json::to_vec_pretty(&summary).unwrap_or_default(),
                    )
                });
            match written {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "kept a refused update for analysis")
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "could not keep a refused update");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_keeps_the_last_messages_within_its_bounds() {
        let mut history = History::default();
        for i in 0..HISTORY_FRAMES + 5 {
            history.record(&Bytes::from(vec![u8::try_from(i % 256).expect("small"); 3]));
        }
        assert_eq!(history.frames.len(), HISTORY_FRAMES);
        assert_eq!(history.frames[0][0], 5, "the oldest went first");
        history.record(&Bytes::from(vec![0; HISTORY_BYTES + 1]));
        assert_eq!(history.frames.len(), 1, "one huge message is kept alone");
        let encoded = history.encode();
        assert_eq!(
            encoded[..4],
            u32::try_from(HISTORY_BYTES + 1)
                .expect("fits")
                .to_le_bytes()
        );
    }
}
