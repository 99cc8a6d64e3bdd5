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

fn checkpoint(log: &FsLog) {
    log.inner
        .wal
        .as_ref()
        .expect("a WAL under Always")
        .checkpoint()
        .expect("checkpoint");
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
    let paused = log.inner.wal.as_ref().expect("WAL").pause();
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
        assert_eq!(log.inner.files.read(&doc(name)).expect("read"), expected);
    }
}

#[test]
fn a_power_cut_before_the_checkpoint_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open(dir.path(), NO_ROTATION);
    let (a, b) = (doc("a"), doc("b"));
    let (a_path, b_path) = (log.path_of(&a), log.path_of(&b));
    assert_eq!(log.inner.append(&a, &[update("a", 1)]).expect("append"), 1);
    let a_after_first = len_of(&a_path);
    let batch = [update("a", 2), update("a", 3)];
    assert_eq!(log.inner.append(&a, &batch).expect("append"), 3);
    for i in 1..=4 {
        assert_eq!(
            log.inner.append(&b, &[update("b", i)]).expect("append"),
            i as u64
        );
    }
    let a_whole = fs::read(&a_path).expect("read");
    let b_whole = fs::read(&b_path).expect("read");
    log.crash();
    assert_eq!(wal_files(dir.path()).len(), 1, "the crash left the WAL");

    // The page cache is gone: a kept its first record and a few bytes of the next, b
    // (whose creation was fsynced) nothing at all.
    lose_writes_after(&a_path, a_after_first + 5);
    lose_writes_after(&b_path, 0);

    let log = open(dir.path(), NO_ROTATION);
    assert_eq!(log.stats().recovered, 2 + 4);
    assert!(
        wal_files(dir.path()).is_empty(),
        "the WAL was replayed and removed"
    );
    assert_eq!(
        log.inner.files.read(&a).expect("read"),
        vec![
            (1, update("a", 1)),
            (2, update("a", 2)),
            (3, update("a", 3))
        ]
    );
    assert_eq!(
        log.inner.files.read(&b).expect("read"),
        (1..=4)
            .map(|i| (i as u64, update("b", i)))
            .collect::<Vec<_>>()
    );
    assert_eq!(fs::read(&a_path).expect("read"), a_whole, "byte for byte");
    assert_eq!(fs::read(&b_path).expect("read"), b_whole, "byte for byte");
    assert_eq!(log.inner.append(&a, &[update("a", 4)]).expect("append"), 4);
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
    assert_eq!(
        log.inner.files.read(&d).expect("read"),
        vec![(1, update("d", 1))]
    );
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
    log.inner.files.delete(&gone).expect("delete");
    log.inner.files.delete(&again).expect("delete");
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
    assert_eq!(log.inner.files.read(&gone).expect("read"), vec![]);
    assert_eq!(
        log.inner.files.read(&again).expect("read"),
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
    log.inner.files.truncate(&d, 2).expect("truncate");
    log.inner
        .append(&d, &[update("snapshotted", 4)])
        .expect("append");
    // Checkpointing the WAL fsyncs the handle of the file truncation replaced; that
    // must neither fail nor bring anything back.
    checkpoint(&log);
    assert_eq!(
        log.inner.files.read(&d).expect("read"),
        vec![(3, update("snapshotted", 3)), (4, update("snapshotted", 4))]
    );
    log.inner
        .append(&d, &[update("snapshotted", 5)])
        .expect("append");
    log.inner.files.truncate(&d, 3).expect("truncate");
    let truncated_again = len_of(&path);
    log.inner
        .append(&d, &[update("snapshotted", 6)])
        .expect("append");
    log.crash();
    lose_writes_after(&path, truncated_again);

    let log = open(dir.path(), NO_ROTATION);
    assert_eq!(
        log.inner.files.read(&d).expect("read"),
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
    let after_first = len_of(&path);
    live.inner.append(&d, &[update("d", 2)]).expect("append");
    lose_writes_after(&path, after_first);

    let second = open(dir.path(), NO_ROTATION);
    assert_eq!(second.stats().recovered, 0);
    assert_eq!(len_of(&path), after_first, "nothing replayed");
    assert_eq!(wal_files(dir.path()).len(), 1, "the live WAL stays");
    drop(second);

    // Once its process is gone, the next open replays it.
    live.crash();
    let third = open(dir.path(), NO_ROTATION);
    assert_eq!(third.stats().recovered, 1);
    assert_eq!(
        third.inner.files.read(&d).expect("read"),
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
    assert!(wal_files(dir.path()).len() <= 1);
    for name in names {
        let expected: Vec<(u64, Bytes)> = (0..100)
            .map(|round| (round as u64 + 1, update(name, round)))
            .collect();
        assert_eq!(log.inner.files.read(&doc(name)).expect("read"), expected);
    }
    checkpoint(&log);
    assert!(wal_files(dir.path()).is_empty());
    assert_eq!(log.stats().checkpoints, log.stats().wal_files);
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
