//! `--drain-delay`: after SIGTERM, `/readyz` answers 503 while the server goes on serving, so
//! load balancers stop routing here before the listener closes.

use crate::helpers::{TestClient, eventually, start_chorus};
use crate::home_page::fetch;

/// Long enough for the checks below on a busy machine; the test waits it out at the end.
const DRAIN_DELAY: &str = "6s";

#[tokio::test]
async fn readiness_fails_first_while_new_connections_still_sync() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut node, addr) = start_chorus(dir.path(), &["--drain-delay", DRAIN_DELAY]).await;
    let url = format!("ws://{addr}/ws/draining");
    assert_eq!(fetch(&addr, "/readyz").await.status, 200);
    let mut early = TestClient::connect_synced(&url).await;
    early.type_text("typed before the drain").await;

    node.terminate();
    eventually("/readyz answers 503", || async {
        fetch(&addr, "/readyz").await.status == 503
    })
    .await;
    let readyz = fetch(&addr, "/readyz").await;
    assert!(readyz.body.contains("\"draining\""), "{}", readyz.body);

    // A client the load balancer still sent here connects, syncs and edits as usual.
    let mut late = TestClient::connect_synced(&url).await;
    assert_eq!(late.text(), "typed before the drain");
    late.type_text(", typed during it").await;
    early
        .until("the edit made during the drain arrives", |c| {
            c.text().ends_with(", typed during it")
        })
        .await;
    assert_eq!(
        fetch(&addr, "/readyz").await.status,
        503,
        "still draining after the late client's edit"
    );

    // Then shutdown proceeds as without a delay.
    assert_eq!(early.closed_code().await, Some(1001));
    assert_eq!(late.closed_code().await, Some(1001));
    assert_eq!(node.exit_code().await, Some(0));
}
