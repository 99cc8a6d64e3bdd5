//! `/metrics` of a real `chorus` process after real traffic (the recorder is process-wide, so
//! this test gets a process of its own).

use crate::helpers::{TestClient, metric, start_chorus, until_metrics};

#[tokio::test]
async fn metrics_count_real_traffic() {
    let dir = tempfile::tempdir().expect("dir");
    let (_server, addr) = start_chorus(dir.path(), &[]).await;
    let url = |doc: &str| format!("ws://{addr}/ws/{doc}");
    let mut alice = TestClient::connect_synced(&url("m")).await;
    let mut bob = TestClient::connect_synced(&url("m")).await;
    let _carol = TestClient::connect_synced(&url("other")).await;
    // One at a time: updates already waiting together would be merged into one
    // (`chorus_server::burst`) and counted once going out.
    let mut typed = String::new();
    for i in 0..5 {
        alice.type_text(&i.to_string()).await;
        typed.push_str(&i.to_string());
        bob.until("bob has the edit", |c| c.text() == typed).await;
    }
    alice.set_awareness(1, 0, "{}").await;
    bob.until("bob has every edit and alice's presence", |c| {
        c.text() == "01234" && c.awareness.contains_key(&1)
    })
    .await;
    let _ = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/bad%0Aname")).await;

    until_metrics(&addr, "the counters add up", |page| {
        metric(page, "chorus_connections") == 3.0
            && metric(page, "chorus_rooms") == 2.0
            && metric(page, r#"chorus_messages_total{direction="in",kind="update"}"#) == 5.0
            // Each update goes to bob only (not back to alice).
            && metric(page, r#"chorus_messages_total{direction="out",kind="update"}"#) == 5.0
            // Every client's step 1 is answered.
            && metric(page, r#"chorus_messages_total{direction="in",kind="sync_step1"}"#) == 3.0
            && metric(page, r#"chorus_messages_total{direction="out",kind="sync_step2"}"#) == 3.0
            // Awareness goes to alice and bob.
            && metric(page, r#"chorus_messages_total{direction="out",kind="awareness"}"#) == 2.0
            && metric(page, r#"chorus_connections_rejected_total{reason="invalid_document_name"}"#) == 1.0
    })
    .await;

    drop(bob);
    until_metrics(&addr, "the closed connection is counted", |page| {
        metric(page, "chorus_connections") == 2.0
            && metric(page, r#"chorus_connections_closed_total{code="1001"}"#) == 1.0
    })
    .await;
}

/// A sync frame with an update: "x" by `client` at `clock` into root text "t" (no origins).
fn insert_frame(client: u8, clock: u8) -> Vec<u8> {
    vec![0, 2, 11, 1, 1, client, clock, 4, 1, 1, b't', 1, b'x', 0]
}

#[tokio::test]
async fn refusals_are_counted_per_rule_and_named_in_the_close_reason() {
    let dir = tempfile::tempdir().expect("dir");
    // Nothing may wait for missing clocks: the first update that has to, closes its sender.
    let (_server, addr) = start_chorus(dir.path(), &["--max-pending-structs", "0"]).await;
    let url = format!("ws://{addr}/ws/rules");

    // The connection's own check: an item right of a later clock of its own client.
    let mut forger = TestClient::connect_synced(&url).await;
    forger
        .send_raw(vec![0, 2, 10, 1, 1, 9, 0, 0x84, 9, 5, 1, b'x', 0])
        .await;
    assert_eq!(forger.closed_code().await, Some(1007));
    let reason = forger.closed_reason().expect("a close reason");
    assert!(reason.starts_with("[inconsistent_origins]"), "{reason}");

    // The room's: an update that skips clocks would have to wait.
    let mut ahead = TestClient::connect_synced(&url).await;
    ahead.send_raw(insert_frame(7, 10)).await;
    assert_eq!(ahead.closed_code().await, Some(1008));
    let reason = ahead.closed_reason().expect("a close reason");
    assert!(reason.starts_with("[too_many_held]"), "{reason}");

    until_metrics(&addr, "each refusal is counted under its rule", |page| {
        metric(
            page,
            r#"chorus_update_refusals_total{rule="inconsistent_origins"}"#,
        ) == 1.0
            && metric(
                page,
                r#"chorus_update_refusals_total{rule="too_many_held"}"#,
            ) == 1.0
            && metric(page, "chorus_updates_held_total") == 1.0
    })
    .await;
}
