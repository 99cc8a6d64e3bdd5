//! What every `UpdateLog` backend must do, run against each of them.

use std::sync::Arc;
use std::time::Duration;

use chorus_store::{FsLog, FsyncPolicy, MemoryLog, RedisLog, UpdateLog};

use crate::helpers::{Editor, doc_name, redis, redis_cleanup, redis_peer, text_of, unique};

/// Appends, reads, truncates and deletes, checking numbering at every step.
async fn contract(log: &dyn UpdateLog) {
    let doc = doc_name(&unique("contract"));
    let other = doc_name(&unique("other"));
    let editor = Editor::new(7);
    assert_eq!(log.read(&doc).await.expect("read empty"), vec![]);

    let first = [editor.type_text("a"), editor.type_text("b")];
    assert_eq!(log.append(&doc, &first).await.expect("append"), 2);
    let third = editor.type_text("c");
    assert_eq!(
        log.append(&doc, std::slice::from_ref(&third))
            .await
            .expect("append"),
        3
    );
    assert_eq!(
        log.append(&other, &[editor.type_text("x")])
            .await
            .expect("append other"),
        1,
        "numbering is per document"
    );
    let records = log.read(&doc).await.expect("read");
    assert_eq!(
        records,
        vec![
            (1, first[0].clone()),
            (2, first[1].clone()),
            (3, third.clone())
        ]
    );
    assert_eq!(text_of(records.iter().map(|(_, u)| u.as_ref())), "abc");

    log.truncate(&doc, 2).await.expect("truncate");
    assert_eq!(log.read(&doc).await.expect("read"), vec![(3, third)]);
    log.truncate(&doc, 3).await.expect("truncate all");
    assert_eq!(log.read(&doc).await.expect("read"), vec![]);
    let fourth = editor.type_text("d");
    assert_eq!(
        log.append(&doc, std::slice::from_ref(&fourth))
            .await
            .expect("append"),
        4,
        "numbering survives truncation"
    );
    assert_eq!(log.read(&doc).await.expect("read"), vec![(4, fourth)]);
    assert_eq!(log.append(&doc, &[]).await.expect("empty batch"), 4);

    let mut listed = log.list().await.expect("list");
    listed.retain(|d| *d == doc || *d == other);
    let mut expected = vec![doc.clone(), other.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    log.delete(&doc).await.expect("delete");
    log.delete(&doc).await.expect("deleting twice is fine");
    assert_eq!(log.read(&doc).await.expect("read"), vec![]);
    assert!(!log.list().await.expect("list").contains(&doc));
    assert_eq!(
        log.append(&doc, &[editor.type_text("e")])
            .await
            .expect("append"),
        1,
        "a deleted log starts over"
    );
    log.flush().await.expect("flush");
}

/// Two writers (two nodes) append to one document at once: nothing is lost, every record gets
/// its own number, and each writer's records keep their order.
async fn concurrent_writers(a: Arc<dyn UpdateLog>, b: Arc<dyn UpdateLog>) {
    const BATCHES: usize = 40;
    let doc = doc_name(&unique("shared"));
    let writer = |log: Arc<dyn UpdateLog>, client: u64| {
        let doc = doc.clone();
        tokio::spawn(async move {
            let editor = Editor::new(client);
            let mut last = 0;
            for i in 0..BATCHES {
                let batch = [
                    editor.type_text(&format!("{client}.{i}a ")),
                    editor.type_text(&format!("{client}.{i}b ")),
                ];
                let seq = log.append(&doc, &batch).await.expect("append");
                assert!(seq > last, "sequence numbers increase for each writer");
                last = seq;
            }
            editor.text()
        })
    };
    let (text_a, text_b) = tokio::join!(writer(a.clone(), 1), writer(b, 2));
    let (text_a, text_b) = (text_a.expect("writer a"), text_b.expect("writer b"));
    let records = a.read(&doc).await.expect("read");
    assert_eq!(records.len(), 4 * BATCHES);
    let seqs: Vec<u64> = records.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=4 * BATCHES as u64).collect::<Vec<_>>());
    let merged = text_of(records.iter().map(|(_, u)| u.as_ref()));
    for part in text_a.split_whitespace().chain(text_b.split_whitespace()) {
        assert!(merged.contains(part), "{part} is in the log");
    }
}

#[tokio::test]
async fn memory_log_keeps_the_contract() {
    contract(&MemoryLog::new()).await;
}

#[tokio::test]
async fn fs_log_keeps_the_contract_fsyncing_every_append() {
    let dir = tempfile::tempdir().expect("temp dir");
    contract(&FsLog::open(dir.path(), FsyncPolicy::Always).expect("open")).await;
}

#[tokio::test]
async fn fs_log_keeps_the_contract_fsyncing_on_an_interval() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = FsyncPolicy::Interval(Duration::from_millis(20));
    contract(&FsLog::open(dir.path(), policy).expect("open")).await;
}

#[tokio::test]
async fn redis_log_keeps_the_contract() {
    let conn = redis().await;
    contract(&RedisLog::new(conn.clone())).await;
    redis_cleanup(&conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_fs_logs_on_one_directory_append_in_turn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = FsLog::open(dir.path(), FsyncPolicy::Always).expect("open a");
    let b =
        FsLog::open(dir.path(), FsyncPolicy::Interval(Duration::from_millis(5))).expect("open b");
    concurrent_writers(Arc::new(a), Arc::new(b)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_redis_logs_on_one_prefix_append_in_turn() {
    let conn = redis().await;
    let peer = redis_peer(&conn).await;
    concurrent_writers(
        Arc::new(RedisLog::new(conn.clone())),
        Arc::new(RedisLog::new(peer)),
    )
    .await;
    redis_cleanup(&conn).await;
}

#[tokio::test]
async fn memory_log_serves_concurrent_writers() {
    let log: Arc<dyn UpdateLog> = Arc::new(MemoryLog::new());
    concurrent_writers(Arc::clone(&log), log).await;
}
