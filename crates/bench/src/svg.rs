//! A hand-written SVG chart of a [`Report`]: throughput and median latency per scenario.

use crate::report::{Report, Row, FLOOR, PYTHON, RUST};
use std::fmt::Write as _;

const PANEL_W: f64 = 560.0;
const PANEL_H: f64 = 360.0;
const MARGIN_L: f64 = 60.0;
const MARGIN_T: f64 = 50.0;
const MARGIN_B: f64 = 60.0;
const SERIES: [(&str, &str); 3] = [(RUST, "#d9581a"), (PYTHON, "#3b6fb6"), (FLOOR, "#9a9a9a")];

/// Renders the report as an SVG document: jobs/s (left) and p50 `/runsync` latency (right),
/// one group of bars per scenario and concurrency, both on log scales.
pub fn chart(report: &Report) -> String {
    let mut s = String::new();
    let width = PANEL_W * 2.0 + 20.0;
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" viewBox="0 0 {width} {h}" font-family="sans-serif" font-size="12">"#,
        h = PANEL_H + 30.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="18" font-size="13">runpod-rs vs. the Python SDK worker on runpod-local ({})</text>"#,
        escape(&report.machine)
    );
    panel(&mut s, report, 0.0, "jobs per second (log scale, higher is better)", |r| Some(r.jobs_per_s));
    panel(&mut s, report, PANEL_W + 20.0, "p50 /runsync latency, ms (log scale, lower is better)", |r| {
        r.latency.map(|l| l.p50_ms)
    });
    // Legend.
    for (i, (name, color)) in SERIES.iter().enumerate() {
        let x = 10.0 + i as f64 * 150.0;
        let y = PANEL_H + 12.0;
        let _ = writeln!(s, r#"<rect x="{x}" y="{y}" width="12" height="12" fill="{color}"/>"#);
        let label = if *name == FLOOR { "loopback floor (no worker)" } else { name };
        let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, x + 16.0, y + 11.0, label);
    }
    s.push_str("</svg>\n");
    s
}

fn panel(s: &mut String, report: &Report, x0: f64, title: &str, value: impl Fn(&Row) -> Option<f64>) {
    let groups = report.scenarios();
    let bars: Vec<Vec<(usize, f64)>> = groups
        .iter()
        .map(|(scenario, c)| {
            SERIES
                .iter()
                .enumerate()
                .filter_map(|(i, (w, _))| {
                    let row = if *w == FLOOR {
                        (scenario == "noop").then(|| report.floor(*c)).flatten()
                    } else {
                        report.row(w, scenario, *c)
                    };
                    row.and_then(&value).filter(|v| *v > 0.0).map(|v| (i, v))
                })
                .collect()
        })
        .collect();
    let max = bars.iter().flatten().map(|(_, v)| *v).fold(1.0_f64, f64::max);
    let min = bars.iter().flatten().map(|(_, v)| *v).fold(max, f64::min);
    let lo = 10f64.powf(min.log10().floor().min(0.0));
    let hi = 10f64.powf(max.log10().ceil().max(lo.log10() + 1.0));
    let plot_w = PANEL_W - MARGIN_L - 10.0;
    let plot_h = PANEL_H - MARGIN_T - MARGIN_B;
    let y_of = |v: f64| MARGIN_T + plot_h * (1.0 - (v.log10() - lo.log10()) / (hi.log10() - lo.log10()));
    let _ = writeln!(s, r#"<g transform="translate({x0},0)">"#);
    let _ = writeln!(s, r#"<text x="{MARGIN_L}" y="38" font-size="12">{}</text>"#, escape(title));
    // Decade grid lines.
    let mut d = lo;
    while d <= hi * 1.0001 {
        let y = y_of(d);
        let _ = writeln!(
            s,
            r##"<line x1="{MARGIN_L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            MARGIN_L + plot_w,
            MARGIN_L - 4.0,
            y + 4.0,
            short(d)
        );
        d *= 10.0;
    }
    let group_w = plot_w / groups.len().max(1) as f64;
    let bar_w = (group_w - 16.0) / SERIES.len() as f64;
    for (g, ((scenario, c), group)) in groups.iter().zip(&bars).enumerate() {
        let gx = MARGIN_L + g as f64 * group_w + 8.0;
        for (i, v) in group {
            let x = gx + *i as f64 * bar_w;
            let y = y_of(*v);
            let h = MARGIN_T + plot_h - y;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                bar_w - 2.0,
                SERIES[*i].1,
                SERIES[*i].0,
                short(*v)
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                x + bar_w / 2.0 - 1.0,
                y - 3.0,
                short(*v)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{} c={}</text>"#,
            gx + (group_w - 16.0) / 2.0,
            MARGIN_T + plot_h + 18.0,
            escape(scenario),
            c
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{MARGIN_L}" x2="{MARGIN_L}" y1="{MARGIN_T}" y2="{}" stroke="#333"/></g>"##,
        MARGIN_T + plot_h
    );
}

/// A short human form of a number: 3 significant digits at most, k for thousands.
fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;
    use std::time::Duration;

    #[test]
    fn chart_has_a_bar_per_measured_value() {
        let mk = |w: &str, sc: &str, rate: f64| Row {
            worker: w.into(),
            scenario: sc.into(),
            handler_ms: 0,
            concurrency: 1,
            jobs: 1,
            errors: 0,
            seconds: 1.0,
            jobs_per_s: rate,
            latency: Summary::of(&[Duration::from_micros(700)]),
            idle_rss_kib: None,
            peak_rss_kib: None,
            worker_cpu_ms_per_job: None,
        };
        let report = Report {
            machine: "a <b>".into(),
            rows: vec![mk(RUST, "noop", 2500.0), mk(PYTHON, "noop", 0.9), mk(FLOOR, "loopback", 5000.0)],
            ..Default::default()
        };
        let svg = chart(&report);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect x=").count(), 6 + 3, "3 bars per panel + 3 legend boxes");
        assert!(svg.contains(">2500<") && svg.contains(">0.90<") && svg.contains(">5000<"));
        assert!(svg.contains("a &lt;b&gt;"));
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short(12345.0), "12k");
        assert_eq!(short(0.05), "0.050");
        assert_eq!(short(51.23), "51.2");
    }
}
