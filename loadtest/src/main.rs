//! `chorus-loadtest`: see `chorus-loadtest --help` and `loadtest/README.md`.

use std::process::ExitCode;

use chorus_loadtest::{cli, procfs};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Thousands of sockets need more than the usual soft limit of 1024 descriptors; if raising
    // it fails, connections beyond the limit fail and say so in the report.
    if let Err(e) = procfs::raise_nofile_limit() {
        eprintln!("warning: could not raise the open-file limit: {e}");
    }
    match cli::execute(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
