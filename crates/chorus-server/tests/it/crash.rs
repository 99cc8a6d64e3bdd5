//! Nothing a client received is lost when the server is killed: the update log is written before
//! anything is relayed. Real processes, SIGKILL, restart on the same store.

use crate::helpers::{Process, TestClient, start_chorus};
use crate::relay::{redis_url, require_redis, unique_prefix};

async fn kill_mid_stream_and_reload(data_dir: &std::path::Path, args: &[&str]) {
    let (mut server, addr) = start_chorus(data_dir, args).await;
    let url = format!("ws://{addr}/ws/crash");
    let mut writer = TestClient::connect_synced(&url).await;
    let mut reader = TestClient::connect_synced(&url).await;

    // The writer sends as fast as it can; the server is killed while updates are in flight.
    for i in 0..400 {
        writer.type_text(&format!("<{i}>")).await;
    }
    reader
        .until("the reader has received some of it", |c| {
            c.text().contains("<100>")
        })
        .await;
    kill(&mut server);
    // Whatever else was already on its way to the reader still arrives.
    reader
        .until("the connection ends", |c| c.closed.is_some())
        .await;
    let seen = reader.text();
    assert!(seen.contains("<100>"));

    let (server, addr) = start_chorus(data_dir, args).await;
    let reloaded = TestClient::connect_synced(&format!("ws://{addr}/ws/crash")).await;
    let text = reloaded.text();
    let missing: Vec<&str> = seen
        .split_inclusive('>')
        .filter(|marker| !text.contains(marker))
        .collect();
    assert!(missing.is_empty(), "lost after the crash: {missing:?}");
    drop(server);
}

fn kill(server: &mut Process) {
    server.0.kill().expect("SIGKILL");
    let _ = server.0.wait();
}

#[tokio::test]
async fn sigkill_loses_nothing_a_client_received_with_the_file_store() {
    let dir = tempfile::tempdir().expect("dir");
    // No snapshot can help: only the update log can bring the edits back.
    kill_mid_stream_and_reload(dir.path(), &["--snapshot-interval", "1h"]).await;
}

#[tokio::test]
async fn sigkill_loses_nothing_a_client_received_with_the_redis_store() {
    require_redis().await;
    let dir = tempfile::tempdir().expect("dir");
    let prefix = format!("{}:", unique_prefix());
    let redis = redis_url();
    let args = [
        "--snapshot-interval",
        "1h",
        "--store",
        "redis",
        "--store-redis-url",
        redis.as_str(),
        "--store-prefix",
        prefix.as_str(),
    ];
    kill_mid_stream_and_reload(dir.path(), &args).await;
}
