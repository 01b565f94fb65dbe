//! The comment text model through the shipped binary: `train --text-only --activate`
//! learns sentiment from the generated customers' scored comments (English and Chinese)
//! and names topics by their words; `import events` then analyses a scoreless review and
//! a complaint's note with it.

mod common;

use anyhow::{Result, ensure};
use vitals_store::{CommentFilter, DatabaseUrl, PoolOptions, Store};

use common::run_trainer as trainer;

#[test]
fn train_text_only_learns_both_languages_and_import_analyses_with_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    trainer(d, &["generate", "--customers", "1500", "--seed", "7"])?;
    let out = trainer(d, &["train", "--text-only", "--activate", "--json"])?;
    let step: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(step["version"], 1, "{step}");
    let families = step["report"]["families"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for family in ["english", "chinese"] {
        let f = families
            .iter()
            .find(|f| f["family"] == family)
            .unwrap_or_else(|| panic!("no {family} family in {step}"));
        assert!(f["labelled"].as_u64() >= Some(200), "{f}");
        assert_eq!(f["sentiment"], "learned", "{f}");
        // Generated comments lean with their scores: the held-out AUC must show it.
        assert!(f["roc_auc_learned"].as_f64() > Some(0.9), "{f}");
        assert!(f["topics"].as_u64() >= Some(2), "{f}");
    }

    let registry = d.join("models/text/1/text.json");
    let model = std::fs::read_to_string(registry)?;
    for word in ["delivery", "refund", "快递"] {
        assert!(
            model.contains(&format!("\"{word}\"")),
            "no topic term {word}"
        );
    }

    // The generated comments were analysed on arrival by the lexicons (version 0); a
    // refresh (`score --store`) re-analyses them with the model now in service.
    let store = Store::open(
        &DatabaseUrl::Sqlite(d.join("vitals.db")),
        &PoolOptions::default(),
    )?;
    let versions = |store: &Store| -> Result<Vec<u64>> {
        Ok(store
            .list_comments(&CommentFilter::default(), 100_000, "")?
            .items
            .iter()
            .map(|c| c.analysis.model_version)
            .collect())
    };
    let before = versions(&store)?;
    ensure!(
        !before.is_empty() && before.iter().all(|&v| v == 0),
        "{before:?}"
    );
    trainer(d, &["score", "--store"])?;
    let after = versions(&store)?;
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|&v| v == 1),
        "every comment re-analysed by v1"
    );
    let with_topic = store
        .list_comments(&CommentFilter::default(), 100_000, "")?
        .items
        .iter()
        .filter(|c| c.analysis.topic.is_some())
        .count();
    assert!(
        with_topic * 2 > after.len(),
        "{with_topic} of {} with a topic",
        after.len()
    );

    let customers = d.join("customers.csv");
    std::fs::write(
        &customers,
        "external_id,signup_time\nc-text,2025-01-01T00:00:00Z\n",
    )?;
    trainer(
        d,
        &[
            "import",
            "customers",
            customers.to_str().unwrap_or_default(),
        ],
    )?;
    let events = d.join("events.csv");
    std::fs::write(
        &events,
        "event_key,customer_external_id,time,kind,feedback_kind,score,comment,interaction_kind,note\n\
         r1,c-text,2026-01-02T00:00:00Z,feedback,review,,\"The parcel arrived two weeks late, the courier lost it.\",,\n\
         n1,c-text,2026-01-03T00:00:00Z,interaction,,,,complaint,快递太慢了，包装也破了\n",
    )?;
    let imported = trainer(
        d,
        &[
            "import",
            "events",
            events.to_str().unwrap_or_default(),
            "--json",
        ],
    )?;
    let imported: serde_json::Value = serde_json::from_str(&imported)?;
    assert_eq!(imported["accepted"], 2, "{imported}");

    let page = store.list_comments(
        &CommentFilter {
            channel: None,
            language: None,
            ..CommentFilter::default()
        },
        10_000,
        "",
    )?;
    let mine: Vec<_> = page
        .items
        .iter()
        .filter(|c| c.event_key == "r1" || c.event_key == "n1")
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    for c in mine {
        assert_eq!(
            c.analysis.model_version, 1,
            "analysed by the active text model: {c:?}"
        );
        assert!(c.analysis.sentiment < 0.0, "{c:?}");
        assert!(c.analysis.topic.is_some(), "{c:?}");
    }
    Ok(())
}
