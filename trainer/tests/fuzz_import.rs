//! Property-based fuzzing of every importer (`import_customers`, `import_events`,
//! `import_telco`, `import_cdnow`) against a real SQLite store: arbitrary bytes, and
//! CSV-ish files built from valid rows with cells swapped for hostile ones (quotes, wrong
//! column counts, huge numbers, bad dates, control characters, non-UTF-8).
//!
//! Each file is imported twice. Properties: no panic; each call returns `Ok` (with
//! rejections counted) or a clean `Err`; the store stays consistent: the customer count
//! never decreases, every row read is accounted for, and the second import of the same file
//! creates nothing and accepts no new event.
//!
//! Bounded and repeatable: every property runs a fixed number of cases from a fixed seed
//! (`PROPTEST_RNG_SEED` is not consulted), one store per test reused across its cases.
//! Failures are not persisted to a regressions file: the fixed seed reproduces them, and
//! proptest prints the shrunk file. For a longer run:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test -p vitals-trainer --test fuzz_import --release
//! ```

mod common;

use std::fmt::Debug;
use std::path::Path;

use anyhow::Result;
use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use vitals_store::{EventFilter, Store};
use vitals_trainer::{
    ImportOptions, ImportSummary, import_cdnow, import_customers, import_events, import_telco,
};

use common::store;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 256;
/// The suite's fixed seed (32 bytes for ChaCha).
const SEED: [u8; 32] = *b"vitals-trainer fuzz_import seed!";

fn fuzz<S>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        // Shrinking re-imports the file each step; keep it bounded too.
        max_shrink_iters: 256,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

// ---------------------------------------------------------------------------------------
// File strategies

/// A file: its bytes, shown as text when it is text.
#[derive(Clone)]
struct File(Vec<u8>);

impl Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "{:?}", String::from_utf8_lossy(&self.0)),
        }
    }
}

/// A hostile or odd cell.
fn cell() -> BoxedStrategy<Vec<u8>> {
    let pool = vec![
        "",
        " ",
        "c1",
        "c2",
        "c3",
        "e1",
        "e2",
        "x",
        "USD",
        "usd",
        "JPY",
        "XXX", // ids, codes
        "2024-01-01",
        "1970-01-01",
        "1969-12-31",
        "2023-02-30",
        "9999-12-31",
        "0000-01-01",
        "+10000-01-01",
        "2024-03-01T09:30:00Z",
        "2024-03-01T09:30:00+25:00",
        "2099-01-01",
        "19970101",
        "19981332",
        "00000000",
        "99999999", // dates
        "0",
        "1",
        "-1",
        "12.34",
        "12.345",
        "0.005",
        "-0.01",
        "1e3",
        "1e308",
        "NaN",
        "inf",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "99999999999999999999999999",
        "2147483648",
        "1.7976931348623157e309", // numbers
        "transaction",
        "payment",
        "feedback",
        "interaction",
        "nps",
        "csat",
        "ces",
        "review",
        "complaint",
        "support",
        "high",
        "critical",
        "active",
        "churned",
        "erased",
        "true",
        "FALSE",
        "yes",
        "Yes",
        "No",
        "maybe",
        "Month-to-month",
        "Two year", // enums
        "\"a,b\"",
        "\"unterminated",
        "\"\"",
        "a\"b",
        "\"x\"\"y\"",
        "\"line\nbreak\"",
        "a\tb",
        "  padded  ",
        "é",
        "👍",
        "\u{0}",
        "\u{feff}",
        "a@b.co",
        "not-an-email",
        "+1 (555) 123-4567", // text
    ];
    prop_oneof![
        8 => select(pool).prop_map(|s| s.as_bytes().to_vec()),
        2 => prop::collection::vec(any::<char>(), 0..16)
            .prop_map(|cs| String::from_iter(cs).into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..8),
        1 => Just(vec![0xff, 0xfe, b'a']),
        1 => (any::<char>(), 300usize..5_000).prop_map(|(c, n)| c.to_string().repeat(n).into_bytes()),
    ]
    .boxed()
}

/// A row from a valid template, usually with a fresh key (column `key`) so rows create
/// records, some cells swapped for hostile ones and, sometimes, a cell too few or too many.
fn mutated_row(
    templates: Vec<Vec<&'static str>>,
    key: usize,
    sep: &'static [u8],
) -> BoxedStrategy<Vec<u8>> {
    (
        select(templates),
        prop::option::weighted(0.75, 0u32..100_000),
        prop::collection::vec((any::<prop::sample::Index>(), cell()), 0..3),
        prop_oneof![6 => Just(0i8), 1 => Just(-1), 1 => Just(1)],
    )
        .prop_map(move |(template, suffix, swaps, resize)| {
            let mut cells: Vec<Vec<u8>> = template.iter().map(|c| c.as_bytes().to_vec()).collect();
            if let (Some(n), Some(cell)) = (suffix, cells.get_mut(key)) {
                cell.extend_from_slice(format!("-{n}").as_bytes());
            }
            for (i, c) in swaps {
                let i = i.index(cells.len());
                cells[i] = c;
            }
            match resize {
                -1 => {
                    cells.pop();
                }
                1 => cells.push(b"extra".to_vec()),
                _ => {}
            }
            cells.join(sep)
        })
        .boxed()
}

/// Lines of random cells from the pool, any number per line.
fn junk_lines(sep: &'static [u8]) -> BoxedStrategy<Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(cell(), 0..8), 0..8)
        .prop_map(move |rows| rows.into_iter().map(|r| r.join(sep)).collect())
        .boxed()
}

/// A whole file: arbitrary bytes, junk, or a (possibly damaged) header and mutated rows.
fn file(
    header: &'static str,
    templates: Vec<Vec<&'static str>>,
    key: usize,
    sep: &'static [u8],
) -> impl Strategy<Value = File> {
    let header_line = prop_oneof![
        6 => Just(header.as_bytes().to_vec()),
        1 => Just(format!("\u{feff}{header}").into_bytes()),
        1 => Just(format!("{header},unknown_column").into_bytes()),
        1 => Just(header.replacen(',', ",,", 1).into_bytes()),
        1 => Just(header.split(',').skip(1).collect::<Vec<_>>().join(",").into_bytes()),
        1 => cell(),
    ];
    let eol = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\r"[..])];
    let rows = prop_oneof![
        4 => prop::collection::vec(mutated_row(templates, key, sep), 0..12),
        1 => junk_lines(sep),
    ];
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..600).prop_map(File),
        6 => (header_line, rows, eol, any::<bool>()).prop_map(|(h, rows, eol, trailing)| {
            let mut lines = vec![h];
            lines.extend(rows);
            let mut bytes = lines.join(eol);
            if trailing {
                bytes.extend_from_slice(eol);
            }
            File(bytes)
        }),
    ]
}

// ---------------------------------------------------------------------------------------
// The properties

/// How a file's two imports went.
fn check_twice(
    store: &Store,
    dir: &Path,
    file: &File,
    import: impl Fn(&Path) -> Result<ImportSummary>,
    events_of: &[&str],
) -> Result<(), TestCaseError> {
    let path = dir.join("input");
    std::fs::write(&path, &file.0).map_err(fail)?;
    let before = store.count_customers().map_err(fail)?;
    let events_before = count_events(store, events_of)?;
    let first = import(&path);
    let after_first = store.count_customers().map_err(fail)?;
    prop_assert!(after_first >= before, "customers {before} -> {after_first}");
    let second = import(&path);
    let after_second = store.count_customers().map_err(fail)?;
    let events_after = count_events(store, events_of)?;
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            summary_adds_up(a)?;
            summary_adds_up(b)?;
            prop_assert_eq!(a.read, b.read);
            // The second import finds everything already there.
            let c = b.customers.clone().unwrap_or_default();
            prop_assert_eq!(c.created, 0, "second import created customers: {:?}", b);
            let e = b.events.clone().unwrap_or_default();
            prop_assert_eq!(e.accepted, 0, "second import accepted events: {:?}", b);
            prop_assert_eq!(after_second, after_first);
            let created = a.customers.clone().unwrap_or_default().created;
            prop_assert_eq!(after_first, before + created);
            let accepted = a.events.clone().unwrap_or_default().accepted;
            if !events_of.is_empty() {
                prop_assert_eq!(events_after, events_before + accepted);
            }
        }
        (Err(a), Err(b)) => {
            // The same file fails the same way, and a failed file writes nothing.
            prop_assert_eq!(a.to_string(), b.to_string());
            prop_assert_eq!(after_second, before);
            prop_assert_eq!(events_after, events_before);
        }
        _ => {
            return Err(fail(format!(
                "the same file imported differently: {:?} then {:?}",
                first.as_ref().map(|s| s.to_string()),
                second.as_ref().map(|s| s.to_string())
            )));
        }
    }
    Ok(())
}

/// Every row read was created, updated, unchanged, accepted, a duplicate or rejected.
fn summary_adds_up(s: &ImportSummary) -> Result<(), TestCaseError> {
    prop_assert!(s.rejections.len() as u64 <= s.rejected, "{s:?}");
    if let Some(c) = &s.customers {
        prop_assert!(c.created + c.updated + c.unchanged + c.rejected <= c.read.max(s.read));
    }
    if let Some(e) = &s.events {
        prop_assert_eq!(e.accepted + e.duplicates + e.rejected, e.read, "{:?}", s);
    }
    Ok(())
}

/// Events of the named customers (by external id), for the event importer's ledger.
fn count_events(store: &Store, external_ids: &[&str]) -> Result<u64, TestCaseError> {
    let mut n = 0;
    for external_id in external_ids {
        let Ok(customer) = store.get_customer_by_external_id(external_id) else {
            continue;
        };
        let mut token = String::new();
        loop {
            let page = store
                .list_customer_events(&customer.id, &EventFilter::default(), 1000, &token)
                .map_err(fail)?;
            n += page.items.len() as u64;
            match page.next_page_token {
                Some(next) if !next.is_empty() => token = next,
                _ => break,
            }
        }
    }
    Ok(n)
}

const CUSTOMER_HEADER: &str = "external_id,display_name,email,phone,region,acquisition_channel,status,contractual,signup_time,churn_time,plan,monthly";

#[test]
fn import_customers_survives_any_file() -> Result<()> {
    let (dir, store) = store()?;
    let templates = vec![
        vec![
            "c1",
            "Ada",
            "ada@example.com",
            "+44 20 7946 0000",
            "EU",
            "web",
            "active",
            "true",
            "2020-01-01",
            "",
            "gold",
            "29.85",
        ],
        vec![
            "c2",
            "",
            "",
            "",
            "",
            "",
            "churned",
            "no",
            "2021-05-01T10:00:00Z",
            "2022-01-01",
            "",
            "",
        ],
        vec!["c3", "", "", "", "US", "", "", "", "", "", "silver", "true"],
    ];
    fuzz(file(CUSTOMER_HEADER, templates, 0, b","), |f| {
        check_twice(
            &store,
            dir.path(),
            &f,
            |p| import_customers(&store, p, &ImportOptions::default()),
            &[],
        )
    });
    Ok(())
}

const EVENT_HEADER: &str = "event_key,customer_external_id,time,kind,amount_minor,amount,currency,quantity,category,channel,invoice_id,due_time,paid_time,method,feedback_kind,score,comment,interaction_kind,severity,ticket_id,resolved_time";

#[test]
fn import_events_survives_any_file() -> Result<()> {
    let (dir, store) = store()?;
    // The customers the events name.
    let seed = dir.path().join("customers.csv");
    std::fs::write(&seed, "external_id\nc1\nc2\n")?;
    import_customers(&store, &seed, &ImportOptions::default())?;
    let templates = vec![
        vec![
            "e1",
            "c1",
            "2024-01-01",
            "transaction",
            "1234",
            "",
            "USD",
            "2",
            "books",
            "web",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
        vec![
            "e2",
            "c2",
            "2024-02-01T09:30:00Z",
            "payment",
            "",
            "12.34",
            "EUR",
            "",
            "",
            "",
            "inv-1",
            "2024-02-15",
            "2024-02-20",
            "card",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
        vec![
            "e3",
            "c1",
            "2024-03-01",
            "feedback",
            "",
            "",
            "",
            "",
            "",
            "email",
            "",
            "",
            "",
            "",
            "nps",
            "9",
            "great, thanks",
            "",
            "",
            "",
            "",
        ],
        vec![
            "e4",
            "c2",
            "2024-04-01",
            "interaction",
            "",
            "",
            "",
            "",
            "billing",
            "phone",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "complaint",
            "high",
            "t-1",
            "2024-04-02",
        ],
    ];
    fuzz(file(EVENT_HEADER, templates, 0, b","), |f| {
        check_twice(
            &store,
            dir.path(),
            &f,
            |p| import_events(&store, p, &ImportOptions::default()),
            &["c1", "c2", "c3"],
        )
    });
    Ok(())
}

const TELCO_HEADER: &str = "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,Churn";

#[test]
fn import_telco_survives_any_file() -> Result<()> {
    let (dir, store) = store()?;
    let as_of = NaiveDate::from_ymd_opt(2024, 1, 1).ok_or_else(|| anyhow::anyhow!("date"))?;
    let templates = vec![
        vec![
            "7590-VHVEG",
            "Female",
            "0",
            "Yes",
            "No",
            "1",
            "No",
            "No phone service",
            "DSL",
            "No",
            "Yes",
            "No",
            "No",
            "No",
            "No",
            "Month-to-month",
            "Yes",
            "Electronic check",
            "29.85",
            "29.85",
            "No",
        ],
        vec![
            "3668-QPYBK",
            "Male",
            "1",
            "No",
            "No",
            "2",
            "Yes",
            "No",
            "DSL",
            "Yes",
            "Yes",
            "No",
            "No",
            "No",
            "No",
            "Month-to-month",
            "Yes",
            "Mailed check",
            "53.85",
            "108.15",
            "Yes",
        ],
        vec![
            "c1",
            "Male",
            "0",
            "No",
            "Yes",
            "0",
            "Yes",
            "No",
            "No",
            "No",
            "No",
            "No",
            "No",
            "No",
            "No",
            "Two year",
            "No",
            "Mailed check",
            "20.25",
            "",
            "No",
        ],
    ];
    fuzz(file(TELCO_HEADER, templates, 0, b","), |f| {
        check_twice(
            &store,
            dir.path(),
            &f,
            |p| import_telco(&store, p, as_of, &ImportOptions::default()),
            &[],
        )
    });
    Ok(())
}

#[test]
fn import_cdnow_survives_any_file() -> Result<()> {
    let (dir, store) = store()?;
    let templates = vec![
        vec!["00004", "0001", "19970101", "2", "29.33"],
        vec!["00005", "0002", "19970112", "1", "11.77"],
        vec!["00005", "0002", "19980630", "0", "0.00"],
    ];
    // No header: the "header" is one more purchase line.
    let header = " 00001 0003 19970301  3   45.10";
    fuzz(file(header, templates, 1, b" "), |f| {
        check_twice(
            &store,
            dir.path(),
            &f,
            |p| import_cdnow(&store, p, &ImportOptions::default()),
            &[],
        )
    });
    Ok(())
}
