//! The `chorus-wal` thread: group commit. It takes every append queued meanwhile, writes them
//! to the current WAL with one `write` and (under `Always`) one `fdatasync`, answers every
//! appender, and retires the WAL to the checkpointer when it is full or old enough.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
#[cfg(test)]
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use bytes::BytesMut;

use super::channel::{Cmd, Reply, stopped};
use super::checkpoint::Retired;
use super::epoch::{self, Epoch, MAX_PREALLOC, MIN_PREALLOC, Spare};
use super::format::{Submission, put_entry};
use crate::fs::deferred::Deferred;
use crate::fs::stats::Counters;
use crate::log_record::put_record;

/// Most appends in one WAL write, so that one batch cannot grow without bound while the
/// queue keeps refilling.
const MAX_BATCH: usize = 4096;

/// When the current WAL is retired (checkpointed) and a new one started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalLimits {
    /// Size past which the WAL is retired: bounds replay time and disk use.
    pub(crate) max_bytes: u64,
    /// Age (since its first write) past which the WAL is retired: bounds how long document
    /// files stay unsynced and how many handles the checkpoint keeps open.
    pub(crate) max_age: Duration,
}

impl Default for WalLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_age: Duration::from_secs(1),
        }
    }
}

/// The `chorus-wal` thread: group commit.
pub(crate) struct Writer {
    pub(crate) dir: PathBuf,
    /// Fsync every batch ([`FsyncPolicy::Always`](crate::FsyncPolicy::Always)); otherwise the
    /// checkpoints, at least once per interval, make appends durable.
    pub(crate) sync_each_batch: bool,
    pub(crate) limits: WalLimits,
    pub(crate) counters: Arc<Counters>,
    pub(crate) current: Option<Epoch>,
    /// Space the next WAL starts with: about what the last one took.
    pub(crate) next_prealloc: u64,
    /// The next WAL, when the checkpointer has made it ready.
    pub(crate) spare: Spare,
    /// Asked, when idle, whether a lease waits for a checkpoint.
    pub(crate) deferred: Arc<Deferred>,
    pub(crate) retired_tx: SyncSender<Retired>,
    #[cfg(test)]
    pub(crate) gate: Arc<Mutex<()>>,
}

impl Writer {
    pub(crate) fn run(mut self, cmd_rx: Receiver<Cmd>) {
        loop {
            let first = match &self.current {
                Some(epoch) => {
                    let left = self.limits.max_age.saturating_sub(epoch.opened.elapsed());
                    match cmd_rx.recv_timeout(left) {
                        Ok(cmd) => cmd,
                        Err(RecvTimeoutError::Timeout) => {
                            // No append for a while: the log may be falling idle, so no spare.
                            self.retire(Vec::new(), false);
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match cmd_rx.recv_timeout(self.limits.max_age) {
                    Ok(cmd) => cmd,
                    Err(RecvTimeoutError::Timeout) => {
                        // A lease taken for an append that never came (a cancelled caller)
                        // has no WAL whose checkpoint would give it back: do it now.
                        if self.deferred.has_leases() {
                            self.checkpoint_leases();
                        }
                        // An idle log leaves no WAL behind, not even the next one.
                        if let Some(spare) = epoch::take_spare(&self.spare) {
                            epoch::discard(spare);
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            #[cfg(test)]
            let gate = Arc::clone(&self.gate);
            #[cfg(test)]
            let _paused = gate
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Everything queued meanwhile goes into the same write and fsync.
            let mut appends = Vec::new();
            let mut checkpoints = Vec::new();
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Cmd::Append(submission, reply) => appends.push((submission, reply)),
                    Cmd::Checkpoint(reply) => checkpoints.push(reply),
                    #[cfg(test)]
                    Cmd::Abandon => return,
                }
                if appends.len() < MAX_BATCH {
                    next = cmd_rx.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                self.commit(appends);
            }
            let full = self.current.as_ref().is_some_and(|epoch| {
                epoch.len >= self.limits.max_bytes || epoch.opened.elapsed() >= self.limits.max_age
            });
            if full || !checkpoints.is_empty() {
                // Full while appends come: the next WAL will be wanted at once.
                self.retire(checkpoints, full);
            }
        }
        // The last handle is gone: checkpoint everything, so a clean shutdown leaves no WAL.
        self.retire(Vec::new(), false);
    }

    /// Writes a batch with one write and one fdatasync, then answers every appender.
    fn commit(&mut self, appends: Vec<(Submission, Reply)>) {
        match self.write(&appends) {
            Ok(()) => {
                for (_, reply) in appends {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "write-ahead log write failed; starting a new one");
                for (_, reply) in appends {
                    let _ = reply.send(Err(io::Error::new(e.kind(), e.to_string())));
                }
                // After a failed write or fsync what the file holds is unknown: earlier
                // batches were synced, so checkpoint it as usual and write the next batch to
                // a new one.
                self.retire(Vec::new(), false);
            }
        }
    }

    fn write(&mut self, appends: &[(Submission, Reply)]) -> io::Result<()> {
        let epoch = match &mut self.current {
            Some(epoch) => epoch,
            None => {
                let epoch = match epoch::take_spare(&self.spare) {
                    Some(mut spare) => {
                        spare.opened = std::time::Instant::now();
                        Counters::add(&self.counters.wal_files_ready, 1);
                        spare
                    }
                    None => Epoch::create(&self.dir, self.next_prealloc)?,
                };
                Counters::add(&self.counters.wal_files, 1);
                self.current.insert(epoch)
            }
        };
        let mut batch = BytesMut::new();
        let mut entry = BytesMut::new();
        for (submission, _) in appends {
            for (seq, update) in &submission.records {
                entry.clear();
                put_entry(&mut entry, &submission.doc, submission.file, *seq, update);
                epoch.entries += 1;
                put_record(&mut batch, epoch.entries, &entry);
            }
        }
        epoch.append(&batch)?;
        if self.sync_each_batch {
            Counters::add(&self.counters.wal_fsyncs, 1);
            epoch.file.sync_data()?;
        }
        Ok(())
    }

    /// Asks the checkpointer to give back the leases of documents with nothing in any WAL.
    fn checkpoint_leases(&mut self) {
        let retired = Retired {
            epoch: None,
            replies: Vec::new(),
            spare_prealloc: None,
        };
        if self.retired_tx.send(retired).is_err() {
            tracing::error!("write-ahead log checkpointer stopped");
        }
    }

    /// Hands the current WAL (if any) to the checkpointer; the next append starts a new one.
    /// With `want_spare` the checkpointer also makes the next WAL ready.
    fn retire(&mut self, replies: Vec<Reply>, want_spare: bool) {
        let epoch = self.current.take();
        if let Some(epoch) = &epoch {
            self.next_prealloc = epoch
                .len
                .next_power_of_two()
                .clamp(MIN_PREALLOC, MAX_PREALLOC);
        }
        if epoch.is_none() && replies.is_empty() {
            return;
        }
        let retired = Retired {
            epoch,
            replies,
            spare_prealloc: want_spare.then_some(self.next_prealloc),
        };
        if let Err(mpsc::SendError(retired)) = self.retired_tx.send(retired) {
            // The checkpointer is gone (it panicked): keep the WAL for the next start.
            for reply in retired.replies {
                let _ = reply.send(Err(stopped()));
            }
            if let Some(epoch) = retired.epoch {
                tracing::error!(wal = %epoch.path.display(), "write-ahead log checkpointer stopped; leaving the log for recovery");
            }
        }
    }
}
