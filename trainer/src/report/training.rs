//! The training report of one run: the churn model's validation (ROC, precision-recall,
//! calibration and lift charts, the metrics, the candidates compared, what drives the
//! model) and the segments found.

use std::fmt::{self, Write as _};
use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use vitals_engine::metrics::{BinaryReport, CalibrationBin, LiftAt};
use vitals_engine::models::segments::SegmentProfile;

use super::*;

/// Everything one training run produced, as stored beside the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingReport {
    pub title: String,
    /// When the run finished, RFC 3339.
    pub created: String,
    /// One churn model per population, in the order fitted.
    pub churn: Vec<ChurnSection>,
    /// One segmentation per population; empty when the run fitted none.
    pub segments: Vec<SegmentSection>,
}

/// The churn model: how it was trained and how well it does on validation data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnSection {
    /// Whose churn the model predicts, as a person says it ("subscription customers").
    pub population: String,
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
    /// `(feature as a person calls it, importance)`, one entry per feature (its model
    /// columns folded), sorted by importance, largest first.
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
    /// Whose segments they are, as a person says it ("subscription customers").
    pub population: String,
    /// The id of the first segment, as `ListSegments` and the evaluations number them.
    pub first_id: usize,
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

/// The self-contained HTML page of a report.
pub fn render_html(report: &TrainingReport) -> anyhow::Result<String> {
    let mut figures = Vec::with_capacity(report.churn.len());
    for c in &report.churn {
        let m = &c.metrics;
        figures.push([
            roc_figure(m).context("drawing the ROC chart")?,
            pr_figure(m).context("drawing the precision-recall chart")?,
            calibration_figure(m).context("drawing the calibration chart")?,
            lift_figure(m).context("drawing the lift chart")?,
        ]);
    }
    let mut out = String::with_capacity(64 * 1024);
    page(&mut out, report, &figures).context("formatting the HTML report")?;
    Ok(out)
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

fn page(out: &mut String, r: &TrainingReport, figures: &[[Figure; 4]]) -> fmt::Result {
    let models: Vec<String> = r
        .churn
        .iter()
        .map(|c| {
            format!(
                "{} <strong>{}</strong>",
                esc(&c.population),
                esc(&c.algorithm)
            )
        })
        .collect();
    page_start(
        out,
        &r.title,
        &format!(
            "Created {} · churn version {} · {}",
            esc(&r.created),
            r.churn.first().map_or(0, |c| c.version),
            models.join(" · ")
        ),
    )?;
    for (c, figures) in r.churn.iter().zip(figures) {
        // Each population's model is trained and judged on its own customers only.
        writeln!(out, "<h1>{}</h1>", esc(&capitalized(&c.population)))?;
        headline(out, c)?;
        run_table(out, c)?;
        metrics_table(out, &c.metrics)?;
        writeln!(out, "<h2>Charts</h2>\n<div class=\"charts\">")?;
        for f in figures {
            figure(out, f)?;
        }
        writeln!(out, "</div>")?;
        candidates_table(out, &c.candidates)?;
        importance_bars(out, &c.importance)?;
    }
    if r.segments.is_empty() {
        segments(out, None)?;
    }
    for section in &r.segments {
        segments(out, Some(section))?;
    }
    page_end(out)
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
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
                 It is everyone with a churn probability of at least {}.",
                pct(top_rate(l, p), 1),
                times_words(l.lift),
                pct(l.capture, 1),
                pct(l.threshold, 1)
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
    let Some(s) = section else {
        writeln!(out, "<h2>Customer segments</h2>")?;
        return writeln!(
            out,
            "<p class=\"note\">No segmentation was fitted in this run.</p>"
        );
    };
    writeln!(out, "<h2>Segments of {}</h2>", esc(&s.population))?;
    let total: usize = s.profiles.iter().map(|p| p.size).sum();
    writeln!(
        out,
        "<p class=\"note\">{} grouped by behaviour and satisfaction (k-means on \
         standardised inputs), largest segment first, with how many of the {} training \
         customers each holds (ListSegments gives the same share, and the count among \
         today's evaluations). Traits say how far a segment's average lies from all {}, \
         in standard deviations (sd).</p>",
        esc(&capitalized(&s.population)),
        count(total),
        esc(&s.population)
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
                "<div class=\"card\">\n<h3>{} <small>(segment {})</small></h3>\n<div class=\"size\">{} training customers · {}</div>\n\
                 <div class=\"share\"><div style=\"width:{share:.1}%\"></div></div>\n<p>{}</p>",
                esc(&p.name),
                s.first_id + p.id,
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
            churn: vec![ChurnSection {
                population: "subscription customers".into(),
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
            }],
            segments: vec![SegmentSection {
                population: "shop customers (no contract)".into(),
                first_id: 0,
                k: 2,
                silhouettes: vec![(2, 0.41), (3, 0.35)],
                profiles: vec![
                    profile(0, "Big <b>& spenders", 300, 0.75),
                    profile(1, "Quiet ones", 100, 0.25),
                ],
            }],
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
        assert_eq!(back.churn[0].metrics.roc, report.churn[0].metrics.roc);
        assert_eq!(
            back.churn[0].metrics.roc_auc,
            report.churn[0].metrics.roc_auc
        );
        assert_eq!(back.churn[0].candidates.len(), 2);
        assert_eq!(back.churn[0].importance, report.churn[0].importance);
        let segs = &back.segments[0];
        assert_eq!(segs.profiles, report.segments[0].profiles);
        assert_eq!(segs.silhouettes, vec![(2, 0.41), (3, 0.35)]);

        let html = std::fs::read_to_string(&html_path).expect("read html");
        assert!(html.matches("<svg").count() >= 4);
        assert!(html.contains("Big &lt;b&gt;&amp; spenders"));
        assert!(!html.contains("<b>&"));
        assert!(!html.contains("<test>") && !html.contains("plan<tier>"));
        assert!(html.contains("&#39;apostrophes&#39;"));
        let auc = format!("{:.3}", report.churn[0].metrics.roc_auc);
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
        r.churn[0].metrics = BinaryReport {
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
        r.churn[0].candidates.clear();
        r.churn[0].importance.clear();
        r.churn[0].cutoffs.clear();
        r.segments = vec![SegmentSection {
            population: "subscription customers".into(),
            first_id: 0,
            k: 0,
            silhouettes: Vec::new(),
            profiles: Vec::new(),
        }];
        let dir = tempfile::tempdir().expect("tempdir");
        write_report(dir.path(), &r).expect("empty report");
        let html = std::fs::read_to_string(dir.path().join("report.html")).expect("html");
        assert_eq!(html.matches("<svg").count(), 4);

        // Single points, all-zero importances, no segmentation.
        let m = &mut r.churn[0].metrics;
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
        r.churn[0].importance = vec![("a".into(), 0.0), ("b".into(), 0.0)];
        r.segments = Vec::new();
        render_html(&r).expect("single points");

        // Values no metric produces, in a hand-built report: still no panic.
        let m = &mut r.churn[0].metrics;
        m.roc_auc = f64::NAN;
        m.base_rate = f64::INFINITY;
        m.roc = vec![(f64::NAN, 0.2), (2.0, -1.0)];
        m.lift[0].lift = f64::MAX;
        m.lift_10.fraction = f64::NEG_INFINITY;
        m.calibration[0].count = usize::MAX;
        r.churn[0].importance = vec![("x".into(), f64::NAN), ("y".into(), -3.0)];
        r.churn[0].candidates = vec![Candidate {
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
