//! Lifetime value on the CDNOW sample against Fader, Hardie and Lee's published estimates.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use vitals_domain::time::MICROS_PER_DAY;
use vitals_engine::models::churn::Algorithm;
use vitals_engine::models::clv::{BgNbd, GammaGamma, RfmSummary, load_clv, summarize};
use vitals_engine::registry::Registry;
use vitals_store::{DatabaseUrl, PoolOptions, Store};
use vitals_trainer::train::{Activation, ChurnChoice, SegmentChoice, TrainConfig, train};
use vitals_trainer::{ImportOptions, import_cdnow, import_telco};

const CDNOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/datasets/cdnow_sample.txt"
);

/// True when `got` rounds to `paper` at three significant digits.
fn three_digits(got: f64, paper: f64) -> bool {
    let scale = 10f64.powi(paper.abs().log10().floor() as i32 - 2);
    ((got / scale).round() - (paper / scale).round()).abs() < 0.5
}

const TELCO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/datasets/telco_customer_churn.csv"
);

fn store(dir: &Path) -> Result<Store> {
    let store = Store::open(
        &DatabaseUrl::Sqlite(dir.join("vitals.db")),
        &PoolOptions::default(),
    )?;
    store.migrate()?;
    Ok(store)
}

fn midnight(date: &str) -> Result<i64> {
    Ok(vitals_trainer::time::parse_date(date)
        .map_err(anyhow::Error::msg)?
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc()
        .timestamp_micros())
}

fn config(dir: &Path, as_of: &str) -> Result<TrainConfig> {
    Ok(TrainConfig {
        registry: dir.join("models").display().to_string(),
        cutoffs: vec![midnight(as_of)?],
        horizon: 182 * MICROS_PER_DAY,
        churn: ChurnChoice::Only(Algorithm::Logistic),
        segments: SegmentChoice::K(3),
        seed: 7,
        activation: Activation::Always,
        validation_share: 0.2,
        progress: false,
        actor: "test".into(),
        sample_customers: 0,
    })
}

/// Every CDNOW customer's summary as of 1997-10-01, in weeks (days / 7).
fn cdnow_summaries() -> Result<Vec<RfmSummary>> {
    let dir = tempfile::tempdir()?;
    let store = store(dir.path())?;
    import_cdnow(&store, Path::new(CDNOW), &ImportOptions::default())?;
    let as_of = midnight("1997-10-01")?;
    let mut summaries = Vec::new();
    store.scan_histories(500, |histories| {
        summaries.extend(
            histories
                .iter()
                .filter_map(|h| summarize(&h.events, as_of, 7 * MICROS_PER_DAY)),
        );
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    Ok(summaries)
}

#[test]
fn cdnow_reproduces_the_papers_estimates() -> Result<()> {
    let summaries = cdnow_summaries()?;
    ensure!(summaries.len() == 2357, "{} customers", summaries.len());
    let repeats: f64 = summaries.iter().map(|s| s.x).sum();
    ensure!(repeats == 2457.0, "{repeats} repeat purchases");

    let (m, fit) = BgNbd::fit(&summaries)?;
    println!("BG/NBD {m:?} {fit:?}");
    ensure!(fit.converged && fit.repeat_customers == 946, "{fit:?}");
    for (name, got, paper) in [
        ("r", m.r, 0.243),
        ("alpha", m.alpha, 4.414),
        ("a", m.a, 0.793),
        ("b", m.b, 2.426),
    ] {
        ensure!(three_digits(got, paper), "{name} = {got}, paper {paper}");
    }
    ensure!(
        (fit.log_likelihood - -9582.4).abs() < 0.05,
        "LL {}",
        fit.log_likelihood
    );

    let (g, spend) = GammaGamma::fit(&summaries)?;
    println!("Gamma-Gamma {g:?} {spend:?}");
    ensure!(spend.customers == 946, "{spend:?}");
    for (name, got, paper) in [
        ("p", g.p, 6.25),
        ("q", g.q, 3.74),
        ("gamma", g.gamma, 15.44),
    ] {
        ensure!(three_digits(got, paper), "{name} = {got}, paper {paper}");
    }
    Ok(())
}

#[test]
fn training_publishes_and_activates_clv_with_a_holdout_check() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = store(dir.path())?;
    import_cdnow(&store, Path::new(CDNOW), &ImportOptions::default())?;
    let outcome = train(&store, &config(dir.path(), "1997-10-01")?)?;
    ensure!(outcome.clv_version == Some(1), "{}", outcome.clv_note);
    let registry = Registry::open(dir.path().join("models"))?;
    ensure!(registry.active("clv")? == Some(1));
    let loaded = load_clv(&registry, 1)?;
    let m = &loaded.manifest;
    ensure!(m.training["unit"] == "week", "{}", m.training);
    for name in ["r", "alpha", "a", "b", "p", "q", "gamma"] {
        ensure!(
            m.metrics["parameters"][name].is_f64(),
            "{name} in {}",
            m.metrics
        );
    }
    ensure!(m.metrics["converged"] == true && m.metrics["iterations"].is_u64());
    ensure!(
        (loaded.model.bgnbd.r - 0.2426).abs() < 1e-3,
        "{:?}",
        loaded.model
    );
    // The holdout: 26 weeks after the paper's calibration period.
    let predicted = m.metrics["holdout"]["predicted"].as_f64().unwrap_or(0.0);
    let actual = m.metrics["holdout"]["actual"].as_f64().unwrap_or(0.0);
    ensure!(
        actual > 500.0 && (predicted / actual - 1.0).abs() < 0.2,
        "predicted {predicted}, actual {actual}"
    );
    ensure!(m.metrics["holdout"]["by_repeats"].as_array().map(Vec::len) == Some(8));
    let html = std::fs::read_to_string(registry.version_dir("clv", 1).join("report.html"))?;
    ensure!(html.contains("<svg") && html.contains("7+"));
    ensure!(m.files.contains_key("report.json") && m.files.contains_key("clv.json"));
    Ok(())
}

#[test]
fn training_without_transactions_skips_clv_and_says_why() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = store(dir.path())?;
    let as_of = vitals_trainer::time::parse_date("2025-10-01").map_err(anyhow::Error::msg)?;
    import_telco(&store, Path::new(TELCO), as_of, &ImportOptions::default())?;
    let mut config = config(dir.path(), "2025-10-01")?;
    config.horizon = 30 * MICROS_PER_DAY;
    let outcome = train(&store, &config)?;
    ensure!(outcome.clv_version.is_none() && outcome.churn_version == 1);
    ensure!(outcome.clv_note.contains("skipped"), "{}", outcome.clv_note);
    Ok(())
}
