//! The reports of a training run, written into each model version's directory as
//! `report.json` (for tools and later comparison) and `report.html` (for people):
//! `training.rs` for the churn model and segments, `clv.rs` for the lifetime-value model.
//! This file holds what both pages share: number formatting, chart primitives, the page
//! frame and its styles.
//!
//! A page is self-contained: charts are inline SVG drawn with plotters, the styles are
//! inline and nothing is fetched, so it opens from disk in any browser and prints
//! cleanly. Every string that comes from data is escaped, and every number is formatted
//! for reading; a number that is not finite (possible only in a hand-built report, since
//! [`vitals_engine::metrics`] never produces one) shows as "–".
//!
//! Rendering never panics: empty or single-point curves, empty tables, zero segments and
//! degenerate metrics all give a readable page. Plotters errors become `anyhow` errors.

mod clv;
mod training;

pub use clv::{ClvReport, HoldoutRow, render_clv_html, write_clv_report};
pub use training::{
    Candidate, ChurnSection, SegmentSection, TrainingReport, render_html, write_report,
};

use std::fmt::{self, Write as _};
use std::path::Path;

use anyhow::Context as _;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Writes a report's `report.json` and `report.html` into `dir`, creating it if needed.
fn write_pages(dir: &Path, json: Vec<u8>, html: String) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, bytes) in [("report.json", json), ("report.html", html.into_bytes())] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
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
    vitals_domain::explain::thousands(u64::try_from(n).unwrap_or(u64::MAX))
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

/// Opens a page: the document head with the styles, and the page's title as its heading
/// with a line of facts under it (`meta` is HTML: the caller escapes what comes from data).
fn page_start(out: &mut String, title: &str, meta: &str) -> fmt::Result {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <header>\n<h1>{title}</h1>\n<p class=\"meta\">{meta}</p>\n</header>",
        title = esc(title),
    )
}

/// Closes a page.
fn page_end(out: &mut String) -> fmt::Result {
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
