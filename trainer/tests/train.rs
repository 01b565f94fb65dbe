//! Training, scoring and the model registry, end to end on the real Telco sample.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use tempfile::TempDir;
use vitals_domain::labels::Population;
use vitals_domain::time::MICROS_PER_DAY;
use vitals_engine::models::churn::{Algorithm, load_churn};
use vitals_engine::registry::{ModelRegistry, Registry};
use vitals_store::{DatabaseUrl, PoolOptions, Store};
use vitals_trainer::score::{ScoreConfig, score};
use vitals_trainer::train::{Activation, ChurnChoice, SegmentChoice, TrainConfig, train};
use vitals_trainer::{ImportOptions, import_telco};

const TELCO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/datasets/telco_customer_churn.csv"
);
const AS_OF: &str = "2025-10-01";

fn store(dir: &Path) -> Result<Store> {
    let store = Store::open(
        &DatabaseUrl::Sqlite(dir.join("vitals.db")),
        &PoolOptions::default(),
    )?;
    store.migrate()?;
    Ok(store)
}

fn as_of() -> Result<i64> {
    let d = vitals_trainer::time::parse_date(AS_OF).map_err(anyhow::Error::msg)?;
    Ok(d.and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc()
        .timestamp_micros())
}

fn config(dir: &Path, activation: Activation) -> Result<TrainConfig> {
    Ok(TrainConfig {
        registry: dir.join("models").display().to_string(),
        cutoffs: vec![as_of()?],
        horizon: 30 * MICROS_PER_DAY,
        churn: ChurnChoice::Only(Algorithm::Logistic),
        segments: SegmentChoice::K(4),
        seed: 7,
        activation,
        validation_share: 0.2,
        progress: false,
        actor: "test".into(),
        sample_customers: 0,
    })
}

fn telco() -> Result<(TempDir, Store)> {
    let dir = tempfile::tempdir()?;
    let store = store(dir.path())?;
    let as_of = vitals_trainer::time::parse_date(AS_OF).map_err(anyhow::Error::msg)?;
    import_telco(&store, Path::new(TELCO), as_of, &ImportOptions::default())?;
    Ok((dir, store))
}

#[test]
fn telco_trains_publishes_activates_and_scores() -> Result<()> {
    let (dir, store) = telco()?;
    let outcome = train(&store, &config(dir.path(), Activation::No)?)?;
    ensure!(outcome.churn_version == 1 && outcome.segments_version == Some(1));
    ensure!(!outcome.activated);
    ensure!(outcome.validation_rows == 1409 && outcome.training_rows == 5634);
    // Held-out quality on real data (published results: about 0.84-0.85).
    ensure!(outcome.roc_auc > 0.83, "ROC-AUC {}", outcome.roc_auc);

    let registry = Registry::open(dir.path().join("models"))?;
    let manifest = registry.verify("churn", 1)?;
    // Telco is all subscriptions: one model, for contractual customers, in its folder.
    ensure!(outcome.populations.len() == 1, "{:?}", outcome.populations);
    ensure!(outcome.populations[0].population == "subscription customers");
    for file in [
        "contractual/model.safetensors",
        "report.html",
        "report.json",
    ] {
        ensure!(
            manifest.files.contains_key(file),
            "{file} is published and hashed"
        );
    }
    let html = std::fs::read_to_string(registry.version_dir("churn", 1).join("report.html"))?;
    ensure!(html.matches("<svg").count() >= 4);
    let loaded = load_churn(&registry, 1)?;
    ensure!(loaded.horizon == 30 * MICROS_PER_DAY);
    ensure!(
        registry
            .verify("segments", 1)?
            .files
            .contains_key("reference.json")
    );

    // Nothing active yet: scoring says what to do.
    let out = dir.path().join("scores.csv");
    let score_config = ScoreConfig {
        registry: dir.path().join("models").display().to_string(),
        as_of: as_of()?,
        out: out.clone(),
        top_factors: 3,
        progress: false,
    };
    let err = score(&store, &score_config)
        .err()
        .context("no active model")?;
    ensure!(err.to_string().contains("train --activate"), "{err}");

    registry.activate("churn", 1, "test", "activate")?;
    registry.activate("segments", 1, "test", "activate")?;
    let scored = score(&store, &score_config)?;
    ensure!(scored.scored == 7043, "{scored:?}");
    let mut reader = csv::Reader::from_path(&out)?;
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    ensure!(rows.len() == 7043);
    for row in rows.iter().take(50) {
        let p: f64 = row.get(2).context("probability")?.parse()?;
        ensure!((0.0..=1.0).contains(&p));
        ensure!(!row.get(5).unwrap_or_default().is_empty(), "a segment name");
        // Factors in words with the customer's values: "contract: Month-to-month (+0.84)",
        // never model columns ("attr.Contract=other", "tenure_days_missing").
        let factors = row.get(6).unwrap_or_default();
        ensure!(factors.contains(": "), "factors listed: {factors}");
        for column_like in ["attr.", "=other", "_missing", "_days"] {
            ensure!(
                !factors.contains(column_like),
                "a model column in {factors}"
            );
        }
    }

    // `score --store`: every customer's snapshot, as the server's RefreshEvaluations.
    let stored = vitals_trainer::score::store_snapshots(
        &store,
        &dir.path().join("models").display().to_string(),
        as_of()?,
        false,
    )?;
    ensure!(
        stored.customers == 7043 && stored.stored == 7043,
        "{stored:?}"
    );
    ensure!(stored.churn_version == Some(1) && stored.scheme_version == 1);
    ensure!(store.count_evaluations()? == 7043);
    let snapshot = store
        .get_evaluation(&store.list_customers(&Default::default(), 1, "")?.items[0].id)?
        .context("a snapshot")?;
    ensure!(snapshot.churn_probability.is_some() && snapshot.tier.is_some());

    // The same data and seed again is not better: not activated; then a rollback.
    let again = train(&store, &config(dir.path(), Activation::IfBetter)?)?;
    ensure!(again.churn_version == 2);
    ensure!(!again.activated, "{}", again.activation_note);
    ensure!(registry.active("churn")? == Some(1));
    registry.activate("churn", 2, "test", "activate")?;
    ensure!(registry.rollback("churn", "test")? == 1);
    Ok(())
}

#[test]
fn clear_errors_and_nothing_half_published() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = store(dir.path())?;
    let err = train(&store, &config(dir.path(), Activation::Always)?)
        .err()
        .context("empty database")?;
    ensure!(err.to_string().contains("no eligible customers"), "{err}");

    let (dir, store) = telco()?;
    // A cutoff before anyone signed up with a churn in the window: a single class.
    let mut early = config(dir.path(), Activation::Always)?;
    early.cutoffs = vec![as_of()? - 3_000 * MICROS_PER_DAY];
    let err = train(&store, &early).err().context("single class")?;
    ensure!(
        err.to_string().contains("single class") || err.to_string().contains("no eligible"),
        "{err}"
    );
    // A label window that has not passed yet.
    let mut future = config(dir.path(), Activation::Always)?;
    future.cutoffs = vec![vitals_domain::time::now_micros()];
    let err = train(&store, &future).err().context("future")?;
    ensure!(err.to_string().contains("has not passed"), "{err}");

    let registry = Registry::open(dir.path().join("models"))?;
    ensure!(registry.versions("churn")?.is_empty(), "nothing published");
    Ok(())
}

#[test]
fn out_of_time_training_never_sees_the_validation_period() -> Result<()> {
    let (dir, store) = telco()?;
    // Two cutoffs 10 days apart with a 30-day horizon: the earlier one's labels would
    // look into the validation period, so there is nothing honest to train on.
    let mut overlapping = config(dir.path(), Activation::No)?;
    overlapping.cutoffs = vec![as_of()? - 10 * MICROS_PER_DAY, as_of()?];
    let err = train(&store, &overlapping).err().context("refused")?;
    ensure!(err.to_string().contains("validation period"), "{err}");
    Ok(())
}

#[test]
fn a_forest_is_published_calibrated_and_loads_back() -> Result<()> {
    let (dir, store) = telco()?;
    let mut forest = config(dir.path(), Activation::Always)?;
    forest.churn = ChurnChoice::Only(Algorithm::Forest);
    let outcome = train(&store, &forest)?;
    ensure!(outcome.churn_algorithm == "forest");
    ensure!(outcome.roc_auc > 0.8, "ROC-AUC {}", outcome.roc_auc);
    // Calibrated: its log loss is that of a probability, not of a vote share.
    ensure!(outcome.log_loss < 0.5, "log loss {}", outcome.log_loss);
    let registry = Registry::open(dir.path().join("models"))?;
    let manifest = registry.verify("churn", outcome.churn_version)?;
    ensure!(manifest.files.contains_key("contractual/calibration.json"));
    let loaded = load_churn(&registry, outcome.churn_version)?;
    let model = loaded
        .for_population(Population::Contractual)
        .context("a contractual model")?;
    ensure!(loaded.for_population(Population::NonContractual).is_none());
    ensure!(model.model.algorithm() == Algorithm::Forest);
    let row = vec![0.0f32; model.schema.len()];
    let p = model.model.probability(&row);
    ensure!(p > 0.0 && p < 1.0);
    Ok(())
}
