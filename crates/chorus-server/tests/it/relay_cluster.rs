//! The relay over a real local Redis Cluster of three masters, started by the test from
//! `redis-server` processes.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::helpers::{TestClient, eventually, spawn_app_with};
use crate::relay::unique_prefix;

/// Three cluster-enabled `redis-server` processes, killed on drop.
struct Cluster {
    ports: Vec<u16>,
    servers: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// A free port whose cluster-bus port (10,000 higher) exists and is free too: redis-server
/// refuses to start in cluster mode above port 55535.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if port <= 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs (apt-get install redis-tools)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn start_cluster(dir: &Path) -> Cluster {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let servers = ports
        .iter()
        .map(|port| {
            Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{port}.conf"),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .current_dir(dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server starts (apt-get install redis-server)")
        })
        .collect();
    let cluster = Cluster { ports, servers };
    for &port in &cluster.ports {
        eventually("a cluster node answers", || async move {
            redis_cli(port, &["ping"]).contains("PONG")
        })
        .await;
    }
    let addresses: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let mut create = vec!["--cluster", "create"];
    create.extend(addresses.iter().map(String::as_str));
    create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    redis_cli(cluster.ports[0], &create);
    for &port in &cluster.ports {
        eventually("the cluster is ok", || async move {
            redis_cli(port, &["cluster", "info"]).contains("cluster_state:ok")
        })
        .await;
    }
    cluster
}

#[tokio::test]
async fn rooms_relay_through_sharded_pub_sub_spread_over_the_shards() {
    let redis_dir = tempfile::tempdir().expect("dir");
    let cluster = start_cluster(redis_dir.path()).await;
    let seeds = cluster
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let prefix = unique_prefix();
    let node = |dir: std::path::PathBuf| {
        let (seeds, prefix) = (seeds.clone(), prefix.clone());
        spawn_app_with(dir, move |c| {
            c.scale_out.redis_url = Some(seeds);
            c.scale_out.redis_cluster = true;
            c.scale_out.redis_prefix = prefix;
        })
    };
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = node(dir_a.path().into()).await;
    let b = node(dir_b.path().into()).await;

    // Twelve rooms, each edited on A and read on B.
    let mut readers = Vec::new();
    for i in 0..12 {
        let doc = format!("doc-{i}");
        readers.push(TestClient::connect_synced(&b.ws_url(&doc)).await);
        let mut writer = TestClient::connect_synced(&a.ws_url(&doc)).await;
        writer.type_text(&format!("text {i}")).await;
        readers.push(writer);
    }
    for (i, pair) in readers.chunks_mut(2).enumerate() {
        let expected = format!("text {i}");
        pair[0]
            .until("the edit crossed the cluster", |c| c.text() == expected)
            .await;
    }

    // The room channels live on more than one shard.
    let shards_with_rooms = cluster
        .ports
        .iter()
        .filter(|&&port| {
            redis_cli(
                port,
                &["pubsub", "shardchannels", &format!("{prefix}:room:*")],
            )
            .trim()
                != ""
        })
        .count();
    assert!(shards_with_rooms >= 2, "room channels all sit on one shard");

    // Back the other way, with awareness.
    let (b_reader, a_writer) = readers.split_at_mut(1);
    a_writer[0].set_awareness(31, 0, r#"{"on":"a"}"#).await;
    b_reader[0]
        .until("presence crossed", |c| c.awareness.contains_key(&31))
        .await;
    b_reader[0].type_text("!").await;
    a_writer[0]
        .until("b's edit reached a", |c| c.text() == "text 0!")
        .await;

    a.stop().await;
    b.stop().await;
    drop(cluster);
}
