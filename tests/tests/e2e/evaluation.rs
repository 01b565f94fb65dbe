//! EvaluationService end to end: evaluations with and without models, snapshots, the
//! at-risk list, segments, what-if scoring and the scoring scheme.

use std::collections::HashSet;

use tokio_stream::StreamExt;
use tonic::Code;
use vitals_proto::v1::{self as pb, evaluate_customer_request::Lookup};
use vitals_tests::{Backend, TestServer, assert_invalid, both_backends, now_seconds, ts};

fn by_external(id: &str) -> pb::EvaluateCustomerRequest {
    pb::EvaluateCustomerRequest {
        lookup: Some(Lookup::ExternalId(id.into())),
        as_of: None,
    }
}

both_backends!(
    without_models_the_model_parts_are_absent_with_reasons,
    a_trained_server_evaluates_refreshes_and_lists,
    scoring_schemes_are_versioned_and_validated,
    bad_evaluation_requests_are_refused_clearly,
);

async fn without_models_the_model_parts_are_absent_with_reasons(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .customers()
        .await
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: "bare-1".into(),
                signup_time: Some(ts(now_seconds() - 86_400 * 10)),
                ..Default::default()
            }),
        })
        .await
        .expect("created");
    let mut api = server.evaluations().await;
    let e = api
        .evaluate_customer(by_external("bare-1"))
        .await
        .expect("an evaluation without models is still an answer")
        .into_inner();
    let churn = e.churn.expect("churn part");
    assert!(churn.absent_reason.contains("no churn model"), "{churn:?}");
    assert!(!e.segment.expect("segment").absent_reason.is_empty());
    assert!(!e.scorecard.expect("scorecard").absent_reason.is_empty());
    assert_eq!(e.lifecycle_stage, "new");
    assert_eq!(e.versions.expect("versions").scoring_scheme, 1);

    let status = api
        .score_features(pb::ScoreFeaturesRequest::default())
        .await
        .expect_err("no model, no score");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("vitals-trainer train"),
        "{status:?}"
    );
    let status = api
        .list_segments(pb::ListSegmentsRequest {})
        .await
        .expect_err("no segments yet");
    assert_eq!(status.code(), Code::FailedPrecondition);
}

async fn a_trained_server_evaluates_refreshes_and_lists(backend: Backend) {
    // Enough customers that both populations (about 40% subscribers) get a churn model.
    const CUSTOMERS: u64 = 600;
    let server = TestServer::start(backend).await;
    let version = server.train_synthetic(CUSTOMERS, true);
    let reload = server
        .models()
        .await
        .reload_models(pb::ReloadModelsRequest {})
        .await
        .expect("reload")
        .into_inner();
    let churn = reload
        .kinds
        .iter()
        .find(|k| k.kind == "churn")
        .expect("churn kind");
    assert_eq!(churn.serving_version, version, "{reload:?}");

    let mut api = server.evaluations().await;
    // A current customer who buys: every part of the evaluation applies to them.
    let everyone = api
        .evaluate_customers(pb::EvaluateCustomersRequest::default())
        .await
        .expect("evaluate all")
        .into_inner()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("stream");
    let external = everyone
        .iter()
        .find(|e| {
            e.churn.as_ref().is_some_and(|c| c.absent_reason.is_empty())
                && e.lifetime_value
                    .as_ref()
                    .is_some_and(|l| l.absent_reason.is_empty())
        })
        .map(|e| e.external_id.clone())
        .expect("a current customer with purchases");
    let e = api
        .evaluate_customer(by_external(&external))
        .await
        .expect("evaluate")
        .into_inner();
    assert_eq!(e.external_id, external);
    let churn = e.churn.clone().expect("churn");
    assert!(churn.absent_reason.is_empty(), "{churn:?}");
    assert!((0.0..=1.0).contains(&churn.probability), "{churn:?}");
    assert!(["low", "medium", "high"].contains(&churn.risk_band.as_str()));
    assert!(churn.horizon_days > 89.0 && churn.horizon_days < 91.0);
    assert!(!churn.raising.is_empty() || !churn.lowering.is_empty());
    assert!(
        churn.raising.iter().all(|f| f.contribution > 0.0)
            && churn.lowering.iter().all(|f| f.contribution < 0.0)
    );
    let card = e.scorecard.clone().expect("scorecard");
    assert!(card.absent_reason.is_empty(), "{card:?}");
    assert_eq!(card.dimensions.len(), 6);
    assert!(
        card.dimensions
            .iter()
            .all(|d| (0.0..=100.0).contains(&d.score))
    );
    assert!(["platinum", "gold", "silver", "bronze"].contains(&card.tier.as_str()));
    let segment = e.segment.clone().expect("segment");
    assert!(segment.absent_reason.is_empty() && !segment.name.is_empty());
    let versions = e.versions.expect("versions");
    assert_eq!(versions.churn, version);
    assert!(versions.segments > 0);
    assert!(
        versions.clv > 0,
        "synthetic buyers repeat: a lifetime-value model is served"
    );
    let lifetime = e.lifetime_value.clone().expect("lifetime part");
    assert!(lifetime.absent_reason.is_empty(), "{lifetime:?}");
    assert!(
        (0.0..=1.0).contains(&lifetime.probability_alive),
        "{lifetime:?}"
    );
    assert!(lifetime.lifetime_value >= 0.0 && lifetime.horizon_months == 12);
    assert!(
        (e.value - lifetime.lifetime_value).abs() < 1e-9,
        "value at stake is the CLV"
    );

    // The same evaluation by id, as of a time before the customer existed: not a customer then.
    let by_id = api
        .evaluate_customer(pb::EvaluateCustomerRequest {
            lookup: Some(Lookup::CustomerId(e.customer_id.clone())),
            as_of: Some(ts(86_400)),
        })
        .await
        .expect("evaluate in 1970")
        .into_inner();
    assert!(
        by_id
            .churn
            .expect("churn")
            .absent_reason
            .contains("not a customer"),
        "in 1970 nobody was a customer"
    );

    // Refresh stores one snapshot per customer, with progress along the way.
    let mut progress = api
        .refresh_evaluations(pb::RefreshEvaluationsRequest { as_of: None })
        .await
        .expect("refresh")
        .into_inner();
    let mut last = None;
    while let Some(p) = progress.next().await {
        last = Some(p.expect("progress"));
    }
    let last = last.expect("at least one progress message");
    assert!(last.finished);
    assert_eq!(last.customers_done, CUSTOMERS);
    assert_eq!(last.evaluations_stored, CUSTOMERS);

    // The at-risk list: riskiest first, complete across pages, no repeats.
    let mut seen = HashSet::new();
    let mut bins = [0u64; 10];
    let mut at_risk_value = (0.0, 0.0);
    let mut previous = f64::INFINITY;
    let mut token = String::new();
    loop {
        let page = api
            .list_at_risk(pb::ListAtRiskRequest {
                page_size: 40,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("list at risk")
            .into_inner();
        for e in &page.evaluations {
            let churn = e.churn.as_ref().expect("churn");
            let p = churn.probability;
            assert!(p <= previous, "ordered by probability");
            previous = p;
            assert!(seen.insert(e.customer_id.clone()), "no repeats");
            bins[((p * 10.0) as usize).min(9)] += 1;
            at_risk_value.0 += e.value;
            at_risk_value.1 += e.value * p;
            // Customers still with us, named, their money in a currency, their reasons
            // in words with units.
            assert!(
                !["dormant", "churned"].contains(&e.lifecycle_stage.as_str()),
                "a lapsed customer on the at-risk list: {e:?}"
            );
            assert_eq!(e.value_lost, None);
            assert_eq!(e.display_name, e.external_id, "no name: the external id");
            assert_eq!(e.currency, "USD");
            for f in churn.raising.iter().chain(&churn.lowering) {
                assert!(!f.label.is_empty() && !f.display_value.is_empty(), "{f:?}");
                for column in ["attr.", "_missing", "=other", "_days"] {
                    assert!(!f.label.contains(column), "a model column: {f:?}");
                }
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(
        seen.len() > 100,
        "most customers have a probability: {}",
        seen.len()
    );
    // A stage filter: only that stage; a stage that is never on the list is refused.
    let stage = api
        .list_at_risk(pb::ListAtRiskRequest {
            lifecycle_stage: "at_risk".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("at-risk stage only")
        .into_inner()
        .evaluations;
    assert!(!stage.is_empty());
    assert!(stage.iter().all(|e| e.lifecycle_stage == "at_risk"));
    for refused in ["dormant", "asleep"] {
        assert_invalid(
            api.list_at_risk(pb::ListAtRiskRequest {
                lifecycle_stage: refused.into(),
                ..Default::default()
            })
            .await,
            "lifecycle_stage",
        );
    }

    // The overview's aggregates agree with the list they summarise.
    let summary = api
        .get_risk_summary(pb::GetRiskSummaryRequest {})
        .await
        .expect("risk summary")
        .into_inner();
    assert_eq!(summary.probability_bins, bins.to_vec());
    assert_eq!(
        summary.tiers.values().sum::<u64>(),
        CUSTOMERS,
        "everyone has a tier"
    );
    let [usd] = summary.value_at_risk.as_slice() else {
        panic!("one currency: {:?}", summary.value_at_risk);
    };
    assert_eq!(usd.currency, "USD");
    assert_eq!(usd.customers as usize, seen.len());
    assert!((usd.value - at_risk_value.0).abs() < 1e-6 * at_risk_value.0.max(1.0));
    assert!((usd.expected_loss - at_risk_value.1).abs() < 1e-6 * at_risk_value.1.max(1.0));

    // The win-back list holds the others who lapsed or churned, by the value lost.
    let win_back = api
        .list_win_back(pb::ListWinBackRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("win-back list")
        .into_inner()
        .evaluations;
    assert!(!win_back.is_empty(), "synthetic shop customers stop buying");
    let mut previous = f64::INFINITY;
    for e in &win_back {
        let lost = e.value_lost.expect("a value lost");
        assert!(lost <= previous && lost >= 0.0, "ordered by value lost");
        previous = lost;
        assert!(
            ["dormant", "churned"].contains(&e.lifecycle_stage.as_str()),
            "{e:?}"
        );
        assert!(!seen.contains(&e.customer_id), "on both lists: {e:?}");
    }
    // Every customer still with us has a lifetime value, subscribers and shop customers
    // alike, in the same units as the value at stake.
    let current: Vec<&pb::Evaluation> = everyone
        .iter()
        .filter(|e| e.churn.as_ref().is_some_and(|c| c.absent_reason.is_empty()))
        .collect();
    for e in &current {
        let l = e.lifetime_value.as_ref().expect("lifetime part");
        assert!(l.absent_reason.is_empty(), "no lifetime value: {e:?}");
        assert!(!l.basis.is_empty(), "{l:?}");
        assert!((e.value - l.lifetime_value).abs() < 1e-9);
    }
    for contractual in [true, false] {
        assert!(
            current.iter().any(|e| e
                .lifetime_value
                .as_ref()
                .is_some_and(|l| (l.method == "subscription") == contractual)),
            "a current customer valued as {}",
            if contractual {
                "a subscription"
            } else {
                "a shop customer"
            }
        );
    }

    let high = api
        .list_at_risk(pb::ListAtRiskRequest {
            min_probability: Some(0.5),
            order_by: pb::AtRiskOrder::ExpectedLoss as i32,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("high risk by expected loss")
        .into_inner();
    let losses: Vec<f64> = high
        .evaluations
        .iter()
        .map(|e| e.churn.as_ref().map_or(0.0, |c| c.probability) * e.value)
        .collect();
    assert!(losses.windows(2).all(|w| w[0] >= w[1] - 1e-9), "{losses:?}");
    assert!(
        high.evaluations
            .iter()
            .all(|e| e.churn.as_ref().is_some_and(|c| c.probability >= 0.5))
    );

    // The refresh (as of now) opened a churn-risk task for every customer whose
    // probability reached the default threshold (0.5) from no stored value; a second
    // refresh finds no new crossings, and the open tasks are not opened twice.
    let risk_tasks = server
        .follow_ups()
        .await
        .list_follow_ups(pb::ListFollowUpsRequest {
            reason: pb::FollowUpReason::ChurnRisk as i32,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("churn-risk tasks")
        .into_inner()
        .follow_ups;
    assert_eq!(risk_tasks.len(), high.evaluations.len());
    assert!(
        risk_tasks
            .iter()
            .all(|t| t.department == "account_management")
    );
    // A task names its customer as a person finds them.
    assert!(
        risk_tasks
            .iter()
            .all(|t| t.external_id.starts_with("gen-") && t.display_name == t.external_id),
        "{risk_tasks:?}"
    );
    assert!(last.follow_ups_opened as usize >= risk_tasks.len());
    let mut again = api
        .refresh_evaluations(pb::RefreshEvaluationsRequest { as_of: None })
        .await
        .expect("refresh again")
        .into_inner();
    let mut second = None;
    while let Some(p) = again.next().await {
        second = Some(p.expect("progress"));
    }
    assert_eq!(second.map(|p| p.follow_ups_opened), Some(0));

    // Segments: sizes from the snapshots add up to the customers with a segment.
    let segments = api
        .list_segments(pb::ListSegmentsRequest {})
        .await
        .expect("segments")
        .into_inner();
    // Three per population (K = 3), each population segmented on its own.
    assert_eq!(segments.segments.len(), 6, "{segments:?}");
    assert_eq!(
        segments.segments.iter().map(|s| s.size).sum::<u64>(),
        CUSTOMERS
    );
    assert!(segments.segments.iter().all(|s| !s.name.is_empty()));
    for population in ["subscription customers", "shop customers (no contract)"] {
        assert_eq!(
            segments
                .segments
                .iter()
                .filter(|s| s.population == population)
                .count(),
            3
        );
    }
    let ids: Vec<i32> = segments.segments.iter().map(|s| s.segment_id).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5], "ids unique across populations");

    // The words follow the caller's language (`accept-language`, as a browser sends it):
    // the same evaluation in Chinese, live and from a stored snapshot, with the same
    // numbers and factors.
    words_follow_the_caller_s_language(&mut api, &external, &segments).await;

    // Batch evaluation, by ids and by filter.
    let ids: Vec<String> = seen.iter().take(5).cloned().collect();
    let streamed: Vec<pb::Evaluation> = api
        .evaluate_customers(pb::EvaluateCustomersRequest {
            customer_ids: ids.clone(),
            ..Default::default()
        })
        .await
        .expect("evaluate by ids")
        .into_inner()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("stream");
    assert_eq!(
        streamed
            .iter()
            .map(|e| e.customer_id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(
        everyone.len(),
        CUSTOMERS as usize,
        "a filter-less batch evaluates everyone"
    );

    // What-if: a recent, frequent buyer is less likely to leave than one gone quiet. A
    // whole, consistent purchase record (an unlisted feature counts as undefined, which
    // no real buyer's spend ever is).
    let what_if = |recency: f64, per_90_days: f64| pb::ScoreFeaturesRequest {
        population: "non_contractual".into(),
        features: [
            ("recency_days", recency),
            (
                "frequency_30d",
                if recency <= 30.0 {
                    per_90_days / 3.0
                } else {
                    0.0
                },
            ),
            ("frequency_90d", per_90_days),
            ("frequency_365d", per_90_days * 4.0 + 1.0),
            ("frequency_total", per_90_days * 8.0 + 1.0),
            (
                "monetary_30d",
                if recency <= 30.0 {
                    per_90_days * 12.0
                } else {
                    0.0
                },
            ),
            ("monetary_90d", per_90_days * 35.0),
            ("monetary_365d", per_90_days * 140.0 + 35.0),
            ("monetary_total", per_90_days * 280.0 + 35.0),
            ("avg_order_value", 35.0),
            ("tenure_days", 700.0),
            ("distinct_purchase_days", per_90_days * 8.0 + 1.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        ..Default::default()
    };
    let loyal = api
        .score_features(what_if(3.0, 12.0))
        .await
        .expect("score")
        .into_inner();
    // Quiet for 150 days (lapsed customers, past 180, are not the model's business).
    let lapsed = api
        .score_features(what_if(150.0, 0.0))
        .await
        .expect("score")
        .into_inner();
    assert_eq!(loyal.model_version, version);
    assert!(
        loyal.churn_probability < lapsed.churn_probability,
        "{loyal:?} vs {lapsed:?}"
    );
    assert_invalid(
        api.score_features(pb::ScoreFeaturesRequest {
            features: [("shoe_size".to_string(), 42.0)].into_iter().collect(),
            population: "non_contractual".into(),
            ..Default::default()
        })
        .await,
        "features[shoe_size]",
    );
    assert_invalid(
        api.score_features(pb::ScoreFeaturesRequest {
            model_input: vec![0.0; 3],
            population: "non_contractual".into(),
            ..Default::default()
        })
        .await,
        "model_input",
    );
    // A what-if on a real customer: their own features now, scored by their model; with
    // nothing overridden it is their evaluation, with a feature overridden it moves.
    let top = api
        .list_at_risk(pb::ListAtRiskRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("top")
        .into_inner()
        .evaluations
        .remove(0);
    let own = api
        .score_features(pb::ScoreFeaturesRequest {
            customer_external_id: top.external_id.clone(),
            ..Default::default()
        })
        .await
        .expect("what-if, nothing changed")
        .into_inner();
    let p = top.churn.as_ref().expect("churn").probability;
    assert!((own.churn_probability - p).abs() < 1e-3, "{own:?} vs {p}");
    assert!(own.raising.iter().all(|f| !f.display_value.is_empty()));
    let changed = api
        .score_features(pb::ScoreFeaturesRequest {
            customer_external_id: top.external_id.clone(),
            features: [
                ("complaints_365d".to_string(), 12.0),
                ("nps_mean".to_string(), 0.0),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        })
        .await
        .expect("what-if")
        .into_inner();
    assert!((changed.churn_probability - own.churn_probability).abs() > 1e-6);
    // The other population than the customer's (a subscriber's value is a subscription's).
    let subscriber = top
        .lifetime_value
        .as_ref()
        .is_some_and(|l| l.method == "subscription");
    let wrong = if subscriber {
        "non_contractual"
    } else {
        "contractual"
    };
    assert_invalid(
        api.score_features(pb::ScoreFeaturesRequest {
            customer_external_id: top.external_id.clone(),
            population: wrong.into(),
            ..Default::default()
        })
        .await,
        "population",
    );
    let nobody = api
        .score_features(pb::ScoreFeaturesRequest {
            customer_external_id: "nobody-here".into(),
            ..Default::default()
        })
        .await
        .expect_err("no such customer");
    assert_eq!(nobody.code(), Code::NotFound);

    // A model per population: the caller says whose, by a name the server knows.
    for population in ["", "prospects"] {
        assert_invalid(
            api.score_features(pb::ScoreFeaturesRequest {
                population: population.into(),
                ..what_if(3.0, 12.0)
            })
            .await,
            "population",
        );
    }
}

fn in_chinese<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "accept-language",
        tonic::metadata::MetadataValue::from_static("zh-CN,zh;q=0.9,en;q=0.8"),
    );
    request
}

fn has_chinese(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

async fn words_follow_the_caller_s_language(
    api: &mut vitals_proto::v1::evaluation_service_client::EvaluationServiceClient<
        tonic::transport::Channel,
    >,
    external_id: &str,
    segments: &pb::ListSegmentsResponse,
) {
    // Both at the same time, so that only the language differs.
    let at = pb::EvaluateCustomerRequest {
        lookup: Some(Lookup::ExternalId(external_id.to_owned())),
        as_of: Some(ts(now_seconds())),
    };
    let english = api
        .evaluate_customer(at.clone())
        .await
        .expect("evaluate in English")
        .into_inner();
    let chinese = api
        .evaluate_customer(in_chinese(at))
        .await
        .expect("evaluate in Chinese")
        .into_inner();
    let (en, zh) = (
        english.churn.as_ref().expect("churn"),
        chinese.churn.as_ref().expect("churn"),
    );
    assert!((en.probability - zh.probability).abs() < 1e-6);
    let pairs: Vec<(&pb::Factor, &pb::Factor)> = en
        .raising
        .iter()
        .chain(&en.lowering)
        .zip(zh.raising.iter().chain(&zh.lowering))
        .collect();
    assert!(!pairs.is_empty());
    for (e, z) in pairs {
        // The same up to summation order (a history read from the database or the cache).
        assert_eq!(e.feature, z.feature);
        assert_eq!(e.value.is_some(), z.value.is_some());
        assert!((e.value.unwrap_or(0.0) - z.value.unwrap_or(0.0)).abs() < 1e-6);
        assert!((e.contribution - z.contribution).abs() < 1e-6);
        if !e.feature.starts_with("attr.") {
            // Behaviours are named and measured in Chinese; attributes keep the
            // company's own names and values.
            assert!(has_chinese(&z.label), "{z:?}");
            assert_ne!(e.label, z.label);
        }
        assert!(!z.display_value.is_empty(), "{z:?}");
    }
    let segment = chinese.segment.as_ref().expect("segment");
    assert!(has_chinese(&segment.name), "{segment:?}");
    assert!(has_chinese(&segment.description), "{segment:?}");
    let lifetime = chinese.lifetime_value.as_ref().expect("lifetime");
    assert!(has_chinese(&lifetime.basis), "{lifetime:?}");
    assert_eq!(
        lifetime.method,
        english.lifetime_value.as_ref().expect("lifetime").method
    );
    let rfm = chinese.rfm.as_ref().expect("rfm");
    assert!(
        rfm.absent_reason.is_empty() && has_chinese(&rfm.segment),
        "{rfm:?}"
    );
    // English when nothing is asked, as before.
    assert!(!has_chinese(
        &english.segment.as_ref().expect("segment").name
    ));

    // A stored snapshot reads in Chinese as well.
    let stored = api
        .list_at_risk(in_chinese(pb::ListAtRiskRequest {
            page_size: 5,
            ..Default::default()
        }))
        .await
        .expect("at risk in Chinese")
        .into_inner();
    assert!(!stored.evaluations.is_empty());
    for e in &stored.evaluations {
        let churn = e.churn.as_ref().expect("churn");
        for f in churn.raising.iter().chain(&churn.lowering) {
            assert!(
                f.feature.starts_with("attr.") || has_chinese(&f.label),
                "{f:?}"
            );
        }
        assert!(has_chinese(&e.segment.as_ref().expect("segment").name));
    }
    // Why a part is missing, in Chinese: before the customer existed.
    let before = api
        .evaluate_customer(in_chinese(pb::EvaluateCustomerRequest {
            lookup: Some(Lookup::ExternalId(english.external_id.clone())),
            as_of: Some(ts(86_400)),
        }))
        .await
        .expect("evaluate in 1970")
        .into_inner();
    assert_eq!(
        before.churn.expect("churn").absent_reason,
        "此时尚未成为客户"
    );
    // Segments and their populations.
    let listed = api
        .list_segments(in_chinese(pb::ListSegmentsRequest {}))
        .await
        .expect("segments in Chinese")
        .into_inner();
    assert_eq!(listed.segments.len(), segments.segments.len());
    for (z, e) in listed.segments.iter().zip(&segments.segments) {
        assert_eq!((z.segment_id, z.size), (e.segment_id, e.size));
        assert!(has_chinese(&z.name) && has_chinese(&z.population), "{z:?}");
    }
}

async fn scoring_schemes_are_versioned_and_validated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.evaluations().await;
    let current = api
        .get_scoring_scheme(pb::GetScoringSchemeRequest { version: 0 })
        .await
        .expect("the default scheme")
        .into_inner();
    assert_eq!(current.version, 1);
    let total: f64 = current.weights.values().sum();
    assert!((total - 1.0).abs() < 1e-9);

    let mut bad = current.clone();
    bad.weights.insert("value".into(), -1.0);
    bad.weights.insert("charisma".into(), 0.1);
    bad.tiers[1].name = bad.tiers[0].name.clone();
    let status = api
        .update_scoring_scheme(pb::UpdateScoringSchemeRequest { scheme: Some(bad) })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = vitals_tests::violations(&status)
        .into_iter()
        .map(|v| v.0)
        .collect();
    for f in [
        "scheme.weights[charisma]",
        "scheme.weights[value]",
        "scheme.tiers[1].name",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }

    let mut next = current.clone();
    next.weights.insert("value".into(), 0.45);
    next.weights.insert("activity".into(), 0.0);
    let updated = api
        .update_scoring_scheme(pb::UpdateScoringSchemeRequest {
            scheme: Some(next.clone()),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.version, 2);
    // A second update from the same version lost the race.
    let stale = api
        .update_scoring_scheme(pb::UpdateScoringSchemeRequest { scheme: Some(next) })
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    let v1 = api
        .get_scoring_scheme(pb::GetScoringSchemeRequest { version: 1 })
        .await
        .expect("old versions stay readable")
        .into_inner();
    assert_eq!(v1.weights, current.weights);
    let missing = api
        .get_scoring_scheme(pb::GetScoringSchemeRequest { version: 99 })
        .await
        .expect_err("no such version");
    assert_eq!(missing.code(), Code::NotFound);

    // Evaluations say which scheme they used.
    server
        .customers()
        .await
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: "scheme-1".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("created");
    let e = api
        .evaluate_customer(by_external("scheme-1"))
        .await
        .expect("evaluate")
        .into_inner();
    assert_eq!(e.versions.expect("versions").scoring_scheme, 2);
}

async fn bad_evaluation_requests_are_refused_clearly(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.evaluations().await;
    assert_invalid(
        api.evaluate_customer(pb::EvaluateCustomerRequest::default())
            .await,
        "customer_id",
    );
    let missing = api
        .evaluate_customer(by_external("nobody"))
        .await
        .expect_err("unknown customer");
    assert_eq!(missing.code(), Code::NotFound);
    assert_invalid(
        api.evaluate_customer(pb::EvaluateCustomerRequest {
            lookup: Some(Lookup::ExternalId("x".into())),
            as_of: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
        })
        .await,
        "as_of",
    );
    assert_invalid(
        api.list_at_risk(pb::ListAtRiskRequest {
            min_probability: Some(1.5),
            ..Default::default()
        })
        .await,
        "min_probability",
    );
    assert_invalid(
        api.list_at_risk(pb::ListAtRiskRequest {
            page_size: -1,
            ..Default::default()
        })
        .await,
        "page_size",
    );
    assert_invalid(
        api.list_at_risk(pb::ListAtRiskRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await,
        "page_token",
    );
    let unknown_ids = api
        .evaluate_customers(pb::EvaluateCustomersRequest {
            customer_ids: vec!["no-such-customer".into()],
            ..Default::default()
        })
        .await
        .expect_err("unknown id fails before streaming");
    assert_eq!(unknown_ids.code(), Code::NotFound);
    assert_invalid(
        api.update_scoring_scheme(pb::UpdateScoringSchemeRequest { scheme: None })
            .await,
        "scheme",
    );
}

both_backends!(concurrent_evaluations_each_get_their_own_customer);

/// Concurrent `EvaluateCustomer` calls are read from the database together (the
/// server's history loader): each must still get exactly its own customer's evaluation,
/// the same as when asked alone, and a missing customer its own NOT_FOUND.
async fn concurrent_evaluations_each_get_their_own_customer(backend: Backend) {
    let server = TestServer::start(backend).await;
    let now = now_seconds();
    let mut ids = Vec::new();
    let mut events = Vec::new();
    for n in 0..24i64 {
        let id = server
            .create_customer(pb::Customer {
                external_id: format!("conc-{n}"),
                signup_time: Some(ts(now - 86_400 * (30 + n * 7))),
                ..Default::default()
            })
            .await;
        // A different number of purchases, amounts and recency per customer.
        for k in 0..=(n % 5) {
            events.push(purchase(
                &id,
                &format!("p-{k}"),
                1_000 + 137 * n + k,
                1 + n + 3 * k,
            ));
        }
        ids.push(id);
    }
    server.record_events(events).await;

    // After the events were recorded: an evaluation sees only what was known at as_of.
    let as_of = Some(ts(now + 60));
    let request = |n: usize| pb::EvaluateCustomerRequest {
        lookup: Some(if n.is_multiple_of(2) {
            Lookup::CustomerId(ids[n].clone())
        } else {
            Lookup::ExternalId(format!("conc-{n}"))
        }),
        as_of,
    };
    let without_time = |mut e: pb::Evaluation| {
        e.compute_time = None;
        e
    };
    let mut api = server.evaluations().await;
    let mut alone = Vec::new();
    for n in 0..ids.len() {
        let e = api.evaluate_customer(request(n)).await.expect("alone");
        alone.push(without_time(e.into_inner()));
    }
    // Without models the value at stake is the last year's spend: different for each.
    assert!(
        alone.windows(2).all(|w| w[0].value != w[1].value),
        "the customers should differ"
    );
    for (n, e) in alone.iter().enumerate() {
        assert_eq!(e.customer_id, ids[n]);
    }

    // Every customer three times, and unknown ones, all at once.
    let mut calls = tokio::task::JoinSet::new();
    for round in 0..3 {
        for n in 0..ids.len() {
            let mut api = api.clone();
            let request = request(n);
            calls.spawn(async move { (n, round, api.evaluate_customer(request).await) });
        }
        let mut api = api.clone();
        calls.spawn(async move {
            let missing = pb::EvaluateCustomerRequest {
                lookup: Some(Lookup::ExternalId(format!("nobody-{round}"))),
                as_of: None,
            };
            (usize::MAX, round, api.evaluate_customer(missing).await)
        });
    }
    let mut answered = 0;
    while let Some(joined) = calls.join_next().await {
        let (n, round, answer) = joined.expect("the call task");
        if n == usize::MAX {
            let status = answer.expect_err("an unknown customer");
            assert_eq!(status.code(), Code::NotFound, "{status:?}");
            assert!(status.message().contains(&format!("nobody-{round}")));
            continue;
        }
        let e = without_time(answer.expect("an evaluation").into_inner());
        assert_eq!(e, alone[n], "customer {n}, round {round}");
        answered += 1;
    }
    assert_eq!(answered, 3 * ids.len());
}

both_backends!(histories_in_memory_follow_every_write);

fn purchase(customer_id: &str, key: &str, amount_minor: i64, days_ago: i64) -> pb::Event {
    use vitals_proto::v1::event::{Customer as Who, Payload};
    pb::Event {
        comment_analysis: None,
        event_key: key.into(),
        customer: Some(Who::CustomerId(customer_id.into())),
        time: Some(ts(now_seconds() - 86_400 * days_ago)),
        record_time: None,
        payload: Some(Payload::Transaction(pb::Transaction {
            amount_minor,
            currency: "USD".into(),
            quantity: 1,
            category: String::new(),
            channel: "web".into(),
        })),
    }
}

/// Where the server took the history from (its `vitals-history-source` header) and the
/// value at stake (without models: the last year's spend, in dollars here).
async fn evaluate_with_source(
    api: &mut vitals_proto::v1::evaluation_service_client::EvaluationServiceClient<
        tonic::transport::Channel,
    >,
    lookup: Lookup,
) -> Result<(String, f64), tonic::Status> {
    let response = api
        .evaluate_customer(pb::EvaluateCustomerRequest {
            lookup: Some(lookup),
            as_of: None,
        })
        .await?;
    let source = response
        .metadata()
        .get(vitals_server::api::evaluation::HISTORY_SOURCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok((source, response.into_inner().value))
}

/// Asks until `wanted` holds, for at most `seconds`; returns the last answer.
async fn evaluate_until(
    api: &mut vitals_proto::v1::evaluation_service_client::EvaluationServiceClient<
        tonic::transport::Channel,
    >,
    lookup: Lookup,
    seconds: u64,
    wanted: impl Fn(&str, f64) -> bool,
) -> (String, f64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        let (source, value) = evaluate_with_source(api, lookup.clone())
            .await
            .expect("evaluated");
        if wanted(&source, value) || std::time::Instant::now() > deadline {
            return (source, value);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// On PostgreSQL the server keeps histories in memory between evaluations and forgets one
/// as soon as it changes: at once for writes through this server, and as soon as the
/// database's announcement arrives for writes by anyone else (another server, the
/// trainer, psql). SQLite keeps nothing in memory.
async fn histories_in_memory_follow_every_write(backend: Backend) {
    use diesel::{Connection, RunQueryDsl};
    let server = TestServer::start(backend).await;
    let id = server
        .create_customer(pb::Customer {
            external_id: "mem-1".into(),
            signup_time: Some(ts(now_seconds() - 86_400 * 100)),
            ..Default::default()
        })
        .await;
    server
        .record_events(vec![purchase(&id, "p1", 10_000, 5)])
        .await;
    let mut api = server.evaluations().await;
    let by_id = Lookup::CustomerId(id.clone());
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;

    if backend == Backend::Sqlite {
        for _ in 0..3 {
            let (source, value) = evaluate_with_source(&mut api, by_id.clone())
                .await
                .expect("evaluated");
            assert_eq!(source, "database");
            assert!(close(value, 100.0), "{value}");
        }
        return;
    }

    // The change listener connects shortly after the server starts; from then on the
    // first evaluation reads the database and the next ones answer from memory.
    let (source, value) = evaluate_until(&mut api, by_id.clone(), 10, |s, _| s == "memory").await;
    assert_eq!(source, "memory", "the history was never kept in memory");
    assert!(close(value, 100.0), "{value}");
    let (source, value) = evaluate_with_source(&mut api, Lookup::ExternalId("mem-1".into()))
        .await
        .expect("by external id");
    assert_eq!((source.as_str(), value), ("memory", 100.0));

    let vitals_store::DatabaseUrl::Postgres(url) = &server.db.url else {
        unreachable!("a PostgreSQL test")
    };
    let mut psql = diesel::PgConnection::establish(url).expect("connect");
    let sql = |psql: &mut diesel::PgConnection, statement: &str| {
        diesel::sql_query(statement)
            .execute(psql)
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    };

    // 1. A write through this server: the very next evaluation sees it, because the
    // server forgets the history itself. The database's announcement is switched off
    // (this schema's triggers) so that it cannot be what made the history forgotten.
    sql(&mut psql, "ALTER TABLE transactions DISABLE TRIGGER USER");
    server
        .record_events(vec![purchase(&id, "p2", 5_000, 3)])
        .await;
    let (source, value) = evaluate_with_source(&mut api, by_id.clone())
        .await
        .expect("evaluated");
    assert_eq!(source, "database");
    assert!(close(value, 150.0), "{value}");
    sql(&mut psql, "ALTER TABLE transactions ENABLE TRIGGER USER");

    // 2. Memory really answers: a change the database does not announce (triggers off
    // for one session, as only a superuser can) stays unseen until it is announced.
    let (source, _) = evaluate_until(&mut api, by_id.clone(), 5, |s, _| s == "memory").await;
    assert_eq!(source, "memory");
    sql(&mut psql, "SET session_replication_role = replica");
    diesel::sql_query(
        "UPDATE transactions SET amount_minor = amount_minor * 2 WHERE customer_id = $1",
    )
    .bind::<diesel::sql_types::Text, _>(&id)
    .execute(&mut psql)
    .expect("unannounced change");
    let (source, value) = evaluate_with_source(&mut api, by_id.clone())
        .await
        .expect("evaluated");
    assert_eq!(source, "memory");
    assert!(
        close(value, 150.0),
        "the unannounced change was seen: {value}"
    );
    diesel::sql_query("SELECT pg_notify(vitals_history_channel(current_schema()), $1)")
        .bind::<diesel::sql_types::Text, _>(&id)
        .execute(&mut psql)
        .expect("announce");
    let (_, value) = evaluate_until(&mut api, by_id.clone(), 5, |_, v| close(v, 300.0)).await;
    assert!(
        close(value, 300.0),
        "the announcement was not heard: {value}"
    );

    // 3. A write by another writer (the store the trainer and other servers use): the
    // triggers announce it.
    let (source, _) = evaluate_until(&mut api, by_id.clone(), 5, |s, _| s == "memory").await;
    assert_eq!(source, "memory");
    let event = vitals_domain::NewEvent {
        event_key: "p3".into(),
        customer: vitals_domain::CustomerRef::Id(id.clone()),
        time: vitals_domain::time::now_micros() - 86_400_000_000,
        payload: vitals_domain::EventPayload::Transaction(vitals_domain::Transaction {
            amount_minor: 5_000,
            currency: "USD".into(),
            quantity: 1,
            category: String::new(),
            channel: "web".into(),
        }),
    };
    let store = server.store.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        store.record_events(
            vec![(0, event)],
            vitals_store::RecordMode::Live,
            None,
            None,
            vitals_domain::time::now_micros(),
        )
    })
    .await
    .expect("joined")
    .expect("recorded elsewhere");
    assert_eq!(outcome.accepted, 1);
    let (_, value) = evaluate_until(&mut api, by_id.clone(), 5, |_, v| close(v, 350.0)).await;
    assert!(
        close(value, 350.0),
        "another writer's event was not seen: {value}"
    );

    // 4. An external id moved through this server (announcements off again): the old one
    // is unknown at once, though its history was in memory.
    let (source, _) = evaluate_until(&mut api, Lookup::ExternalId("mem-1".into()), 5, |s, _| {
        s == "memory"
    })
    .await;
    assert_eq!(source, "memory");
    sql(&mut psql, "ALTER TABLE customers DISABLE TRIGGER USER");
    let current = server
        .customers()
        .await
        .get_customer(pb::GetCustomerRequest {
            lookup: Some(pb::get_customer_request::Lookup::Id(id.clone())),
        })
        .await
        .expect("get")
        .into_inner();
    server
        .customers()
        .await
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: "mem-2".into(),
                ..current
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["external_id".into()],
            }),
        })
        .await
        .expect("external id moved");
    let err = evaluate_with_source(&mut api, Lookup::ExternalId("mem-1".into()))
        .await
        .expect_err("the old external id");
    assert_eq!(err.code(), Code::NotFound);
    let (_, value) = evaluate_with_source(&mut api, Lookup::ExternalId("mem-2".into()))
        .await
        .expect("the new external id");
    assert!(close(value, 350.0), "{value}");
}
