//! What every store holding a registry must do, run against `object_store`'s in-memory
//! store here and against real S3 servers (SeaweedFS, moto) in `tests/s3.rs`. A store that
//! answers 200 to a conditional PUT it ignores fails `one_activator_wins_each_round`.

use std::path::Path;
use std::sync::{Arc, Barrier};

use vitals_engine::registry::{Manifest, ModelRegistry, RegistryError};

use crate::{ActiveDoc, ObjectRegistry};

/// Writes a model's files into a fresh directory under `root` and returns it.
fn model_files(root: &Path, name: &str, content: &[u8]) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("sub")).expect("model dir");
    std::fs::write(dir.join("weights.bin"), content).expect("weights");
    std::fs::write(dir.join("sub/meta.json"), b"{\"k\": 1}").expect("meta");
    dir
}

/// Publish, list, verify, activate, roll back: the life of two versions.
pub fn versions_publish_activate_and_roll_back(registry: &ObjectRegistry, scratch: &Path) {
    assert_eq!(
        registry.versions("churn").expect("versions"),
        Vec::<u64>::new()
    );
    assert_eq!(registry.active("churn").expect("active"), None);
    let one = registry
        .publish(
            "churn",
            &model_files(scratch, "a", b"one"),
            Manifest::new("churn", "logistic"),
        )
        .expect("publish 1");
    let two = registry
        .publish(
            "churn",
            &model_files(scratch, "b", b"two"),
            Manifest::new("churn", "logistic"),
        )
        .expect("publish 2");
    assert_eq!((one.version, two.version), (1, 2));
    assert_eq!(registry.versions("churn").expect("versions"), vec![1, 2]);
    assert_eq!(registry.kinds().expect("kinds"), vec!["churn".to_owned()]);
    let (manifest, dir) = registry.verified("churn", 2).expect("verified");
    assert_eq!(manifest.files.len(), 2);
    assert_eq!(
        std::fs::read(dir.join("weights.bin")).expect("local copy"),
        b"two"
    );
    assert_eq!(
        std::fs::read(dir.join("sub/meta.json")).expect("nested"),
        b"{\"k\": 1}"
    );

    assert_eq!(
        registry
            .activate("churn", 1, "ml", "first")
            .expect("activate 1"),
        None
    );
    assert_eq!(
        registry
            .activate("churn", 2, "ml", "better")
            .expect("activate 2"),
        Some(1)
    );
    assert_eq!(registry.active("churn").expect("active"), Some(2));
    // Asked again: the conditional GET answers "not modified" and the same version.
    assert_eq!(registry.active("churn").expect("active again"), Some(2));
    assert_eq!(registry.rollback("churn", "ml").expect("rollback"), 1);
    assert_eq!(registry.active("churn").expect("active"), Some(1));
    let history = registry.history("churn").expect("history");
    let moves: Vec<(u64, Option<u64>, &str)> = history
        .iter()
        .map(|a| (a.version, a.previous, a.reason.as_str()))
        .collect();
    assert_eq!(
        moves,
        [
            (1, None, "first"),
            (2, Some(1), "better"),
            (1, Some(2), "rollback")
        ]
    );
    assert!(matches!(
        registry.activate("churn", 9, "ml", "nope"),
        Err(RegistryError::NotFound(_))
    ));
    assert_eq!(registry.active("churn").expect("unchanged"), Some(1));
}

/// A version whose bytes no longer match its manifest, or that never got one, is refused
/// and the active version stays.
pub fn bad_versions_are_refused(registry: &ObjectRegistry, scratch: &Path) {
    let good = registry
        .publish(
            "segments",
            &model_files(scratch, "g", b"good"),
            Manifest::new("segments", "kmeans"),
        )
        .expect("publish");
    registry
        .activate("segments", good.version, "ml", "good")
        .expect("activate");
    let bad = registry
        .publish(
            "segments",
            &model_files(scratch, "h", b"fine"),
            Manifest::new("segments", "kmeans"),
        )
        .expect("publish");
    // Someone rewrites a file in the bucket after publishing (same size, other bytes).
    let path = crate::under(
        &registry.version_path("segments", bad.version),
        "weights.bin",
    );
    registry
        .runtime
        .block_on(object_store::ObjectStoreExt::put(
            registry.store.as_ref(),
            &path,
            b"FINE".to_vec().into(),
        ))
        .expect("tamper");
    let _ = std::fs::remove_dir_all(registry.local_dir("segments", bad.version));
    assert!(matches!(
        registry.verified("segments", bad.version),
        Err(RegistryError::Integrity { .. })
    ));
    assert!(
        registry
            .activate("segments", bad.version, "ml", "bad")
            .is_err()
    );
    assert_eq!(
        registry.active("segments").expect("active"),
        Some(good.version)
    );

    // A publish that died before its manifest: claimed and uploaded, never a version.
    let half = registry.version_path("segments", 50);
    for (name, body) in [(".claim", &b"x"[..]), ("weights.bin", &b"half"[..])] {
        registry
            .runtime
            .block_on(object_store::ObjectStoreExt::put(
                registry.store.as_ref(),
                &crate::under(&half, name),
                body.to_vec().into(),
            ))
            .expect("half a publish");
    }
    assert!(
        !registry
            .versions("segments")
            .expect("versions")
            .contains(&50)
    );
    assert!(matches!(
        registry.activate("segments", 50, "ml", "half"),
        Err(RegistryError::NotFound(_))
    ));
    // And its number is not handed out again.
    let next = registry
        .publish(
            "segments",
            &model_files(scratch, "n", b"next"),
            Manifest::new("segments", "kmeans"),
        )
        .expect("publish after");
    assert_eq!(next.version, 51);
}

/// Many publishers at once each get a number of their own.
pub fn concurrent_publishers_get_distinct_versions(registry: &Arc<ObjectRegistry>, scratch: &Path) {
    const PUBLISHERS: usize = 6;
    let barrier = Arc::new(Barrier::new(PUBLISHERS));
    let handles: Vec<_> = (0..PUBLISHERS)
        .map(|i| {
            let registry = Arc::clone(registry);
            let barrier = Arc::clone(&barrier);
            let dir = model_files(scratch, &format!("p{i}"), format!("model {i}").as_bytes());
            std::thread::spawn(move || {
                barrier.wait();
                registry
                    .publish("clv", &dir, Manifest::new("clv", "bgnbd"))
                    .expect("publish")
                    .version
            })
        })
        .collect();
    let mut versions: Vec<u64> = handles
        .into_iter()
        .map(|h| h.join().expect("publisher"))
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=PUBLISHERS as u64).collect::<Vec<_>>());
    for v in versions {
        registry.verified("clv", v).expect("each verifies");
    }
}

/// Racers who all saw the same `ACTIVE` try to replace it at once: exactly one wins, every
/// round; the history keeps one entry per win.
pub fn one_activator_wins_each_round(registry: &Arc<ObjectRegistry>, racers: usize, rounds: usize) {
    for round in 0..rounds {
        let seen = registry.observe_active("race").expect("observe");
        let history = seen
            .doc
            .as_ref()
            .map(|d| d.history.clone())
            .unwrap_or_default();
        let barrier = Arc::new(Barrier::new(racers));
        let handles: Vec<_> = (0..racers)
            .map(|i| {
                let registry = Arc::clone(registry);
                let barrier = Arc::clone(&barrier);
                let seen = seen.clone();
                let mut history = history.clone();
                std::thread::spawn(move || {
                    let version = (round * racers + i + 1) as u64;
                    history.push(vitals_engine::registry::Activation {
                        version,
                        previous: seen.doc.as_ref().map(|d| d.version),
                        time: String::new(),
                        actor: format!("racer {i}"),
                        reason: "race".into(),
                    });
                    barrier.wait();
                    registry
                        .compare_and_swap_active("race", &seen, &ActiveDoc { version, history })
                        .expect("compare and swap")
                })
            })
            .collect();
        let wins = handles
            .into_iter()
            .map(|h| h.join().expect("racer"))
            .filter(|&won| won)
            .count();
        assert_eq!(wins, 1, "round {round}: {wins} racers won");
        let after = registry
            .observe_active("race")
            .expect("observe")
            .doc
            .expect("a pointer");
        assert_eq!(after.history.len(), round + 1, "one entry per round");
    }
}
