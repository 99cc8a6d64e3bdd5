//! Scenario files: TOML with one `[[step]]` table per command to run. Each step names its
//! `command` (`run`, `ramp`, `idle`, `join`); every other key is a flag of that command
//! (`rooms = 100` → `--rooms 100`, `verify = true` → `--verify`, arrays repeat the flag, `_` may
//! stand for `-`). The command line is the single source of truth for what a flag means:
//! a step is parsed by the same clap definitions as a typed command.
//!
//! ```toml
//! description = "100 rooms × 10 users, one typist per room at 10 updates/s"
//! min_urls = 1            # optional: refuse to run with fewer --url
//!
//! [[step]]
//! command = "run"
//! rooms = 100
//! users = 10
//! duration = "30s"
//! ```

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail, ensure};
use clap::Parser;
use serde::Deserialize;

use crate::cli::{Cli, ScenarioArgs, execute_step};

/// A parsed scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario measures.
    #[serde(default)]
    pub description: String,
    /// Fewest `--url`s it needs (e.g. 2 for cross-node).
    #[serde(default)]
    pub min_urls: usize,
    /// The commands, in order.
    #[serde(rename = "step")]
    pub steps: Vec<toml::Table>,
}

impl Scenario {
    /// Reads and parses a scenario file.
    ///
    /// # Errors
    /// The file cannot be read or is not a valid scenario.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let scenario: Self =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        ensure!(
            !scenario.steps.is_empty(),
            "{}: no [[step]]",
            path.display()
        );
        Ok(scenario)
    }
}

/// The command line (without the program name) of one step.
///
/// # Errors
/// No `command` key, or a value that is not a string, number, boolean or array of those.
pub fn step_argv(step: &toml::Table) -> anyhow::Result<Vec<String>> {
    let command = step
        .get("command")
        .and_then(toml::Value::as_str)
        .context("a step needs `command = \"run\"` (or ramp, idle, join)")?;
    let mut argv = vec![command.to_owned()];
    for (key, value) in step {
        if key == "command" {
            continue;
        }
        let flag = format!("--{}", key.replace('_', "-"));
        push_flag(&mut argv, &flag, value)?;
    }
    Ok(argv)
}

fn push_flag(argv: &mut Vec<String>, flag: &str, value: &toml::Value) -> anyhow::Result<()> {
    match value {
        toml::Value::Boolean(true) => argv.push(flag.to_owned()),
        toml::Value::Boolean(false) => {}
        toml::Value::String(s) => argv.extend([flag.to_owned(), s.clone()]),
        toml::Value::Integer(i) => argv.extend([flag.to_owned(), i.to_string()]),
        toml::Value::Float(f) => argv.extend([flag.to_owned(), f.to_string()]),
        toml::Value::Array(values) => {
            for value in values {
                push_flag(argv, flag, value)?;
            }
        }
        other => bail!("{flag}: unsupported value {other}"),
    }
    Ok(())
}

/// Runs every step of a scenario; the exit code is the first non-success of a step.
///
/// # Errors
/// The file is invalid, too few URLs were given, or a step fails.
pub async fn command(args: ScenarioArgs) -> anyhow::Result<ExitCode> {
    let scenario = Scenario::load(&args.file)?;
    ensure!(
        args.urls.len() >= scenario.min_urls,
        "{} needs at least {} --url",
        args.file.display(),
        scenario.min_urls
    );
    if !scenario.description.is_empty() {
        eprintln!("scenario: {}", scenario.description);
    }
    let mut code = ExitCode::SUCCESS;
    for (n, step) in scenario.steps.iter().enumerate() {
        let mut argv = vec!["chorus-loadtest".to_owned()];
        argv.extend(step_argv(step)?);
        for url in &args.urls {
            argv.extend(["--url".to_owned(), url.clone()]);
        }
        if let Some(pid) = args.server_pid {
            argv.extend(["--server-pid".to_owned(), pid.to_string()]);
        }
        argv.extend(args.extra.iter().cloned());
        eprintln!("step {}: {}", n + 1, argv.join(" "));
        if args.dry_run {
            continue;
        }
        let cli = Cli::try_parse_from(&argv)
            .with_context(|| format!("step {} of {}", n + 1, args.file.display()))?;
        let step_code = execute_step(cli.command).await?;
        if code == ExitCode::SUCCESS {
            code = step_code;
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;

    #[test]
    fn steps_become_command_lines_the_cli_accepts() {
        let scenario: Scenario = toml::from_str(
            r#"
            description = "x"
            [[step]]
            command = "run"
            rooms = 100
            rate = 10.5
            warmup = "5s"
            verify = true
            json = false
            server_pid = [1, 2]
            "#,
        )
        .expect("valid scenario");
        let mut argv = vec!["chorus-loadtest".to_owned()];
        argv.extend(step_argv(&scenario.steps[0]).expect("argv"));
        argv.extend(["--url", "ws://h/ws", "--rooms", "3"].map(String::from));
        let cli = Cli::try_parse_from(&argv).expect("parses");
        let Command::Run(run) = cli.command else {
            panic!("not a run");
        };
        assert_eq!(run.rooms, 3, "the command line overrides the file");
        assert_eq!(run.rate, 10.5);
        assert!(run.verify && !run.json);
        assert_eq!(run.server_pids, [1, 2]);
    }

    #[test]
    fn every_shipped_scenario_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("scenarios/ exists") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let scenario = Scenario::load(&path).expect("loads");
                for step in &scenario.steps {
                    let mut argv = vec!["chorus-loadtest".to_owned()];
                    argv.extend(step_argv(step).expect("argv"));
                    for _ in 0..scenario.min_urls.max(1) {
                        argv.extend(["--url", "ws://127.0.0.1:1/ws"].map(String::from));
                    }
                    Cli::try_parse_from(&argv)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                }
                count += 1;
            }
        }
        assert!(count >= 7, "expected the seven scenarios, found {count}");
    }
}
