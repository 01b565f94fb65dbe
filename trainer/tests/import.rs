//! The importers against a real SQLite database and the real sample files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use vitals_domain::{AttributeValue, CustomerStatus, EventPayload};
use vitals_store::{CustomerFilter, EventFilter, Store};
use vitals_trainer::{
    ImportOptions, ImportSummary, import_cdnow, import_customers, import_events, import_telco,
};

use common::{date, store};

const TELCO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/datasets/telco_customer_churn.csv"
);
const CDNOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/datasets/cdnow_sample.txt"
);

fn customers(store: &Store, filter: &CustomerFilter) -> Result<Vec<vitals_domain::Customer>> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = store.list_customers(filter, 1000, &token)?;
        all.extend(page.items);
        match page.next_page_token {
            Some(next) if !next.is_empty() => token = next,
            _ => return Ok(all),
        }
    }
}

fn counts(s: &ImportSummary) -> (u64, u64, u64, u64, u64, u64) {
    let c = s.customers.clone().unwrap_or_default();
    let e = s.events.clone().unwrap_or_default();
    (
        c.created,
        c.updated,
        c.unchanged,
        e.accepted,
        e.duplicates,
        s.rejected,
    )
}

#[test]
fn telco_imports_every_customer_once() -> Result<()> {
    let (_dir, store) = store()?;
    let as_of = date("2024-01-01")?;
    let path = Path::new(TELCO);
    let first = import_telco(&store, path, as_of, &ImportOptions::default())?;
    println!("telco first import: {first} ({:.2} s)", first.seconds);
    assert_eq!(first.read, 7043);
    assert_eq!(
        counts(&first),
        (7043, 0, 0, 0, 0, 0),
        "{:?}",
        first.rejections
    );

    let churned = customers(
        &store,
        &CustomerFilter {
            status: Some(CustomerStatus::Churned),
            ..CustomerFilter::default()
        },
    )?;
    assert_eq!(churned.len(), 1869);
    let all = customers(&store, &CustomerFilter::default())?;
    assert_eq!(all.len(), 7043);

    let start = vitals_trainer::time::date_micros(as_of);
    let day = vitals_domain::time::MICROS_PER_DAY;
    for c in &all {
        let d = &c.data;
        ensure!(d.contractual, "{} is contractual", d.external_id);
        ensure!(!d.attributes.contains_key("Churn") && !d.attributes.contains_key("customerID"));
        let signup = d.signup_time.context("signup time")?;
        ensure!(signup <= start && signup >= start - 73 * 31 * day);
        match d.status {
            CustomerStatus::Churned => {
                let t = d
                    .churn_time
                    .context("churned customers have a churn time")?;
                ensure!(t > start && t <= start + 31 * day, "{}", d.external_id);
            }
            _ => ensure!(d.churn_time.is_none()),
        }
    }

    // Spot-check the first row: 7590-VHVEG, Female, SeniorCitizen 0, tenure 1, 29.85, 29.85, No.
    let c = store.get_customer_by_external_id("7590-VHVEG")?;
    assert_eq!(c.data.status, CustomerStatus::Active);
    assert_eq!(
        c.data.signup_time,
        Some(vitals_trainer::time::date_micros(date("2023-12-01")?))
    );
    let attr = |name: &str| c.data.attributes.get(name).cloned();
    assert_eq!(attr("SeniorCitizen"), Some(AttributeValue::Bool(false)));
    assert_eq!(attr("tenure"), Some(AttributeValue::Number(1.0)));
    assert_eq!(attr("MonthlyCharges"), Some(AttributeValue::Number(29.85)));
    assert_eq!(attr("TotalCharges"), Some(AttributeValue::Number(29.85)));
    assert_eq!(
        attr("gender"),
        Some(AttributeValue::String("Female".into()))
    );
    assert_eq!(
        attr("PaymentMethod"),
        Some(AttributeValue::String("Electronic check".into()))
    );
    // A tenure-0 customer with a blank TotalCharges: imported, without that attribute.
    let blank = store.get_customer_by_external_id("4472-LVYGI")?;
    assert!(!blank.data.attributes.contains_key("TotalCharges"));
    assert_eq!(blank.data.signup_time, Some(start));

    let second = import_telco(&store, path, as_of, &ImportOptions::default())?;
    println!("telco second import: {second}");
    assert_eq!(
        counts(&second),
        (0, 0, 7043, 0, 0, 0),
        "{:?}",
        second.rejections
    );
    Ok(())
}

#[test]
fn telco_refuses_a_recent_as_of_date() -> Result<()> {
    let (_dir, store) = store()?;
    let today = chrono::Utc::now().date_naive();
    let err = import_telco(&store, Path::new(TELCO), today, &ImportOptions::default())
        .err()
        .context("a recent as-of date is refused")?;
    assert!(err.to_string().contains("pick an earlier date"), "{err}");
    assert!(customers(&store, &CustomerFilter::default())?.is_empty());
    Ok(())
}

#[test]
fn cdnow_imports_customers_then_purchases() -> Result<()> {
    let (_dir, store) = store()?;
    let path = Path::new(CDNOW);
    let first = import_cdnow(&store, path, &ImportOptions::default())?;
    println!("cdnow first import: {first} ({:.2} s)", first.seconds);
    assert_eq!(first.read, 6919);
    assert_eq!(first.customers.as_ref().map(|c| c.read), Some(2357));
    assert_eq!(
        counts(&first),
        (2357, 0, 0, 6919, 0, 0),
        "{:?}",
        first.rejections
    );

    let all = customers(&store, &CustomerFilter::default())?;
    assert_eq!(all.len(), 2357);
    assert!(all.iter().all(|c| !c.data.contractual
        && c.data.status == CustomerStatus::Active
        && c.data.external_id.starts_with("cdnow-")));

    // Customer 0001: lines 1-4 of the file.
    let c = store.get_customer_by_external_id("cdnow-0001")?;
    assert_eq!(
        c.data.signup_time,
        Some(vitals_trainer::time::date_micros(date("1997-01-01")?))
    );
    let events = store.list_customer_events(&c.id, &EventFilter::default(), 100, "")?;
    let mut seen: Vec<(String, i64, i32)> = events
        .items
        .iter()
        .map(|e| match &e.payload {
            EventPayload::Transaction(t) => (e.event_key.clone(), t.amount_minor, t.quantity),
            _ => (e.event_key.clone(), -1, -1),
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("cdnow-1".to_owned(), 2933, 2),
            ("cdnow-2".to_owned(), 2973, 2),
            ("cdnow-3".to_owned(), 1496, 1),
            ("cdnow-4".to_owned(), 2648, 2),
        ]
    );
    assert!(events.items.iter().all(|e| e.record_time == e.time));

    let second = import_cdnow(&store, path, &ImportOptions::default())?;
    println!("cdnow second import: {second}");
    assert_eq!(
        counts(&second),
        (0, 0, 2357, 0, 6919, 0),
        "{:?}",
        second.rejections
    );
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

#[test]
fn generic_csv_reports_bad_rows_and_imports_the_rest() -> Result<()> {
    let (dir, store) = store()?;
    let customers_csv = write(
        dir.path(),
        "customers.csv",
        "external_id,email,status,contractual,signup_time,plan,seats,vip\n\
         c1,ada@example.com,active,yes,2023-05-01,gold,3,true\n\
         c2,not-an-email,,,,,,\n\
         c3,,dormant,,,,,\n\
         c4,,churned,0,2023-05-01T10:00:00+02:00,\"silver, old\",,FALSE\n\
         c5,,,,2023-13-01,,,\n\
         c6,too,many,cells,,,,,\n",
    )?;
    let s = import_customers(&store, &customers_csv, &ImportOptions::default())?;
    assert_eq!(s.read, 6);
    assert_eq!(counts(&s), (2, 0, 0, 0, 0, 4));
    let rejected: Vec<(u64, &str)> = s
        .rejections
        .iter()
        .map(|r| (r.row, r.field.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [(3, "email"), (4, "status"), (6, "signup_time"), (7, "")]
    );
    let c1 = store.get_customer_by_external_id("c1")?;
    assert!(c1.data.contractual);
    assert_eq!(
        c1.data.attributes.get("seats"),
        Some(&AttributeValue::Number(3.0))
    );
    assert_eq!(
        c1.data.attributes.get("vip"),
        Some(&AttributeValue::Bool(true))
    );
    let c4 = store.get_customer_by_external_id("c4")?;
    assert_eq!(c4.data.status, CustomerStatus::Churned);
    assert_eq!(
        c4.data.attributes.get("plan"),
        Some(&AttributeValue::String("silver, old".into()))
    );
    assert_eq!(c4.data.signup_time, Some(1_682_928_000_000_000));

    let events_csv = write(
        dir.path(),
        "events.csv",
        "event_key,customer_external_id,time,kind,amount,currency,quantity,feedback_kind,score,interaction_kind,severity,record_time\n\
         e1,c1,2024-01-02,transaction,12.34,USD,,,,,,\n\
         e2,c1,2024-01-03T12:00:00Z,feedback,,,,nps,9,,,\n\
         e3,c1,2024-01-04,interaction,,,,,,complaint,high,2024-01-04\n\
         e4,c1,2024-01-05,feedback,,,,csat,9,,,\n\
         e5,nobody,2024-01-05,transaction,1,EUR,,,,,,\n\
         e6,c1,2024-01-05,transaction,1,EUR,,,,,,2024-02-01\n\
         e7,c1,2024-01-05,transaction,1.5,JPY,,,,,,\n",
    )?;
    let s = import_events(&store, &events_csv, &ImportOptions::default())?;
    assert_eq!(s.read, 7);
    assert_eq!(counts(&s), (0, 0, 0, 4, 0, 3), "{:?}", s.rejections);
    let rejected: Vec<(u64, &str)> = s
        .rejections
        .iter()
        .map(|r| (r.row, r.field.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            (5, "feedback.score"),
            (6, "customer_external_id"),
            (7, "record_time")
        ]
    );
    let timeline = store.list_customer_events(&c1.id, &EventFilter::default(), 100, "")?;
    let amounts: Vec<(String, i64, i32)> = timeline
        .items
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::Transaction(t) => Some((t.currency.clone(), t.amount_minor, t.quantity)),
            _ => None,
        })
        .collect();
    assert_eq!(amounts.len(), 2);
    assert!(amounts.contains(&("USD".into(), 1234, 1)));
    assert!(amounts.contains(&("JPY".into(), 2, 1)));

    // Again: nothing new.
    let s = import_events(&store, &events_csv, &ImportOptions::default())?;
    assert_eq!(counts(&s), (0, 0, 0, 0, 4, 3));
    Ok(())
}

#[test]
fn unknown_event_columns_stop_the_import() -> Result<()> {
    let (dir, store) = store()?;
    let path = write(
        dir.path(),
        "events.csv",
        "event_key,customer_external_id,time,kind,ammount\ne1,c1,2024-01-02,transaction,1\n",
    )?;
    let err = import_events(&store, &path, &ImportOptions::default())
        .err()
        .context("an unknown column is refused")?;
    assert!(err.to_string().contains("ammount"), "{err}");
    let missing = import_events(
        &store,
        &dir.path().join("nope.csv"),
        &ImportOptions::default(),
    );
    assert!(missing.is_err());
    Ok(())
}

#[test]
fn the_binary_imports_cdnow_and_prints_json() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/x.db", dir.path().display());
    let run = || -> Result<serde_json::Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_vitals-trainer"))
            .args(["--database-url", &url, "import", "cdnow", CDNOW, "--json"])
            .env_remove("VITALS_DATA_DIR")
            .env("RUST_LOG", "warn")
            .output()?;
        ensure!(
            out.status.success(),
            "vitals-trainer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let first = run()?;
    assert_eq!(first["kind"], "cdnow");
    assert_eq!(first["read"], 6919);
    assert_eq!(first["created"], 2357);
    assert_eq!(first["accepted"], 6919);
    assert_eq!(first["rejected"], 0);
    assert!(first["seconds"].as_f64().is_some());
    // Options after the subcommand are the same options.
    let out = Command::new(env!("CARGO_BIN_EXE_vitals-trainer"))
        .args(["import", "cdnow", CDNOW, "--json", "--database-url", &url])
        .env_remove("VITALS_DATA_DIR")
        .env("RUST_LOG", "warn")
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(second["created"], 0);
    assert_eq!(second["unchanged"], 2357);
    assert_eq!(second["accepted"], 0);
    assert_eq!(second["duplicates"], 6919);

    // A file that cannot be read fails the command.
    let out = Command::new(env!("CARGO_BIN_EXE_vitals-trainer"))
        .args([
            "--database-url",
            &url,
            "import",
            "cdnow",
            "/nonexistent/file.txt",
        ])
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    Ok(())
}

/// `train` and `score` with every option after the subcommand, the form the docs and
/// issues write: `score --database-url URL --as-of DATE --out F.csv`.
#[test]
fn the_binary_trains_and_scores_with_options_after_the_subcommand() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/x.db", dir.path().display());
    let registry = dir.path().join("models");
    let registry = registry.to_string_lossy();
    let out_csv = dir.path().join("scores.csv");
    let trainer = |args: &[&str]| common::run_trainer(dir.path(), args);
    trainer(&["import", "cdnow", CDNOW, "--database-url", &url])?;
    trainer(&[
        "train",
        "--database-url",
        &url,
        "--registry",
        &registry,
        "--as-of",
        "1997-12-01",
        "--activate",
    ])?;
    let scored = trainer(&[
        "score",
        "--database-url",
        &url,
        "--registry",
        &registry,
        "--as-of",
        "1998-03-01",
        "--out",
        &out_csv.to_string_lossy(),
    ])?;
    assert!(scored.contains("scored"), "{scored}");
    let rows = std::fs::read_to_string(&out_csv)?.lines().count();
    // A row per CDNOW customer still buying on 1998-03-01 (a purchase in the 180 days
    // before; the others have lapsed and are not scored), and a header.
    assert!(
        (500..2000).contains(&rows),
        "a row per CDNOW customer still buying and a header: {rows}"
    );
    Ok(())
}
