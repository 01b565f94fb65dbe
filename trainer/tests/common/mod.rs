//! Helpers shared by the trainer's integration tests (each test file is its own crate and
//! uses some of them).
#![allow(dead_code)]

use anyhow::Result;
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
