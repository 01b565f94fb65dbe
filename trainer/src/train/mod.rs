//! `vitals-trainer train`: build the training set, hold out validation data, fit the
//! churn candidates and the segments, measure, report, publish, and maybe activate.
//!
//! Honesty rules: features use only what was known at each cutoff; validation rows are
//! never seen by any fit (not by the feature schema's normalisation either); metrics in
//! the manifest and the report are computed on those rows only.

pub mod clv;
pub mod dataset;
pub mod text;

use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};
use serde::Serialize;
use serde_json::json;
use vitals_domain::features::{FeatureSchema, RawFeatures};
use vitals_domain::labels::Population;
use vitals_domain::reference::ReferenceStats;
use vitals_domain::time::{MICROS_PER_DAY, Micros, now_micros};
use vitals_domain::words::Language;
use vitals_engine::evaluation::{PopulationSegmentInputs, PopulationSegmentSchemas};
use vitals_engine::metrics::{BinaryReport, binary_report, roc_auc};
use vitals_engine::models::Rows;
use vitals_engine::models::churn::{
    Algorithm, ChurnModel, Platt, PopulationSchema, PopulationSchemas, load_churn,
};
use vitals_engine::models::forest::{Forest, ForestParams};
use vitals_engine::models::logistic::{LogisticParams, LogisticRegression};
use vitals_engine::models::mlp::{Mlp, MlpParams};
use vitals_engine::models::segments::{SegmentModel, fit_auto};
use vitals_engine::registry::Manifest;
use vitals_store::Store;

use crate::report::{Candidate, ChurnSection, SegmentSection, TrainingReport, write_report};
use dataset::TrainingSet;

/// Which churn algorithm(s) to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChurnChoice {
    /// All three; the best validation ROC-AUC wins.
    Auto,
    Only(Algorithm),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentChoice {
    /// k in 3..=8 by silhouette.
    Auto,
    K(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    No,
    Always,
    /// Only when the new churn model beats the active one on this run's validation rows.
    IfBetter,
}

#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Where to publish: a directory, or an `s3://`, `gs://`, `az://` URL.
    pub registry: String,
    /// Ascending.
    pub cutoffs: Vec<Micros>,
    pub horizon: Micros,
    pub churn: ChurnChoice,
    pub segments: SegmentChoice,
    pub seed: u64,
    pub activation: Activation,
    /// Share of customers held out when there is one cutoff.
    pub validation_share: f64,
    pub progress: bool,
    /// Who activates, for the registry's history.
    pub actor: String,
    /// Fit on at most about this many customers: with more, a systematic sample is read
    /// (`Store::scan_histories_sampled`); 0 reads everyone.
    pub sample_customers: usize,
}

/// The default of `TrainConfig::sample_customers`. On the generated million-customer
/// database a quarter of the customers (250,000, 7 M events) gave the churn model the same
/// held-out ROC-AUC as everyone (BENCHMARKS.md, "A million customers"), while reading every
/// history took 28 of the 42 seconds of `train` on 2 cores.
pub const DEFAULT_SAMPLE_CUSTOMERS: usize = 300_000;

/// Read one chunk of customers in `every`: 1 (everyone) unless there are more than
/// `sample` customers.
pub fn sample_every(customers: u64, sample: usize) -> usize {
    if sample == 0 || customers <= sample as u64 {
        return 1;
    }
    usize::try_from(customers.div_ceil(sample as u64)).unwrap_or(usize::MAX)
}

/// What a run did, for people and scripts.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    pub churn_version: u64,
    pub churn_algorithm: String,
    pub segments_version: Option<u64>,
    /// `None` when the data could not support a lifetime-value model (see `clv_note`).
    pub clv_version: Option<u64>,
    pub clv_note: String,
    /// Comment sentiment and topics; `None` when no customer wrote a comment.
    pub text_version: Option<u64>,
    /// Where each language's sentiment comes from (learned, with its held-out ROC-AUC, or
    /// the lexicon and why).
    pub text_note: String,
    pub activated: bool,
    pub activation_note: String,
    pub customers_read: usize,
    /// Customers stored: more than `customers_read` when a sample was fitted on.
    pub customers_total: u64,
    pub events_read: usize,
    pub training_rows: usize,
    pub validation_rows: usize,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub base_rate: f64,
    pub segments: Option<usize>,
    /// Each population's churn model, measured on its own validation rows (the figures
    /// above are over every validation row, each scored by its population's model).
    pub populations: Vec<PopulationOutcome>,
    pub report: String,
    pub seconds: f64,
}

/// One population's churn model in a run.
#[derive(Debug, Clone, Serialize)]
pub struct PopulationOutcome {
    /// What a person calls the population ("subscription customers").
    pub population: String,
    pub algorithm: String,
    pub training_rows: usize,
    pub validation_rows: usize,
    pub roc_auc: f64,
    pub base_rate: f64,
}

/// Fewest training rows of each class a population needs for a model of its own.
const MIN_CLASS_ROWS: usize = 10;

pub(crate) fn progress_bar(enabled: bool, len: u64, what: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

fn rfc3339(t: Micros) -> String {
    chrono::DateTime::from_timestamp_micros(t)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Training and validation example indices, and how they were chosen.
fn split(set: &TrainingSet, share: f64, seed: u64) -> (Vec<usize>, Vec<usize>, String) {
    if set.cutoffs.len() > 1 {
        let last = set.cutoffs.len() - 1;
        let validation_cutoff = set.cutoffs[last];
        // A training label must be known by the validation cutoff: an earlier cutoff whose
        // horizon reaches past it would teach the model what happened during validation.
        let usable = |c: usize| set.cutoffs[c] + set.horizon <= validation_cutoff;
        let val: Vec<usize> = (0..set.examples.len())
            .filter(|&i| set.examples[i].cutoff == last)
            .collect();
        let train: Vec<usize> = (0..set.examples.len())
            .filter(|&i| set.examples[i].cutoff != last && usable(set.examples[i].cutoff))
            .collect();
        let kept = (0..last).filter(|&c| usable(c)).count();
        let description = format!(
            "out-of-time: trained on {kept} earlier cutoff(s) whose horizon ends by the last, validated on the last ({})",
            rfc3339(validation_cutoff)
        );
        return (train, val, description);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut pos, mut neg): (Vec<usize>, Vec<usize>) =
        (0..set.examples.len()).partition(|&i| set.examples[i].label);
    pos.shuffle(&mut rng);
    neg.shuffle(&mut rng);
    let take = |v: &[usize]| ((v.len() as f64) * share).round() as usize;
    let (vp, vn) = (take(&pos), take(&neg));
    let mut val: Vec<usize> = pos[..vp].iter().chain(&neg[..vn]).copied().collect();
    let mut train: Vec<usize> = pos[vp..].iter().chain(&neg[vn..]).copied().collect();
    val.sort_unstable();
    train.sort_unstable();
    let description = format!(
        "stratified random {:.0}% of customers held out (seed {seed})",
        share * 100.0
    );
    (train, val, description)
}

fn matrix(schema: &FeatureSchema, raws: &[&RawFeatures]) -> Vec<f32> {
    let mut x = Vec::with_capacity(raws.len() * schema.len());
    for r in raws {
        schema.transform_into(r, &mut x);
    }
    x
}

struct Fitted {
    model: ChurnModel,
    report: BinaryReport,
    probabilities: Vec<f64>,
    seconds: f64,
}

fn fit_one(
    algorithm: Algorithm,
    x: Rows<'_>,
    y: &[bool],
    xv: Rows<'_>,
    yv: &[bool],
    seed: u64,
) -> anyhow::Result<Fitted> {
    let started = Instant::now();
    let model = match algorithm {
        Algorithm::Logistic => {
            let (m, info) = LogisticRegression::fit(x, y, &LogisticParams::default())?;
            tracing::info!(
                iterations = info.iterations,
                converged = info.converged,
                "logistic regression fitted"
            );
            ChurnModel::Logistic(m)
        }
        Algorithm::Mlp => {
            let params = MlpParams {
                seed,
                ..MlpParams::default()
            };
            ChurnModel::Mlp(Mlp::fit(x, y, &params)?.0)
        }
        Algorithm::Forest => {
            // Trees on 85% of the training rows; Platt scaling on the other 15%.
            let mut order: Vec<usize> = (0..x.rows).collect();
            order.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x5eed));
            let cut = x.rows - x.rows * 15 / 100;
            let take = |idx: &[usize]| -> (Vec<f32>, Vec<bool>) {
                let mut data = Vec::with_capacity(idx.len() * x.cols);
                for &i in idx {
                    data.extend_from_slice(x.row(i));
                }
                (data, idx.iter().map(|&i| y[i]).collect())
            };
            let (fit_x, fit_y) = take(&order[..cut]);
            let (cal_x, cal_y) = take(&order[cut..]);
            let params = ForestParams {
                seed,
                ..ForestParams::default()
            };
            let forest = Forest::fit(Rows::new(&fit_x, x.cols)?, &fit_y, &params)?;
            let raw = forest.probabilities(Rows::new(&cal_x, x.cols)?)?;
            let calibration = match Platt::fit(&raw, &cal_y) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "forest left uncalibrated");
                    None
                }
            };
            ChurnModel::Forest(forest, calibration)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let probabilities = model.probabilities(xv)?;
    let report = binary_report(yv, &probabilities)
        .with_context(|| format!("measuring {} on the validation rows", algorithm.as_str()))?;
    Ok(Fitted {
        model,
        report,
        probabilities,
        seconds,
    })
}

/// Importance of each feature (its columns' contributions summed, as the explanations
/// fold them) over up to 2,000 validation rows: (name, label, mean absolute
/// contribution), largest first.
fn importance(
    model: &ChurnModel,
    schema: &FeatureSchema,
    xv: Rows<'_>,
) -> Vec<(String, String, f64)> {
    let rows: Vec<Vec<f64>> = (0..xv.rows.min(2_000))
        .map(|i| model.contributions(xv.row(i)))
        .collect();
    vitals_domain::explain::importance(schema, &rows)
}

/// One population's segmentation and the silhouette of every k tried.
type PopulationSegmentation = (Population, SegmentModel, Vec<(usize, f64)>);

/// One population's churn model: its schema, every candidate, the best by validation
/// ROC-AUC, and what drives it.
struct PopulationFit {
    population: Population,
    algorithm: Algorithm,
    schema: FeatureSchema,
    chosen: Fitted,
    candidates: Vec<Candidate>,
    importance: Vec<(String, String, f64)>,
    training_rows: usize,
    val_idx: Vec<usize>,
    yv: Vec<bool>,
}

fn fit_population(
    set: &TrainingSet,
    population: Population,
    train_idx: &[usize],
    val_idx: &[usize],
    algorithms: &[Algorithm],
    config: &TrainConfig,
) -> anyhow::Result<PopulationFit> {
    let train_raw: Vec<&RawFeatures> = train_idx.iter().map(|&i| &set.examples[i].raw).collect();
    let val_raw: Vec<&RawFeatures> = val_idx.iter().map(|&i| &set.examples[i].raw).collect();
    let schema = FeatureSchema::fit(&train_raw);
    let x = matrix(&schema, &train_raw);
    let xv = matrix(&schema, &val_raw);
    let y: Vec<bool> = train_idx.iter().map(|&i| set.examples[i].label).collect();
    let yv: Vec<bool> = val_idx.iter().map(|&i| set.examples[i].label).collect();
    let rows = Rows::new(&x, schema.len())?;
    let vrows = Rows::new(&xv, schema.len())?;
    let bar = progress_bar(config.progress, algorithms.len() as u64, "fitting");
    let mut fitted: Vec<(Algorithm, Fitted)> = Vec::new();
    for a in algorithms {
        bar.set_message(format!("fitting {} ({})", a.as_str(), population.as_str()));
        let f = fit_one(*a, rows, &y, vrows, &yv, config.seed)
            .with_context(|| format!("fitting the {} churn model", a.as_str()))?;
        tracing::info!(
            population = population.as_str(),
            algorithm = a.as_str(),
            roc_auc = f.report.roc_auc,
            seconds = f.seconds,
            "candidate fitted"
        );
        fitted.push((*a, f));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let best = fitted
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.1.report.roc_auc.total_cmp(&b.1.1.report.roc_auc))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let candidates: Vec<Candidate> = fitted
        .iter()
        .enumerate()
        .map(|(i, (a, f))| Candidate {
            algorithm: a.as_str().to_owned(),
            roc_auc: f.report.roc_auc,
            pr_auc: f.report.pr_auc,
            log_loss: f.report.log_loss,
            seconds: f.seconds,
            chosen: i == best,
        })
        .collect();
    let (algorithm, chosen) = fitted.swap_remove(best);
    let importance = importance(&chosen.model, &schema, vrows);
    Ok(PopulationFit {
        population,
        algorithm,
        schema,
        chosen,
        candidates,
        importance,
        training_rows: train_idx.len(),
        val_idx: val_idx.to_vec(),
        yv,
    })
}

/// A cutoff as a day, as people write it: "2025-10-01".
fn day(t: Micros) -> String {
    chrono::DateTime::from_timestamp_micros(t)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The whole run.
pub fn train(store: &Store, config: &TrainConfig) -> anyhow::Result<TrainOutcome> {
    let started = Instant::now();
    let registry = crate::open_registry(&config.registry)?;
    let registry = registry.as_ref();
    // Publishes that a killed trainer left behind (older than an hour: not a concurrent
    // run still writing) are removed; readers ignore them either way.
    {
        if let Ok(removed @ 1..) = registry.sweep_abandoned(std::time::Duration::from_secs(3600)) {
            tracing::info!(removed, "abandoned temporary publishes removed");
        }
    }
    if config.cutoffs.is_empty() {
        bail!("no cutoff given");
    }
    if config.horizon <= 0 {
        bail!("the horizon must be positive");
    }
    let last = config.cutoffs[config.cutoffs.len() - 1];
    if last + config.horizon > now_micros() {
        bail!(
            "the label window after the last cutoff ({} + {:.0} days) has not passed yet: pick an earlier --as-of",
            rfc3339(last),
            config.horizon as f64 / MICROS_PER_DAY as f64
        );
    }

    // 1. The training set.
    let customers_total = store.count_customers().context("counting customers")?;
    let every = sample_every(customers_total, config.sample_customers);
    let bar = progress_bar(config.progress, customers_total / every as u64, "reading");
    let set = dataset::build(store, &config.cutoffs, config.horizon, every, &bar)?;
    bar.finish_and_clear();
    if set.examples.is_empty() {
        bail!(
            "no eligible customers: nobody had signed up (or bought) before the cutoff and not yet churned; import data or pick a later --as-of"
        );
    }
    let positives = set.positives();
    if positives == 0 || positives == set.examples.len() {
        bail!(
            "the labels hold a single class ({} of {} churned within the horizon): pick another --as-of or --horizon",
            positives,
            set.examples.len()
        );
    }
    let (train_idx, val_idx, validation) = split(&set, config.validation_share, config.seed);
    if train_idx.is_empty() {
        bail!(
            "no earlier cutoff has its horizon end by the last cutoff, so nothing can be trained without seeing the validation period: use more --cutoffs or a --step of at least the horizon"
        );
    }
    let count = |idx: &[usize]| idx.iter().filter(|&&i| set.examples[i].label).count();
    for (name, idx) in [("training", &train_idx), ("validation", &val_idx)] {
        let p = count(idx);
        if p == 0 || p == idx.len() {
            bail!(
                "the {name} rows hold a single class ({p} of {} churned): use more data, another cutoff or a longer horizon",
                idx.len()
            );
        }
    }
    tracing::info!(
        customers = set.customers_read,
        events = set.events_read,
        examples = set.examples.len(),
        positives,
        training = train_idx.len(),
        validation = val_idx.len(),
        "training set built"
    );

    // 2-3. A churn model per population, each on its own rows and features (the schema is
    // learned on its training rows only), its candidates compared on its validation rows.
    let algorithms: Vec<Algorithm> = match config.churn {
        ChurnChoice::Auto => Algorithm::ALL.to_vec(),
        ChurnChoice::Only(a) => vec![a],
    };
    let mut fits: Vec<PopulationFit> = Vec::new();
    for population in Population::ALL {
        let of = |idx: &[usize]| -> Vec<usize> {
            idx.iter()
                .copied()
                .filter(|&i| set.examples[i].population == population)
                .collect()
        };
        let (train_p, val_p) = (of(&train_idx), of(&val_idx));
        let classes = |idx: &[usize]| {
            let p = count(idx);
            (p, idx.len() - p)
        };
        let ((tp, tn), (vp, vn)) = (classes(&train_p), classes(&val_p));
        if tp.min(tn) < MIN_CLASS_ROWS || vp == 0 || vn == 0 {
            if !train_p.is_empty() {
                tracing::warn!(
                    population = population.as_str(),
                    training = train_p.len(),
                    churned = tp,
                    validation = val_p.len(),
                    "too few rows of each class for a churn model of this population"
                );
            }
            continue;
        }
        let fit = fit_population(&set, population, &train_p, &val_p, &algorithms, config)
            .with_context(|| {
                format!(
                    "fitting the churn model of {}",
                    population.label(Language::English)
                )
            })?;
        fits.push(fit);
    }
    if fits.is_empty() {
        bail!(
            "no population has at least {MIN_CLASS_ROWS} training rows of each class and both classes among its validation rows: use more data, another cutoff or a longer horizon"
        );
    }
    // Every validation row scored by its population's model, for the run's headline
    // figures and the activation check.
    let yv: Vec<bool> = fits.iter().flat_map(|f| f.yv.iter().copied()).collect();
    let pv: Vec<f64> = fits
        .iter()
        .flat_map(|f| f.chosen.probabilities.iter().copied())
        .collect();
    let overall = binary_report(&yv, &pv).context("measuring the churn models together")?;

    // 4. Segments per population, on its training rows (a sample is enough to describe
    // it): subscribers are described against subscribers, shop customers against shop
    // customers.
    let mut segments: Vec<PopulationSegmentation> = Vec::new();
    for population in Population::ALL {
        let mut sample: Vec<RawFeatures> = train_idx
            .iter()
            .filter(|&&i| set.examples[i].population == population)
            .map(|&i| set.examples[i].raw.clone())
            .collect();
        if sample.is_empty() {
            continue;
        }
        sample.shuffle(&mut StdRng::seed_from_u64(config.seed));
        sample.truncate(100_000);
        let fitted = match config.segments {
            SegmentChoice::Auto => fit_auto(&sample, config.seed).map(|(m, c)| (m, c.silhouettes)),
            SegmentChoice::K(k) => {
                SegmentModel::fit(&sample, k, config.seed).map(|m| (m, Vec::new()))
            }
        };
        match fitted {
            Ok((model, silhouettes)) => segments.push((population, model, silhouettes)),
            Err(e) => {
                tracing::warn!(population = population.as_str(), error = %e, "no segments for this population");
            }
        }
    }
    let reference = ReferenceStats::compute(
        &set.examples
            .iter()
            .filter(|e| e.cutoff == set.cutoffs.len() - 1)
            .map(|e| &e.raw)
            .collect::<Vec<_>>(),
    );

    // 5. Publish churn (with the report) and segments (with the reference statistics).
    let cutoffs: Vec<String> = set.cutoffs.iter().map(|&t| rfc3339(t)).collect();
    let horizon_days = config.horizon as f64 / MICROS_PER_DAY as f64;
    let training = json!({
        "cutoffs": cutoffs,
        "horizon_days": horizon_days,
        "horizon_micros": config.horizon,
        "customers": set.customers_read,
        "customers_stored": customers_total,
        "sampled_one_chunk_in": every,
        "events": set.events_read,
        "examples": set.examples.len(),
        "training_rows": train_idx.len(),
        "validation_rows": val_idx.len(),
        "validation": validation,
        "seed": config.seed,
    });
    let expected_version = registry.versions("churn")?.last().copied().unwrap_or(0) + 1;
    let algorithm_name = {
        let mut names: Vec<&str> = fits.iter().map(|f| f.algorithm.as_str()).collect();
        names.dedup();
        if names.len() == 1 {
            names[0].to_owned()
        } else {
            fits.iter()
                .map(|f| format!("{} {}", f.population.as_str(), f.algorithm.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let report = TrainingReport {
        title: format!(
            "Churn models: who left in the {horizon_days:.0} days after {}",
            set.cutoffs
                .iter()
                .map(|&t| day(t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        created: rfc3339(now_micros()),
        churn: fits
            .iter()
            .map(|f| ChurnSection {
                population: f.population.label(Language::English).to_owned(),
                algorithm: f.algorithm.as_str().to_owned(),
                // The version this run expects to get; a concurrent publish may take it
                // first, in which case the manifest (not the report) has the true number.
                version: expected_version,
                horizon_days,
                cutoffs: cutoffs.clone(),
                training_rows: f.training_rows,
                validation_rows: f.yv.len(),
                validation: validation.clone(),
                metrics: f.chosen.report.clone(),
                candidates: f.candidates.clone(),
                importance: f
                    .importance
                    .iter()
                    .map(|(_, label, v)| (label.clone(), *v))
                    .collect(),
            })
            .collect(),
        segments: {
            let mut first_id = 0;
            segments
                .iter()
                .map(|(population, m, silhouettes)| {
                    let section = SegmentSection {
                        population: population.label(Language::English).to_owned(),
                        first_id,
                        k: m.k(),
                        silhouettes: silhouettes.clone(),
                        profiles: m.profiles.clone(),
                    };
                    first_id += m.k();
                    section
                })
                .collect()
        },
    };
    let staged = tempfile::tempdir().context("a directory to write the churn model into")?;
    let mut schemas = Vec::new();
    let mut per_population = serde_json::Map::new();
    for f in &fits {
        let dir = staged.path().join(f.population.as_str());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        f.chosen.model.save(&dir)?;
        schemas.push(PopulationSchema {
            population: f.population,
            algorithm: f.algorithm,
            schema: f.schema.clone(),
        });
        let m = &f.chosen.report;
        per_population.insert(
            f.population.as_str().to_owned(),
            json!({
                "algorithm": f.algorithm.as_str(),
                "training_rows": f.training_rows,
                "validation_rows": f.yv.len(),
                "roc_auc": m.roc_auc,
                "pr_auc": m.pr_auc,
                "log_loss": m.log_loss,
                "brier": m.brier,
                "base_rate": m.base_rate,
                "lift_10": m.lift_10,
                "lift_20": m.lift_20,
                "calibration": m.calibration,
                "candidates": f.candidates,
                "importance": f
                    .importance
                    .iter()
                    .take(30)
                    .map(|(name, _, v)| (name, v))
                    .collect::<Vec<_>>(),
            }),
        );
    }
    write_report(staged.path(), &report)?;
    let mut manifest = Manifest::new("churn", &algorithm_name);
    manifest.training = training.clone();
    manifest.data_fingerprint = set.fingerprint.clone();
    manifest.feature_schema = serde_json::to_value(PopulationSchemas {
        populations: schemas,
    })?;
    manifest.metrics = json!({
        "roc_auc": overall.roc_auc,
        "pr_auc": overall.pr_auc,
        "log_loss": overall.log_loss,
        "brier": overall.brier,
        "base_rate": overall.base_rate,
        "populations": per_population,
    });
    manifest.extra = json!({ "report": "report.html", "report_json": "report.json" });
    let churn = registry.publish("churn", staged.path(), manifest)?;
    tracing::info!(version = churn.version, "churn model published");

    let segments_version = if segments.is_empty() {
        None
    } else {
        let staged = tempfile::tempdir().context("a directory to write the segments model into")?;
        let mut inputs = Vec::new();
        let mut metrics = serde_json::Map::new();
        for (population, model, silhouettes) in &segments {
            let dir = staged.path().join(population.as_str());
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            model.save(&dir)?;
            inputs.push(PopulationSegmentInputs {
                population: *population,
                inputs: model.inputs.clone(),
            });
            metrics.insert(
                population.as_str().to_owned(),
                json!({ "k": model.k(), "silhouettes": silhouettes }),
            );
        }
        std::fs::write(
            staged.path().join("reference.json"),
            serde_json::to_vec_pretty(&reference)?,
        )?;
        let mut manifest = Manifest::new("segments", "kmeans");
        manifest.training = training.clone();
        manifest.data_fingerprint = set.fingerprint.clone();
        manifest.feature_schema = serde_json::to_value(PopulationSegmentSchemas {
            populations: inputs,
        })?;
        manifest.metrics = json!({
            "k": segments.iter().map(|(_, m, _)| m.k()).sum::<usize>(),
            "populations": metrics,
        });
        manifest.extra = json!({ "churn_version": churn.version });
        Some(
            registry
                .publish("segments", staged.path(), manifest)?
                .version,
        )
    };

    // Lifetime value on every buyer at the last cutoff; skipped (not failed) when the data
    // cannot support it, e.g. subscriptions without transactions.
    let clv = clv::run(
        registry,
        &set,
        &rfc3339(last),
        &rfc3339(now_micros()),
        churn.version,
    )?;

    // Comment sentiment and topics, from every comment (not only the sampled customers').
    let text = text::run(store, registry, &training, config.seed)?;

    // 6. Activation.
    let (activated, activation_note) = match config.activation {
        Activation::No => (
            false,
            "published; not activated (use --activate or `models activate`)".to_owned(),
        ),
        Activation::Always => (true, "activated".to_owned()),
        Activation::IfBetter => match registry.active("churn")? {
            None => (true, "activated: no version was active".to_owned()),
            Some(active) => {
                let current = load_churn(registry, active)
                    .with_context(|| format!("loading the active churn version {active}"))?;
                // The same validation rows, each scored by the active version's model for
                // its population; rows it has no model for are left out of both sides.
                let mut yb = Vec::new();
                let (mut old_p, mut new_p) = (Vec::new(), Vec::new());
                for f in &fits {
                    let Some(model) = current.for_population(f.population) else {
                        continue;
                    };
                    let raws: Vec<&RawFeatures> =
                        f.val_idx.iter().map(|&i| &set.examples[i].raw).collect();
                    let xa = matrix(&model.schema, &raws);
                    old_p.extend(
                        model
                            .model
                            .probabilities(Rows::new(&xa, model.schema.len())?)?,
                    );
                    new_p.extend(f.chosen.probabilities.iter().copied());
                    yb.extend(f.yv.iter().copied());
                }
                let old = roc_auc(&yb, &old_p)?;
                let new = roc_auc(&yb, &new_p)?;
                if new > old {
                    (
                        true,
                        format!(
                            "activated: ROC-AUC {new:.4} beats active version {active}'s {old:.4} on the same validation rows"
                        ),
                    )
                } else {
                    (
                        false,
                        format!(
                            "not activated: ROC-AUC {new:.4} does not beat active version {active}'s {old:.4} on the same validation rows"
                        ),
                    )
                }
            }
        },
    };
    if activated {
        let reason = match config.activation {
            Activation::IfBetter => "train --activate-if-better",
            _ => "train --activate",
        };
        registry.activate("churn", churn.version, &config.actor, reason)?;
        if let Some(v) = segments_version {
            registry.activate("segments", v, &config.actor, reason)?;
        }
        if let Some(v) = clv.version {
            registry.activate("clv", v, &config.actor, reason)?;
        }
        if let Some(v) = text.version {
            registry.activate(vitals_engine::text::TEXT_KIND, v, &config.actor, reason)?;
        }
    }

    Ok(TrainOutcome {
        churn_version: churn.version,
        churn_algorithm: algorithm_name,
        segments_version,
        clv_version: clv.version,
        clv_note: clv.note,
        text_version: text.version,
        text_note: text.note,
        activated,
        activation_note,
        customers_read: set.customers_read,
        customers_total,
        events_read: set.events_read,
        training_rows: fits.iter().map(|f| f.training_rows).sum(),
        validation_rows: yv.len(),
        roc_auc: overall.roc_auc,
        pr_auc: overall.pr_auc,
        log_loss: overall.log_loss,
        brier: overall.brier,
        base_rate: overall.base_rate,
        segments: (!segments.is_empty()).then(|| segments.iter().map(|(_, m, _)| m.k()).sum()),
        populations: fits
            .iter()
            .map(|f| PopulationOutcome {
                population: f.population.label(Language::English).to_owned(),
                algorithm: f.algorithm.as_str().to_owned(),
                training_rows: f.training_rows,
                validation_rows: f.yv.len(),
                roc_auc: f.chosen.report.roc_auc,
                base_rate: f.chosen.report.base_rate,
            })
            .collect(),
        report: churn.dir.join("report.html").display().to_string(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
