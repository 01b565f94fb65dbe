//! The lifetime-value step of a training run: BG/NBD and Gamma-Gamma on every buyer's
//! summary at the last cutoff, a holdout check on the horizon after it, and the `clv`
//! registry version with its report.

use anyhow::Context;
use serde_json::json;
use vitals_domain::time::MICROS_PER_DAY;
use vitals_engine::models::ModelError;
use vitals_engine::models::clv::{ClvModel, RfmSummary};
use vitals_engine::registry::{Manifest, ModelRegistry};

use super::dataset::{CLV_UNIT, ClvRow, TrainingSet};
use crate::report::{ClvReport, HoldoutRow, write_clv_report};

/// Calibration repeats 0..=6 each get a holdout row; 7 or more share the last.
const HOLDOUT_ROWS: usize = 8;

/// What the step did: the published version, or why there is none.
#[derive(Debug, Clone)]
pub struct ClvStep {
    pub version: Option<u64>,
    pub note: String,
}

/// Predicted and actual holdout purchases by calibration repeats.
fn holdout(model: &ClvModel, rows: &[ClvRow], horizon_units: f64) -> Vec<HoldoutRow> {
    let mut out: Vec<HoldoutRow> = (0..HOLDOUT_ROWS)
        .map(|i| HoldoutRow {
            repeats: if i + 1 == HOLDOUT_ROWS {
                format!("{i}+")
            } else {
                i.to_string()
            },
            customers: 0,
            predicted: 0.0,
            actual: 0.0,
        })
        .collect();
    for row in rows {
        let bin = (row.summary.x.max(0.0) as usize).min(HOLDOUT_ROWS - 1);
        let predicted = model.bgnbd.expected_purchases(&row.summary, horizon_units);
        let h = &mut out[bin];
        h.customers += 1;
        if predicted.is_finite() {
            h.predicted += predicted;
        }
        h.actual += row.holdout_purchases;
    }
    out
}

/// Fits, publishes (not activates) and reports the lifetime-value model. Data the models
/// cannot use (no repeat buyers, a fit that does not converge) is not an error of the run:
/// the step is skipped and says why.
pub fn run(
    registry: &dyn ModelRegistry,
    set: &TrainingSet,
    cutoff: &str,
    created: &str,
    churn_version: u64,
) -> anyhow::Result<ClvStep> {
    let summaries: Vec<RfmSummary> = set.clv.iter().map(|r| r.summary).collect();
    let unit_days = CLV_UNIT as f64 / MICROS_PER_DAY as f64;
    let model = match ClvModel::fit(&summaries, unit_days) {
        Ok(m) => m,
        Err(ModelError::Training(why)) => {
            tracing::warn!(reason = %why, "no lifetime-value model this run");
            return Ok(ClvStep {
                version: None,
                note: format!("lifetime value skipped: {why}"),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let holdout_days = set.horizon as f64 / MICROS_PER_DAY as f64;
    let rows = holdout(&model, &set.clv, holdout_days / unit_days);
    let predicted_total: f64 = rows.iter().map(|r| r.predicted).sum();
    let actual_total: f64 = rows.iter().map(|r| r.actual).sum();
    let (b, g) = (model.bgnbd, model.gamma_gamma);
    let parameters: Vec<(String, f64)> = [
        ("r", b.r),
        ("alpha", b.alpha),
        ("a", b.a),
        ("b", b.b),
        ("p", g.p),
        ("q", g.q),
        ("gamma", g.gamma),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), *v))
    .collect();

    let staged =
        tempfile::tempdir().context("a directory to write the lifetime-value model into")?;
    model.save(staged.path())?;
    let report = ClvReport {
        title: format!("Lifetime value (BG/NBD + Gamma-Gamma), calibration to {cutoff}"),
        created: created.to_owned(),
        // As for churn: the number this run expects; the manifest has the true one.
        version: registry.versions("clv")?.last().copied().unwrap_or(0) + 1,
        cutoff: cutoff.to_owned(),
        unit: "week".into(),
        unit_days,
        parameters: parameters.clone(),
        purchases_fit: model.fit.clone(),
        spend_fit: model.spend_fit.clone(),
        holdout_days,
        holdout: rows.clone(),
        predicted_total,
        actual_total,
    };
    write_clv_report(staged.path(), &report)?;
    let mut manifest = Manifest::new("clv", "bgnbd_gamma_gamma");
    manifest.training = json!({
        "unit": "week",
        "unit_days": unit_days,
        "cutoff": cutoff,
        "customers": model.fit.customers,
        "repeat_customers": model.fit.repeat_customers,
        "holdout_days": holdout_days,
    });
    manifest.data_fingerprint = set.fingerprint.clone();
    let params: serde_json::Map<String, serde_json::Value> = parameters
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    manifest.metrics = json!({
        "parameters": params,
        "unit": "week",
        "log_likelihood": model.fit.log_likelihood,
        "iterations": model.fit.iterations,
        "converged": model.fit.converged,
        "spend": {
            "log_likelihood": model.spend_fit.log_likelihood,
            "iterations": model.spend_fit.iterations,
            "converged": model.spend_fit.converged,
            "customers": model.spend_fit.customers,
        },
        "holdout": {
            "days": holdout_days,
            "customers": set.clv.len(),
            "predicted": predicted_total,
            "actual": actual_total,
            "by_repeats": rows,
        },
    });
    manifest.extra = json!({
        "report": "report.html",
        "report_json": "report.json",
        "churn_version": churn_version,
        // Amounts are never converted: the model's spend is in the currency most of its
        // purchases were in, and a customer without purchases of their own is valued in it.
        "currency": set.main_currency(),
    });
    let published = registry.publish("clv", staged.path(), manifest)?;
    tracing::info!(
        version = published.version,
        r = b.r,
        alpha = b.alpha,
        a = b.a,
        b = b.b,
        predicted = predicted_total,
        actual = actual_total,
        "lifetime-value model published"
    );
    Ok(ClvStep {
        version: Some(published.version),
        note: format!(
            "lifetime value: {} buyers, holdout predicted {predicted_total:.0} purchases, actual {actual_total:.0}",
            set.clv.len()
        ),
    })
}
