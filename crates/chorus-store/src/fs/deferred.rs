//! Records whose only write so far is the write-ahead log (under
//! [`FsyncPolicy::Always`](crate::FsyncPolicy::Always), their one durable write): they reach
//! their document's log file later, many at a time, when the WAL is checkpointed.
//! [`super::log`] explains why; this module keeps them meanwhile.
//!
//! # Leases
//! Sequence numbers must stay strictly increasing per document across every process sharing
//! the directory, and they used to come from the file's tail, read under its `flock` at every
//! append. Here a process takes the document's `flock` once, reads the tail, and then numbers
//! appends in memory: it holds a *lease* on the document. Nobody else can append to the file
//! meanwhile, so the numbers cannot collide. A [flush](Slot::flush) writes the leased records
//! to the file with one `write`, fsyncs it, and gives the lease back, so another process waits
//! at most one checkpoint interval for its turn.
//!
//! A flush does not hold up the document's appends: they keep numbering and going to the WAL
//! while it writes and fsyncs what was pending. Only what arrived during that fsync (usually
//! nothing) is written in a second round with appends held, so that the lease can go.
//!
//! # Ordering
//! Every change to a [`Slot`] happens under its state mutex, held only for memory work (never
//! I/O), so the async append path can take it. Records are handed to the WAL under that mutex
//! too, so the WAL holds each document's records in sequence order. File work (taking a lease,
//! flushing, a whole read, truncation or deletion) takes the slot's *turn* first: one at a time
//! per document within the process, the `flock` doing the same between processes.
//!
//! A record handed to the WAL is in [`Slot`]'s pending list until a flush, in its turn, has
//! written and fsynced it to the log file (a failed write puts it back). So once the WAL that
//! holds it is retired, flushing every slot with a lease ([`Deferred::flush_all`], each in its
//! turn, so after any flush already under way) makes it durable in its log, and the WAL can go.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::mem;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use chorus_protocol::DocName;

use super::crash_safe::{self, FileId, Incarnation};
use super::files::{LogFiles, Recovered, Tail};
use super::lock::FileLock;
use super::stats::Counters;
use crate::StoreError;

/// Shards of the document map: appends to different documents rarely meet on one mutex.
const SHARDS: usize = 32;

/// Every document this process holds a lease on, or had one on since the last prune.
#[derive(Debug)]
pub(crate) struct Deferred {
    files: Arc<LogFiles>,
    shards: Box<[Shard]>,
    hasher: RandomState,
}

/// Part of the document map.
type Shard = Mutex<HashMap<DocName, Arc<Slot>>>;

/// One document's deferred records; see the module docs.
#[derive(Debug)]
pub(crate) struct Slot {
    doc: DocName,
    /// The name again, shared by every WAL submission.
    name: Arc<str>,
    path: PathBuf,
    /// This process's turn at the file (taking a lease, flushing, reading, truncating,
    /// deleting), and the locked file while the lease lasts; never taken under `state`.
    turn: Mutex<Option<Held>>,
    state: Mutex<State>,
}

/// What appends need of a slot.
#[derive(Debug, Default)]
struct State {
    /// The incarnation of the leased file, while this process holds the lease.
    lease: Option<Incarnation>,
    /// The last sequence number handed out under the lease.
    high_water: u64,
    /// Records handed to the WAL and not yet written to the file, in sequence order. Empty
    /// without a lease.
    pending: Vec<(u64, Bytes)>,
}

/// The leased file, locked, and where it ends.
#[derive(Debug)]
struct Held {
    lock: FileLock,
    tail: Tail,
}

/// Records numbered under a lease, for the WAL.
#[derive(Debug)]
pub(crate) struct Submission {
    /// The document's name.
    pub(crate) doc: Arc<str>,
    /// The incarnation of the document's log file the lease is on.
    pub(crate) file: Incarnation,
    /// The records, with their sequence numbers.
    pub(crate) records: Vec<(u64, Bytes)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent at each step: a panic cannot leave
    // it half done.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Deferred {
    pub(crate) fn new(files: Arc<LogFiles>) -> Self {
        Self {
            files,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, doc: &DocName) -> &Shard {
        // The modulo keeps the index below SHARDS, which fits in usize.
        let index = (self.hasher.hash_one(doc) % SHARDS as u64) as usize;
        &self.shards[index]
    }

    /// The slot of `doc`, made if needed.
    pub(crate) fn slot(&self, doc: &DocName) -> Arc<Slot> {
        let mut shard = lock(self.shard(doc));
        if let Some(slot) = shard.get(doc) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(Slot {
            doc: doc.clone(),
            name: Arc::from(doc.as_str()),
            path: self.files.path_of(doc),
            turn: Mutex::default(),
            state: Mutex::default(),
        });
        shard.insert(doc.clone(), Arc::clone(&slot));
        slot
    }

    /// The log files.
    pub(crate) fn files(&self) -> &LogFiles {
        &self.files
    }

    /// Whether this process holds a lease on any document.
    pub(crate) fn has_leases(&self) -> bool {
        self.shards.iter().any(|shard| {
            lock(shard)
                .values()
                .any(|slot| lock(&slot.state).lease.is_some())
        })
    }

    /// Writes every leased document's pending records to its file, fsyncs it and gives the
    /// lease back; then forgets the documents nobody uses. Blocks; the first error is
    /// returned after trying every document.
    pub(crate) fn flush_all(&self) -> Result<(), StoreError> {
        let leased: Vec<Arc<Slot>> = self
            .shards
            .iter()
            .flat_map(|shard| {
                lock(shard)
                    .values()
                    .filter(|slot| lock(&slot.state).lease.is_some())
                    .map(Arc::clone)
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut first_error = None;
        for slot in leased {
            if let Err(e) = slot.flush(&self.files) {
                tracing::error!(doc = %slot.doc, error = %e, "writing deferred records to the update log failed");
                first_error.get_or_insert(e);
            }
        }
        for shard in &self.shards {
            // A slot only the map holds, without a lease, has nothing to keep: whoever wants
            // it next gets a new one.
            lock(shard)
                .retain(|_, slot| Arc::strong_count(slot) > 1 || lock(&slot.state).lease.is_some());
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Slot {
    /// Numbers `updates` (not empty) under the lease and hands them to `submit` (the WAL)
    /// while still holding the state, so the WAL gets each document's records in order;
    /// returns the last sequence number and what `submit` returned. `None` without a lease:
    /// take one ([`Slot::take_lease`], blocking) and call again.
    ///
    /// # Errors
    /// `submit`'s: the records are then forgotten (nothing of them was acknowledged).
    pub(crate) fn append_with<T>(
        &self,
        updates: &[Bytes],
        submit: impl FnOnce(Submission) -> io::Result<T>,
    ) -> Option<io::Result<(u64, T)>> {
        let mut state = lock(&self.state);
        let incarnation = state.lease?;
        let high_water = state.high_water;
        let records: Vec<(u64, Bytes)> = (high_water + 1..).zip(updates.iter().cloned()).collect();
        let seq = high_water + records.len() as u64;
        state.pending.extend(records.iter().cloned());
        state.high_water = seq;
        let submission = Submission {
            doc: Arc::clone(&self.name),
            file: incarnation,
            records,
        };
        Some(match submit(submission) {
            Ok(answer) => Ok((seq, answer)),
            Err(e) => {
                let kept = state.pending.len() - updates.len();
                state.pending.truncate(kept);
                state.high_water = high_water;
                Err(e)
            }
        })
    }

    /// Takes the document's `flock` and reads where its file ends, creating the file (its
    /// name durable) if needed. Blocks: waits for this process's turn and for other
    /// processes' leases.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the file.
    pub(crate) fn take_lease(&self, files: &LogFiles) -> Result<(), StoreError> {
        let mut held = lock(&self.turn);
        if held.is_some() {
            return Ok(());
        }
        let (lock_, tail, incarnation) = loop {
            let lock = FileLock::acquire(&self.path)
                .map_err(StoreError::io("locking update log", &self.path))?;
            let meta = lock
                .file()
                .metadata()
                .map_err(StoreError::io("inspecting update log", &self.path))?;
            let mut tail = match files.cached(&self.path, FileId::of(&meta), meta.len()) {
                Some(tail) => tail,
                None => match files.recover(&lock, &self.path, &self.doc)? {
                    Recovered::Clean { tail, .. } => tail,
                    Recovered::Rewritten => continue,
                },
            };
            if tail.len == 0 {
                // A new file: its header now, and its name durable before anything is
                // acknowledged, so that after a power cut a missing log always means a deleted
                // document (replay relies on it).
                tail.len = files.write_records(&lock, &self.path, &self.doc, tail, &[])?;
                crash_safe::sync_dir(&files.dir)
                    .map_err(StoreError::io("fsyncing log directory", &files.dir))?;
                files.remember(&self.path, tail);
            }
            break (lock, tail, Incarnation::of(&meta));
        };
        {
            let mut state = lock(&self.state);
            state.lease = Some(incarnation);
            state.high_water = tail.high_water;
        }
        *held = Some(Held { lock: lock_, tail });
        Ok(())
    }

    /// Writes the pending records to the file, fsyncs it and gives the lease back. Blocks.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the file; the lease and the records are then kept, for the
    /// next flush to write again (the WAL holding them is kept too, for the next start).
    pub(crate) fn flush(&self, files: &LogFiles) -> Result<(), StoreError> {
        let mut held = lock(&self.turn);
        self.flush_in_turn(&mut held, files)
    }

    /// Runs `work` (a read, truncation or deletion of the file) in this process's turn, after
    /// a flush: it then sees every record appended so far, and no lease of ours holds it up.
    pub(crate) fn after_flush<T>(
        &self,
        files: &LogFiles,
        work: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut held = lock(&self.turn);
        self.flush_in_turn(&mut held, files)?;
        work()
    }

    fn flush_in_turn(&self, held: &mut Option<Held>, files: &LogFiles) -> Result<(), StoreError> {
        let Some(file) = held.as_mut() else {
            return Ok(());
        };
        // First round: what is pending now, while appends go on.
        let records = mem::take(&mut lock(&self.state).pending);
        if let Err(e) = self.write_synced(files, file, &records) {
            let mut state = lock(&self.state);
            let newer = mem::take(&mut state.pending);
            state.pending = records;
            state.pending.extend(newer);
            return Err(e);
        }
        // Second round: what arrived during the first, with appends held, then the lease goes.
        let mut state = lock(&self.state);
        let records = mem::take(&mut state.pending);
        if let Err(e) = self.write_synced(files, file, &records) {
            state.pending = records;
            return Err(e);
        }
        state.lease = None;
        drop(state);
        *held = None;
        Ok(())
    }

    /// Writes `records` at the file's tail with one `write` and fsyncs it. On failure the
    /// file's tail is unchanged and the caller keeps the records for the next flush.
    fn write_synced(
        &self,
        files: &LogFiles,
        file: &mut Held,
        records: &[(u64, Bytes)],
    ) -> Result<(), StoreError> {
        let Some(&(through, _)) = records.last() else {
            return Ok(());
        };
        let len = files.write_records(&file.lock, &self.path, &self.doc, file.tail, records)?;
        Counters::add(&files.counters.log_fsyncs, 1);
        file.lock.file().sync_data().map_err(|e| {
            // After a failed fsync the kernel may have dropped the pages: rescan next time.
            files.forget(&self.path);
            StoreError::io("fsyncing update log", &self.path)(e)
        })?;
        file.tail = Tail {
            len,
            high_water: through,
            ..file.tail
        };
        files.remember(&self.path, file.tail);
        Ok(())
    }
}
