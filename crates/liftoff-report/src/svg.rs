//! Charts as inline SVG. The markup is written by hand with presentation attributes (no CSS,
//! no scripts, no fonts to fetch) so one chart can sit inside an email, a saved HTML file or
//! an `<img>`-less viewer and look the same. Text is laid out with an average glyph width
//! instead of font metrics: the renderer stays pure, and a label that runs a few pixels long
//! only costs a little whitespace.

use std::fmt::Write as _;

use crate::document::{Chart, ChartKind, Series};
use crate::html::escape;

/// Okabe–Ito colours: told apart by people with the common colour-vision deficiencies, and
/// dark enough to read on white. Yellow is left out for that reason.
const PALETTE: [&str; 6] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
];
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";
const FONT_SIZE: u32 = 11;
/// Average advance of a glyph at `FONT_SIZE`, enough to keep labels from colliding.
const CHAR_W: f64 = 6.2;
const TEXT: &str = "#57606a";
const GRID: &str = "#e1e4e8";
const BASELINE: &str = "#8c959f";
/// More x labels than this overlap at the report's chart width.
const MAX_X_LABELS: usize = 8;
/// Finite values beyond this are drawn at it. It keeps the axis arithmetic (the span, steps a
/// few powers of ten above it) finite for any `f64`; no real metric comes close.
const LIMIT: f64 = 1e300;
const LEGEND_ROW: f64 = 16.0;
const MAX_LEGEND_CHARS: usize = 28;

/// `chart` as a standalone `<svg>` element of `width` × `height` user units. The title goes
/// in `<title>` and `aria-label` only: the caller shows it (the HTML's `<figcaption>`).
pub fn chart_svg(chart: &Chart, width: u32, height: u32) -> String {
    let (width, height) = (width.max(1), height.max(1));
    let name = if chart.title.trim().is_empty() {
        "Chart"
    } else {
        chart.title.as_str()
    };
    let name = escape(name);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{name}\" \
         font-family=\"{FONT}\" font-size=\"{FONT_SIZE}\"><title>{name}</title>"
    );
    match Plot::new(chart, f64::from(width), f64::from(height)) {
        Some(plot) => plot.draw(chart, &mut out),
        None => {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{TEXT}\">No data</text>",
                px(f64::from(width) / 2.0),
                px(f64::from(height) / 2.0 + 4.0),
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A number for people: thousands separated by `,` (`12,500`), at most two decimals from 1
/// up (`120.5`, `3.14`), three significant digits below 1 (`0.25`, `0.125`: axis steps of
/// 2.5 × 10^k need the third), millions and billions shortened (`1.2M`, `3.4B`). Non-finite
/// values, which have no honest rendering, become `–` like a gap.
pub fn axis_number(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    let a = v.abs();
    let digits = if a >= 999_950_000.0 {
        // From here `{:.1}` of millions would read `1,000.0M`; billions say it better.
        format!("{}B", trim(&format!("{:.1}", a / 1e9)))
    } else if a >= 1_000_000.0 {
        format!("{}M", trim(&format!("{:.1}", a / 1e6)))
    } else if a >= 1.0 || a == 0.0 {
        trim(&format!("{a:.2}"))
    } else {
        // Capped so a denormal does not print hundreds of zeros; beyond it the value is 0.
        let decimals = (2.0 - a.log10().floor()).clamp(0.0, 9.0) as usize;
        trim(&format!("{a:.decimals$}"))
    };
    let digits = crate::numbers::group(&digits);
    // Rounding can leave nothing but zeros, and "-0" would claim a sign the value lost.
    if v < 0.0 && digits.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        format!("-{digits}")
    } else {
        digits
    }
}

/// `12.50` → `12.5`, `3.00` → `3`; leaves integers and suffixes alone.
fn trim(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

/// A coordinate: one decimal is finer than a pixel, and fixed rounding keeps bytes stable.
fn px(v: f64) -> String {
    // `+ 0.0` turns -0.0 into 0.0, which would otherwise print as "-0".
    let v = if v.is_finite() {
        (v * 10.0).round() / 10.0 + 0.0
    } else {
        0.0
    };
    format!("{v}")
}

/// The value at `i`, or `None` for a gap: missing, `None` or not finite.
fn value(series: &Series, i: usize) -> Option<f64> {
    series
        .values
        .get(i)
        .copied()
        .flatten()
        .filter(|v| v.is_finite())
}

/// The y axis, as its gridline values from the lowest up; the first and last are its ends.
#[derive(Debug, PartialEq)]
struct Axis {
    ticks: Vec<f64>,
}

impl Axis {
    /// The tightest axis with at most four intervals (five gridlines) whose step is 1, 2,
    /// 2.5 or 5 × 10^k and which includes 0, so bars start from the baseline.
    fn nice(min: f64, max: f64) -> Self {
        let mut lo = min.min(0.0);
        let mut hi = max.max(0.0);
        // Since 0 is in range, a span this small means every value is about 0.
        if hi - lo < 1e-9 {
            lo = 0.0;
            hi = 1.0;
        }
        let span = hi - lo;
        // Tolerance for quotients like 0.3 / 0.1 = 2.9999999999999996, so they stay 3.
        let fuzz = 1e-9;
        let first = (span / 5.0).log10().floor() as i32;
        for exp in first..first + 4 {
            for m in [1.0, 2.0, 2.5, 5.0] {
                let step = decimal(m, exp);
                let top = (hi / step - fuzz).ceil();
                let bottom = (lo / step + fuzz).floor();
                if (1.0..=4.0).contains(&(top - bottom)) {
                    let ticks = (bottom as i64..=top as i64)
                        .map(|k| decimal(k as f64 * m, exp) + 0.0)
                        .collect();
                    return Self { ticks };
                }
            }
        }
        // Unreachable for the spans `LIMIT` allows; four plain steps are still a fine axis.
        Self {
            ticks: (0..=4).map(|i| lo + span * f64::from(i) / 4.0).collect(),
        }
    }

    fn lo(&self) -> f64 {
        self.ticks.first().copied().unwrap_or(0.0)
    }

    fn hi(&self) -> f64 {
        self.ticks.last().copied().unwrap_or(1.0)
    }
}

/// `v` × 10^`exp`. Negative powers divide: 10^-1 has no exact `f64`, so `3.0 * 0.1` is
/// 0.30000000000000004 while `3.0 / 10.0` is the `f64` nearest 0.3.
fn decimal(v: f64, exp: i32) -> f64 {
    if exp < 0 {
        v / 10f64.powi(-exp)
    } else {
        v * 10f64.powi(exp)
    }
}

/// Where everything goes, decided before anything is written.
struct Plot {
    axis: Axis,
    /// The plotting area: left, top, right, bottom.
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    n: usize,
    /// Legend entries: x, y (baseline) and the text shown.
    legend: Vec<(f64, f64, String)>,
}

impl Plot {
    /// `None` when there is nothing to draw: no x labels, or only gaps.
    fn new(chart: &Chart, w: f64, h: f64) -> Option<Self> {
        let n = chart.x_labels.len();
        let values = chart
            .series
            .iter()
            .flat_map(|s| (0..n).filter_map(move |i| value(s, i)))
            .map(|v| v.clamp(-LIMIT, LIMIT));
        let (min, max) = values.fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        })?;
        if n == 0 {
            return None;
        }
        let axis = Axis::nice(min, max);
        let label_chars = axis
            .ticks
            .iter()
            .map(|&t| axis_number(t).chars().count())
            .max()
            .unwrap_or(1);
        // Not `clamp`: it panics when a tiny chart makes the ceiling lower than the floor.
        let x0 = (label_chars as f64 * CHAR_W + 12.0).max(24.0).min(w * 0.4);
        let x1 = (w - 12.0).max(x0 + 1.0);
        let y0 = if chart.unit.trim().is_empty() {
            10.0
        } else {
            22.0
        };

        let mut legend = Vec::new();
        let mut rows = 0.0;
        if chart.series.len() > 1 {
            let (mut x, mut row) = (x0, 0.0);
            for s in &chart.series {
                let text = shorten(&s.name, MAX_LEGEND_CHARS);
                let advance = 14.0 + text.chars().count() as f64 * CHAR_W + 16.0;
                if x > x0 && x + advance - 16.0 > w {
                    x = x0;
                    row += 1.0;
                }
                legend.push((x, row, text));
                x += advance;
            }
            rows = row + 1.0;
        }
        let y1 = (h - 24.0 - rows * LEGEND_ROW).max(y0 + 10.0);
        let legend = legend
            .into_iter()
            .map(|(x, row, text)| (x, y1 + 24.0 + row * LEGEND_ROW + 10.0, text))
            .collect();
        Some(Self {
            axis,
            x0,
            y0,
            x1,
            y1,
            n,
            legend,
        })
    }

    /// The width of one x label's slot.
    fn band(&self) -> f64 {
        (self.x1 - self.x0) / self.n as f64
    }

    fn x(&self, i: usize) -> f64 {
        self.x0 + (i as f64 + 0.5) * self.band()
    }

    fn y(&self, v: f64) -> f64 {
        let v = v.clamp(-LIMIT, LIMIT);
        // Halved so the span of an axis near ±LIMIT cannot overflow.
        let (lo, hi) = (self.axis.lo(), self.axis.hi());
        let frac = (v / 2.0 - lo / 2.0) / (hi / 2.0 - lo / 2.0);
        (self.y1 - frac * (self.y1 - self.y0)).clamp(self.y0, self.y1)
    }

    fn draw(&self, chart: &Chart, out: &mut String) {
        for &t in &self.axis.ticks {
            let y = px(self.y(t));
            let stroke = if t == 0.0 { BASELINE } else { GRID };
            let _ = write!(
                out,
                "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{stroke}\" \
                 stroke-width=\"1\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\" \
                 fill=\"{TEXT}\">{}</text>",
                px(self.x0),
                px(self.x1),
                px(self.x0 - 6.0),
                px(self.y(t) + 4.0),
                axis_number(t),
            );
        }
        if !chart.unit.trim().is_empty() {
            let _ = write!(
                out,
                "<text x=\"4\" y=\"{}\" fill=\"{TEXT}\">{}</text>",
                px(self.y0 - 10.0),
                escape(&shorten(chart.unit.trim(), 24)),
            );
        }
        match chart.kind {
            ChartKind::Line => self.lines(chart, out),
            ChartKind::Bar => self.bars(chart, out),
        }
        self.x_labels(chart, out);
        for ((x, y, text), colour) in self.legend.iter().zip(PALETTE.iter().cycle()) {
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" rx=\"2\" fill=\"{colour}\"/>\
                 <text x=\"{}\" y=\"{}\" fill=\"{TEXT}\">{}</text>",
                px(*x),
                px(y - 9.0),
                px(x + 14.0),
                px(*y),
                escape(text),
            );
        }
    }

    fn lines(&self, chart: &Chart, out: &mut String) {
        for (s, colour) in chart.series.iter().zip(PALETTE.iter().cycle()) {
            let mut run: Vec<usize> = Vec::new();
            for i in 0..=self.n {
                match (i < self.n).then(|| value(s, i)).flatten() {
                    Some(_) => run.push(i),
                    None => {
                        self.segment(chart, s, colour, &run, out);
                        run.clear();
                    }
                }
            }
        }
    }

    /// A run of consecutive values: a line, or a dot when it has only one point.
    fn segment(&self, chart: &Chart, s: &Series, colour: &str, run: &[usize], out: &mut String) {
        match run {
            [] => {}
            [i] => {
                let _ = write!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{colour}\">{}</circle>",
                    px(self.x(*i)),
                    px(self.y(value(s, *i).unwrap_or(0.0))),
                    tooltip(chart, s, *i),
                );
            }
            _ => {
                let points: Vec<String> = run
                    .iter()
                    .map(|&i| {
                        let y = self.y(value(s, i).unwrap_or(0.0));
                        format!("{},{}", px(self.x(i)), px(y))
                    })
                    .collect();
                let _ = write!(
                    out,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" \
                     stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\">\
                     <title>{}</title></polyline>",
                    points.join(" "),
                    escape(&s.name),
                );
            }
        }
    }

    fn bars(&self, chart: &Chart, out: &mut String) {
        let band = self.band();
        let group = band * 0.8;
        let width = group / chart.series.len().max(1) as f64;
        // A hairline between neighbours once bars are wide enough to spare it.
        let gap = if width > 4.0 { 1.0 } else { 0.0 };
        let zero = self.y(0.0);
        for (k, (s, colour)) in chart.series.iter().zip(PALETTE.iter().cycle()).enumerate() {
            for i in 0..self.n {
                let Some(v) = value(s, i) else { continue };
                let x = self.x0 + i as f64 * band + (band - group) / 2.0 + k as f64 * width;
                let y = self.y(v);
                let _ = write!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\">{}</rect>",
                    px(x),
                    px(y.min(zero)),
                    px((width - gap).max(0.5)),
                    px((y - zero).abs()),
                    tooltip(chart, s, i),
                );
            }
        }
    }

    fn x_labels(&self, chart: &Chart, out: &mut String) {
        let stride = self.n.div_ceil(MAX_X_LABELS).max(1);
        let room = ((self.band() * stride as f64 / CHAR_W).floor() as usize)
            .saturating_sub(1)
            .max(3);
        for (i, label) in chart.x_labels.iter().enumerate().step_by(stride) {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{TEXT}\">{}</text>",
                px(self.x(i)),
                px(self.y1 + 16.0),
                escape(&shorten(label, room)),
            );
        }
    }
}

/// The exact value behind a mark, shown on hover: "W1 · p95: 120.5 ms".
fn tooltip(chart: &Chart, s: &Series, i: usize) -> String {
    let label = chart.x_labels.get(i).map_or("", String::as_str);
    let v = value(s, i).map_or_else(|| "–".to_owned(), axis_number);
    let mut text = if s.name.is_empty() {
        format!("{label}: {v}")
    } else {
        format!("{label} · {}: {v}", s.name)
    };
    if !chart.unit.trim().is_empty() {
        let _ = write!(text, " {}", chart.unit.trim());
    }
    format!("<title>{}</title>", escape(&text))
}

/// At most `max` characters, an ellipsis marking a cut. Cut before escaping, so an entity is
/// never split.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chart(kind: ChartKind, labels: &[&str], series: &[(&str, &[Option<f64>])]) -> Chart {
        Chart {
            title: "Latency".into(),
            kind,
            unit: "ms".into(),
            x_labels: labels.iter().map(|&l| l.to_owned()).collect(),
            series: series
                .iter()
                .map(|(name, values)| Series {
                    name: (*name).to_owned(),
                    values: values.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn axis_numbers_are_short_and_signed() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (12_500.0, "12,500"),
            (120.5, "120.5"),
            (0.25, "0.25"),
            (0.125, "0.125"),
            (12.3456, "12.35"),
            (1_234_567.0, "1.2M"),
            (999_999.0, "999,999"),
            (2_500_000_000.0, "2.5B"),
            (-3.0, "-3"),
            (-0.0001, "-0.0001"),
            (-1e-12, "0"),
            (f64::NAN, "–"),
            (f64::INFINITY, "–"),
        ];
        for (v, want) in cases {
            assert_eq!(axis_number(v), want, "axis_number({v})");
        }
    }

    #[test]
    fn axis_tops_are_nice() {
        let ticks = |min, max| Axis::nice(min, max).ticks;
        assert_eq!(ticks(3.0, 87.0), [0.0, 25.0, 50.0, 75.0, 100.0]);
        assert_eq!(ticks(0.0, 0.3), [0.0, 0.1, 0.2, 0.3]);
        assert_eq!(ticks(0.0, 0.07), [0.0, 0.02, 0.04, 0.06, 0.08]);
        assert_eq!(ticks(-12.0, 40.0), [-20.0, 0.0, 20.0, 40.0]);
        assert_eq!(ticks(-7.0, -2.0), [-8.0, -6.0, -4.0, -2.0, 0.0]);
        assert_eq!(ticks(0.0, 0.0), [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(ticks(0.0, 41.0), [0.0, 20.0, 40.0, 60.0]);
        assert_eq!(ticks(0.0, 1_234_567.0), [0.0, 500_000.0, 1e6, 1.5e6]);

        let svg = chart_svg(
            &chart(
                ChartKind::Line,
                &["a", "b"],
                &[("s", &[Some(12.0), Some(87.0)])],
            ),
            640,
            220,
        );
        assert!(svg.contains(">100</text>"), "{svg}");
        assert!(svg.contains(">75</text>"), "{svg}");
        assert!(!svg.contains(">125</text>"), "{svg}");
    }

    #[test]
    fn a_gap_splits_a_line_and_a_lone_point_is_a_dot() {
        let c = chart(
            ChartKind::Line,
            &["1", "2", "3", "4", "5"],
            &[("p95", &[Some(1.0), Some(2.0), None, Some(3.0), Some(4.0)])],
        );
        let svg = chart_svg(&c, 640, 220);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 0, "{svg}");

        let c = chart(
            ChartKind::Line,
            &["1", "2", "3", "4"],
            &[("p95", &[Some(1.0), None, Some(2.0), Some(3.0)])],
        );
        let svg = chart_svg(&c, 640, 220);
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
    }

    #[test]
    fn bars_are_one_rect_per_value() {
        let c = chart(
            ChartKind::Bar,
            &["W1", "W2", "W3"],
            &[("hits", &[Some(3.0), None, Some(0.0)])],
        );
        let svg = chart_svg(&c, 640, 220);
        // One series: no legend, so every rect is a bar.
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");

        let c = chart(
            ChartKind::Bar,
            &["W1", "W2", "W3"],
            &[
                ("hits", &[Some(3.0), None, Some(-2.0)]),
                ("misses", &[Some(1.0), Some(f64::NAN), Some(4.0)]),
            ],
        );
        let svg = chart_svg(&c, 640, 220);
        // Four bars and one legend swatch per series.
        assert_eq!(svg.matches("<rect").count(), 4 + 2, "{svg}");
        assert!(svg.contains(">hits</text>") && svg.contains(">misses</text>"));
        assert!(svg.contains("fill=\"#0072B2\"") && svg.contains("fill=\"#D55E00\""));
        assert!(svg.contains(">ms</text>"), "unit near the axis: {svg}");
    }

    #[test]
    fn non_finite_values_are_gaps() {
        let c = chart(
            ChartKind::Line,
            &["a", "b", "c", "d"],
            &[(
                "s",
                &[
                    Some(f64::NAN),
                    Some(f64::INFINITY),
                    Some(5.0),
                    Some(f64::NEG_INFINITY),
                ],
            )],
        );
        let svg = chart_svg(&c, 640, 220).to_lowercase();
        assert!(!svg.contains("nan") && !svg.contains("inf"), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        assert!(!svg.contains("no data"));
    }

    #[test]
    fn empty_charts_say_so() {
        let no_labels = chart(ChartKind::Line, &[], &[("s", &[Some(1.0)])]);
        let all_gaps = chart(
            ChartKind::Bar,
            &["a", "b"],
            &[("s", &[None, Some(f64::NAN)])],
        );
        let no_series = chart(ChartKind::Line, &["a"], &[]);
        for c in [no_labels, all_gaps, no_series] {
            let svg = chart_svg(&c, 640, 220);
            assert!(svg.contains(">No data</text>"), "{svg}");
            assert!(
                !svg.contains("<rect") && !svg.contains("<polyline"),
                "{svg}"
            );
            assert!(svg.ends_with("</svg>"));
        }
    }

    #[test]
    fn text_is_escaped_and_the_title_is_only_metadata() {
        let mut c = chart(
            ChartKind::Line,
            &["<b>&'\""],
            &[("x\"><script>", &[Some(1.0)]), ("y", &[Some(2.0)])],
        );
        c.title = "A & <B>".into();
        let svg = chart_svg(&c, 640, 220);
        assert!(svg.contains("aria-label=\"A &amp; &lt;B&gt;\""), "{svg}");
        assert!(svg.contains("<title>A &amp; &lt;B&gt;</title>"), "{svg}");
        assert!(svg.contains(">&lt;b&gt;&amp;&#39;&quot;</text>"), "{svg}");
        assert!(!svg.contains("<script") && !svg.contains("<b>"), "{svg}");
        assert_eq!(svg.matches("A &amp; &lt;B&gt;").count(), 2, "{svg}");
    }

    #[test]
    fn many_x_labels_are_thinned() {
        let labels: Vec<String> = (0..30).map(|i| format!("day{i}")).collect();
        let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let values: Vec<Option<f64>> = (0..30).map(|i| Some(f64::from(i))).collect();
        let svg = chart_svg(&chart(ChartKind::Line, &refs, &[("s", &values)]), 640, 220);
        let shown = (0..30)
            .filter(|i| svg.contains(&format!(">day{i}</text>")))
            .count();
        assert!((4..=MAX_X_LABELS).contains(&shown), "{shown} labels: {svg}");
        assert!(svg.contains(">day0</text>"));
    }

    #[test]
    fn tiny_and_crowded_charts_still_render() {
        let names: Vec<String> = (0..20).map(|i| format!("series number {i}")).collect();
        let c = Chart {
            x_labels: vec!["a".into(), "b".into()],
            series: names
                .iter()
                .map(|name| Series {
                    name: name.clone(),
                    values: vec![Some(1.0), Some(2.0)],
                })
                .collect(),
            ..Chart::default()
        };
        for (w, h) in [(0, 0), (1, 1), (30, 20), (640, 220)] {
            let svg = chart_svg(&c, w, h);
            assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"), "{svg}");
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
            assert_eq!(svg.matches("<polyline").count(), 20);
        }
    }

    proptest! {
        #[test]
        fn any_values_render_without_nan_or_inf(
            values in prop::collection::vec(prop::option::of(any::<f64>()), 0..12),
            bar in any::<bool>(),
        ) {
            let labels: Vec<String> = (0..values.len()).map(|i| i.to_string()).collect();
            let c = Chart {
                title: "t".into(),
                kind: if bar { ChartKind::Bar } else { ChartKind::Line },
                unit: String::new(),
                x_labels: labels,
                series: vec![
                    Series { name: "a".into(), values: values.clone() },
                    Series { name: "b".into(), values: values.into_iter().rev().collect() },
                ],
            };
            let svg = chart_svg(&c, 640, 220).to_lowercase();
            prop_assert!(!svg.contains("nan") && !svg.contains("inf"), "{}", svg);
            prop_assert!(svg.len() < 20_000, "{} bytes", svg.len());
        }

        #[test]
        fn axis_number_is_plain_for_any_finite_value(v in any::<f64>()) {
            let s = axis_number(v);
            prop_assert!(!s.contains("NaN") && !s.contains("inf") && !s.contains('e'), "{}", s);
        }
    }
}
