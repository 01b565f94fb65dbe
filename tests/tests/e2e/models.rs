//! ModelService end to end: listing, activation and rollback, refusal of corrupt
//! versions while the old one keeps serving, and hot swaps under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tonic::Code;
use vitals_proto::v1 as pb;
use vitals_tests::{Backend, TestServer, assert_invalid, both_backends};

both_backends!(models_are_listed_activated_and_rolled_back);

async fn serving(server: &TestServer, kind: &str) -> (u64, String) {
    let reload = server
        .models()
        .await
        .reload_models(pb::ReloadModelsRequest {})
        .await
        .expect("reload")
        .into_inner();
    let k = reload
        .kinds
        .into_iter()
        .find(|k| k.kind == kind)
        .expect("kind reported");
    (k.serving_version, k.problem)
}

async fn models_are_listed_activated_and_rolled_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let v1 = server.train_synthetic(300, true);
    let v2 = server.train_synthetic(300, false);
    assert_eq!((v1, v2), (1, 2));
    let mut api = server.models().await;
    assert_eq!(serving(&server, "churn").await.0, v1);

    let listed = api
        .list_models(pb::ListModelsRequest {
            kind: "churn".into(),
        })
        .await
        .expect("list")
        .into_inner()
        .models;
    assert_eq!(listed.len(), 2);
    assert!(listed[0].active && listed[0].serving && !listed[1].active);
    assert!(listed[0].metrics.contains_key("roc_auc"), "{:?}", listed[0]);
    let got = api
        .get_model(pb::GetModelRequest {
            kind: "churn".into(),
            version: 0,
        })
        .await
        .expect("get active")
        .into_inner();
    assert_eq!(got.version, v1);
    assert!(got.manifest_json.contains("feature_schema"));

    // Activate 2 with an actor; the history says who and when.
    let activated = api
        .activate_model(pb::ActivateModelRequest {
            kind: "churn".into(),
            version: v2,
            reason: "better on recent data".into(),
            actor: "ml-oncall".into(),
        })
        .await
        .expect("activate")
        .into_inner();
    assert_eq!(activated.previous_version, v1);
    assert!(activated.model.expect("model").serving);
    // Roll back: activate the older version.
    api.activate_model(pb::ActivateModelRequest {
        kind: "churn".into(),
        version: v1,
        reason: "rollback".into(),
        actor: "ml-oncall".into(),
    })
    .await
    .expect("roll back");
    assert_eq!(serving(&server, "churn").await.0, v1);
    let history = api
        .list_activations(pb::ListActivationsRequest {
            kind: "churn".into(),
        })
        .await
        .expect("history")
        .into_inner()
        .activations;
    let versions: Vec<u64> = history.iter().map(|a| a.version).collect();
    assert_eq!(versions, [v1, v2, v1]);
    assert_eq!(history[1].actor, "ml-oncall");
    assert_eq!(history[1].reason, "better on recent data");
    assert!(history[1].time.is_some());

    // A corrupt version is refused, and the version in service keeps serving.
    let dir = server.registry.join("churn").join(v2.to_string());
    // Each population's model is in a folder of its own.
    let weights = ["contractual", "non_contractual"]
        .iter()
        .map(|p| dir.join(p).join("model.safetensors"))
        .find(|w| w.exists())
        .expect("a population's weights");
    let mut bytes = std::fs::read(&weights).expect("weights");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&weights, bytes).expect("tamper");
    let refused = api
        .activate_model(pb::ActivateModelRequest {
            kind: "churn".into(),
            version: v2,
            ..Default::default()
        })
        .await
        .expect_err("corrupt");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("sha256") || refused.message().contains("hash"),
        "{refused:?}"
    );
    // Even when the trainer's pointer names it directly, the server refuses it.
    std::fs::write(
        server.registry.join("churn").join("ACTIVE"),
        format!("{v2}\n"),
    )
    .expect("point ACTIVE at the corrupt version");
    let (now_serving, problem) = serving(&server, "churn").await;
    assert_eq!(now_serving, v1, "the old version keeps serving");
    assert!(!problem.is_empty(), "the problem is reported");
    let score = server
        .evaluations()
        .await
        .score_features(pb::ScoreFeaturesRequest::default())
        .await
        .expect("still scoring")
        .into_inner();
    assert_eq!(score.model_version, v1);

    // Bad requests.
    assert_invalid(
        api.activate_model(pb::ActivateModelRequest {
            kind: "../etc".into(),
            version: 1,
            ..Default::default()
        })
        .await,
        "kind",
    );
    assert_invalid(
        api.activate_model(pb::ActivateModelRequest {
            kind: "churn".into(),
            version: 0,
            ..Default::default()
        })
        .await,
        "version",
    );
    let missing = api
        .activate_model(pb::ActivateModelRequest {
            kind: "churn".into(),
            version: 99,
            ..Default::default()
        })
        .await
        .expect_err("no such version");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn activating_versions_under_load_fails_no_request() {
    let server = TestServer::start(Backend::Sqlite).await;
    let v1 = server.train_synthetic(300, true);
    let v2 = server.train_synthetic(300, false);
    assert_eq!(serving(&server, "churn").await.0, v1);
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut callers = Vec::new();
    for _ in 0..8 {
        let mut api = server.evaluations().await;
        let (failures, served, stop) = (failures.clone(), served.clone(), stop.clone());
        callers.push(tokio::spawn(async move {
            let request = pb::ScoreFeaturesRequest {
                features: [("recency_days".to_string(), 12.0)].into_iter().collect(),
                ..Default::default()
            };
            while !stop.load(Ordering::Relaxed) {
                match api.score_features(request.clone()).await {
                    Ok(r) if [v1, v2].contains(&r.get_ref().model_version) => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let mut models = server.models().await;
    for i in 0..10 {
        let version = if i % 2 == 0 { v2 } else { v1 };
        models
            .activate_model(pb::ActivateModelRequest {
                kind: "churn".into(),
                version,
                reason: format!("swap {i}"),
                actor: "load-test".into(),
            })
            .await
            .expect("activate under load");
        // Let requests run against each version before the next swap.
        let target = served.load(Ordering::Relaxed) + 20;
        while served.load(Ordering::Relaxed) < target {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.expect("caller");
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(served.load(Ordering::Relaxed) >= 200, "the load ran");
}
