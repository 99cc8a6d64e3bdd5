//! `ramp`: runs stage after stage with a rising update rate until p99 delivery latency passes a
//! limit, and reports the highest deliveries/s reached below it.
//!
//! Each stage is a complete `run` on fresh rooms, so stages do not inherit each other's
//! documents or backlog. A stage on which the generator itself saturates ends the ramp: beyond
//! that point the figures would measure the generator.

use std::process::ExitCode;

use serde::Serialize;

use crate::cli::RampArgs;
use crate::run;

/// One stage's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Updates per second per typist.
    pub rate: f64,
    /// Updates per second offered by all typists.
    pub offered_updates_per_sec: f64,
    /// Deliveries per second measured.
    pub deliveries_per_sec: f64,
    /// p50 delivery latency, ms.
    pub p50_ms: f64,
    /// p99 delivery latency, ms.
    pub p99_ms: f64,
    /// Lost deliveries.
    pub lost: u64,
    /// Generator CPU, percent of one core.
    pub generator_cpu_percent: Option<f64>,
    /// The generator saturated.
    pub generator_saturated: bool,
}

/// The report of `ramp`.
#[derive(Debug, Clone, Serialize)]
pub struct RampReport {
    /// The p99 limit, ms.
    pub p99_limit_ms: f64,
    /// Every stage run.
    pub stages: Vec<Stage>,
    /// The stage with the most deliveries/s whose p99 stayed within the limit.
    pub best: Option<Stage>,
    /// Why the ramp ended.
    pub stopped_because: String,
}

impl RampReport {
    /// Human-readable report.
    pub fn render(&self) -> String {
        let mut out = format!("ramp (p99 limit {} ms):\n", self.p99_limit_ms);
        for s in &self.stages {
            out += &format!(
                "  rate {:>8.2}/s  offered {:>9.1} upd/s  {:>10.0} deliveries/s  p50 {:>7.2} ms  p99 {:>7.2} ms  lost {}  cpu {}{}\n",
                s.rate,
                s.offered_updates_per_sec,
                s.deliveries_per_sec,
                s.p50_ms,
                s.p99_ms,
                s.lost,
                s.generator_cpu_percent
                    .map_or_else(|| "?".to_owned(), |c| format!("{c:.0}%")),
                if s.generator_saturated {
                    " SATURATED"
                } else {
                    ""
                }
            );
        }
        match &self.best {
            Some(best) => {
                out += &format!(
                    "best under the limit: {:.0} deliveries/s (rate {:.2}/s, p99 {:.2} ms)\n",
                    best.deliveries_per_sec, best.rate, best.p99_ms
                );
            }
            None => out += "no stage stayed under the limit\n",
        }
        out + &format!("stopped: {}\n", self.stopped_because)
    }
}

/// Runs the ramp and prints its report.
///
/// # Errors
/// A stage failed to run at all.
pub async fn command(args: RampArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.factor > 1.0, "--factor must be above 1");
    let limit_ms = args.p99_limit.as_secs_f64() * 1000.0;
    let prefix = args
        .run
        .doc_prefix
        .clone()
        .unwrap_or_else(|| format!("ramp-{:08x}", fastrand::u32(..)));
    let mut stages = Vec::new();
    let mut stopped_because = format!("reached --max-stages {}", args.max_stages);
    let mut rate = args.run.rate;
    for n in 0..args.max_stages {
        let mut stage_args = args.run.clone();
        stage_args.rate = rate;
        stage_args.doc_prefix = Some(format!("{prefix}-s{n}"));
        let report = run::execute(&stage_args).await?;
        let stage = Stage {
            rate,
            offered_updates_per_sec: rate * (args.run.rooms * args.run.typists) as f64,
            deliveries_per_sec: report.updates.deliveries_per_sec,
            p50_ms: report.updates.latency_ms.p50_ms,
            p99_ms: report.updates.latency_ms.p99_ms,
            lost: report.updates.lost,
            generator_cpu_percent: report.generator.cpu_percent,
            generator_saturated: report.generator.saturated,
        };
        if !args.run.json {
            eprintln!(
                "stage {}: rate {:.2}/s -> {:.0} deliveries/s, p99 {:.2} ms",
                n + 1,
                stage.rate,
                stage.deliveries_per_sec,
                stage.p99_ms
            );
        }
        let over = stage.p99_ms > limit_ms;
        let saturated = stage.generator_saturated;
        let lost = stage.lost;
        stages.push(stage);
        if over {
            stopped_because = format!("p99 passed {limit_ms} ms");
            break;
        }
        if saturated {
            stopped_because =
                "the generator saturated (add generator capacity to go further)".to_owned();
            break;
        }
        if lost > 0 {
            stopped_because = format!("{lost} deliveries lost");
            break;
        }
        rate *= args.factor;
    }
    let best = stages
        .iter()
        .filter(|s| s.p99_ms <= limit_ms && s.lost == 0 && !s.generator_saturated)
        .max_by(|a, b| a.deliveries_per_sec.total_cmp(&b.deliveries_per_sec))
        .cloned();
    let report = RampReport {
        p99_limit_ms: limit_ms,
        stages,
        best,
        stopped_because,
    };
    if args.run.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}
