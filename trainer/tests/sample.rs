//! `train --sample-customers` through the shipped binary: above the bound, the models are
//! fitted on a systematic sample of customers (every k-th chunk of 2,000 in id order), and
//! the output says so in words.

mod common;

use anyhow::Result;

use common::run_trainer as trainer;

#[test]
fn train_fits_on_a_sample_above_the_bound_and_says_so() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    trainer(d, &["generate", "--customers", "4100", "--seed", "3"])?;
    // 4,100 customers over a bound of 2,000: one chunk of 2,000 in every 3 (chunks 0, 1
    // and 2 exist), so exactly the first chunk is read.
    let out = trainer(d, &["train", "--sample-customers", "2000", "--json"])?;
    let outcome: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(outcome["customers_read"], 2000, "{outcome}");
    assert_eq!(outcome["customers_total"], 4100, "{outcome}");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        d.join("models/churn/1/manifest.json"),
    )?)?;
    assert_eq!(
        manifest["training"]["sampled_one_chunk_in"], 3,
        "{manifest}"
    );
    assert_eq!(manifest["training"]["customers_stored"], 4100, "{manifest}");

    // In words, for the person at the terminal.
    let out = trainer(d, &["train", "--sample-customers", "2000"])?;
    assert!(
        out.contains(
            "from 2000 customers (a sample of the 4100 stored; --sample-customers 0 reads everyone)"
        ),
        "{out}"
    );
    Ok(())
}
