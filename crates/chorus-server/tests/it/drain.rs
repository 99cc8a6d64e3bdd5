//! A rolling update: one of two real server processes is drained with SIGTERM while clients
//! type; its clients move to the other node and nothing is lost.

use crate::helpers::{TestClient, start_chorus};
use crate::relay::{redis_url, require_redis, unique_prefix};

#[tokio::test]
async fn draining_a_node_loses_nothing() {
    require_redis().await;
    let prefix = unique_prefix();
    let redis = redis_url();
    let args = [
        "--redis-url",
        redis.as_str(),
        "--redis-prefix",
        prefix.as_str(),
    ];
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (mut node_a, addr_a) = start_chorus(dir_a.path(), &args).await;
    let (_node_b, addr_b) = start_chorus(dir_b.path(), &args).await;
    let url = |addr: &str| format!("ws://{addr}/ws/rolling");

    let mut on_a = TestClient::connect_synced(&url(&addr_a)).await;
    let mut on_b = TestClient::connect_synced(&url(&addr_b)).await;
    let mut typed = Vec::new();
    for i in 0..40 {
        let (who, marker) = if i % 2 == 0 {
            (&mut on_a, format!("[a{i}]"))
        } else {
            (&mut on_b, format!("[b{i}]"))
        };
        who.type_text(&marker).await;
        typed.push(marker);
    }

    // Drain A while its client keeps typing into the socket.
    node_a.terminate();
    for i in 40..60 {
        let marker = format!("[a{i}]");
        // The node may have closed the socket under the client: the edit stays local, and the
        // client's step 2 brings it after the reconnect.
        let sent = on_a.try_type_text(&marker).await;
        typed.push(marker);
        if !sent || on_a.closed.is_some() {
            break;
        }
    }
    assert_eq!(
        on_a.closed_code().await,
        Some(1001),
        "clients are told the node is going away"
    );
    assert_eq!(
        node_a.exit_code().await,
        Some(0),
        "a drained node exits cleanly"
    );

    // The client reconnects, as through a load balancer, to the node that is left.
    on_a.reconnect(&url(&addr_b)).await;
    for i in 60..70 {
        let marker = format!("[a{i}]");
        on_a.type_text(&marker).await;
        typed.push(marker);
    }
    let has_everything = |c: &TestClient| typed.iter().all(|m| c.text().contains(m.as_str()));
    on_b.until("the client on B has every edit", has_everything)
        .await;
    on_a.until("the moved client has every edit", has_everything)
        .await;
    assert_eq!(on_a.text(), on_b.text());
    let fresh = TestClient::connect_synced(&url(&addr_b)).await;
    assert_eq!(
        fresh.text(),
        on_b.text(),
        "a new client sees the same document"
    );
}
