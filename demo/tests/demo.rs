//! The README's first command, as a new user runs it: on an empty directory the demo
//! loads both companies, trains, serves, refreshes and prints who is at risk and why.
//! What it prints must be true, not only present: the headline customer is the first
//! row of the at-risk list the API gave, nobody on that list has lapsed or churned,
//! money carries its currency and reasons are words, not model columns.

use std::process::Command;

#[test]
fn the_demo_runs_end_to_end_on_an_empty_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_vitals-demo"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["run", "--no-serve"])
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "IBM Telco churn (real, 7043 subscription customers): 7043 rows read, 0 rejected",
        "A generated retailer (synthetic, every channel): 3000 customers",
        "churn model v1 (logistic)",
        "subscription customers ",
        "shop customers (no contract) ",
        "10043 evaluations stored",
        "churn risk:",
        "scorecard:",
        "evaluate ",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    for column in ["attr.", "_missing", "=other", "_days"] {
        assert!(
            !stdout.contains(column),
            "a model column ({column:?}) instead of words in:\n{stdout}"
        );
    }

    // The at-risk table (step 5) and the headline (step 6) agree, and list only
    // customers still with us, each valued in a currency.
    let table: Vec<&str> = stdout
        .split("== 5.")
        .nth(1)
        .and_then(|s| s.split("== 6.").next())
        .expect("step 5")
        .lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!table.is_empty(), "an at-risk list:\n{stdout}");
    for row in &table {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert!(
            !cells.contains(&"dormant") && !cells.contains(&"churned"),
            "a lapsed customer on the at-risk list: {row}"
        );
        assert!(row.contains(" USD"), "money without its currency: {row}");
    }
    let first = table[0].split_whitespace().next().expect("a name");
    assert!(
        stdout.contains(&format!(
            "The customer most at risk, {first}, as EvaluateCustomer"
        )),
        "the headline is not the list's first customer {first}:\n{stdout}"
    );
    assert!(dir.path().join("vitals.db").exists());
    assert!(dir.path().join("models/churn/ACTIVE").exists());
}
