//! `vitals-trainer score`: the batch path. Scores every customer eligible at a cutoff
//! with the active models and writes a CSV: for marketing lists and for checking models
//! outside Vitals.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use rayon::prelude::*;
use serde::Serialize;
use vitals_domain::explain;
use vitals_domain::features::{RawFeatures, currency_of};
use vitals_domain::labels::Population;
use vitals_domain::labels::eligible;
use vitals_domain::time::Micros;
use vitals_domain::words::Language;
use vitals_engine::evaluation::LoadedSegments;
use vitals_engine::evaluation::{
    CHURN_KIND, CLV_KIND, Models, SEGMENTS_KIND, TEXT_KIND, load_segments, load_text, risk_band,
};
use vitals_engine::models::churn::{LoadedChurn, load_churn};
use vitals_engine::models::clv::load_clv;
use vitals_engine::registry::ModelRegistry;
use vitals_store::Store;

use crate::train::progress_bar;

#[derive(Debug, Clone)]
pub struct ScoreConfig {
    /// The registry: a directory, or an `s3://`, `gs://`, `az://` URL.
    pub registry: String,
    pub as_of: Micros,
    pub out: PathBuf,
    /// Factors listed per customer.
    pub top_factors: usize,
    pub progress: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoreOutcome {
    pub scored: usize,
    pub customers_read: usize,
    pub churn_version: u64,
    pub segments_version: Option<u64>,
    pub out: String,
    pub seconds: f64,
}

pub fn score(store: &Store, config: &ScoreConfig) -> anyhow::Result<ScoreOutcome> {
    let started = Instant::now();
    let registry = crate::open_registry(&config.registry)?;
    let registry = registry.as_ref();
    let Some(churn_version) = registry.active("churn")? else {
        bail!(
            "no active churn model in {}: run `vitals-trainer train --activate` first",
            config.registry
        );
    };
    let churn = load_churn(registry, churn_version)
        .with_context(|| format!("loading churn version {churn_version}"))?;
    let segments_version = registry.active("segments")?;
    let segments = match segments_version {
        Some(v) => Some(
            load_segments(registry, v).with_context(|| format!("loading segments version {v}"))?,
        ),
        None => None,
    };
    let mut out = csv::Writer::from_path(&config.out)
        .with_context(|| format!("creating {}", config.out.display()))?;
    out.write_record([
        "external_id",
        "customer_id",
        "churn_probability",
        "risk_band",
        "segment_id",
        "segment_name",
        "top_factors",
    ])?;
    let total = store.count_customers()?;
    let bar = progress_bar(config.progress, total, "scoring");
    let mut scored = 0;
    let mut read = 0;
    let mut failure: Option<anyhow::Error> = None;
    store
        .fresh_reader()?
        .scan_histories(2_000, |histories| {
            read += histories.len();
            // Every core scores a share of the chunk; the rows are written in order.
            let rows: Vec<[String; 7]> = histories
                .par_iter()
                .filter_map(|h| score_one(h, &churn, segments.as_ref(), config))
                .collect();
            for row in &rows {
                if let Err(e) = out.write_record(row) {
                    failure = Some(e.into());
                    return Err(vitals_store::StoreError::Internal(
                        "writing the CSV failed".into(),
                    ));
                }
            }
            scored += rows.len();
            bar.set_position(read as u64);
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .map_err(|e| failure.take().unwrap_or_else(|| e.into()))?;
    out.flush()?;
    bar.finish_and_clear();
    Ok(ScoreOutcome {
        scored,
        customers_read: read,
        churn_version,
        segments_version,
        out: config.out.display().to_string(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One customer's CSV row, or None when they are not eligible at the cutoff or their
/// population has no model in this version.
fn score_one(
    h: &vitals_store::History,
    churn: &LoadedChurn,
    segments: Option<&LoadedSegments>,
    config: &ScoreConfig,
) -> Option<[String; 7]> {
    if !eligible(&h.customer.data, &h.events, config.as_of) {
        return None;
    }
    // Each customer is scored by their own population's model.
    let model = churn.for_population(Population::of(&h.customer.data))?;
    let raw = RawFeatures::of(&h.customer.data, &h.events, config.as_of);
    let row = model.schema.transform(&raw);
    let p = model.model.probability(&row);
    let currency = currency_of(&h.customer.data, &h.events, config.as_of);
    let mut factors =
        explain::factor_facts(&model.schema, &model.model.contributions(&row), Some(&raw));
    factors.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
    // The same words as the API and the demo: "contract: Month-to-month (+0.84)", written
    // for the kept factors only.
    let factors: Vec<String> = factors
        .iter()
        .take(config.top_factors)
        .map(|f| explain::in_words(f, true, currency.as_deref(), Language::English))
        .map(|f| format!("{}: {} ({:+.2})", f.label, f.display_value, f.contribution))
        .collect();
    let (segment_id, segment_name) = match segments.and_then(|s| s.assign(&h.customer.data, &raw)) {
        Some((id, profile)) => (id.to_string(), profile.name.clone()),
        None => (String::new(), String::new()),
    };
    Some([
        h.customer.data.external_id.clone(),
        h.customer.id.clone(),
        format!("{p:.6}"),
        risk_band(p).to_owned(),
        segment_id,
        segment_name,
        factors.join("; "),
    ])
}

/// What `score --store` did.
#[derive(Debug, Clone, Serialize)]
pub struct StoreOutcome {
    pub customers: u64,
    pub stored: u64,
    pub churn_version: Option<u64>,
    pub segments_version: Option<u64>,
    pub clv_version: Option<u64>,
    pub scheme_version: i64,
    pub seconds: f64,
}

/// The active models of the registry, loaded and verified as the server loads them; a
/// kind with no active version is absent.
pub fn active_models(registry: &dyn ModelRegistry) -> anyhow::Result<Models> {
    let churn = match registry.active(CHURN_KIND)? {
        Some(v) => Some(Arc::new(
            load_churn(registry, v).with_context(|| format!("loading churn version {v}"))?,
        )),
        None => None,
    };
    let segments = match registry.active(SEGMENTS_KIND)? {
        Some(v) => Some(Arc::new(
            load_segments(registry, v).with_context(|| format!("loading segments version {v}"))?,
        )),
        None => None,
    };
    let clv = match registry.active(CLV_KIND)? {
        Some(v) => Some(Arc::new(
            load_clv(registry, v).with_context(|| format!("loading clv version {v}"))?,
        )),
        None => None,
    };
    let text = match registry.active(TEXT_KIND)? {
        Some(v) => Some(Arc::new(
            load_text(registry, v).with_context(|| format!("loading text version {v}"))?,
        )),
        None => None,
    };
    Ok(Models {
        churn,
        segments,
        clv,
        text,
    })
}

/// `score --store`: the server's `RefreshEvaluations`, offline. Evaluates every customer
/// as of `as_of` with the active models and the scheme in force and stores the snapshots
/// that `ListAtRisk` and `ListSegments` read.
pub fn store_snapshots(
    store: &Store,
    registry: &str,
    as_of: Micros,
    progress: bool,
) -> anyhow::Result<StoreOutcome> {
    let registry = crate::open_registry(registry)?;
    let models = active_models(registry.as_ref())?;
    let (scheme, _) = store.scheme_in_force()?;
    let bar = progress_bar(progress, store.count_customers()?, "evaluating");
    let done = vitals_app::refresh_evaluations(store, as_of, &models, &scheme, |p| {
        bar.set_position(p.customers_done);
    })?;
    bar.finish_and_clear();
    Ok(StoreOutcome {
        customers: done.customers_done,
        stored: done.evaluations_stored,
        churn_version: models.churn.as_ref().map(|c| c.manifest.version),
        segments_version: models.segments.as_ref().map(|s| s.manifest.version),
        clv_version: models.clv.as_ref().map(|c| c.manifest.version),
        scheme_version: scheme.version,
        seconds: done.seconds,
    })
}
