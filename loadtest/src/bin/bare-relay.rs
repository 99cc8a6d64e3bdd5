//! `bare-relay`: the yardstick relay (see `chorus_loadtest::relay`). Prints one JSON line
//! `{"fields":{"message":"listening","addr":"IP:PORT"}}` on stdout, like `chorus serve
//! --log-format json`, so the same tooling finds its port.

use std::net::SocketAddr;

use anyhow::Context;
use chorus_loadtest::relay::{self, RelayConfig};
use clap::Parser;

/// A y-websocket relay without CRDT or storage: a yardstick, not a server.
#[derive(Debug, Parser)]
#[command(name = "bare-relay", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// WebSocket read buffer per connection, KiB (128 is the tungstenite and axum default).
    #[arg(long, default_value_t = 128)]
    read_buffer_kib: usize,
    /// Drop every Nth update frame. Only for tests of the load generator's loss detection.
    #[arg(long, hide = true)]
    drop_every: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = relay::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "{}",
        serde_json::json!({"target": "bare_relay", "fields": {"message": "listening", "addr": addr.to_string()}})
    );
    let config = RelayConfig {
        read_buffer: args.read_buffer_kib.saturating_mul(1024),
        drop_every: args.drop_every,
    };
    tokio::select! {
        result = relay::serve(listener, config) => result.context("accepting connections")?,
        _ = shutdown() => {}
    }
    Ok(())
}

async fn shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
