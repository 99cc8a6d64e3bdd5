//! The soak's pass/fail verdict, by the criteria of issue #16: after the warm-up, RSS grows by
//! less than 5 %; once every client has left, open descriptors, loaded rooms, connections and
//! the server's tasks are back to where they were before the first client came.

use serde::Serialize;

use super::sample::{Sample, Stage};

/// Share of the judged samples averaged at each end to measure RSS growth: one sample would
/// make a passing allocation spike at either end decide the verdict.
const RSS_WINDOW_SHARE: f64 = 0.1;

/// What the verdict allows.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    /// RSS growth over the judged load, percent.
    pub rss_growth_percent: f64,
    /// Descriptors above the baseline still accepted after the clients left.
    pub fd_slack: u64,
}

/// The visits of a soak, as counted by the generator.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ChurnTotals {
    /// Visits that ran their whole time.
    pub completed: u64,
    /// Visits whose connect or handshake failed.
    pub failed: u64,
    /// Visits the server ended early.
    pub dropped: u64,
}

/// One criterion and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    /// What is judged.
    pub name: &'static str,
    /// Met, missed, or `None` when it could not be measured.
    pub ok: Option<bool>,
    /// The figures behind it.
    pub detail: String,
}

/// The verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Every measurable criterion was measured and met.
    pub pass: bool,
    /// Each criterion.
    pub criteria: Vec<Criterion>,
}

impl Verdict {
    /// `verdict: PASS` and one line per criterion.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "verdict: {}",
            if self.pass { "PASS" } else { "FAIL" }
        )];
        for c in &self.criteria {
            let mark = match c.ok {
                Some(true) => "pass",
                Some(false) => "FAIL",
                None => "not measured",
            };
            lines.push(format!("  {:<34} {mark}: {}", c.name, c.detail));
        }
        lines
    }
}

/// Judges the samples of a soak.
pub fn judge(samples: &[Sample], limits: Limits, churn: ChurnTotals) -> Verdict {
    let criteria = vec![
        rss_growth(samples, limits.rss_growth_percent),
        back_to_baseline(
            "open fds back to baseline",
            samples,
            |s| s.fds,
            limits.fd_slack,
        ),
        back_to_baseline("loaded rooms back to baseline", samples, |s| s.rooms, 0),
        back_to_baseline(
            "connections back to baseline",
            samples,
            |s| s.connections,
            0,
        ),
        tasks_back_to_baseline(samples),
        Criterion {
            name: "churn ran without failures",
            ok: Some(churn.completed > 0 && churn.failed == 0 && churn.dropped == 0),
            detail: format!(
                "{} visits completed, {} failed to connect, {} dropped by the server",
                churn.completed, churn.failed, churn.dropped
            ),
        },
    ];
    // A server without a task gauge (not Chorus) cannot be judged on its tasks; every other
    // criterion must be measured.
    let pass = criteria
        .iter()
        .filter(|c| c.name != TASKS || samples.iter().any(|s| s.tasks.is_some()))
        .all(|c| c.ok == Some(true));
    Verdict { pass, criteria }
}

/// The name of the task criterion.
const TASKS: &str = "tasks back to baseline";

fn tasks_back_to_baseline(samples: &[Sample]) -> Criterion {
    if samples.iter().all(|s| s.tasks.is_none()) {
        return Criterion {
            name: TASKS,
            ok: None,
            detail: "the server exports no task gauge (chorus_tasks); its connection and room \
                     tasks are counted by the two gauges above"
                .to_owned(),
        };
    }
    back_to_baseline(TASKS, samples, |s| s.tasks, 0)
}

fn rss_growth(samples: &[Sample], limit: f64) -> Criterion {
    let name = "RSS growth after warm-up";
    let judged = |value: fn(&Sample) -> Option<u64>| -> Vec<f64> {
        samples
            .iter()
            .filter(|s| s.stage == Stage::Load)
            .filter_map(value)
            .map(|kib| kib as f64)
            .collect()
    };
    let rss = judged(|s| s.rss_kib);
    let Some(total) = Growth::of(&rss) else {
        return Criterion {
            name,
            ok: None,
            detail: "fewer than two RSS samples after the warm-up (is --server-pid set?)"
                .to_owned(),
        };
    };
    let peak = rss.iter().copied().fold(0.0, f64::max);
    // Not judged: it tells the server's data apart from the executable's pages, which fault in
    // as code paths first run.
    let anon = Growth::of(&judged(|s| s.anon_rss_kib))
        .map(|anon| {
            format!(
                "; anonymous part {:.1} -> {:.1} MiB ({:+.2} %)",
                anon.early / 1024.0,
                anon.late / 1024.0,
                anon.percent
            )
        })
        .unwrap_or_default();
    Criterion {
        name,
        ok: Some(total.percent < limit),
        detail: format!(
            "{:+.2} % (limit {limit} %): {:.1} MiB after warm-up -> {:.1} MiB at the end \
             (means of {} samples each), peak {:.1} MiB{anon}",
            total.percent,
            total.early / 1024.0,
            total.late / 1024.0,
            total.window,
            peak / 1024.0
        ),
    }
}

/// How much a series grew: the mean of its last [`RSS_WINDOW_SHARE`] against its first.
struct Growth {
    early: f64,
    late: f64,
    percent: f64,
    window: usize,
}

impl Growth {
    fn of(values: &[f64]) -> Option<Self> {
        if values.len() < 2 {
            return None;
        }
        let window = ((values.len() as f64 * RSS_WINDOW_SHARE).ceil() as usize).max(1);
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
        let early = mean(&values[..window]);
        let late = mean(&values[values.len() - window..]);
        Some(Self {
            early,
            late,
            percent: (late - early) / early * 100.0,
            window,
        })
    }
}

fn back_to_baseline(
    name: &'static str,
    samples: &[Sample],
    value: impl Fn(&Sample) -> Option<u64>,
    slack: u64,
) -> Criterion {
    let baseline = samples
        .iter()
        .find(|s| s.stage == Stage::Baseline)
        .and_then(&value);
    let last = samples
        .iter()
        .rev()
        .find(|s| s.stage == Stage::Leave)
        .and_then(&value);
    let peak = samples.iter().filter_map(&value).max();
    match (baseline, last) {
        (Some(baseline), Some(last)) => Criterion {
            name,
            ok: Some(last <= baseline + slack),
            detail: format!(
                "{baseline} before the clients, peak {}, {last} after they left{}",
                peak.unwrap_or(last),
                if slack > 0 {
                    format!(" (slack {slack})")
                } else {
                    String::new()
                }
            ),
        },
        _ => Criterion {
            name,
            ok: None,
            detail: "no baseline or no sample after the clients left".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, stage: Stage, rss_kib: u64, fds: u64, rooms: u64) -> Sample {
        Sample {
            t_s,
            stage,
            rss_kib: Some(rss_kib),
            anon_rss_kib: Some(rss_kib / 2),
            fds: Some(fds),
            rooms: Some(rooms),
            connections: Some(if stage == Stage::Leave { 0 } else { rooms }),
            tasks: Some(if stage == Stage::Leave {
                4
            } else {
                4 + 2 * rooms
            }),
            clients_open: 0,
            visits: 0,
            updates_sent: 0,
        }
    }

    const LIMITS: Limits = Limits {
        rss_growth_percent: 5.0,
        fd_slack: 0,
    };

    const CHURN: ChurnTotals = ChurnTotals {
        completed: 10,
        failed: 0,
        dropped: 0,
    };

    fn soak(load_rss: &[u64], fds_after: u64, rooms_after: u64) -> Vec<Sample> {
        let mut samples = vec![
            sample(0.0, Stage::Baseline, 10_000, 12, 0),
            // The warm-up may grow as it likes.
            sample(1.0, Stage::WarmUp, 50_000, 80, 9),
        ];
        for (i, &rss) in load_rss.iter().enumerate() {
            samples.push(sample(2.0 + i as f64, Stage::Load, rss, 80, 9));
        }
        samples.push(sample(99.0, Stage::Leave, 60_000, fds_after, rooms_after));
        samples
    }

    #[test]
    fn a_flat_soak_that_lets_go_passes() {
        let verdict = judge(
            &soak(&[60_000, 61_000, 60_500, 61_500], 12, 0),
            LIMITS,
            CHURN,
        );
        assert!(verdict.pass, "{:#?}", verdict.lines());
    }

    #[test]
    fn growth_leaked_descriptors_and_rooms_fail() {
        let growing = judge(
            &soak(&[60_000, 62_000, 64_000, 66_000], 12, 0),
            LIMITS,
            CHURN,
        );
        assert!(!growing.pass, "{:#?}", growing.lines());
        // The anonymous part (half the RSS in these samples) is reported, not judged.
        assert!(
            growing.criteria[0]
                .detail
                .ends_with("anonymous part 29.3 -> 32.2 MiB (+10.00 %)"),
            "{}",
            growing.criteria[0].detail
        );
        let leaky = judge(&soak(&[60_000; 4], 13, 0), LIMITS, CHURN);
        assert!(!leaky.pass, "{:#?}", leaky.lines());
        let held = judge(&soak(&[60_000; 4], 12, 1), LIMITS, CHURN);
        assert!(!held.pass, "{:#?}", held.lines());
        let dropped = ChurnTotals {
            dropped: 1,
            ..CHURN
        };
        assert!(!judge(&soak(&[60_000; 4], 12, 0), LIMITS, dropped).pass);
    }

    #[test]
    fn tasks_that_stay_fail_and_a_server_without_the_gauge_is_not_judged_on_them() {
        let mut samples = soak(&[60_000; 4], 12, 0);
        if let Some(last) = samples.last_mut() {
            last.tasks = Some(5);
        }
        let leaked = judge(&samples, LIMITS, CHURN);
        assert!(!leaked.pass, "{:#?}", leaked.lines());
        assert_eq!(leaked.criteria[4].ok, Some(false));
        for s in &mut samples {
            s.tasks = None;
        }
        let unknown = judge(&samples, LIMITS, CHURN);
        assert!(unknown.pass, "{:#?}", unknown.lines());
        assert_eq!(unknown.criteria[4].ok, None);
    }

    #[test]
    fn unmeasured_figures_do_not_pass() {
        let mut samples = soak(&[60_000; 4], 12, 0);
        for s in &mut samples {
            s.rss_kib = None;
        }
        let verdict = judge(&samples, LIMITS, CHURN);
        assert!(!verdict.pass);
        assert_eq!(verdict.criteria[0].ok, None);
    }
}
