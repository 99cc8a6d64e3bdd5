//! The latency-over-time chart: per second of load, p50 / p99 / max delivery latency of the
//! updates sent in that second (log scale), with the warm-up shaded.

use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::recorder::Recorder;

/// Chart size in pixels.
const SIZE: (u32, u32) = (960, 540);

/// Lowest latency drawn (ms): the y axis is logarithmic and cannot start at 0.
const FLOOR_MS: f64 = 0.01;

/// One line of a chart, with its legend entry.
pub(crate) struct Line {
    pub(crate) label: &'static str,
    pub(crate) color: RGBColor,
    pub(crate) points: Vec<(f64, f64)>,
}

/// Draws `lines` with their legend entries, then the legend, in the lower right: latencies
/// rarely reach the bottom of a log axis that starts at 10 µs, nor soak figures the bottom of
/// an axis that starts at 0.
pub(crate) fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    lines: Vec<Line>,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for l in lines {
        let color = l.color;
        chart
            .draw_series(LineSeries::new(l.points, color.stroke_width(2)))
            .context("drawing the chart")?
            .label(l.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .context("drawing the chart")?;
    Ok(())
}

fn line(
    label: &'static str,
    color: RGBColor,
    series: &[Histogram<u64>],
    value: impl Fn(&Histogram<u64>) -> u64,
) -> Line {
    let points = series
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.is_empty())
        .map(|(second, h)| {
            (
                second as f64 + 0.5,
                (value(h) as f64 / 1000.0).max(FLOOR_MS),
            )
        })
        .collect();
    Line {
        label,
        color,
        points,
    }
}

/// Writes the chart of `recorder` to `path` as SVG.
///
/// # Errors
/// Drawing or writing the file failed.
pub fn write_latency_chart(path: &Path, recorder: &Recorder, title: &str) -> anyhow::Result<()> {
    let updates = &recorder.updates.per_second;
    let presence = &recorder.presence.per_second;
    let mut lines = vec![
        line("update p50", RGBColor(31, 119, 180), updates, |h| {
            h.value_at_quantile(0.5)
        }),
        line("update p99", RGBColor(214, 39, 40), updates, |h| {
            h.value_at_quantile(0.99)
        }),
        line(
            "update max",
            RGBColor(150, 150, 150),
            updates,
            Histogram::max,
        ),
    ];
    if presence.iter().any(|h| !h.is_empty()) {
        lines.push(line("presence p99", RGBColor(44, 160, 44), presence, |h| {
            h.value_at_quantile(0.99)
        }));
    }
    let seconds = updates.len().max(presence.len()).max(1) as f64;
    let top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|&(_, y)| y))
        .fold(1.0_f64, f64::max)
        * 1.5;
    let window = recorder.window;
    let warmup_s = window.measure_start_ns.saturating_sub(window.load_start_ns) as f64 / 1e9;

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).context("drawing the chart")?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..seconds, (FLOOR_MS..top).log_scale())
        .context("drawing the chart")?;
    chart
        .configure_mesh()
        .x_desc("seconds since load start (by send time)")
        .y_desc("delivery latency, ms (log)")
        .draw()
        .context("drawing the chart")?;
    if warmup_s > 0.0 {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, FLOOR_MS), (warmup_s, top)],
                RGBColor(235, 235, 235).filled(),
            )))
            .context("drawing the chart")?
            .label("warm-up (not measured)")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 5), (x + 15, y + 5)],
                    RGBColor(235, 235, 235).filled(),
                )
            });
    }
    draw_lines(&mut chart, lines)?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
