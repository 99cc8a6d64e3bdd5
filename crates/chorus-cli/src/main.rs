//! `chorus`: the Chorus collaboration server, and operator commands on its store.

mod doc;
mod versions;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chorus",
    version,
    about = "Real-time collaboration server for Yjs clients"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (y-websocket endpoint at ws://HOST:PORT/ws/<document>).
    Serve(chorus_server::Config),
    /// Inspect and repair documents in the configured store (same settings as `serve`).
    #[command(subcommand)]
    Doc(doc::DocCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(config) => {
            chorus_server::telemetry::init(config.operations.log_format);
            let app = chorus_server::Application::build(config).await?;
            app.run_until_stopped(chorus_server::shutdown::signal())
                .await
        }
        Command::Doc(command) => command.run().await,
    }
}
