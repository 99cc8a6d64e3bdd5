//! Runs the Notes example: `cargo run -p chorus-example-notes` then open
//! `ws://127.0.0.1:3000/collab/ws/<note>?token=<session>` with y-websocket; the sessions it
//! prints are logged-in users.

use std::sync::Arc;

use chorus_example_notes::{NotesHooks, Product, router};
use chorus_server::{Chorus, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chorus_server::telemetry::init(chorus_server::LogFormat::Text);
    let product = Arc::new(Product::default());
    let editor = product.login("alice", true);
    let guest = product.login("bob", false);
    tracing::info!(%editor, %guest, "sessions: alice edits, bob reads");

    let chorus = Chorus::builder()
        .config(Config::local("./notes-data"))
        .hooks(NotesHooks(Arc::clone(&product)))
        .build()
        .await?;
    let app = router(&chorus, product);
    let addr = std::env::var("NOTES_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!(%addr, "Notes is listening");
    let stop = chorus.shutdown_token();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        chorus_server::shutdown::signal().await;
        on_signal.cancel();
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await?;
    chorus.stop().await;
    Ok(())
}
