//! `chorus doc ...`: list, export, import and compact documents in the store a server uses.
//!
//! These work on the store directly. A running server that has the document loaded does not see
//! an import until the room reloads (after its idle timeout); export and compact are safe while
//! it runs (saves merge, and compaction keeps records appended meanwhile).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use chorus_protocol::DocName;
use chorus_server::Config;
use chorus_store::ops;
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum DocCommand {
    /// List every document in the store.
    List {
        #[command(flatten)]
        config: Config,
    },
    /// Write a document (snapshot plus update log) to stdout or a file.
    Export {
        /// The document name.
        name: String,
        /// `update`: one binary Yjs v1 update; `json`: the content as JSON.
        #[arg(long, value_enum, default_value = "update")]
        format: Format,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        config: Config,
    },
    /// Merge a binary Yjs v1 update from a file into a document.
    Import {
        /// The document name.
        name: String,
        /// File holding a Yjs v1 update (e.g. from `export`).
        file: PathBuf,
        #[command(flatten)]
        config: Config,
    },
    /// Fold a document's update log into its snapshot.
    Compact {
        /// The document name.
        name: String,
        #[command(flatten)]
        config: Config,
    },
    /// A document's versions: list, show, restore, prune.
    #[command(subcommand)]
    Versions(crate::versions::VersionsCommand),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Update,
    Json,
}

impl DocCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            DocCommand::List { config } => {
                let (store, log) = open(&config).await?;
                for name in ops::list(store.as_ref(), log.as_ref()).await? {
                    println!("{name}");
                }
            }
            DocCommand::Export {
                name,
                format,
                output,
                config,
            } => {
                let (store, log) = open(&config).await?;
                let doc = doc_name(name)?;
                let Some(exported) = ops::export(store.as_ref(), log.as_ref(), &doc).await? else {
                    bail!("document {doc:?} is not in the store");
                };
                let bytes = match format {
                    Format::Update => exported.state.to_vec(),
                    Format::Json => {
                        let json = chorus_server::export::doc_to_json(&exported.state)
                            .map_err(|e| anyhow::anyhow!(e))?;
                        let mut text = serde_json::to_vec_pretty(&json)?;
                        text.push(b'\n');
                        text
                    }
                };
                match output {
                    Some(path) => std::fs::write(&path, &bytes)
                        .with_context(|| format!("writing {}", path.display()))?,
                    None => std::io::stdout().write_all(&bytes)?,
                }
            }
            DocCommand::Import { name, file, config } => {
                let (store, _) = open(&config).await?;
                let doc = doc_name(name)?;
                let bytes =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                chorus_protocol::validate_update_v1(&bytes, &Default::default())
                    .with_context(|| format!("{} is not a valid Yjs v1 update", file.display()))?;
                ops::import(store.as_ref(), &doc, bytes.into()).await?;
                eprintln!("imported into {doc:?}");
            }
            DocCommand::Versions(command) => command.run().await?,
            DocCommand::Compact { name, config } => {
                let (store, log) = open(&config).await?;
                let doc = doc_name(name)?;
                // Every error of compact comes before the truncation: the log is intact.
                let compacted = ops::compact(store.as_ref(), log.as_ref(), &doc)
                    .await
                    .with_context(|| format!("compacting {doc:?} (its log is unchanged)"))?;
                match compacted {
                    Some(done) => eprintln!(
                        "{doc:?}: {} log records folded into a {}-byte snapshot",
                        done.records, done.snapshot_bytes
                    ),
                    None => bail!("document {doc:?} is not in the store"),
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn doc_name(name: String) -> anyhow::Result<DocName> {
    DocName::parse(name).context("invalid document name")
}

pub(crate) async fn open(config: &Config) -> anyhow::Result<chorus_store::config::Backends> {
    let store_config = config.store_config()?;
    chorus_store::open(&store_config)
        .await
        .with_context(|| format!("opening the store {store_config:?}"))
}
