//! `--quarantine-dir`: a refused update is kept with what its connection sent before it, so an
//! operator can hand over the evidence, and no more refusals are kept than allowed.

use crate::helpers::{TestClient, eventually, length_prefixed, start_chorus};

#[tokio::test]
async fn a_refused_update_is_kept_with_the_messages_before_it() {
    let dir = tempfile::tempdir().expect("data dir");
    let quarantine = tempfile::tempdir().expect("quarantine dir");
    let path = quarantine.path().to_str().expect("utf-8 path").to_owned();
    let (_server, addr) = start_chorus(
        dir.path(),
        &["--quarantine-dir", &path, "--quarantine-max", "1"],
    )
    .await;
    let url = format!("ws://{addr}/ws/evidence");

    let mut client = TestClient::connect_synced(&url).await;
    client.type_text("fine").await;
    // "x" at clock 0 of client 9 right of clock 5 of client 9: no encoder writes that.
    let forged = vec![0, 2, 10, 1, 1, 9, 0, 0x84, 9, 5, 1, b'x', 0];
    client.send_raw(forged.clone()).await;
    assert_eq!(client.closed_code().await, Some(1007));

    let kept = eventually_one_entry(quarantine.path()).await;
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kept.join("refusal.json")).expect("refusal.json"))
            .expect("json");
    assert_eq!(summary["doc"], "evidence");
    assert_eq!(summary["code"], 1007);
    assert!(
        summary["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("[inconsistent_origins]")),
        "{summary}"
    );
    let sent = length_prefixed(
        &std::fs::read(kept.join("frames.bin")).expect("frames.bin"),
        "frames.bin",
    );
    assert_eq!(sent.last(), Some(&forged), "the refused update comes last");
    assert!(
        sent.len() >= 3,
        "the step 1 and the honest edit come before it: {sent:?}"
    );

    // The quarantine holds one refusal: a second is only logged.
    let mut again = TestClient::connect_synced(&url).await;
    again.send_raw(forged).await;
    assert_eq!(again.closed_code().await, Some(1007));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        std::fs::read_dir(quarantine.path()).expect("dir").count(),
        1
    );
}

async fn eventually_one_entry(dir: &std::path::Path) -> std::path::PathBuf {
    eventually("the refusal is written", || async {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|entry| entry.path().join("refusal.json").exists())
            })
            .unwrap_or(false)
    })
    .await;
    std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|entry| entry.path())
        .next()
        .expect("one entry")
}
