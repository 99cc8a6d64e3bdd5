//! Replaying the WALs of dead processes into the document logs, when an
//! [`FsLog`](crate::FsLog) opens; the `fs::log` module docs ("Replaying write-ahead logs") say
//! when and why.

use std::collections::HashMap;

use bytes::Bytes;
use chorus_protocol::DocName;

use super::dead::Dead;
use super::format::{Entry, Incarnation};
use crate::StoreError;
use crate::fs::files::{LogFiles, Recovered, Tail};
use crate::fs::lock::FileLock;
use crate::fs::stats::Counters;

/// Replays the write-ahead logs of dead processes into the document logs; see the module
/// docs.
pub(crate) fn replay_dead_wals(files: &LogFiles) -> Result<(), StoreError> {
    let mut dead = Dead::claim(&files.dir)
        .map_err(StoreError::io("reading dead write-ahead logs", &files.dir))?;
    let mut by_doc: HashMap<String, Vec<Entry>> = HashMap::new();
    for entry in std::mem::take(&mut dead.entries) {
        by_doc.entry(entry.doc.clone()).or_default().push(entry);
    }
    let mut replayed = 0;
    for (name, mut entries) in by_doc {
        let Ok(doc) = DocName::parse(name.as_str()) else {
            tracing::warn!(
                entries = entries.len(),
                "skipping write-ahead log entries with an invalid document name"
            );
            continue;
        };
        entries.sort_by_key(|e| e.seq);
        replayed += replay(files, &doc, entries)?;
    }
    dead.remove(&files.dir).map_err(StoreError::io(
        "removing replayed write-ahead logs",
        &files.dir,
    ))?;
    Counters::add(&files.counters.recovered, replayed);
    Ok(())
}

/// Appends to the log of `doc` the `entries` (sorted by seq) its file lacks; returns how
/// many.
fn replay(files: &LogFiles, doc: &DocName, entries: Vec<Entry>) -> Result<u64, StoreError> {
    let path = files.path_of(doc);
    // Incarnations of the file seen here: a damaged file rewritten by `recover` below is
    // still the file the entries were written to.
    let mut incarnations = Vec::new();
    loop {
        let Some(lock) = FileLock::acquire_existing(&path)
            .map_err(StoreError::io("locking update log", &path))?
        else {
            tracing::info!(doc = %doc, entries = entries.len(), "not replaying write-ahead log entries of a deleted document");
            return Ok(0);
        };
        let meta = lock
            .file()
            .metadata()
            .map_err(StoreError::io("inspecting update log", &path))?;
        incarnations.push(Incarnation::of(&meta));
        let tail = match files.recover(&lock, &path, doc)? {
            Recovered::Rewritten => continue,
            Recovered::Clean { tail, .. } => tail,
        };
        let mut missing: Vec<(u64, Bytes)> = Vec::new();
        let mut other_incarnation = 0;
        for entry in &entries {
            if !incarnations.contains(&entry.file) {
                other_incarnation += 1;
            } else if entry.seq > missing.last().map_or(tail.high_water, |(seq, _)| *seq) {
                missing.push((entry.seq, entry.update.clone()));
            }
        }
        if other_incarnation > 0 {
            tracing::info!(doc = %doc, entries = other_incarnation, "not replaying write-ahead log entries of a deleted or rewritten log file");
        }
        let Some(&(through, _)) = missing.last() else {
            return Ok(0);
        };
        let from = missing[0].0;
        if from != tail.high_water + 1 {
            tracing::warn!(doc = %doc, log_high_water = tail.high_water, replay_from = from, "gap between the update log and its write-ahead log entries");
        }
        let len = files.write_records(&lock, &path, doc, tail, &missing)?;
        Counters::add(&files.counters.log_fsyncs, 1);
        lock.file()
            .sync_data()
            .map_err(StoreError::io("fsyncing update log", &path))?;
        files.remember(
            &path,
            Tail {
                len,
                high_water: through,
                ..tail
            },
        );
        tracing::warn!(doc = %doc, records = missing.len(), from_seq = from, through_seq = through, "replayed update log records from a write-ahead log (their fsync had not reached the log file)");
        return Ok(missing.len() as u64);
    }
}
