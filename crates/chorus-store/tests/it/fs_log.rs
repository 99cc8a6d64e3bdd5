//! Crash and corruption recovery of the file update log, on real files.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chorus_store::{FsLog, FsyncPolicy, UpdateLog};

use crate::helpers::{Editor, doc_name, text_of};

fn corrupt_copies(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".log.corrupt-"))
        .collect();
    found.sort();
    found
}

/// Writes three single-record appends, each flushed to the document's file (under `Always`
/// appends reach it at the next checkpoint); returns the updates and the file length after
/// each.
async fn three_appends(dir: &Path) -> (Vec<Bytes>, Vec<u64>, PathBuf) {
    let log = FsLog::open(dir, FsyncPolicy::Always).expect("open");
    let doc = doc_name("notes");
    let editor = Editor::new(3);
    let mut updates = Vec::new();
    let mut lengths = Vec::new();
    for text in ["hello ", "brave ", "world"] {
        let update = editor.type_text(text);
        log.append(&doc, std::slice::from_ref(&update))
            .await
            .expect("append");
        log.flush().await.expect("flush");
        updates.push(update);
        lengths.push(fs::metadata(log.path_of(&doc)).expect("stat").len());
    }
    (updates, lengths, log.path_of(&doc))
}

#[tokio::test]
async fn a_log_cut_at_any_byte_of_its_last_record_loads_everything_before_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (updates, lengths, path) = three_appends(dir.path()).await;
    let whole = fs::read(&path).expect("read");
    let doc = doc_name("notes");
    let (start, end) = (lengths[1] as usize, lengths[2] as usize);
    assert_eq!(whole.len(), end);
    for cut in start..end {
        fs::write(&path, &whole[..cut]).expect("cut the file");
        // A fresh log, as after a restart: nothing cached about the file.
        let log = FsLog::open(dir.path(), FsyncPolicy::Always).expect("reopen");
        let records = log.read(&doc).await.expect("a torn tail is not an error");
        assert_eq!(
            records,
            vec![(1, updates[0].clone()), (2, updates[1].clone())],
            "cut at byte {cut} of {end}"
        );
        assert_eq!(
            text_of(records.iter().map(|(_, u)| u.as_ref())),
            "hello brave "
        );
        // The torn bytes are gone for good: the next append follows record 2 cleanly.
        assert_eq!(
            log.append(&doc, std::slice::from_ref(&updates[2]))
                .await
                .expect("append after recovery"),
            3,
            "cut at byte {cut}"
        );
        // Written to the file now, rather than at the next checkpoint, which the next open
        // would wait for.
        log.flush().await.expect("flush");
        let reopened = FsLog::open(dir.path(), FsyncPolicy::Always).expect("reopen");
        assert_eq!(
            reopened.read(&doc).await.expect("read").len(),
            3,
            "cut at byte {cut}"
        );
        assert_eq!(fs::read(&path).expect("read"), whole, "cut at byte {cut}");
    }
    assert!(
        corrupt_copies(dir.path()).is_empty(),
        "a torn tail is normal, not evidence"
    );
}

#[tokio::test]
async fn an_append_recovers_a_torn_tail_it_did_not_know_about() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (updates, lengths, path) = three_appends(dir.path()).await;
    let doc = doc_name("notes");
    // Crash in the middle of the third append, then a restart that appends before reading.
    let whole = fs::read(&path).expect("read");
    fs::write(&path, &whole[..lengths[2] as usize - 3]).expect("tear");
    let log = FsLog::open(dir.path(), FsyncPolicy::Always).expect("reopen");
    let extra = Editor::new(9).type_text("!");
    assert_eq!(
        log.append(&doc, std::slice::from_ref(&extra))
            .await
            .expect("append"),
        3
    );
    assert_eq!(
        log.read(&doc).await.expect("read"),
        vec![(1, updates[0].clone()), (2, updates[1].clone()), (3, extra)]
    );
}

#[tokio::test]
async fn a_damaged_middle_record_is_skipped_and_the_original_kept_aside() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (updates, lengths, path) = three_appends(dir.path()).await;
    let doc = doc_name("notes");
    let mut damaged = fs::read(&path).expect("read");
    // A byte inside the payload of record 2.
    let inside = (lengths[0] as usize + lengths[1] as usize) / 2;
    damaged[inside] ^= 0x20;
    fs::write(&path, &damaged).expect("damage");

    let log = FsLog::open(dir.path(), FsyncPolicy::Always).expect("reopen");
    let records = log
        .read(&doc)
        .await
        .expect("damage in the middle is not an error");
    assert_eq!(
        records,
        vec![(1, updates[0].clone()), (3, updates[2].clone())]
    );
    let kept = corrupt_copies(dir.path());
    assert_eq!(kept.len(), 1, "the damaged original is kept aside");
    assert_eq!(fs::read(&kept[0]).expect("kept"), damaged);

    // The live log was rewritten clean: reading again finds no damage and keeps nothing new.
    assert_eq!(log.read(&doc).await.expect("read"), records);
    assert_eq!(corrupt_copies(dir.path()).len(), 1);
    let extra = Editor::new(9).type_text("!");
    assert_eq!(
        log.append(&doc, std::slice::from_ref(&extra))
            .await
            .expect("append"),
        4
    );
    // A second corruption never overwrites the first piece of evidence.
    let mut again = fs::read(&path).expect("read");
    let header_end = 8 + 4 + "notes".len() + 4;
    again[header_end + 25] ^= 0x01;
    fs::write(&path, &again).expect("damage again");
    let reopened = FsLog::open(dir.path(), FsyncPolicy::Always).expect("reopen");
    let seqs: Vec<u64> = reopened
        .read(&doc)
        .await
        .expect("read")
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(seqs, [3, 4]);
    let kept_now = corrupt_copies(dir.path());
    assert_eq!(kept_now.len(), 2);
    assert_eq!(
        fs::read(&kept[0]).expect("kept"),
        damaged,
        "first copy intact"
    );
}

#[tokio::test]
async fn a_log_of_another_document_is_kept_aside_not_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, _, path) = three_appends(dir.path()).await;
    let log = FsLog::open(dir.path(), FsyncPolicy::Always).expect("open");
    let imposter = doc_name("imposter");
    fs::copy(&path, log.path_of(&imposter)).expect("copy");
    assert_eq!(log.read(&imposter).await.expect("read"), vec![]);
    assert_eq!(corrupt_copies(dir.path()).len(), 1);
}

#[tokio::test]
async fn interval_policy_data_is_readable_at_once_and_flushes_on_demand() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FsLog::open(
        dir.path(),
        FsyncPolicy::Interval(std::time::Duration::from_secs(3600)),
    )
    .expect("open");
    let doc = doc_name("d");
    let update = Editor::new(1).type_text("x");
    log.append(&doc, std::slice::from_ref(&update))
        .await
        .expect("append");
    let other = FsLog::open(dir.path(), FsyncPolicy::Always).expect("open");
    assert_eq!(
        other.read(&doc).await.expect("read"),
        vec![(1, update)],
        "written before the fsync"
    );
    log.flush().await.expect("flush");
}

#[tokio::test]
async fn logs_with_hashed_file_names_are_listed_by_their_real_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = FsLog::open(dir.path(), FsyncPolicy::Always).expect("open");
    let long = doc_name(&"ü/".repeat(150));
    log.append(&long, &[Editor::new(1).type_text("x")])
        .await
        .expect("append");
    assert_eq!(log.list().await.expect("list"), vec![long]);
}
