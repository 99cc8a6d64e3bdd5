//! The soak chart: server RSS, open descriptors and tasks, and rooms and connections over time, one panel
//! each, with the warm-up shaded and the time after the clients left marked.

use std::path::Path;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::sample::{Sample, Stage};
use crate::chart::{Line, draw_lines};

/// Chart size in pixels.
const SIZE: (u32, u32) = (960, 900);

const WARM_UP: RGBColor = RGBColor(235, 235, 235);
const LEAVE: RGBColor = RGBColor(255, 240, 220);

struct Series {
    label: &'static str,
    color: RGBColor,
    value: fn(&Sample) -> Option<f64>,
}

/// Writes the chart of `samples` to `path` as SVG.
///
/// # Errors
/// Drawing or writing the file failed.
pub fn write(path: &Path, samples: &[Sample], title: &str) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).context("drawing the chart")?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .context("drawing the chart")?;
    let panels = root.split_evenly((3, 1));
    let panel_specs: [(&str, Vec<Series>); 3] = [
        (
            "server RSS, MiB",
            vec![
                Series {
                    label: "RSS",
                    color: RGBColor(214, 39, 40),
                    value: |s| s.rss_kib.map(|kib| kib as f64 / 1024.0),
                },
                Series {
                    label: "anonymous (heap, stacks)",
                    color: RGBColor(148, 103, 189),
                    value: |s| s.anon_rss_kib.map(|kib| kib as f64 / 1024.0),
                },
            ],
        ),
        (
            "server open fds and tasks",
            vec![
                Series {
                    label: "open fds",
                    color: RGBColor(31, 119, 180),
                    value: |s| s.fds.map(|v| v as f64),
                },
                Series {
                    label: "tasks (chorus_tasks)",
                    color: RGBColor(255, 127, 14),
                    value: |s| s.tasks.map(|v| v as f64),
                },
            ],
        ),
        (
            "rooms and connections",
            vec![
                Series {
                    label: "loaded rooms (chorus_rooms)",
                    color: RGBColor(44, 160, 44),
                    value: |s| s.rooms.map(|v| v as f64),
                },
                Series {
                    label: "connections (chorus_connections)",
                    color: RGBColor(148, 103, 189),
                    value: |s| s.connections.map(|v| v as f64),
                },
            ],
        ),
    ];
    for (area, (y_desc, series)) in panels.iter().zip(panel_specs) {
        panel(area, samples, y_desc, &series)?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    samples: &[Sample],
    y_desc: &str,
    series: &[Series],
) -> anyhow::Result<()> {
    let end = samples.last().map_or(1.0, |s| s.t_s).max(1.0);
    let top = series
        .iter()
        .flat_map(|s| samples.iter().filter_map(s.value))
        .fold(1.0_f64, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .context("drawing the chart")?;
    chart
        .configure_mesh()
        .x_desc("seconds since the soak started")
        .y_desc(y_desc)
        .draw()
        .context("drawing the chart")?;
    for (stage, color, label) in [
        (Stage::WarmUp, WARM_UP, "warm-up (not judged)"),
        (Stage::Leave, LEAVE, "clients gone"),
    ] {
        let times: Vec<f64> = samples
            .iter()
            .filter(|s| s.stage == stage)
            .map(|s| s.t_s)
            .collect();
        if let (Some(&from), Some(&to)) = (times.first(), times.last()) {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(from, 0.0), (to, top)],
                    color.filled(),
                )))
                .context("drawing the chart")?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled())
                });
        }
    }
    let lines = series
        .iter()
        .map(|s| Line {
            label: s.label,
            color: s.color,
            points: samples
                .iter()
                .filter_map(|sample| (s.value)(sample).map(|v| (sample.t_s, v)))
                .collect(),
        })
        .collect();
    draw_lines(&mut chart, lines)
}
