//! Lifetime value on the CDNOW sample against Fader, Hardie and Lee's published estimates.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use vitals_engine::models::clv::{BgNbd, GammaGamma, RfmSummary, summarize};
use vitals_engine::time::MICROS_PER_DAY;
use vitals_store::{DatabaseUrl, PoolOptions, Store};
use vitals_trainer::{ImportOptions, import_cdnow};

const CDNOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/datasets/cdnow_sample.txt"
);

/// True when `got` rounds to `paper` at three significant digits.
fn three_digits(got: f64, paper: f64) -> bool {
    let scale = 10f64.powi(paper.abs().log10().floor() as i32 - 2);
    ((got / scale).round() - (paper / scale).round()).abs() < 0.5
}

/// Every CDNOW customer's summary as of 1997-10-01, in weeks (days / 7).
fn cdnow_summaries() -> Result<Vec<RfmSummary>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(
        &DatabaseUrl::Sqlite(dir.path().join("vitals.db")),
        &PoolOptions::default(),
    )?;
    store.migrate()?;
    import_cdnow(&store, Path::new(CDNOW), &ImportOptions::default())?;
    let as_of = vitals_trainer::time::parse_date("1997-10-01")
        .map_err(anyhow::Error::msg)?
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc()
        .timestamp_micros();
    let mut summaries = Vec::new();
    store.scan_histories(500, |histories| {
        summaries.extend(
            histories
                .iter()
                .filter_map(|h| summarize(&h.events, as_of, 7 * MICROS_PER_DAY)),
        );
        Ok(())
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
