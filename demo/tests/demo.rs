//! The README's first command, as a new user runs it: on an empty directory the demo
//! imports, trains, serves, refreshes and prints a real evaluation.

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
        "IBM Telco churn: 7043 rows read, 0 rejected",
        "CDNOW purchases: 6919 lines read, 0 rejected",
        "churn model v1 (logistic)",
        "9400 evaluations stored",
        "churn risk:",
        "scorecard:",
        "evaluate ",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    assert!(dir.path().join("vitals.db").exists());
    assert!(dir.path().join("models/churn/ACTIVE").exists());
}
