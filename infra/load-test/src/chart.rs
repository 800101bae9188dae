//! The PNG chart of a run: latency over time (the chatting routes' p50/p95/p99 and send-to-delivery, with
//! the seeds' thresholds), and below it the users chatting, requests per second and errors per second; in
//! open loop also the arrivals offered per second, so answers falling behind them show.
//!
//! Text is drawn with DejaVu Sans from the `dejavu` crate through plotters' ab_glyph backend, so the chart
//! looks the same on every machine and no system font is read.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::scenario::{P95_BUDGET_MS, P99_BUDGET_MS};
use crate::stats::{percentile, Second};

const WIDTH: u32 = 1600;
const HEIGHT: u32 = 1000;
/// At most this many points per line: long runs are merged into wider buckets.
const MAX_POINTS: usize = 600;

/// One bucket of the chart: its start (s since the run's start) and what was measured in it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    pub t: f64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub delivery_p50: Option<f64>,
    pub delivery_p95: Option<f64>,
    pub users: f64,
    pub requests_per_s: f64,
    /// Open loop: arrivals scheduled per second (0 in closed loop).
    pub offered_per_s: f64,
    /// Failed requests, time-outs and (open loop) dropped arrivals per second.
    pub errors_per_s: f64,
}

/// Merges the per-second timeline into at most `MAX_POINTS` buckets, with exact percentiles per bucket.
pub fn points(timeline: &[Second]) -> (Vec<Point>, usize) {
    let width = timeline.len().div_ceil(MAX_POINTS).max(1);
    let ms = |sorted: &[u32], p: f64| percentile(sorted, p).map(|us| us as f64 / 1000.0);
    let points = timeline
        .chunks(width)
        .enumerate()
        .map(|(i, seconds)| {
            let mut http: Vec<u32> = seconds.iter().flat_map(|s| s.http.iter().copied()).collect();
            let mut delivery: Vec<u32> = seconds.iter().flat_map(|s| s.delivery.iter().copied()).collect();
            http.sort_unstable();
            delivery.sort_unstable();
            let n = seconds.len() as f64;
            Point {
                t: (i * width) as f64,
                p50: ms(&http, 50.0),
                p95: ms(&http, 95.0),
                p99: ms(&http, 99.0),
                delivery_p50: ms(&delivery, 50.0),
                delivery_p95: ms(&delivery, 95.0),
                users: seconds.iter().map(|s| s.users).max().unwrap_or(0) as f64,
                requests_per_s: seconds.iter().map(|s| s.requests).sum::<u64>() as f64 / n,
                offered_per_s: seconds.iter().map(|s| s.offered).sum::<u64>() as f64 / n,
                errors_per_s: seconds.iter().map(|s| s.errors + s.dropped).sum::<u64>() as f64 / n,
            }
        })
        .collect();
    (points, width)
}

fn register_fonts() {
    static FONTS: Once = Once::new();
    FONTS.call_once(|| {
        // The bytes are a well-formed TrueType font compiled in; failing here is a broken build.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Writes the chart of `timeline` to `path` (PNG), titled `title`.
pub fn draw(path: &Path, title: &str, timeline: &[Second]) -> Result<(), String> {
    register_fonts();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let (points, width) = points(timeline);
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    draw_on(&root, title, &points, width).map_err(|e| format!("drawing {}: {e}", path.display()))?;
    root.present().map_err(|e| format!("writing {}: {e}", path.display()))
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// A latency line: legend label, colour, stroke width, and the value it plots.
type Series = (&'static str, RGBColor, u32, fn(&Point) -> Option<f64>);

fn line_style(color: RGBColor, width: u32) -> ShapeStyle {
    color.stroke_width(width)
}

fn draw_on(root: &DrawingArea<BitMapBackend, Shift>, title: &str, points: &[Point], width: usize) -> DrawResult {
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(HEIGHT * 62 / 100);
    let x_max = points.last().map_or(1.0, |p| p.t + width as f64).max(1.0);
    let bucket = if width == 1 {
        "per second".to_owned()
    } else {
        format!("per {width} s")
    };

    // Latency.
    let highest = points
        .iter()
        .flat_map(|p| [p.p99, p.delivery_p95])
        .flatten()
        .fold(0.0f64, f64::max);
    // Show the thresholds when the data comes near them; otherwise let the data fill the panel.
    let y_max = if highest > P95_BUDGET_MS * 0.6 {
        highest.max(P99_BUDGET_MS) * 1.1
    } else {
        (highest * 1.25).max(5.0)
    };
    let mut latency = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 28))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    latency
        .configure_mesh()
        .x_desc(format!("seconds since start ({bucket})"))
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let series: [Series; 5] = [
        ("HTTP p50 (chatting routes)", RGBColor(46, 125, 50), 2, |p| p.p50),
        ("HTTP p95", RGBColor(245, 124, 0), 2, |p| p.p95),
        ("HTTP p99", RGBColor(198, 40, 40), 2, |p| p.p99),
        ("send-to-delivery p50", RGBColor(106, 27, 154), 2, |p| p.delivery_p50),
        ("send-to-delivery p95", RGBColor(21, 101, 192), 3, |p| p.delivery_p95),
    ];
    for (label, color, stroke, value) in series {
        let line: Vec<(f64, f64)> = points.iter().filter_map(|p| value(p).map(|v| (p.t, v))).collect();
        latency
            .draw_series(LineSeries::new(line, line_style(color, stroke)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line_style(color, 4)));
    }
    for (budget, label) in [
        (P95_BUDGET_MS, "p95 threshold 300 ms"),
        (P99_BUDGET_MS, "p99 threshold 500 ms"),
    ] {
        if budget < y_max {
            let grey = RGBColor(97, 97, 97);
            latency
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, budget), (x_max, budget)],
                    10,
                    6,
                    line_style(grey, 2),
                ))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line_style(grey, 2)));
        }
    }
    latency
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // Load.
    let users_max = points.iter().map(|p| p.users).fold(0.0, f64::max).max(1.0) * 1.15;
    let rate_max = points
        .iter()
        .map(|p| p.requests_per_s.max(p.errors_per_s).max(p.offered_per_s))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let mut load = ChartBuilder::on(&bottom)
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .right_y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, 0.0..users_max)?
        .set_secondary_coord(0.0..x_max, 0.0..rate_max);
    load.configure_mesh()
        .x_desc("seconds since start")
        .y_desc("users chatting")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    load.configure_secondary_axes()
        .y_desc("per second")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 20))
        .draw()?;
    let black = RGBColor(33, 33, 33);
    load.draw_series(LineSeries::new(
        points.iter().map(|p| (p.t, p.users)),
        line_style(black, 3),
    ))?
    .label("users chatting (left axis)")
    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line_style(black, 4)));
    let teal = RGBColor(0, 137, 123);
    load.draw_secondary_series(LineSeries::new(
        points.iter().map(|p| (p.t, p.requests_per_s)),
        line_style(teal, 2),
    ))?
    .label("requests ended/s (right axis)")
    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line_style(teal, 4)));
    if points.iter().any(|p| p.offered_per_s > 0.0) {
        let orange = RGBColor(239, 108, 0);
        load.draw_secondary_series(DashedLineSeries::new(
            points.iter().map(|p| (p.t, p.offered_per_s)),
            8,
            5,
            line_style(orange, 2),
        ))?
        .label("arrivals offered/s (right axis)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line_style(orange, 4)));
    }
    let red = RGBColor(211, 47, 47);
    load.draw_secondary_series(LineSeries::new(
        points.iter().map(|p| (p.t, p.errors_per_s)),
        line_style(red, 2),
    ))?
    .label("errors, time-outs and drops/s (right axis)")
    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line_style(red, 4)));
    load.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(users: usize, http: &[u32]) -> Second {
        Second {
            http: http.to_vec(),
            requests: http.len() as u64,
            users,
            ..Second::default()
        }
    }

    #[test]
    fn buckets_keep_exact_percentiles() {
        let timeline: Vec<Second> = (0..3).map(|i| second(i, &[1000, 2000, 3000, 4000])).collect();
        let (short, width) = points(&timeline);
        assert_eq!((short.len(), width), (3, 1));
        assert_eq!(short[1].p50, Some(2.0));
        assert_eq!(short[1].p99, Some(4.0));
        assert_eq!(short[0].delivery_p95, None);

        let long: Vec<Second> = (0..1300).map(|_| second(5, &[1000])).collect();
        let (merged, width) = points(&long);
        assert_eq!(width, 3);
        assert_eq!(merged.len(), 434);
        assert_eq!(merged[1].t, 3.0);
        assert_eq!(merged[0].requests_per_s, 1.0);
    }
}
