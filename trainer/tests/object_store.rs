//! The shipped binaries on a registry in a real S3 store (SeaweedFS on loopback): the
//! trainer publishes, activates and rolls back there, a running `vitals-server` serves
//! each change without a restart, and a location no registry answers to is refused.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vitals_object_registry::testing::S3Server;

const TRAINER: &str = env!("CARGO_BIN_EXE_vitals-trainer");

/// `vitals-server` from the same build (`cargo test --workspace` builds every binary).
fn server_binary() -> PathBuf {
    let path = Path::new(TRAINER).with_file_name("vitals-server");
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --bins` (cargo test --workspace does)",
        path.display()
    );
    path
}

fn trainer(data: &Path, s3: &S3Server, args: &[&str]) -> Output {
    Command::new(TRAINER)
        .args(args)
        .env("VITALS_DATA_DIR", data)
        .env_remove("VITALS_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .envs(s3.env())
        .output()
        .expect("the trainer runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn active_churn(listing: &str) -> Option<u64> {
    let rows: serde_json::Value = serde_json::from_str(listing).expect("models list --json");
    rows.as_array()?
        .iter()
        .find(|r| r["kind"] == "churn" && r["active"] == true)
        .and_then(|r| r["version"].as_u64())
}

#[test]
fn trainer_and_server_share_a_registry_on_s3() {
    let s3 = S3Server::seaweedfs();
    s3.create_bucket("vitals");
    let registry = "s3://vitals/models";
    let data = tempfile::tempdir().expect("data dir");
    let dir = data.path();
    ok(trainer(
        dir,
        &s3,
        &["generate", "--customers", "300", "--seed", "7"],
    ));
    for _ in 0..2 {
        ok(trainer(
            dir,
            &s3,
            &["train", "--registry", registry, "--activate"],
        ));
    }
    let listing = ok(trainer(
        dir,
        &s3,
        &["models", "list", "--registry", registry, "--json"],
    ));
    assert_eq!(active_churn(&listing), Some(2), "{listing}");
    assert!(
        !dir.join("models").exists(),
        "nothing was published into the local default registry"
    );

    // A server on the same registry serves version 2, then whatever the trainer activates.
    let mut server = Command::new(server_binary())
        .args(["--registry", registry, "--model-poll-secs", "0.2"])
        .env("VITALS_DATA_DIR", dir)
        .env("VITALS_LISTEN", "127.0.0.1:0")
        .env("VITALS_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("VITALS_DATABASE_URL")
        .env_remove("VITALS_API_KEYS")
        .envs(s3.env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = server.stderr.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let serving = |version: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                let in_service = line.contains("model version in service")
                    && line.contains("\"kind\":\"churn\"")
                    && line.contains(&format!("\"version\":{version}"));
                seen.push(line);
                if in_service {
                    return;
                }
            }
        }
        panic!(
            "churn v{version} never came into service:\n{}",
            seen.join("\n")
        );
    };
    serving(2);
    let rolled = ok(trainer(
        dir,
        &s3,
        &["models", "rollback", "churn", "--registry", registry],
    ));
    assert!(rolled.contains("v1 is active"), "{rolled}");
    serving(1);
    let activated = ok(trainer(
        dir,
        &s3,
        &["models", "activate", "churn", "2", "--registry", registry],
    ));
    assert!(
        activated.contains("churn v2 is active (was v1)"),
        "{activated}"
    );
    serving(2);
    let _ = server.kill();
    let _ = server.wait();

    // Scoring reads the active models from the bucket as well.
    let out = dir.join("scores.csv");
    ok(trainer(
        dir,
        &s3,
        &[
            "score",
            "--registry",
            registry,
            "--out",
            out.to_str().expect("utf-8"),
        ],
    ));
    assert!(
        std::fs::read_to_string(&out)
            .expect("scores")
            .lines()
            .count()
            > 100
    );
}

#[test]
fn a_registry_location_nothing_answers_to_is_refused() {
    let data = tempfile::tempdir().expect("data dir");
    let out = Command::new(TRAINER)
        .args(["models", "list", "--registry", "ftp://host/models"])
        .env("VITALS_DATA_DIR", data.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown scheme `ftp://`"), "{err}");
    let out = Command::new(server_binary())
        .args(["--registry", "gopher://host/models"])
        .env("VITALS_DATA_DIR", data.path())
        .env("VITALS_LISTEN", "127.0.0.1:0")
        .env_remove("VITALS_DATABASE_URL")
        .output()
        .expect("runs");
    assert!(!out.status.success(), "the server refuses to start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown scheme `gopher://`"), "{err}");
    assert!(
        !data.path().join("gopher:").exists(),
        "no folder named after the scheme"
    );
}
