//! `chorus doc versions ...`: a document's version history, on the store a server uses.
//!
//! `list`, `show` and `prune` are safe while servers run. `restore` writes the restored content
//! into the stored document (a forward change, merged like `doc import`), so it suits documents
//! no server has loaded; for a live document use `POST /api/v1/docs/{doc}/versions/{id}/restore`,
//! which connected clients see at once.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use chorus_server::Config;
use chorus_server::history::{History, record_offline, state_vector_of};
use chorus_store::ops;
use chorus_store::versions::{
    Retention, Version, VersionId, VersionKind, VersionMeta, now_ms, prune,
};
use clap::Subcommand;

use crate::doc::{Format, doc_name, open};

#[derive(Subcommand)]
pub enum VersionsCommand {
    /// List a document's versions, oldest first.
    List {
        /// The document name.
        name: String,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: Config,
    },
    /// Write one version's content to stdout or a file.
    Show {
        /// The document name.
        name: String,
        /// The version id (from `list`).
        id: String,
        /// `json`: the content as JSON; `update`: one binary Yjs v1 update.
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        config: Config,
    },
    /// Make the stored document's content equal to a version's (a forward change; history is
    /// kept), then record a version "restored from" it.
    Restore {
        /// The document name.
        name: String,
        /// The version id (from `list`).
        id: String,
        /// Who the change is attributed to.
        #[arg(long, default_value = "cli")]
        author: String,
        #[command(flatten)]
        config: Config,
    },
    /// Remove the versions the retention policy drops (`--version-retention`, or
    /// `--keep`/`--max-age` here) and report each.
    Prune {
        /// The document name.
        name: String,
        /// Keep at most this many (the newest); overrides `--version-retention`'s count.
        #[arg(long)]
        keep: Option<usize>,
        /// Drop versions older than this (e.g. `30d`); overrides `--version-retention`'s age.
        #[arg(long, value_parser = humantime::parse_duration)]
        max_age: Option<std::time::Duration>,
        /// Only report what would go.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        config: Config,
    },
}

async fn history(config: &Config) -> anyhow::Result<History> {
    let store_config = config.store_config()?;
    let versions = chorus_store::open_versions(&store_config)
        .await
        .with_context(|| format!("opening the version store beside {store_config:?}"))?;
    Ok(History::new(versions, &config.history))
}

fn describe(v: &VersionMeta) -> String {
    let when = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(v.created_ms),
    );
    let kind = match (&v.kind, &v.restored_from) {
        (VersionKind::Restored, Some(from)) => format!("restored from {from}"),
        (kind, _) => format!("{kind:?}").to_lowercase(),
    };
    let label = v
        .label
        .as_deref()
        .map(|l| format!(" \"{l}\""))
        .unwrap_or_default();
    format!(
        "{}  {when}  {kind}{label}  by {}  {} bytes",
        v.id,
        if v.authors.is_empty() {
            "-".to_owned()
        } else {
            v.authors.join(", ")
        },
        v.state_bytes
    )
}

impl VersionsCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Self::List { name, json, config } => {
                let doc = doc_name(name)?;
                let history = history(&config).await?;
                for v in history.store().list(&doc).await? {
                    if json {
                        println!("{}", serde_json::to_string(&v)?);
                    } else {
                        println!("{}", describe(&v));
                    }
                }
            }
            Self::Show {
                name,
                id,
                format,
                output,
                config,
            } => {
                let doc = doc_name(name)?;
                let id = VersionId::parse(id)?;
                let history = history(&config).await?;
                let Some(version) = history.store().get(&doc, &id).await? else {
                    bail!("document {doc:?} has no version {id}");
                };
                let bytes = match format {
                    Format::Update => version.state.to_vec(),
                    Format::Json => {
                        let json = chorus_history::content_json(&version.state)?;
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
            Self::Restore {
                name,
                id,
                author,
                config,
            } => {
                let doc = doc_name(name)?;
                let id = VersionId::parse(id)?;
                let history = history(&config).await?;
                let Some(target) = history.store().get(&doc, &id).await? else {
                    bail!("document {doc:?} has no version {id}");
                };
                let (store, log) = open(&config).await?;
                let current = ops::export(store.as_ref(), log.as_ref(), &doc)
                    .await?
                    .map(|e| e.state.to_vec())
                    .unwrap_or_else(|| vec![0, 0]);
                let client = u64::from(fastrand::u32(..));
                let update = chorus_history::restore_update(&current, &target.state, client)?;
                let restored =
                    chorus_store::merge::merge_stored([current.as_slice(), update.as_slice()])?;
                ops::import(store.as_ref(), &doc, restored.clone()).await?;
                let state_vector = state_vector_of(&restored).map_err(|e| anyhow::anyhow!(e))?;
                let created_ms = now_ms();
                let meta = VersionMeta {
                    id: VersionId::new(created_ms),
                    doc: doc.to_string(),
                    created_ms,
                    kind: VersionKind::Restored,
                    label: None,
                    restored_from: Some(id.clone()),
                    authors: vec![author],
                    state_bytes: u64::try_from(restored.len()).unwrap_or(u64::MAX),
                };
                let version = Version {
                    meta: meta.clone(),
                    state: restored,
                    state_vector: state_vector.into(),
                };
                record_offline(&history, &doc, version).await?;
                eprintln!("{doc:?}: restored {id}; recorded {}", meta.id);
            }
            Self::Prune {
                name,
                keep,
                max_age,
                dry_run,
                config,
            } => {
                let doc = doc_name(name)?;
                let history = history(&config).await?;
                let mut retention: Retention = config.history.version_retention;
                if keep.is_some() {
                    retention.max_count = keep;
                }
                if max_age.is_some() {
                    retention.max_age = max_age;
                }
                let now = now_ms();
                if dry_run {
                    let versions = history.store().list(&doc).await?;
                    let expired = retention.expired(&versions, now);
                    for v in &expired {
                        println!("would remove {}", describe(v));
                    }
                    eprintln!(
                        "{doc:?}: {} of {} versions would go under {retention}",
                        expired.len(),
                        versions.len()
                    );
                    return Ok(());
                }
                let pruned = prune(history.store(), &doc, retention, now).await?;
                for v in &pruned.removed {
                    println!("removed {}", describe(v));
                }
                eprintln!(
                    "{doc:?}: removed {} versions, kept {}, removed {} activity records, under {retention}",
                    pruned.removed.len(),
                    pruned.kept,
                    pruned.activity_removed
                );
            }
        }
        Ok(())
    }
}
