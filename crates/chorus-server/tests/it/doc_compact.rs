//! `chorus doc compact` on what a killed server left: checked by content, in the store itself.

use crate::helpers::{TestClient, chorus_bin, start_chorus, stored_state, text_of};

#[tokio::test]
async fn compact_folds_the_log_of_a_killed_server_into_its_snapshot() {
    let dir = tempfile::tempdir().expect("dir");
    {
        // No periodic snapshot within the test; SIGKILL leaves no shutdown flush either.
        let (_server, addr) = start_chorus(dir.path(), &["--snapshot-interval", "1h"]).await;
        let url = format!("ws://{addr}/ws/team/notes");
        let mut alice = TestClient::connect_synced(&url).await;
        let mut bob = TestClient::connect_synced(&url).await;
        alice.type_text("hello").await;
        bob.type_text(" world").await;
        // Relayed only once logged: when each has the other's edit, both are in the log.
        alice
            .until("alice has both edits", |c| c.text().len() == 11)
            .await;
        bob.until("bob has both edits", |c| c.text().len() == 11)
            .await;
    }
    let (snapshot, records) = stored_state(dir.path(), "team/notes").await;
    assert_eq!(snapshot, None, "the killed server saved no snapshot");
    assert!(records >= 2, "the edits are in the log ({records} records)");

    let output = std::process::Command::new(chorus_bin())
        .args(["doc", "compact", "team/notes", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("chorus runs");
    assert!(
        output.status.success(),
        "chorus doc compact failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (snapshot, records) = stored_state(dir.path(), "team/notes").await;
    let text = text_of(&snapshot.expect("compaction wrote a snapshot"));
    assert!(
        text == "hello world" || text == " worldhello",
        "the snapshot holds both edits: {text:?}"
    );
    assert_eq!(records, 0, "the log was truncated");
}
