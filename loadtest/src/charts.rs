//! SVG charts (plotters, SVG backend only): throughput and proxy CPU per
//! request relative to HAProxy, and latency percentiles at fixed rates.

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

/// One group of bars: a scenario, and a value per series (None: no data).
pub struct BarGroup {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(214, 39, 40),
    RGBColor(140, 86, 75),
];

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing chart: {e:?}")
}

/// Grouped bars; `series` names the bars of each group in order.
pub fn bars(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[&str],
    groups: &[BarGroup],
) -> Result<()> {
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let top = groups
        .iter()
        .flat_map(|g| g.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1e-9)
        * 1.15;
    let n = groups.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_label)
        .draw()
        .map_err(err)?;
    let width = 0.8 / series.len().max(1) as f64;
    for (s, name) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let rects: Vec<_> = groups
            .iter()
            .enumerate()
            .filter_map(|(g, group)| {
                let value = (*group.values.get(s)?)?;
                let x0 = g as f64 + 0.1 + s as f64 * width;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.9, value)],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(rects)
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(err)?;
    for (g, group) in groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
        root.draw(&Text::new(
            group.label.clone(),
            (x - 4 * group.label.chars().count() as i32, y + 10),
            ("sans-serif", 14),
        ))
        .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// One latency curve: a name and (percentile label, microseconds) points.
pub struct Curve {
    pub name: String,
    pub points: Vec<u64>,
}

/// Latency percentiles on a log scale; `labels` names the x positions.
pub fn percentiles(path: &Path, title: &str, labels: &[&str], curves: &[Curve]) -> Result<()> {
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let values = curves.iter().flat_map(|c| c.points.iter().copied());
    let low = values.clone().filter(|&v| v > 0).min().unwrap_or(1).max(1) as f64 / 1.5;
    let high = values.max().unwrap_or(10).max(10) as f64 * 1.5;
    let last = labels.len().saturating_sub(1).max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.2f64..last + 0.2, (low..high).log_scale())
        .map_err(err)?;
    let names: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    chart
        .configure_mesh()
        .x_labels(labels.len() * 4)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.05 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("latency (µs, log scale)")
        .y_label_formatter(&|y| crate::hist::format_micros(*y as u64))
        .draw()
        .map_err(err)?;
    for (i, curve) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = curve
            .points
            .iter()
            .enumerate()
            .map(|(x, &v)| (x as f64, v.max(1) as f64))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(curve.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_every_label() {
        let dir = std::env::temp_dir().join(format!("loadtest-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bars.svg");
        bars(
            &path,
            "Throughput",
            "relative to HAProxy",
            &["percore", "haproxy"],
            &[
                BarGroup {
                    label: "keep-alive".into(),
                    values: vec![Some(1.3), Some(1.0)],
                },
                BarGroup {
                    label: "close".into(),
                    values: vec![None, Some(1.0)],
                },
            ],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in ["Throughput", "keep-alive", "close", "percore", "haproxy"] {
            assert!(svg.contains(text), "{text} missing");
        }
        // 3 bars + 2 legend swatches, at least.
        assert!(svg.matches("<rect").count() >= 5);

        let path = dir.join("latency.svg");
        percentiles(
            &path,
            "Latency",
            &["p50", "p99"],
            &[Curve {
                name: "percore 50%".into(),
                points: vec![120, 900],
            }],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["Latency", "p50", "p99", "percore 50%"] {
            assert!(svg.contains(text), "{text} missing");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
