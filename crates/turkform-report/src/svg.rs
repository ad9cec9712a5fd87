//! The charts, as small hand-written SVG.
//!
//! Why not plotters' SVG backend: its text goes through a font back end (system fonts or a
//! bundled TTF) and its output carries styling we would fight to keep the page small and
//! stable for snapshots; the three charts we need (time lines with axes, one stacked bar, one
//! histogram) take a couple of hundred lines here, use the page's own font through CSS, and
//! print the same bytes on every machine. Nothing user-supplied reaches this module: every
//! label is a number or a fixed string, so no escaping is needed.

use std::fmt::Write as _;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 48.0;

/// What the y axis counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YUnit {
    /// Whole answers.
    Answers,
    /// Cents, labelled in dollars.
    Dollars,
}

impl YUnit {
    fn axis_title(self) -> &'static str {
        match self {
            YUnit::Answers => "answers",
            YUnit::Dollars => "US dollars",
        }
    }

    fn label(self, value: f64) -> String {
        match self {
            YUnit::Answers => format!("{}", value.round() as i64),
            YUnit::Dollars => {
                let cents = value.round() as i64;
                format!("${}.{:02}", cents / 100, (cents % 100).abs())
            }
        }
    }
}

/// One line of a time chart: (seconds since the epoch, value) in time order.
#[derive(Clone, Debug)]
pub struct Line {
    pub label: &'static str,
    pub color: &'static str,
    pub points: Vec<(i64, f64)>,
}

/// A tick step of 1, 2 or 5 times a power of ten giving about `ticks` intervals up to `max`.
fn nice_step(max: f64, ticks: f64, smallest: f64) -> f64 {
    let raw = (max / ticks).max(smallest);
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    (nice * magnitude).max(smallest)
}

/// `MM-DD HH:MM` in UTC: the date matters for campaigns that run for days, the time for the
/// ones that run for hours.
fn time_label(secs: i64) -> String {
    let rfc = turkform_model::UnixTime(secs).to_rfc3339();
    format!("{} {}", &rfc[5..10], &rfc[11..16])
}

fn open_svg(out: &mut String, label: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">"#
    );
}

/// A time chart with labelled axes, a legend and, for spend, a dashed budget line.
pub fn line_chart(label: &str, lines: &[Line], unit: YUnit, budget: Option<f64>) -> String {
    let mut out = String::with_capacity(8 * 1024);
    open_svg(&mut out, label, HEIGHT);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let all = lines.iter().flat_map(|l| l.points.iter());
    let (mut x_min, mut x_max, mut y_max) = (i64::MAX, i64::MIN, 0f64);
    for &(x, y) in all {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    let empty = x_min > x_max;
    if empty {
        x_min = 0;
        x_max = 3600;
    } else if x_min == x_max {
        // A single instant: centre it in an hour so the axis still means something.
        x_min -= 1800;
        x_max += 1800;
    }
    if let Some(b) = budget {
        y_max = y_max.max(b);
    }
    // One answer, or one cent: finer ticks would repeat labels.
    let smallest = 1.0;
    let step = nice_step(y_max.max(smallest), 5.0, smallest);
    let y_top = ((y_max / step).ceil() * step).max(step);
    let sx = |x: i64| LEFT + (x - x_min) as f64 / (x_max - x_min) as f64 * plot_w;
    let sy = |y: f64| TOP + plot_h - y / y_top * plot_h;

    // Grid and y ticks.
    let mut tick = 0.0;
    while tick <= y_top + step / 2.0 {
        let y = sy(tick);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            unit.label(tick)
        );
        tick += step;
    }
    // X ticks: five instants spread evenly over the span (none without data: the epoch would
    // be a lie).
    for i in 0..if empty { 0 } else { 5 } {
        let x_value = x_min + (x_max - x_min) * i / 4;
        let x = sx(x_value);
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            r#"<line class="axis" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            TOP + plot_h,
            TOP + plot_h + 4.0,
            TOP + plot_h + 17.0,
            time_label(x_value)
        );
    }
    // Axes and their titles.
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}"/><line class="axis" x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
        TOP + plot_h,
        TOP + plot_h,
        WIDTH - RIGHT,
        TOP + plot_h
    );
    let _ = write!(
        out,
        r#"<text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle">time (UTC)</text><text class="axis-title" x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        unit.axis_title()
    );
    if let Some(b) = budget {
        let y = sy(b);
        let _ = write!(
            out,
            r##"<line class="budget" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#dc2626" stroke-dasharray="6 4"/><text class="tick budget-label" x="{:.1}" y="{:.1}" text-anchor="end" fill="#dc2626">budget {}</text>"##,
            WIDTH - RIGHT,
            WIDTH - RIGHT - 4.0,
            y - 5.0,
            unit.label(b)
        );
    }
    for line in lines {
        if line.points.is_empty() {
            continue;
        }
        let mut points = String::with_capacity(line.points.len() * 14);
        for &(x, y) in &line.points {
            let _ = write!(points, "{:.1},{:.1} ", sx(x), sy(y));
        }
        let _ = write!(
            out,
            r#"<polyline class="series" fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            line.color,
            points.trim_end()
        );
        if let Some(&(x, y)) = line.points.last() {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                sx(x),
                sy(y),
                line.color
            );
        }
    }
    // Legend along the top; a line without data (a figure the source cannot tell) is left out
    // of it unless the whole chart is empty.
    let mut lx = LEFT;
    for line in lines.iter().filter(|l| empty || !l.points.is_empty()) {
        let _ = write!(
            out,
            r#"<rect x="{lx:.1}" y="8" width="12" height="12" fill="{}"/><text class="legend" x="{:.1}" y="18">{}</text>"#,
            line.color,
            lx + 16.0,
            line.label
        );
        lx += 24.0 + 7.0 * line.label.len() as f64;
    }
    if empty {
        let _ = write!(
            out,
            r#"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">no data yet</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    out.push_str("</svg>");
    out
}

/// One stacked horizontal bar of assignment statuses, with a legend of counts beneath.
pub fn status_bar(segments: &[(&'static str, &'static str, u64)]) -> String {
    let height = 96.0;
    let mut out = String::with_capacity(2048);
    open_svg(&mut out, "assignment statuses", height);
    let total: u64 = segments.iter().map(|s| s.2).sum();
    let bar_w = WIDTH - 2.0 * RIGHT;
    let mut x = RIGHT;
    if total == 0 {
        let _ = write!(
            out,
            r##"<rect x="{RIGHT}" y="12" width="{bar_w}" height="32" fill="none" stroke="#9ca3af"/><text class="empty" x="{:.1}" y="33" text-anchor="middle">no assignments yet</text>"##,
            WIDTH / 2.0
        );
    } else {
        for &(_, color, count) in segments {
            if count == 0 {
                continue;
            }
            let w = count as f64 / total as f64 * bar_w;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="12" width="{w:.1}" height="32" fill="{color}"/>"#
            );
            x += w;
        }
    }
    let mut lx = RIGHT;
    let mut ly = 66.0;
    for &(label, color, count) in segments {
        let text = format!("{label} {count}");
        let w = 24.0 + 7.0 * text.len() as f64;
        if lx + w > WIDTH {
            lx = RIGHT;
            ly += 18.0;
        }
        let _ = write!(
            out,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{color}"/><text class="legend" x="{:.1}" y="{ly:.1}">{text}</text>"#,
            ly - 10.0,
            lx + 16.0
        );
        lx += w;
    }
    out.push_str("</svg>");
    out
}

/// A histogram of agreement shares in ten bins, `[0, 0.1)` .. `[0.9, 1]`.
pub fn histogram(bins: &[u64; 10]) -> String {
    let mut out = String::with_capacity(4096);
    open_svg(&mut out, "agreement per item", HEIGHT);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = bins.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = nice_step(max, 5.0, 1.0);
    let y_top = ((max / step).ceil() * step).max(step);
    let sy = |y: f64| TOP + plot_h - y / y_top * plot_h;
    let mut tick = 0.0;
    while tick <= y_top + step / 2.0 {
        let y = sy(tick);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            tick.round() as i64
        );
        tick += step;
    }
    let slot = plot_w / 10.0;
    for (i, &count) in bins.iter().enumerate() {
        let x = LEFT + slot * i as f64;
        let y = sy(count as f64);
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#2563eb"/>"##,
            x + 3.0,
            slot - 6.0,
            TOP + plot_h - y,
        );
    }
    // Labels on the bin edges, so a bar reads as "from 10 % to 20 %".
    for edge in 0..=10 {
        let x = LEFT + slot * f64::from(edge);
        let _ = write!(
            out,
            r#"<line class="axis" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}%</text>"#,
            TOP + plot_h,
            TOP + plot_h + 4.0,
            TOP + plot_h + 17.0,
            edge * 10
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}"/><line class="axis" x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle">agreement (share of answers holding the majority value, bins of 10 points)</text><text class="axis-title" x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">items</text>"#,
        TOP + plot_h,
        TOP + plot_h,
        WIDTH - RIGHT,
        TOP + plot_h,
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(100.0, 5.0, 1.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0, 1.0), 2.0);
        assert_eq!(nice_step(3.0, 5.0, 1.0), 1.0);
        assert_eq!(nice_step(12_345.0, 5.0, 1.0), 5000.0);
    }

    #[test]
    fn dollar_labels_are_written_from_cents() {
        assert_eq!(YUnit::Dollars.label(1234.0), "$12.34");
        assert_eq!(YUnit::Dollars.label(5.0), "$0.05");
        assert_eq!(YUnit::Answers.label(40.0), "40");
    }
}
