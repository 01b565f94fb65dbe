//! The training report of one run, written into the model version directory as
//! `report.json` (for tools and later comparison) and `report.html` (for people).
//!
//! The HTML page is self-contained: charts are inline SVG drawn with plotters, the
//! styles are inline and nothing is fetched, so it opens from disk in any browser and
//! prints cleanly. Every string that comes from data is escaped, and every number is
//! formatted for reading; a number that is not finite (possible only in a hand-built
//! report, since [`vitals_engine::metrics`] never produces one) shows as "–".
//!
//! Rendering never panics: empty or single-point curves, empty tables, zero segments
//! and degenerate metrics all give a readable page. Plotters errors become `anyhow`
//! errors.

use std::fmt::{self, Write as _};
use std::path::Path;

use anyhow::Context as _;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};
use vitals_engine::metrics::{BinaryReport, CalibrationBin, LiftAt};
use vitals_engine::models::segments::SegmentProfile;

/// Everything one training run produced, as stored beside the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingReport {
    pub title: String,
    /// When the run finished, RFC 3339.
    pub created: String,
    pub churn: ChurnSection,
    /// `None` when the run fitted no segmentation.
    pub segments: Option<SegmentSection>,
}

/// The churn model: how it was trained and how well it does on validation data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnSection {
    pub algorithm: String,
    pub version: u64,
    /// A customer churns when inactive for this many days after a cutoff.
    pub horizon_days: f64,
    /// The snapshot dates training examples were taken at.
    pub cutoffs: Vec<String>,
    pub training_rows: usize,
    pub validation_rows: usize,
    /// How validation rows were chosen, e.g. "out-of-time …" or "stratified 20% …".
    pub validation: String,
    /// The chosen model on the validation rows.
    pub metrics: BinaryReport,
    /// Every algorithm tried, the chosen one marked.
    pub candidates: Vec<Candidate>,
    /// `(feature, importance)`, sorted by importance, largest first.
    pub importance: Vec<(String, f64)>,
}

/// One algorithm tried during model selection, scored on the validation rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    pub algorithm: String,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub log_loss: f64,
    /// Training time.
    pub seconds: f64,
    pub chosen: bool,
}

/// The customer segmentation: the chosen number of segments and their profiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentSection {
    pub k: usize,
    /// `(k, mean silhouette)` for every k tried.
    pub silhouettes: Vec<(usize, f64)>,
    pub profiles: Vec<SegmentProfile>,
}

/// Writes `report.json` (pretty-printed) and `report.html` into `dir`, creating `dir`
/// if needed.
pub fn write_report(dir: &Path, report: &TrainingReport) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report).context("serialising the training report")?;
    write_pages(dir, json, render_html(report)?)
}

/// Writes a report's `report.json` and `report.html` into `dir`, creating it if needed.
fn write_pages(dir: &Path, json: Vec<u8>, html: String) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, bytes) in [("report.json", json), ("report.html", html.into_bytes())] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The self-contained HTML page of a report.
pub fn render_html(report: &TrainingReport) -> anyhow::Result<String> {
    let m = &report.churn.metrics;
    let figures = [
        roc_figure(m).context("drawing the ROC chart")?,
        pr_figure(m).context("drawing the precision-recall chart")?,
        calibration_figure(m).context("drawing the calibration chart")?,
        lift_figure(m).context("drawing the lift chart")?,
    ];
    let mut out = String::with_capacity(64 * 1024);
    page(&mut out, report, &figures).context("formatting the HTML report")?;
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------

/// Escapes text for HTML element content and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const MISSING: &str = "–";

/// `x` with `decimals` decimals; never "-0.000".
fn fixed(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return MISSING.to_owned();
    }
    let s = format!("{x:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_owned(),
        _ => s,
    }
}

/// A fraction as a percentage: `0.2345` → `23.5%`.
fn pct(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{}%", fixed(x * 100.0, decimals))
    } else {
        MISSING.to_owned()
    }
}

/// A ratio such as a lift: `2.31` → `2.3×`.
fn times(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{}×", fixed(x, decimals))
    } else {
        MISSING.to_owned()
    }
}

/// A count with thousands separators: `1234567` → `1,234,567`.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count in at most five characters, for chart labels: `12345` → `12k`.
fn compact(n: usize) -> String {
    let x = n as f64;
    match n {
        0..1_000 => n.to_string(),
        1_000..10_000 => format!("{:.1}k", x / 1e3),
        10_000..1_000_000 => format!("{:.0}k", x / 1e3),
        1_000_000..10_000_000 => format!("{:.1}M", x / 1e6),
        _ => format!("{:.0}M", x / 1e6),
    }
}

/// A number of unknown scale (an importance) with about three significant digits.
fn auto(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() {
        MISSING.to_owned()
    } else if a == 0.0 {
        "0".to_owned()
    } else if a >= 100.0 {
        fixed(x, 0)
    } else if a >= 10.0 {
        fixed(x, 1)
    } else if a >= 1.0 {
        fixed(x, 2)
    } else if a >= 0.001 {
        fixed(x, 3)
    } else {
        format!("{x:.2e}")
    }
}

/// A number of days: whole when it is whole, else one decimal.
fn days(x: f64) -> String {
    fixed(x, if x.fract() == 0.0 { 0 } else { 1 })
}

/// A duration: `0.42 s`, `12.3 s`, `3 min 07 s`, `2 h 05 min`.
fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return MISSING.to_owned();
    }
    if seconds < 1.0 {
        return format!("{seconds:.2} s");
    }
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    // Bounded to a century of seconds, so the cast cannot saturate meaningfully.
    let s = seconds.min(3.2e9).round() as u64;
    if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

/// `x` clamped to `[lo, hi]`, or `None` when it is not finite.
fn clamp(x: f64, lo: f64, hi: f64) -> Option<f64> {
    x.is_finite().then(|| x.clamp(lo, hi))
}

// ---------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------

const CHART_SIZE: (u32, u32) = (560, 440);
const FONT: &str = "sans-serif";
/// Font sizes as plotters takes them (the SVG gets them divided by 1.24). The chart is
/// shown at about 80% of its drawn size, so these come out near 12px on screen.
const LABEL_SIZE: i32 = 18;
const DESC_SIZE: i32 = 19;
const NOTE_SIZE: i32 = 17;
const X_AREA: u32 = 52;
const Y_AREA: u32 = 72;
/// Room for the last x label ("100%"), which is centred on the plot's right edge.
const RIGHT_MARGIN: u32 = 30;
const INK: RGBColor = RGBColor(0x1f, 0x29, 0x37);
const MUTED: RGBColor = RGBColor(0x6b, 0x72, 0x80);
const MODEL: RGBColor = RGBColor(0x25, 0x63, 0xeb);
const ACCENT: RGBColor = RGBColor(0xea, 0x58, 0x0c);
const REFERENCE: RGBColor = RGBColor(0x9c, 0xa3, 0xaf);
const BARS: RGBColor = RGBColor(0xd1, 0xd5, 0xdb);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One chart of the page, with its legend and explanation.
struct Figure {
    title: &'static str,
    svg: String,
    keys: Vec<Key>,
    caption: String,
}

/// A legend entry. Legends are HTML under the chart rather than boxes drawn inside
/// it, so they never hide data whatever the curves look like.
struct Key {
    color: RGBColor,
    /// CSS border style of the swatch ("solid", "dashed" or "dotted"), or "dot" for a
    /// marker.
    line: &'static str,
    label: String,
}

fn key(color: RGBColor, line: &'static str, label: impl Into<String>) -> Key {
    Key {
        color,
        line,
        label: label.into(),
    }
}

fn css_color(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Draws one chart into an SVG string.
fn svg(draw: impl FnOnce(&Area<'_>) -> anyhow::Result<()>) -> anyhow::Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(buf)
}

fn percent_label(v: &f64) -> String {
    pct(*v, 0)
}

/// A `[0, 1] × [0, y_max]` chart with percentage labels and light grid lines.
fn unit_chart<'a, 'b>(
    area: &'a Area<'b>,
    x_desc: &str,
    y_desc: &str,
    y_max: f64,
) -> anyhow::Result<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .margin_right(RIGHT_MARGIN)
        .x_label_area_size(X_AREA)
        .y_label_area_size(Y_AREA)
        .build_cartesian_2d(0f64..1f64, 0f64..y_max)?;
    mesh(&mut chart, x_desc, y_desc)?;
    Ok(chart)
}

fn mesh(chart: &mut Chart<'_, '_>, x_desc: &str, y_desc: &str) -> anyhow::Result<()> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&percent_label)
        .y_label_formatter(&percent_label)
        .bold_line_style(INK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .label_style((FONT, LABEL_SIZE).into_font().color(&MUTED))
        .axis_desc_style((FONT, DESC_SIZE).into_font().color(&INK))
        .draw()?;
    Ok(())
}

/// "No data" written across an empty chart.
fn no_data(root: &Area<'_>, what: &str) -> anyhow::Result<()> {
    let (w, h) = CHART_SIZE;
    let style = (FONT, 22)
        .into_font()
        .color(&MUTED)
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(
        format!("No {what} in this report"),
        (w as i32 / 2 + 20, h as i32 / 2 - 24),
        style,
    ))?;
    Ok(())
}

/// Finite points clamped to the unit square.
fn unit_points(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter_map(|&(x, y)| Some((clamp(x, 0.0, 1.0)?, clamp(y, 0.0, 1.0)?)))
        .collect()
}

fn dashed(
    chart: &mut Chart<'_, '_>,
    from: (f64, f64),
    to: (f64, f64),
    color: RGBColor,
) -> anyhow::Result<()> {
    chart.draw_series(DashedLineSeries::new(
        [from, to],
        7,
        5,
        color.stroke_width(2),
    ))?;
    Ok(())
}

/// Draws a model curve (a dot when it has a single point).
fn model_curve(chart: &mut Chart<'_, '_>, points: &[(f64, f64)]) -> anyhow::Result<()> {
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        MODEL.stroke_width(3),
    ))?;
    if points.len() == 1 {
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, MODEL.filled())))?;
    }
    Ok(())
}

fn roc_figure(m: &BinaryReport) -> anyhow::Result<Figure> {
    let points = unit_points(&m.roc);
    let svg = svg(|root| {
        let mut chart = unit_chart(
            root,
            "False positive rate (loyal customers flagged)",
            "True positive rate (churners caught)",
            1.0,
        )?;
        if points.len() > 1 {
            let mut area = points.clone();
            area.extend([(1.0, 0.0), (0.0, 0.0)]);
            chart.draw_series(std::iter::once(Polygon::new(
                area,
                MODEL.mix(0.08).filled(),
            )))?;
        }
        dashed(&mut chart, (0.0, 0.0), (1.0, 1.0), REFERENCE)?;
        model_curve(&mut chart, &points)?;
        if points.is_empty() {
            no_data(root, "ROC curve")?;
        }
        Ok(())
    })?;
    Ok(Figure {
        title: "ROC curve",
        svg,
        keys: [
            (!points.is_empty()).then(|| {
                key(
                    MODEL,
                    "solid",
                    format!("Model (ROC-AUC {})", fixed(m.roc_auc, 3)),
                )
            }),
            Some(key(REFERENCE, "dashed", "Random ranking")),
        ]
        .into_iter()
        .flatten()
        .collect(),
        caption: roc_caption(m),
    })
}

fn pr_figure(m: &BinaryReport) -> anyhow::Result<Figure> {
    let points = unit_points(&m.pr);
    let base = clamp(m.base_rate, 0.0, 1.0);
    let svg = svg(|root| {
        let mut chart = unit_chart(
            root,
            "Recall (share of churners caught)",
            "Precision (share of flagged who churn)",
            1.02,
        )?;
        if let Some(base) = base {
            dashed(&mut chart, (0.0, base), (1.0, base), REFERENCE)?;
        }
        model_curve(&mut chart, &points)?;
        if points.is_empty() {
            no_data(root, "precision-recall curve")?;
        }
        Ok(())
    })?;
    let mut keys = Vec::new();
    if !points.is_empty() {
        keys.push(key(
            MODEL,
            "solid",
            format!("Model (average precision {})", fixed(m.pr_auc, 3)),
        ));
    }
    if base.is_some() {
        keys.push(key(
            REFERENCE,
            "dashed",
            format!("Random targeting (base rate {})", pct(m.base_rate, 1)),
        ));
    }
    Ok(Figure {
        title: "Precision and recall",
        svg,
        keys,
        caption: pr_caption(m),
    })
}

/// Non-empty calibration bins with finite values: `(bin, predicted, observed)`,
/// clamped to the unit square.
fn populated_bins(bins: &[CalibrationBin]) -> Vec<(&CalibrationBin, f64, f64)> {
    bins.iter()
        .filter(|b| b.count > 0)
        .filter_map(|b| {
            Some((
                b,
                clamp(b.mean_predicted, 0.0, 1.0)?,
                clamp(b.observed_rate, 0.0, 1.0)?,
            ))
        })
        .collect()
}

/// Height of the strip under the calibration chart that shows bin sizes.
const COUNT_STRIP: u32 = 130;

fn calibration_figure(m: &BinaryReport) -> anyhow::Result<Figure> {
    let bins = populated_bins(&m.calibration);
    let svg = svg(|root| {
        let (upper, lower) = root.split_vertically(CHART_SIZE.1 - COUNT_STRIP);
        let mut chart = ChartBuilder::on(&upper)
            .margin(16)
            .margin_right(RIGHT_MARGIN)
            .margin_bottom(4)
            .x_label_area_size(0)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        mesh(&mut chart, "", "Observed churn rate")?;
        dashed(&mut chart, (0.0, 0.0), (1.0, 1.0), REFERENCE)?;
        chart.draw_series(LineSeries::new(
            bins.iter().map(|b| (b.1, b.2)),
            MODEL.stroke_width(2),
        ))?;
        chart.draw_series(
            bins.iter()
                .map(|b| Circle::new((b.1, b.2), 5, MODEL.filled())),
        )?;

        // Bin sizes: one bar per band of predicted risk, labelled with its count.
        let largest = bins.iter().map(|b| b.0.count).max().unwrap_or(0).max(1) as f64;
        let mut counts = ChartBuilder::on(&lower)
            .margin(16)
            .margin_right(RIGHT_MARGIN)
            .margin_top(4)
            .x_label_area_size(X_AREA)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(0f64..1f64, 0f64..largest * 1.45)?;
        counts
            .configure_mesh()
            .x_desc("Mean predicted churn risk")
            .y_desc("Customers")
            .x_labels(6)
            .y_labels(0)
            .x_label_formatter(&percent_label)
            .disable_y_mesh()
            .bold_line_style(INK.mix(0.08))
            .light_line_style(TRANSPARENT)
            .axis_style(MUTED)
            .label_style((FONT, LABEL_SIZE).into_font().color(&MUTED))
            .axis_desc_style((FONT, DESC_SIZE).into_font().color(&INK))
            .draw()?;
        let count_style = (FONT, NOTE_SIZE)
            .into_font()
            .color(&MUTED)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        for (b, _, _) in &bins {
            let (Some(lo), Some(hi)) = (clamp(b.lower, 0.0, 1.0), clamp(b.upper, 0.0, 1.0)) else {
                continue;
            };
            let gap = (hi - lo).abs() * 0.06;
            let top = b.count as f64;
            counts.draw_series(std::iter::once(Rectangle::new(
                [(lo + gap, 0.0), (hi - gap, top)],
                BARS.filled(),
            )))?;
            counts.draw_series(std::iter::once(Text::new(
                compact(b.count),
                ((lo + hi) / 2.0, top + largest * 0.06),
                count_style.clone(),
            )))?;
        }
        if bins.is_empty() {
            no_data(root, "calibration bins")?;
        }
        Ok(())
    })?;
    Ok(Figure {
        title: "Calibration",
        svg,
        keys: if bins.is_empty() {
            vec![key(REFERENCE, "dashed", "Perfectly calibrated")]
        } else {
            vec![
                key(MODEL, "solid", "Model: one dot per band of predicted risk"),
                key(REFERENCE, "dashed", "Perfectly calibrated"),
                key(BARS, "solid", "Customers per band (bars below)"),
            ]
        },
        caption: calibration_caption(m),
    })
}

/// Lift-curve points with finite values: `(fraction, capture, lift)`.
fn lift_points(lift: &[LiftAt]) -> Vec<(f64, f64, f64)> {
    lift.iter()
        .filter_map(|l| {
            Some((
                clamp(l.fraction, 0.0, 1.0)?,
                clamp(l.capture, 0.0, 1.0)?,
                clamp(l.lift, 0.0, 1e6)?,
            ))
        })
        .collect()
}

fn lift_figure(m: &BinaryReport) -> anyhow::Result<Figure> {
    let points = lift_points(&m.lift);
    let base = clamp(m.base_rate, 0.0, 1.0).filter(|b| *b > 0.0);
    let svg = svg(|root| {
        let max_lift = points.iter().map(|p| p.2).fold(1.0f64, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(X_AREA)
            .y_label_area_size(Y_AREA)
            .right_y_label_area_size(Y_AREA)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)?
            .set_secondary_coord(0f64..1f64, 0f64..max_lift);
        mesh(
            &mut chart,
            "Share of customers contacted, riskiest first",
            "Share of all churners reached",
        )?;
        let lift_label = |v: &f64| times(*v, 1);
        chart
            .configure_secondary_axes()
            .y_desc("Lift over random")
            .y_labels(6)
            .y_label_formatter(&lift_label)
            .axis_style(MUTED)
            .label_style((FONT, LABEL_SIZE).into_font().color(&MUTED))
            .axis_desc_style((FONT, DESC_SIZE).into_font().color(&INK))
            .draw()?;

        dashed(&mut chart, (0.0, 0.0), (1.0, 1.0), REFERENCE)?;
        if let Some(base) = base {
            chart.draw_series(DottedLineSeries::new(
                [(0.0, 0.0), (base, 1.0), (1.0, 1.0)],
                0,
                6,
                |c| Circle::new(c, 1, REFERENCE.filled()),
            ))?;
        }
        let capture: Vec<(f64, f64)> = std::iter::once((0.0, 0.0))
            .chain(points.iter().map(|p| (p.0, p.1)))
            .collect();
        chart.draw_series(LineSeries::new(capture, MODEL.stroke_width(3)))?;
        chart.draw_secondary_series(LineSeries::new(
            points.iter().map(|p| (p.0, p.2)),
            ACCENT.stroke_width(2),
        ))?;
        if points.len() == 1 {
            chart.draw_secondary_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.2), 5, ACCENT.filled())),
            )?;
        }
        // Mark the 10% and 20% cut-offs the metrics table reports.
        let marks: Vec<(f64, f64)> = [&m.lift_10, &m.lift_20]
            .into_iter()
            .filter_map(|l| Some((clamp(l.fraction, 0.0, 1.0)?, clamp(l.capture, 0.0, 1.0)?)))
            .collect();
        chart.draw_series(marks.iter().map(|&p| Circle::new(p, 5, MODEL.filled())))?;
        if points.is_empty() {
            no_data(root, "lift curve")?;
        }
        Ok(())
    })?;
    let mut keys = Vec::new();
    if !points.is_empty() {
        keys.push(key(MODEL, "solid", "Share of churners reached (left axis)"));
        keys.push(key(ACCENT, "solid", "Lift (right axis)"));
    }
    keys.push(key(
        MODEL,
        "dot",
        "Top 10% and top 20%, as in the table above",
    ));
    keys.push(key(REFERENCE, "dashed", "Random contact"));
    if base.is_some() {
        keys.push(key(REFERENCE, "dotted", "Perfect model"));
    }
    Ok(Figure {
        title: "Cumulative capture and lift",
        svg,
        keys,
        caption: lift_caption(m),
    })
}

// ---------------------------------------------------------------------------------
// Page
// ---------------------------------------------------------------------------------

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb;
  --soft: #f3f4f6; --model: #2563eb; --accent: #ea580c; --good: #047857; }
* { box-sizing: border-box; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; background: #fff; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 32px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 0 0 6px; }
p { margin: 6px 0; }
.meta, .note, figcaption, .muted { color: var(--muted); }
.meta { margin: 0; }
.headline { background: #eff6ff; border-left: 4px solid var(--model); padding: 12px 16px;
  margin: 20px 0 0; border-radius: 4px; }
.headline p { margin: 4px 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { width: 200px; color: var(--ink); }
tr.chosen td { background: #ecfdf5; font-weight: 600; }
.badge { display: inline-block; font-size: 12px; padding: 0 8px; border-radius: 10px;
  background: var(--good); color: #fff; font-weight: 600; margin-left: 6px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 20px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 14px 14px 10px; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { font-size: 14px; margin-top: 6px; }
.legend { list-style: none; margin: 4px 0 0; padding: 0; display: flex; flex-wrap: wrap;
  gap: 2px 18px; font-size: 13px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.legend .key { display: inline-block; width: 24px; height: 0; }
.legend .dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; }
figcaption strong { color: var(--ink); }
.bars { max-width: 900px; display: grid; grid-template-columns: minmax(140px, max-content) 1fr 70px; gap: 4px 12px;
  align-items: center; }
.bars .name { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px;
  overflow-wrap: anywhere; }
.bars .track { background: var(--soft); height: 14px; border-radius: 3px; }
.bars .fill { background: var(--model); height: 14px; border-radius: 3px; }
.bars .fill.neg { background: var(--accent); }
.bars .val { text-align: right; font-variant-numeric: tabular-nums; font-size: 13px; }
.segments { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 14px 16px; }
.card .size { color: var(--muted); font-size: 14px; }
.share { background: var(--soft); height: 8px; border-radius: 4px; margin: 6px 0 10px; }
.share div { background: var(--model); height: 8px; border-radius: 4px; }
.card ul { margin: 8px 0 0; padding-left: 18px; }
.card li { margin: 2px 0; }
.z { color: var(--muted); font-size: 13px; white-space: nowrap; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px;
  background: var(--soft); padding: 0 4px; border-radius: 3px; }
footer { margin-top: 40px; font-size: 13px; color: var(--muted); }
@media print {
  @page { margin: 14mm; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  .charts { grid-template-columns: 1fr 1fr; gap: 12px; }
  .segments { grid-template-columns: 1fr 1fr; }
  figure, .card, tr, .headline, .bars > * { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"#;

fn page(out: &mut String, r: &TrainingReport, figures: &[Figure]) -> fmt::Result {
    let c = &r.churn;
    let m = &c.metrics;
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>",
        esc(&r.title)
    )?;
    writeln!(
        out,
        "<header>\n<h1>{}</h1>\n<p class=\"meta\">Created {} · churn model <strong>{}</strong> \
         version {}</p>\n</header>",
        esc(&r.title),
        esc(&r.created),
        esc(&c.algorithm),
        c.version
    )?;
    headline(out, c)?;
    run_table(out, c)?;
    metrics_table(out, m)?;

    writeln!(out, "<h2>Charts</h2>\n<div class=\"charts\">")?;
    for f in figures {
        figure(out, f)?;
    }
    writeln!(out, "</div>")?;

    candidates_table(out, &c.candidates)?;
    importance_bars(out, &c.importance)?;
    segments(out, r.segments.as_ref())?;
    writeln!(
        out,
        "<footer>Generated by vitals-trainer. The same numbers are in report.json beside \
         this page.</footer>\n</main>\n</body>\n</html>"
    )
}

/// The positive rate in the top group of a lift cut-off.
fn top_rate(l: &LiftAt, base_rate: f64) -> f64 {
    l.lift * base_rate
}

fn headline(out: &mut String, c: &ChurnSection) -> fmt::Result {
    let m = &c.metrics;
    writeln!(out, "<section class=\"headline\">")?;
    writeln!(
        out,
        "<p>On {} validation customers, of whom {} ({}) churned within {} days, the model \
         ranks a churner above a non-churner {} of the time (ROC-AUC <strong>{}</strong>).</p>",
        count(m.n),
        count(m.positives),
        pct(m.base_rate, 1),
        days(c.horizon_days),
        pct(m.roc_auc, 0),
        fixed(m.roc_auc, 3)
    )?;
    writeln!(
        out,
        "<p>Of the 10% of customers the model ranks riskiest, <strong>{}</strong> churned: \
         {} the base rate. That group holds {} of all churners.</p>\n</section>",
        pct(top_rate(&m.lift_10, m.base_rate), 0),
        times_words(m.lift_10.lift),
        pct(m.lift_10.capture, 0)
    )
}

/// `2.31` → `2.3 times`.
fn times_words(x: f64) -> String {
    if x.is_finite() {
        format!("{} times", fixed(x, 1))
    } else {
        format!("{MISSING} times")
    }
}

fn run_table(out: &mut String, c: &ChurnSection) -> fmt::Result {
    writeln!(out, "<h2>Training run</h2>\n<table class=\"kv\">")?;
    let cutoffs = if c.cutoffs.is_empty() {
        MISSING.to_owned()
    } else {
        c.cutoffs
            .iter()
            .map(|s| esc(s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows = [
        ("Algorithm", esc(&c.algorithm)),
        ("Model version", c.version.to_string()),
        (
            "Churn definition",
            format!(
                "churned within {} days after a cutoff (contractual customers: cancelled; others: no purchase)",
                days(c.horizon_days)
            ),
        ),
        ("Cutoffs", cutoffs),
        ("Training rows", count(c.training_rows)),
        ("Validation rows", count(c.validation_rows)),
        ("Validation", esc(&c.validation)),
    ];
    for (k, v) in rows {
        writeln!(out, "<tr><th>{k}</th><td>{v}</td></tr>")?;
    }
    writeln!(out, "</table>")
}

fn metrics_table(out: &mut String, m: &BinaryReport) -> fmt::Result {
    let p = m.base_rate;
    let informative = p.is_finite() && p > 0.0 && p < 1.0;
    let (ll_base, brier_base) = if informative {
        (-(p * p.ln() + (1.0 - p) * (1.0 - p).ln()), p * (1.0 - p))
    } else {
        (f64::NAN, f64::NAN)
    };
    writeln!(
        out,
        "<h2>Model quality on validation data</h2>\n<table>\n\
         <tr><th>Metric</th><th class=\"num\">Value</th><th>What it means</th></tr>"
    )?;
    let lift_row = |l: &LiftAt| {
        (
            format!("Top {} riskiest", pct(l.fraction, 0)),
            format!("{} lift · {} captured", times(l.lift, 2), pct(l.capture, 1)),
            format!(
                "{} of this group churned ({} the base rate); it holds {} of all churners. \
                 It is everyone scoring at least {}.",
                pct(top_rate(l, p), 1),
                times_words(l.lift),
                pct(l.capture, 1),
                fixed(l.threshold, 3)
            ),
        )
    };
    let rows = [
        (
            "ROC-AUC".to_owned(),
            fixed(m.roc_auc, 3),
            "How well the score ranks churners above non-churners: 0.5 is random, 1.0 \
             perfect."
                .to_owned(),
        ),
        (
            "PR-AUC (average precision)".to_owned(),
            fixed(m.pr_auc, 3),
            format!(
                "Precision averaged over every cut-off; random ranking scores the base rate \
                 ({}).",
                fixed(p, 3)
            ),
        ),
        (
            "Log loss".to_owned(),
            fixed(m.log_loss, 3),
            format!(
                "Penalises confident wrong predictions; lower is better. Always predicting \
                 the base rate scores {}.",
                fixed(ll_base, 3)
            ),
        ),
        (
            "Brier score".to_owned(),
            fixed(m.brier, 3),
            format!(
                "Mean squared error of the probabilities; lower is better. Always predicting \
                 the base rate scores {}.",
                fixed(brier_base, 3)
            ),
        ),
        (
            "Base rate".to_owned(),
            pct(p, 1),
            format!(
                "{} of {} validation customers churned.",
                count(m.positives),
                count(m.n)
            ),
        ),
        lift_row(&m.lift_10),
        lift_row(&m.lift_20),
    ];
    for (name, value, meaning) in rows {
        writeln!(
            out,
            "<tr><td>{name}</td><td class=\"num\">{value}</td><td class=\"muted\">{meaning}</td></tr>"
        )?;
    }
    writeln!(out, "</table>")
}

fn roc_caption(m: &BinaryReport) -> String {
    format!(
        "Each point is a score cut-off: churners caught (up) against loyal customers \
         flagged by mistake (across). Better models hug the top-left corner; the dashed \
         diagonal is guessing. <strong>ROC-AUC {}</strong>: a random churner gets a higher \
         risk score than a random non-churner {} of the time.",
        fixed(m.roc_auc, 3),
        pct(m.roc_auc, 0)
    )
}

fn pr_caption(m: &BinaryReport) -> String {
    let ratio = if m.base_rate > 0.0 {
        format!(", {} the base rate", times_words(m.pr_auc / m.base_rate))
    } else {
        String::new()
    };
    format!(
        "Precision: the share of flagged customers who really churn. Recall: the share of \
         all churners who are flagged. Flagging more customers (moving right) catches more \
         churners but dilutes the list. Random targeting gets the base rate ({}, dashed). \
         <strong>Average precision {}</strong>{ratio}.",
        pct(m.base_rate, 1),
        fixed(m.pr_auc, 3)
    )
}

fn calibration_caption(m: &BinaryReport) -> String {
    let bins = populated_bins(&m.calibration);
    // In f64: counts from a hand-built report could overflow a usize sum.
    let total: f64 = bins.iter().map(|b| b.0.count as f64).sum();
    let gap = if total > 0.0 {
        let weighted: f64 = bins
            .iter()
            .map(|(b, pred, obs)| b.count as f64 * (pred - obs).abs())
            .sum();
        format!(
            " Predictions are off by <strong>{} percentage points</strong> on average \
             (weighted by band size).",
            fixed(weighted / total * 100.0, 1)
        )
    } else {
        String::new()
    };
    format!(
        "Customers grouped into bands of predicted risk: each dot is a band's average \
         prediction (across) against the share that churned (up). On the diagonal a score \
         means what it says (of customers given 30%, 30% churn); above it the model \
         underestimates risk, below it overestimates. The bars count customers per band; \
         small bands are noisy.{gap}"
    )
}

fn lift_caption(m: &BinaryReport) -> String {
    format!(
        "Customers sorted riskiest first. Blue (left axis): the share of all churners reached \
         by contacting the top X%; dashed: random contact; dotted: a perfect model. Orange \
         (right axis): lift, how many times the average churn rate the contacted group has. \
         <strong>Of the {} of customers the model ranks riskiest, {} churned: {} the base \
         rate</strong>, {} of all churners. The top {} hold {} of churners (lift {}).",
        pct(m.lift_10.fraction, 0),
        pct(top_rate(&m.lift_10, m.base_rate), 0),
        times_words(m.lift_10.lift),
        pct(m.lift_10.capture, 0),
        pct(m.lift_20.fraction, 0),
        pct(m.lift_20.capture, 0),
        times(m.lift_20.lift, 1)
    )
}

fn candidates_table(out: &mut String, candidates: &[Candidate]) -> fmt::Result {
    writeln!(out, "<h2>Algorithms compared</h2>")?;
    if candidates.is_empty() {
        return writeln!(
            out,
            "<p class=\"note\">Only one algorithm was trained in this run.</p>"
        );
    }
    writeln!(
        out,
        "<p class=\"note\">Every algorithm tried, scored on the same validation rows. The \
         chosen one is highlighted.</p>\n<table>\n<tr><th>Algorithm</th>\
         <th class=\"num\">ROC-AUC</th><th class=\"num\">PR-AUC</th>\
         <th class=\"num\">Log loss</th><th class=\"num\">Training time</th></tr>"
    )?;
    for cand in candidates {
        let (class, badge) = if cand.chosen {
            (" class=\"chosen\"", "<span class=\"badge\">✓ chosen</span>")
        } else {
            ("", "")
        };
        writeln!(
            out,
            "<tr{class}><td>{}{badge}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&cand.algorithm),
            fixed(cand.roc_auc, 3),
            fixed(cand.pr_auc, 3),
            fixed(cand.log_loss, 3),
            duration(cand.seconds)
        )?;
    }
    writeln!(out, "</table>")
}

const TOP_FEATURES: usize = 20;

fn importance_bars(out: &mut String, importance: &[(String, f64)]) -> fmt::Result {
    writeln!(out, "<h2>What drives the churn score</h2>")?;
    if importance.is_empty() {
        return writeln!(
            out,
            "<p class=\"note\">This model reports no feature importances.</p>"
        );
    }
    let shown = &importance[..importance.len().min(TOP_FEATURES)];
    let largest = shown
        .iter()
        .map(|(_, v)| v.abs())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let of = if importance.len() > shown.len() {
        format!(
            "the {} most important of {} inputs",
            shown.len(),
            count(importance.len())
        )
    } else {
        format!("all {} inputs", shown.len())
    };
    writeln!(
        out,
        "<p class=\"note\">How much each input moves the churn score, largest first ({of}). \
         Importance says how strongly the model relies on an input, not whether it raises or \
         lowers risk, and not that it causes churn.</p>\n<div class=\"bars\">"
    )?;
    for (name, value) in shown {
        let width = if largest > 0.0 {
            clamp(value.abs() / largest * 100.0, 0.0, 100.0).unwrap_or(0.0)
        } else {
            0.0
        };
        let neg = if *value < 0.0 { " neg" } else { "" };
        writeln!(
            out,
            "<div class=\"name\">{}</div><div class=\"track\"><div class=\"fill{neg}\" \
             style=\"width:{width:.1}%\"></div></div><div class=\"val\">{}</div>",
            esc(name),
            auto(*value)
        )?;
    }
    writeln!(out, "</div>")
}

fn segments(out: &mut String, section: Option<&SegmentSection>) -> fmt::Result {
    writeln!(out, "<h2>Customer segments</h2>")?;
    let Some(s) = section else {
        return writeln!(
            out,
            "<p class=\"note\">No segmentation was fitted in this run.</p>"
        );
    };
    writeln!(
        out,
        "<p class=\"note\">Customers grouped by behaviour and satisfaction (k-means on \
         standardised inputs), largest segment first. Traits say how far a segment's average \
         lies from the whole customer base, in standard deviations (sd).</p>"
    )?;
    if s.profiles.is_empty() {
        writeln!(
            out,
            "<p class=\"note\">The segmentation has no segments.</p>"
        )?;
    } else {
        writeln!(out, "<div class=\"segments\">")?;
        for p in &s.profiles {
            let share = clamp(p.share * 100.0, 0.0, 100.0).unwrap_or(0.0);
            writeln!(
                out,
                "<div class=\"card\">\n<h3>{}</h3>\n<div class=\"size\">{} customers · {}</div>\n\
                 <div class=\"share\"><div style=\"width:{share:.1}%\"></div></div>\n<p>{}</p>",
                esc(&p.name),
                count(p.size),
                pct(p.share, 1),
                esc(&p.description)
            )?;
            if !p.traits.is_empty() {
                writeln!(out, "<ul>")?;
                for t in &p.traits {
                    let sign = if t.z < 0.0 { "−" } else { "+" };
                    let z = if t.z.is_finite() {
                        format!("{sign}{} sd", fixed(t.z.abs(), 1))
                    } else {
                        MISSING.to_owned()
                    };
                    writeln!(
                        out,
                        "<li>{} <span class=\"z\"><code>{}</code> {z}</span></li>",
                        esc(&t.phrase),
                        esc(&t.input)
                    )?;
                }
                writeln!(out, "</ul>")?;
            }
            writeln!(out, "</div>")?;
        }
        writeln!(out, "</div>")?;
    }

    writeln!(out, "<h3 style=\"margin-top:24px\">How many segments</h3>")?;
    if s.silhouettes.is_empty() {
        return writeln!(
            out,
            "<p class=\"note\">{} segments; no silhouette scores were recorded.</p>",
            s.k
        );
    }
    writeln!(
        out,
        "<p class=\"note\">Each number of segments was tried and scored by its silhouette: \
         from −1 to 1, how much closer customers are to their own segment than to the next \
         one. Above 0.25 suggests real structure, above 0.5 strong structure. The best, \
         k = {}, was kept.</p>\n<table style=\"max-width:420px\">\n\
         <tr><th>Segments (k)</th><th class=\"num\">Silhouette</th></tr>",
        s.k
    )?;
    for &(k, score) in &s.silhouettes {
        let (class, badge) = if k == s.k {
            (" class=\"chosen\"", "<span class=\"badge\">✓ chosen</span>")
        } else {
            ("", "")
        };
        writeln!(
            out,
            "<tr{class}><td>{k}{badge}</td><td class=\"num\">{}</td></tr>",
            fixed(score, 3)
        )?;
    }
    writeln!(out, "</table>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitals_engine::metrics::binary_report;
    use vitals_engine::models::segments::Trait;

    /// 400 customers whose churn probability rises with the score, drawn with a fixed
    /// xorshift generator so the test is deterministic.
    fn synthetic() -> (Vec<bool>, Vec<f64>) {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut labels = Vec::new();
        let mut probs = Vec::new();
        for _ in 0..400 {
            let p = 0.02 + 0.9 * next() * next();
            probs.push(p);
            labels.push(next() < p);
        }
        (labels, probs)
    }

    fn profile(id: usize, name: &str, size: usize, share: f64) -> SegmentProfile {
        SegmentProfile {
            id,
            name: name.to_owned(),
            description: format!("{name} (description with \"quotes\" & 'apostrophes')."),
            size,
            share,
            traits: vec![
                Trait {
                    input: "monetary_365d".into(),
                    z: 1.4,
                    phrase: "spends a lot".into(),
                },
                Trait {
                    input: "attr.plan<tier>".into(),
                    z: -0.6,
                    phrase: "low plan<tier>".into(),
                },
            ],
        }
    }

    fn report() -> TrainingReport {
        let (labels, probs) = synthetic();
        let metrics = binary_report(&labels, &probs).expect("metrics");
        let importance = (0..25)
            .map(|i| (format!("feature_{i}"), 1.0 / f64::from(i + 1)))
            .collect();
        TrainingReport {
            title: "Churn model <test> & report".into(),
            created: "2025-01-31T12:00:00Z".into(),
            churn: ChurnSection {
                algorithm: "logistic".into(),
                version: 7,
                horizon_days: 90.0,
                cutoffs: vec!["2024-10-01".into(), "2024-11-01".into()],
                training_rows: 12_345,
                validation_rows: 400,
                validation: "out-of-time: last cutoff".into(),
                candidates: vec![
                    Candidate {
                        algorithm: "logistic".into(),
                        roc_auc: metrics.roc_auc,
                        pr_auc: metrics.pr_auc,
                        log_loss: metrics.log_loss,
                        seconds: 1.25,
                        chosen: true,
                    },
                    Candidate {
                        algorithm: "random forest".into(),
                        roc_auc: 0.7,
                        pr_auc: 0.4,
                        log_loss: 0.6,
                        seconds: 75.0,
                        chosen: false,
                    },
                ],
                metrics,
                importance,
            },
            segments: Some(SegmentSection {
                k: 2,
                silhouettes: vec![(2, 0.41), (3, 0.35)],
                profiles: vec![
                    profile(0, "Big <b>& spenders", 300, 0.75),
                    profile(1, "Quiet ones", 100, 0.25),
                ],
            }),
        }
    }

    #[test]
    fn writes_json_and_html() {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = report();
        write_report(dir.path(), &report).expect("write");

        let json_path = dir.path().join("report.json");
        let html_path = dir.path().join("report.html");
        assert!(json_path.is_file() && html_path.is_file());

        let json = std::fs::read_to_string(&json_path).expect("read json");
        let back: TrainingReport = serde_json::from_str(&json).expect("json round trip");
        assert_eq!(back.title, report.title);
        assert_eq!(back.churn.metrics.roc, report.churn.metrics.roc);
        assert_eq!(back.churn.metrics.roc_auc, report.churn.metrics.roc_auc);
        assert_eq!(back.churn.candidates.len(), 2);
        assert_eq!(back.churn.importance, report.churn.importance);
        let segs = back.segments.expect("segments");
        assert_eq!(segs.profiles, report.segments.as_ref().expect("s").profiles);
        assert_eq!(segs.silhouettes, vec![(2, 0.41), (3, 0.35)]);

        let html = std::fs::read_to_string(&html_path).expect("read html");
        assert!(html.matches("<svg").count() >= 4);
        assert!(html.contains("Big &lt;b&gt;&amp; spenders"));
        assert!(!html.contains("<b>&"));
        assert!(!html.contains("<test>") && !html.contains("plan<tier>"));
        assert!(html.contains("&#39;apostrophes&#39;"));
        let auc = format!("{:.3}", report.churn.metrics.roc_auc);
        assert!(html.contains(&auc), "{auc}");
        // Top 20 of 25 importances only.
        assert!(html.contains("feature_19") && !html.contains("feature_20"));
        // Nothing is fetched from elsewhere.
        assert!(!html.contains("<script") && !html.contains("<link"));
        let svg_ns = "http://www.w3.org/2000/svg";
        assert_eq!(html.matches("http").count(), html.matches(svg_ns).count());
    }

    #[test]
    fn degenerate_inputs_render() {
        let empty_lift = LiftAt {
            fraction: 0.1,
            lift: 0.0,
            capture: 0.0,
            threshold: 0.0,
        };
        let mut r = report();
        r.churn.metrics = BinaryReport {
            n: 0,
            positives: 0,
            base_rate: 0.0,
            roc_auc: 0.5,
            pr_auc: 0.0,
            log_loss: 0.0,
            brier: 0.0,
            calibration: Vec::new(),
            lift_10: empty_lift.clone(),
            lift_20: empty_lift,
            roc: Vec::new(),
            pr: Vec::new(),
            lift: Vec::new(),
        };
        r.churn.candidates.clear();
        r.churn.importance.clear();
        r.churn.cutoffs.clear();
        r.segments = Some(SegmentSection {
            k: 0,
            silhouettes: Vec::new(),
            profiles: Vec::new(),
        });
        let dir = tempfile::tempdir().expect("tempdir");
        write_report(dir.path(), &r).expect("empty report");
        let html = std::fs::read_to_string(dir.path().join("report.html")).expect("html");
        assert_eq!(html.matches("<svg").count(), 4);

        // Single points, all-zero importances, no segmentation.
        let m = &mut r.churn.metrics;
        m.roc = vec![(0.5, 0.5)];
        m.pr = vec![(1.0, 0.3)];
        m.lift = vec![LiftAt {
            fraction: 1.0,
            lift: 1.0,
            capture: 1.0,
            threshold: 0.2,
        }];
        m.calibration = vec![CalibrationBin {
            lower: 0.0,
            upper: 1.0,
            count: 3,
            mean_predicted: 0.3,
            observed_rate: 0.3,
        }];
        r.churn.importance = vec![("a".into(), 0.0), ("b".into(), 0.0)];
        r.segments = None;
        render_html(&r).expect("single points");

        // Values no metric produces, in a hand-built report: still no panic.
        let m = &mut r.churn.metrics;
        m.roc_auc = f64::NAN;
        m.base_rate = f64::INFINITY;
        m.roc = vec![(f64::NAN, 0.2), (2.0, -1.0)];
        m.lift[0].lift = f64::MAX;
        m.lift_10.fraction = f64::NEG_INFINITY;
        m.calibration[0].count = usize::MAX;
        r.churn.importance = vec![("x".into(), f64::NAN), ("y".into(), -3.0)];
        r.churn.candidates = vec![Candidate {
            algorithm: String::new(),
            roc_auc: f64::NAN,
            pr_auc: -0.0,
            log_loss: f64::INFINITY,
            seconds: 1e300,
            chosen: true,
        }];
        let html = render_html(&r).expect("odd values");
        assert!(!html.contains("NaN") && !html.contains(">inf") && !html.contains(" inf"));
    }

    #[test]
    fn formatting() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(fixed(-0.0001, 3), "0.000");
        assert_eq!(fixed(0.81249, 3), "0.812");
        assert_eq!(fixed(f64::NAN, 3), MISSING);
        assert_eq!(pct(0.2346, 1), "23.5%");
        assert_eq!(count(0), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(compact(999), "999");
        assert_eq!(compact(1_250), "1.2k");
        assert_eq!(compact(12_345), "12k");
        assert_eq!(duration(0.5), "0.50 s");
        assert_eq!(duration(187.0), "3 min 07 s");
        assert_eq!(duration(7_500.0), "2 h 05 min");
        assert_eq!(auto(0.000_012), "1.20e-5");
        assert_eq!(auto(123.4), "123");
    }
}

// ---------------------------------------------------------------------------------
// Lifetime value (the `clv` version's own report)
// ---------------------------------------------------------------------------------

/// The lifetime-value fit of one run and its holdout check, stored beside the `clv` model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClvReport {
    pub title: String,
    /// When the run finished, RFC 3339.
    pub created: String,
    pub version: u64,
    /// The calibration period ends at this cutoff (RFC 3339).
    pub cutoff: String,
    /// The time unit of the parameters, e.g. "week".
    pub unit: String,
    pub unit_days: f64,
    /// `(name, value)`: r, alpha, a, b, p, q, gamma.
    pub parameters: Vec<(String, f64)>,
    pub purchases_fit: vitals_engine::models::clv::FitReport,
    pub spend_fit: vitals_engine::models::clv::FitReport,
    /// Length of the holdout period after the cutoff.
    pub holdout_days: f64,
    /// By calibration-period repeat purchases: 0, 1, …, 6, then 7 or more.
    pub holdout: Vec<HoldoutRow>,
    pub predicted_total: f64,
    pub actual_total: f64,
}

/// Customers with one number of calibration repeats, and their repeat purchases in the
/// holdout period: predicted by the model and actual.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoldoutRow {
    /// "0", "1", …, "7+".
    pub repeats: String,
    pub customers: usize,
    pub predicted: f64,
    pub actual: f64,
}

/// Writes the lifetime-value `report.json` and `report.html` into `dir`.
pub fn write_clv_report(dir: &Path, report: &ClvReport) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report).context("serialising the CLV report")?;
    write_pages(dir, json, render_clv_html(report)?)
}

/// Mean holdout purchases per customer in each row, predicted and actual.
fn holdout_means(rows: &[HoldoutRow]) -> Vec<(f64, f64, f64)> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.customers > 0)
        .map(|(i, r)| {
            let n = r.customers as f64;
            (i as f64, r.predicted / n, r.actual / n)
        })
        .filter(|p| p.1.is_finite() && p.2.is_finite())
        .collect()
}

fn holdout_figure(r: &ClvReport) -> anyhow::Result<Figure> {
    let points = holdout_means(&r.holdout);
    let labels: Vec<String> = r.holdout.iter().map(|h| h.repeats.clone()).collect();
    let svg = svg(|root| {
        let y_max = points
            .iter()
            .fold(0.0f64, |m, p| m.max(p.1).max(p.2))
            .max(0.1)
            * 1.1;
        let x_max = (labels.len().max(2) - 1) as f64;
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .margin_right(RIGHT_MARGIN)
            .x_label_area_size(X_AREA)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(-0.3f64..x_max + 0.3, 0f64..y_max)?;
        let x_label = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-9 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let y_label = |v: &f64| fixed(*v, 1);
        chart
            .configure_mesh()
            .x_desc("Repeat purchases in the calibration period")
            .y_desc("Purchases per customer after the cutoff")
            .x_labels(labels.len().max(2))
            .y_labels(6)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .bold_line_style(INK.mix(0.08))
            .light_line_style(TRANSPARENT)
            .axis_style(MUTED)
            .label_style((FONT, LABEL_SIZE).into_font().color(&MUTED))
            .axis_desc_style((FONT, DESC_SIZE).into_font().color(&INK))
            .draw()?;
        chart.draw_series(LineSeries::new(
            points.iter().map(|p| (p.0, p.2)),
            INK.stroke_width(3),
        ))?;
        chart.draw_series(
            points
                .iter()
                .map(|p| Circle::new((p.0, p.2), 5, INK.filled())),
        )?;
        chart.draw_series(DashedLineSeries::new(
            points.iter().map(|p| (p.0, p.1)),
            7,
            5,
            MODEL.stroke_width(3),
        ))?;
        chart.draw_series(
            points
                .iter()
                .map(|p| Circle::new((p.0, p.1), 5, MODEL.filled())),
        )?;
        if points.is_empty() {
            no_data(root, "holdout customers")?;
        }
        Ok(())
    })?;
    Ok(Figure {
        title: "Holdout: predicted against actual purchases",
        svg,
        keys: vec![
            key(INK, "solid", "Actual, mean per customer"),
            key(MODEL, "dashed", "Predicted by BG/NBD, mean per customer"),
        ],
        caption: format!(
            "Customers grouped by their repeat purchases up to the cutoff; purchases (distinct \
             days) in the {} days after it. Over all customers the model predicted <strong>{}</strong> \
             purchases against <strong>{}</strong> actual.",
            days(r.holdout_days),
            fixed(r.predicted_total, 1),
            fixed(r.actual_total, 0)
        ),
    })
}

/// The self-contained HTML page of a lifetime-value report.
pub fn render_clv_html(r: &ClvReport) -> anyhow::Result<String> {
    let figure = holdout_figure(r).context("drawing the holdout chart")?;
    let mut out = String::with_capacity(32 * 1024);
    clv_page(&mut out, r, &figure).context("formatting the CLV report")?;
    Ok(out)
}

fn clv_page(out: &mut String, r: &ClvReport, f: &Figure) -> fmt::Result {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>",
        esc(&r.title)
    )?;
    writeln!(
        out,
        "<header>\n<h1>{}</h1>\n<p class=\"meta\">Created {} · clv model version {}</p>\n</header>",
        esc(&r.title),
        esc(&r.created),
        r.version
    )?;
    writeln!(out, "<h2>Fit</h2>\n<table class=\"kv\">")?;
    let fit_line = |f: &vitals_engine::models::clv::FitReport| {
        format!(
            "log-likelihood {} · {} iterations · {} · {} customers ({} repeat buyers)",
            fixed(f.log_likelihood, 2),
            f.iterations,
            if f.converged {
                "converged"
            } else {
                "not converged"
            },
            count(f.customers),
            count(f.repeat_customers)
        )
    };
    let params = r
        .parameters
        .iter()
        .map(|(k, v)| format!("{} = {}", esc(k), auto(*v)))
        .collect::<Vec<_>>()
        .join(" · ");
    let rows = [
        ("Calibration ends", esc(&r.cutoff)),
        (
            "Time unit",
            format!("{} ({} days)", esc(&r.unit), days(r.unit_days)),
        ),
        ("Parameters", params),
        ("Purchases (BG/NBD)", fit_line(&r.purchases_fit)),
        ("Spend (Gamma-Gamma)", fit_line(&r.spend_fit)),
    ];
    for (k, v) in rows {
        writeln!(out, "<tr><th>{k}</th><td>{v}</td></tr>")?;
    }
    writeln!(out, "</table>")?;

    writeln!(
        out,
        "<h2>Holdout check</h2>\n<table>\n<tr><th>Calibration repeats</th>\
         <th class=\"num\">Customers</th><th class=\"num\">Predicted</th>\
         <th class=\"num\">Actual</th><th class=\"num\">Predicted per customer</th>\
         <th class=\"num\">Actual per customer</th></tr>"
    )?;
    let per = |v: f64, n: usize| {
        if n == 0 {
            MISSING.to_owned()
        } else {
            fixed(v / n as f64, 3)
        }
    };
    for h in &r.holdout {
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&h.repeats),
            count(h.customers),
            fixed(h.predicted, 1),
            fixed(h.actual, 0),
            per(h.predicted, h.customers),
            per(h.actual, h.customers)
        )?;
    }
    let customers: usize = r.holdout.iter().map(|h| h.customers).sum();
    writeln!(
        out,
        "<tr class=\"chosen\"><td>All</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n</table>",
        count(customers),
        fixed(r.predicted_total, 1),
        fixed(r.actual_total, 0),
        per(r.predicted_total, customers),
        per(r.actual_total, customers)
    )?;

    writeln!(out, "<div class=\"charts\">")?;
    figure(out, f)?;
    writeln!(out, "</div>")?;
    writeln!(
        out,
        "<footer>Generated by vitals-trainer. The same numbers are in report.json beside \
         this page.</footer>\n</main>\n</body>\n</html>"
    )
}

/// One chart as HTML: its SVG with an accessible label, the legend under it, the caption.
fn figure(out: &mut String, f: &Figure) -> fmt::Result {
    let title = esc(f.title);
    let svg = f.svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{title}\" "),
        1,
    );
    writeln!(
        out,
        "<figure>\n<h3>{title}</h3>\n{svg}\n<ul class=\"legend\">"
    )?;
    for k in &f.keys {
        let color = css_color(k.color);
        let swatch = match k.line {
            "dot" => format!("class=\"dot\" style=\"background: {color}\""),
            line => format!("class=\"key\" style=\"border-top: 3px {line} {color}\""),
        };
        writeln!(out, "<li><span {swatch}></span>{}</li>", esc(&k.label))?;
    }
    writeln!(
        out,
        "</ul>\n<figcaption>{}</figcaption>\n</figure>",
        f.caption
    )
}
