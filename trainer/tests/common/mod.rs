//! Helpers shared by the trainer's integration tests (each test file is its own crate and
//! uses some of them).
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use anyhow::{Result, ensure};
use chrono::NaiveDate;
use tempfile::TempDir;
use vitals_store::{DatabaseUrl, PoolOptions, Store};
use vitals_trainer::generate::GenerateOptions;
use vitals_trainer::time::date_micros;

/// A migrated embedded database in a directory of its own, removed with the `TempDir`.
pub fn store() -> Result<(TempDir, Store)> {
    let dir = tempfile::tempdir()?;
    let url = DatabaseUrl::Sqlite(dir.path().join("vitals.db"));
    let store = Store::open(&url, &PoolOptions::default())?;
    store.migrate()?;
    Ok((dir, store))
}

pub fn date(s: &str) -> Result<NaiveDate> {
    vitals_trainer::time::parse_date(s).map_err(anyhow::Error::msg)
}

/// Generation over a fixed two-year window, so the data (and any model trained on it)
/// are the same every day.
pub fn generate_options(customers: u64, seed: u64) -> Result<GenerateOptions> {
    Ok(GenerateOptions {
        customers,
        seed,
        start: date_micros(date("2023-06-01")?),
        end: date_micros(date("2025-06-01")?),
        progress: false,
    })
}

/// Runs the shipped `vitals-trainer` with its data directory in `dir` (the embedded
/// database and registry there, whatever the environment says) and returns its output;
/// an error with its stderr when it fails.
pub fn run_trainer(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_vitals-trainer"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("VITALS_DATA_DIR")
        .env_remove("VITALS_DATABASE_URL")
        .env_remove("VITALS_REGISTRY")
        .env("RUST_LOG", "warn")
        .output()?;
    ensure!(
        out.status.success(),
        "vitals-trainer {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}
