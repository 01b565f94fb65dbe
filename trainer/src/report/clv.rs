//! The lifetime-value report of one run: the BG/NBD and Gamma-Gamma fit and its check on
//! a holdout period, stored beside the `clv` model.

use std::fmt::{self, Write as _};
use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;

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
    page_start(
        out,
        &r.title,
        &format!(
            "Created {} · clv model version {}",
            esc(&r.created),
            r.version
        ),
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
    page_end(out)
}
