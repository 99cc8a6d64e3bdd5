//! A panic inside the document engine drops only its room: its connections close with 1011,
//! other rooms carry on, and the room reloads from what was stored on the next connection.
//! The panic is made on purpose through chorus-room's test-only fault point (the feature
//! `fault-injection`, which only this test build enables), not by hoping for a yrs bug.

use std::time::Duration;

use crate::helpers::{TestClient, spawn_app_with};

#[tokio::test]
async fn a_panicking_document_drops_only_its_room_which_reloads_from_its_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_with(dir.path().into(), |c| {
        c.storage.snapshot_interval = Duration::from_millis(50);
    })
    .await;
    let mut victim = TestClient::connect_synced(&app.ws_url("victim")).await;
    let mut bystander = TestClient::connect_synced(&app.ws_url("bystander")).await;
    victim.type_text("saved ").await;
    bystander.type_text("calm").await;
    // A second client of the victim room sees the edit once the room has applied and logged it.
    let mut watcher = TestClient::connect_synced(&app.ws_url("victim")).await;
    watcher
        .until("the edit reached the room", |c| c.text() == "saved ")
        .await;

    // Only updates carrying this marker make the engine panic.
    chorus_room::fault::panic_on_update_containing(b"boom-e7c1");
    victim.type_text("boom-e7c1").await;
    assert_eq!(
        victim.closed_code().await,
        Some(1011),
        "its sender gets 1011"
    );
    assert_eq!(
        watcher.closed_code().await,
        Some(1011),
        "so does everyone in the room"
    );
    assert!(
        watcher
            .closed_reason()
            .is_some_and(|reason| reason.contains("reload")),
        "the reason says what to do"
    );

    // The other room carries on: a fresh client there gets what was typed and can type more.
    bystander.type_text(" still").await;
    let mut other = TestClient::connect_synced(&app.ws_url("bystander")).await;
    other
        .until("the other room kept its document", |c| {
            c.text() == "calm still"
        })
        .await;

    // The dropped room reloads from the store: the edit before the panic is there, the
    // update that made it panic is not.
    let reloaded = TestClient::connect_synced(&app.ws_url("victim")).await;
    assert_eq!(reloaded.text(), "saved ");
    app.stop().await;
}
