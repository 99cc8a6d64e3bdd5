//! The write-ahead log under load, power cuts and crashes, through [`FsLog`].

use std::fs;
use std::sync::Barrier;
use std::time::Instant;

use super::*;

/// Limits under which the WAL is retired only by a checkpoint request or a drop, so that
/// a test decides when it happens.
const NO_ROTATION: WalLimits = WalLimits {
    max_bytes: u64::MAX,
    max_age: Duration::from_secs(3600),
};

fn doc(name: &str) -> DocName {
    DocName::parse(name).expect("valid test name")
}

/// A distinct non-empty update (the log never looks inside).
fn update(doc: &str, i: usize) -> Bytes {
    Bytes::from(format!("{doc}:{i}:{}", "x".repeat(i % 7)))
}

fn open(dir: &Path, limits: WalLimits) -> FsLog {
    FsLog::open_with(dir.to_owned(), FsyncPolicy::Always, limits).expect("open")
}

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| wal::is_wal_name(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect()
}

/// The WALs holding at least one record: not the next WAL made ready while the current one
/// fills (see `wal::epoch`), which holds none.
fn wals_in_use(dir: &Path) -> Vec<PathBuf> {
    wal_files(dir)
        .into_iter()
        .filter(|path| records_in(path) > 0)
        .collect()
}

fn len_of(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
}

/// Cuts a log file back, as a power cut that lost its unsynced pages would.
fn lose_writes_after(path: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .expect("cut the file");
}

/// How many records the log file at `path` holds (0 if there is none).
fn records_in(path: &Path) -> usize {
    fs::read(path).map_or(0, |bytes| {
        log_record::scan(&Bytes::from(bytes))
            .records
            .iter()
            .filter(|r| !r.is_marker())
            .count()
    })
}

fn checkpoint(log: &FsLog) {
    log.inner.wal.checkpoint().expect("checkpoint");
}

/// Waits (without a time-based assertion: the deadline only stops a hung test) until
/// `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn appends_from_many_threads_share_wal_fsyncs() {
    const THREADS: usize = 16;
    const ROUNDS: usize = 25;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let names: Vec<String> = (0..THREADS).map(|t| format!("doc-{t}")).collect();

    // Deterministic overlap: the writer is held until every thread has submitted, so all
    // of them are in the first batch.
    let paused = log.inner.wal.pause();
    let first: Vec<_> = names
        .iter()
        .map(|name| {
            let (log, name) = (log.clone(), name.clone());
            std::thread::spawn(move || {
                log.inner
                    .append(&doc(&name), &[update(&name, 0)])
                    .expect("append")
            })
        })
        .collect();
    wait_until("every thread submitted", || {
        log.stats().wal_submissions == THREADS as u64
    });
    drop(paused);
    for handle in first {
        assert_eq!(handle.join().expect("appender"), 1);
    }
    assert_eq!(
        log.stats().wal_fsyncs,
        1,
        "{THREADS} appends, one WAL fsync"
    );

    // Free running: whatever overlaps shares an fsync.
    let barrier = Arc::new(Barrier::new(THREADS));
    let rest: Vec<_> = names
        .iter()
        .map(|name| {
            let (log, name, barrier) = (log.clone(), name.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for round in 1..=ROUNDS {
                    let seq = log
                        .inner
                        .append(&doc(&name), &[update(&name, round)])
                        .expect("append");
                    assert_eq!(seq, round as u64 + 1, "{name} round {round}");
                }
            })
        })
        .collect();
    for handle in rest {
        handle.join().expect("appender");
    }
    let stats = log.stats();
    let appends = (THREADS * (ROUNDS + 1)) as u64;
    assert_eq!(stats.wal_submissions, appends);
    assert!(stats.wal_fsyncs <= appends, "{stats:?}");
    println!(
        "{appends} appends from {THREADS} threads, {} WAL fsyncs ({:.1} appends per fsync)",
        stats.wal_fsyncs,
        appends as f64 / stats.wal_fsyncs as f64
    );
    for name in &names {
        let expected: Vec<(u64, Bytes)> = (0..=ROUNDS)
            .map(|round| (round as u64 + 1, update(name, round)))
            .collect();
        assert_eq!(log.inner.read(&doc(name)).expect("read"), expected);
    }
}

#[test]
fn a_power_cut_before_the_checkpoint_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let (a, b) = (doc("a"), doc("b"));
    let (a_path, b_path) = (log.path_of(&a), log.path_of(&b));
    assert_eq!(log.inner.append(&a, &[update("a", 1)]).expect("append"), 1);
    let batch = [update("a", 2), update("a", 3)];
    assert_eq!(log.inner.append(&a, &batch).expect("append"), 3);
    for i in 1..=4 {
        assert_eq!(
            log.inner.append(&b, &[update("b", i)]).expect("append"),
            i as u64
        );
    }
    assert_eq!(
        records_in(&a_path) + records_in(&b_path),
        0,
        "only the WAL was written"
    );
    log.crash();
    assert_eq!(wal_files(dir.path()).len(), 1, "the crash left the WAL");

    // The page cache is gone: a kept a few bytes of its header, b (whose creation was
    // fsynced) nothing at all.
    lose_writes_after(&a_path, 5);
    lose_writes_after(&b_path, 0);

    let log = open(dir.path(), NO_ROTATION);
    assert_eq!(log.stats().recovered, 3 + 4);
    assert!(
        wal_files(dir.path()).is_empty(),
        "the WAL was replayed and removed"
    );
    assert_eq!(
        log.inner.read(&a).expect("read"),
        vec![
            (1, update("a", 1)),
            (2, update("a", 2)),
            (3, update("a", 3))
        ]
    );
    assert_eq!(
        log.inner.read(&b).expect("read"),
        (1..=4)
            .map(|i| (i as u64, update("b", i)))
            .collect::<Vec<_>>()
    );
    assert_eq!(log.inner.append(&a, &[update("a", 4)]).expect("append"), 4);
}

#[test]
fn appends_reach_the_document_logs_at_the_checkpoint_one_fsync_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let docs: Vec<DocName> = (0..5).map(|i| doc(&format!("d{i}"))).collect();
    for round in 1..=4 {
        for d in &docs {
            log.inner
                .append(d, &[update(d.as_str(), round)])
                .expect("append");
        }
    }
    let before = log.stats();
    assert_eq!(before.records, 20);
    assert_eq!(
        before.log_fsyncs, 0,
        "no document log fsynced on the append path"
    );
    for d in &docs {
        assert_eq!(records_in(&log.path_of(d)), 0, "{d} not written yet");
    }
    checkpoint(&log);
    assert_eq!(
        log.stats().log_fsyncs,
        5,
        "one write and fsync per document"
    );
    for d in &docs {
        assert_eq!(
            records_in(&log.path_of(d)),
            4,
            "{d} written at the checkpoint"
        );
    }
    assert!(wal_files(dir.path()).is_empty());
}

#[test]
fn reading_sees_records_the_checkpoint_has_not_written_yet() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let d = doc("d");
    log.inner
        .append(&d, &[update("d", 1), update("d", 2)])
        .expect("append");
    assert_eq!(
        log.inner.read(&d).expect("read"),
        vec![(1, update("d", 1)), (2, update("d", 2))]
    );
    assert_eq!(log.inner.append(&d, &[update("d", 3)]).expect("append"), 3);
    log.inner.truncate(&d, 2).expect("truncate");
    assert_eq!(log.inner.read(&d).expect("read"), vec![(3, update("d", 3))]);
}

#[test]
fn two_logs_on_one_directory_take_turns_at_a_document() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Two handles on one directory behave as two processes: separate locks and WALs.
    let first = open(dir.path(), NO_ROTATION);
    let second = open(dir.path(), NO_ROTATION);
    let d = doc("shared");
    assert_eq!(
        first
            .inner
            .append(&d, &[update("first", 1)])
            .expect("append"),
        1
    );
    let waiting = {
        let second = second.clone();
        let d = d.clone();
        std::thread::spawn(move || second.inner.append(&d, &[update("second", 1)]))
    };
    // The first holds the lease until its checkpoint: the second waits for its turn, then
    // numbers after the first's record.
    checkpoint(&first);
    assert_eq!(waiting.join().expect("second").expect("append"), 2);
    let waiting = {
        let first = first.clone();
        let d = d.clone();
        std::thread::spawn(move || first.inner.append(&d, &[update("first", 2)]))
    };
    checkpoint(&second);
    assert_eq!(waiting.join().expect("first").expect("append"), 3);
    checkpoint(&first);
    let expected = vec![
        (1, update("first", 1)),
        (2, update("second", 1)),
        (3, update("first", 2)),
    ];
    assert_eq!(first.inner.read(&d).expect("read"), expected);
    assert_eq!(second.inner.read(&d).expect("read"), expected);
}

#[test]
fn a_log_opened_under_the_interval_policy_replays_a_dead_wal_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let d = doc("d");
    let path = log.path_of(&d);
    log.inner.append(&d, &[update("d", 1)]).expect("append");
    log.crash();
    lose_writes_after(&path, 0);
    let interval = FsyncPolicy::Interval(Duration::from_secs(3600));
    let log = FsLog::open_with(dir.path().to_owned(), interval, NO_ROTATION).expect("open");
    assert_eq!(log.inner.read(&d).expect("read"), vec![(1, update("d", 1))]);
    assert!(wal_files(dir.path()).is_empty());
}

#[test]
fn a_deleted_document_is_not_resurrected_by_its_wal_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let (gone, again) = (doc("gone"), doc("again"));
    for i in 1..=3 {
        log.inner
            .append(&gone, &[update("gone", i)])
            .expect("append");
        log.inner
            .append(&again, &[update("again", i)])
            .expect("append");
    }
    log.inner.delete(&gone).expect("delete");
    log.inner.delete(&again).expect("delete");
    // Created anew: numbering starts over at 1, below the old entries' 2 and 3.
    let fresh = Bytes::from_static(b"fresh");
    assert_eq!(
        log.inner
            .append(&again, std::slice::from_ref(&fresh))
            .expect("append"),
        1
    );
    let again_path = log.path_of(&again);
    log.crash();
    lose_writes_after(&again_path, 0);

    let log = open(dir.path(), NO_ROTATION);
    assert!(
        !log.path_of(&gone).exists(),
        "no file for the deleted document"
    );
    assert_eq!(log.inner.read(&gone).expect("read"), vec![]);
    assert_eq!(
        log.inner.read(&again).expect("read"),
        vec![(1, fresh)],
        "only the new document's record"
    );
    assert!(wal_files(dir.path()).is_empty());
}

#[test]
fn records_a_truncation_dropped_are_not_appended_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let d = doc("snapshotted");
    let path = log.path_of(&d);
    for i in 1..=3 {
        log.inner
            .append(&d, &[update("snapshotted", i)])
            .expect("append");
    }
    log.inner.truncate(&d, 2).expect("truncate");
    log.inner
        .append(&d, &[update("snapshotted", 4)])
        .expect("append");
    // Checkpointing the WAL fsyncs the handle of the file truncation replaced; that
    // must neither fail nor bring anything back.
    checkpoint(&log);
    assert_eq!(
        log.inner.read(&d).expect("read"),
        vec![(3, update("snapshotted", 3)), (4, update("snapshotted", 4))]
    );
    log.inner
        .append(&d, &[update("snapshotted", 5)])
        .expect("append");
    log.inner.truncate(&d, 3).expect("truncate");
    let truncated_again = len_of(&path);
    log.inner
        .append(&d, &[update("snapshotted", 6)])
        .expect("append");
    log.crash();
    lose_writes_after(&path, truncated_again);

    let log = open(dir.path(), NO_ROTATION);
    assert_eq!(
        log.inner.read(&d).expect("read"),
        vec![
            (4, update("snapshotted", 4)),
            (5, update("snapshotted", 5)),
            (6, update("snapshotted", 6))
        ]
    );
    assert_eq!(log.stats().recovered, 1, "only record 6 was missing");
}

#[test]
fn the_wal_of_a_live_log_is_not_replayed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let live = open(dir.path(), NO_ROTATION);
    let d = doc("d");
    let path = live.path_of(&d);
    live.inner.append(&d, &[update("d", 1)]).expect("append");
    live.inner.append(&d, &[update("d", 2)]).expect("append");
    let before = len_of(&path);

    let second = open(dir.path(), NO_ROTATION);
    assert_eq!(second.stats().recovered, 0);
    assert_eq!(len_of(&path), before, "nothing replayed");
    assert_eq!(records_in(&path), 0);
    assert_eq!(wal_files(dir.path()).len(), 1, "the live WAL stays");
    drop(second);

    // Once its process is gone, the next open replays it.
    live.crash();
    let third = open(dir.path(), NO_ROTATION);
    assert_eq!(third.stats().recovered, 2);
    assert_eq!(
        third.inner.read(&d).expect("read"),
        vec![(1, update("d", 1)), (2, update("d", 2))]
    );
}

#[test]
fn full_wals_are_checkpointed_and_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = WalLimits {
        max_bytes: 4096,
        ..NO_ROTATION
    };
    let log = open(dir.path(), limits);
    let names = ["a", "b", "c", "d"];
    for round in 0..100 {
        for name in names {
            log.inner
                .append(&doc(name), &[update(name, round)])
                .expect("append");
        }
    }
    let stats = log.stats();
    assert!(stats.wal_files >= 5, "{stats:?}");
    // Every WAL but the current one is retired; its checkpoint counts once it is removed.
    wait_until("the full WALs are checkpointed", || {
        log.stats().checkpoints >= stats.wal_files - 1
    });
    assert!(wals_in_use(dir.path()).len() <= 1);
    // Besides, at most the next WAL, made ready while the log was being written.
    assert!(wal_files(dir.path()).len() <= 2);
    for name in names {
        let expected: Vec<(u64, Bytes)> = (0..100)
            .map(|round| (round as u64 + 1, update(name, round)))
            .collect();
        assert_eq!(log.inner.read(&doc(name)).expect("read"), expected);
    }
    checkpoint(&log);
    assert!(wals_in_use(dir.path()).is_empty());
    assert_eq!(log.stats().checkpoints, log.stats().wal_files);
    drop(log);
    assert!(
        wal_files(dir.path()).is_empty(),
        "a clean shutdown removes the spare WAL too"
    );
}

#[test]
fn the_next_wal_is_made_ready_while_the_log_is_written_and_removed_when_it_falls_idle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = WalLimits {
        max_bytes: 4096,
        max_age: Duration::from_millis(200),
    };
    let log = open(dir.path(), limits);
    let d = doc("d");
    let mut i = 0;
    // Fill WALs (about 100 appends each) until the writer starts one made ready for it.
    wait_until("the writer uses a WAL made ready for it", || {
        i += 1;
        log.inner.append(&d, &[update("d", i)]).expect("append");
        log.stats().wal_files_ready >= 2
    });
    let stats = log.stats();
    assert!(stats.wal_files > stats.wal_files_ready, "{stats:?}");
    // Idle: the current WAL is checkpointed, then the spare removed.
    wait_until("an idle log leaves no WAL", || {
        wal_files(dir.path()).is_empty()
    });
    let expected: Vec<(u64, Bytes)> = (1..=i).map(|n| (n as u64, update("d", n))).collect();
    assert_eq!(log.inner.read(&d).expect("read"), expected);
}

#[test]
fn an_idle_wal_is_checkpointed_once_old_enough() {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = WalLimits {
        max_age: Duration::from_millis(1),
        ..NO_ROTATION
    };
    let log = open(dir.path(), limits);
    log.inner
        .append(&doc("d"), &[update("d", 1)])
        .expect("append");
    // The counter moves after the removal is durable.
    wait_until("the WAL is checkpointed", || log.stats().checkpoints == 1);
    assert!(wal_files(dir.path()).is_empty());
}

#[test]
fn a_clean_shutdown_leaves_no_wal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    log.inner
        .append(&doc("d"), &[update("d", 1)])
        .expect("append");
    assert_eq!(wal_files(dir.path()).len(), 1);
    let clone = log.clone();
    drop(log);
    assert_eq!(wal_files(dir.path()).len(), 1, "a clone still uses it");
    drop(clone);
    assert!(wal_files(dir.path()).is_empty());
    assert_eq!(
        open(dir.path(), NO_ROTATION)
            .inner
            .files
            .read(&doc("d"))
            .expect("read"),
        vec![(1, update("d", 1))]
    );
}

#[test]
fn a_lease_taken_for_an_append_that_never_came_is_given_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let quick = WalLimits {
        max_bytes: u64::MAX,
        max_age: Duration::from_millis(20),
    };
    let first = open(dir.path(), quick);
    let d = doc("d");
    let always = &first.inner;
    // As an append cancelled between taking the lease and handing its records to the WAL.
    always
        .deferred
        .slot(&d)
        .take_lease(&first.inner.files)
        .expect("lease");
    assert!(always.deferred.has_leases());
    let second = open(dir.path(), NO_ROTATION);
    let reader = std::thread::spawn(move || second.inner.read(&d));
    wait_until("the idle writer gives the lease back", || {
        reader.is_finished()
    });
    assert_eq!(reader.join().expect("reader").expect("read"), vec![]);
    assert!(!always.deferred.has_leases());
}

#[test]
fn under_the_interval_policy_appends_skip_the_fsync_and_a_killed_process_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let interval = FsyncPolicy::Interval(Duration::from_secs(3600));
    let log = FsLog::open_with(dir.path().to_owned(), interval, NO_ROTATION).expect("open");
    let d = doc("d");
    for i in 1..=3 {
        log.inner.append(&d, &[update("d", i)]).expect("append");
    }
    assert_eq!(log.stats().wal_fsyncs, 0);
    // A killed process: the WAL's writes are in the page cache, the document file has none.
    log.crash();
    let log = FsLog::open_with(dir.path().to_owned(), interval, NO_ROTATION).expect("open");
    assert_eq!(log.stats().recovered, 3);
    assert_eq!(
        log.inner.read(&d).expect("read"),
        (1..=3)
            .map(|i| (i as u64, update("d", i)))
            .collect::<Vec<_>>()
    );
}

#[test]
fn appends_during_checkpoints_keep_their_numbers_and_all_reach_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let d = doc("busy");
    const WRITERS: usize = 4;
    const EACH: usize = 200;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            let d = d.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    log.inner
                        .append(&d, &[update(&format!("w{w}"), i)])
                        .expect("append");
                }
            })
        })
        .collect();
    // Checkpoints (each one flushes the document while appends go on) until the writers end.
    while !writers.iter().all(std::thread::JoinHandle::is_finished) {
        checkpoint(&log);
    }
    for writer in writers {
        writer.join().expect("writer");
    }
    checkpoint(&log);
    let records = log.inner.read(&d).expect("read");
    let seqs: Vec<u64> = records.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=(WRITERS * EACH) as u64).collect::<Vec<_>>());
    let mut payloads: Vec<Bytes> = records.into_iter().map(|(_, u)| u).collect();
    payloads.sort();
    let mut expected: Vec<Bytes> = (0..WRITERS)
        .flat_map(|w| (0..EACH).map(move |i| update(&format!("w{w}"), i)))
        .collect();
    expected.sort();
    assert_eq!(payloads, expected, "every update exactly once");
    assert!(log.stats().checkpoints > 1);
}

#[test]
fn batches_overwrite_space_written_ahead_instead_of_growing_the_wal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let d = doc("d");
    log.inner.append(&d, &[update("d", 1)]).expect("append");
    let wal = wal_files(dir.path()).pop().expect("a WAL");
    let size = len_of(&wal);
    assert!(size >= crate::fs::wal::MIN_PREALLOC, "{size} bytes");
    for i in 2..=50 {
        log.inner.append(&d, &[update("d", i)]).expect("append");
    }
    // The fdatasync of each batch had no size to commit.
    assert_eq!(len_of(&wal), size, "the batches grew the file");
    let bytes = fs::read(&wal).expect("read the WAL");
    let scan = log_record::scan(&Bytes::from(bytes.clone()));
    assert_eq!(scan.records.len(), 50);
    assert!(
        bytes[scan.valid_end..].iter().all(|&b| b == 0),
        "only zeros after the last record"
    );
}

#[test]
fn a_wal_that_outgrows_its_space_ahead_grows_in_chunks_and_replays_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let d = doc("d");
    let big = |i: usize| Bytes::from(format!("{i}:{}", "y".repeat(1000)));
    // About 3 × the first space ahead.
    let count = 3 * crate::fs::wal::MIN_PREALLOC as usize / 1000;
    let mut sizes = std::collections::BTreeSet::new();
    for i in 1..=count {
        log.inner.append(&d, &[big(i)]).expect("append");
        sizes.insert(len_of(&wal_files(dir.path())[0]));
    }
    assert!(
        sizes.len() < count / 10,
        "the WAL grew {} times in {count} appends",
        sizes.len()
    );
    log.crash();
    let log = open(dir.path(), NO_ROTATION);
    assert_eq!(log.stats().recovered, count as u64);
    let expected: Vec<(u64, Bytes)> = (1..=count).map(|i| (i as u64, big(i))).collect();
    assert_eq!(log.inner.read(&d).expect("read"), expected);
}
