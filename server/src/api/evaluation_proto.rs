//! Evaluations, schemes and feature records between the domain and `vitals.v1`.

use std::collections::BTreeMap;

use vitals_domain::Violations;
use vitals_domain::evaluation::rfm;
use vitals_domain::explain::{in_words, segment_words};
use vitals_domain::features::Behaviour;
use vitals_domain::words::Language;
use vitals_engine::evaluation::{
    ChurnAssessment, Dimension, Evaluation, Factor, Part, ScoringScheme, TierRule,
};
use vitals_proto::v1 as pb;
use vitals_store::StoredScheme;

use crate::convert::timestamp;

fn reason<T>(part: &Part<T>, lang: Language) -> String {
    part.reason_in(lang).unwrap_or_default()
}

/// A factor in `lang`: stored factors are in English, so only another language writes
/// them anew (`currency`: the evaluation's, for amounts).
pub fn factor_to_proto(f: &Factor, currency: Option<&str>, lang: Language) -> pb::Factor {
    let written;
    let f = if lang == Language::English {
        f
    } else {
        // A factor stored with a value in words had the customer's values behind it.
        written = in_words(f, !f.display_value.is_empty(), currency, lang);
        &written
    };
    pb::Factor {
        feature: f.feature.clone(),
        value: f.value,
        contribution: f.contribution,
        label: f.label.clone(),
        display_value: f.display_value.clone(),
    }
}

pub fn factors_to_proto(
    factors: &[Factor],
    currency: Option<&str>,
    lang: Language,
) -> Vec<pb::Factor> {
    factors
        .iter()
        .map(|f| factor_to_proto(f, currency, lang))
        .collect()
}

fn churn_to_proto(
    part: &Part<ChurnAssessment>,
    currency: Option<&str>,
    lang: Language,
) -> pb::ChurnRisk {
    let mut out = pb::ChurnRisk {
        absent_reason: reason(part, lang),
        ..Default::default()
    };
    if let Some(c) = part.ready() {
        out.probability = c.probability;
        out.risk_band = c.band.clone();
        out.horizon_days = c.horizon_days;
        out.raising = factors_to_proto(&c.raising, currency, lang);
        out.lowering = factors_to_proto(&c.lowering, currency, lang);
    }
    out
}

/// An evaluation as the API answers it, its words in `lang`.
pub fn evaluation_to_proto(e: &Evaluation, lang: Language) -> pb::Evaluation {
    let currency = e.currency.as_deref();
    let mut segment = pb::SegmentAssignment {
        absent_reason: reason(&e.segment, lang),
        ..Default::default()
    };
    if let Some(s) = e.segment.ready() {
        segment.segment_id = i32::try_from(s.id).unwrap_or(i32::MAX);
        // A snapshot stored before its trait scores were kept reads as stored.
        if lang == Language::English || s.trait_scores.len() != s.traits.len() {
            segment.name = s.name.clone();
            segment.description = s.description.clone();
            segment.traits = s.traits.clone();
        } else {
            let words = segment_words(&s.trait_scores, lang);
            segment.name = words.name;
            segment.description = words.description;
            segment.traits = words.traits;
        }
    }
    let mut rfm = pb::RfmStanding {
        absent_reason: reason(&e.rfm, lang),
        ..Default::default()
    };
    if let Some(r) = e.rfm.ready() {
        rfm.recency_days = r.recency_days;
        rfm.frequency = r.frequency;
        rfm.monetary = r.monetary;
        rfm.r_score = i32::from(r.r);
        rfm.f_score = i32::from(r.f);
        rfm.m_score = i32::from(r.m);
        rfm.segment = rfm::segment_name(r.r, r.f, lang).to_owned();
    }
    let mut scorecard = pb::Scorecard {
        absent_reason: reason(&e.scorecard, lang),
        ..Default::default()
    };
    if let Some(s) = e.scorecard.ready() {
        scorecard.dimensions = s
            .dimensions
            .iter()
            .map(|d| pb::DimensionScore {
                dimension: d.dimension.as_str().to_owned(),
                score: d.score,
                inputs_used: i32::try_from(d.inputs_used).unwrap_or(i32::MAX),
                inputs_total: i32::try_from(d.inputs_total).unwrap_or(i32::MAX),
            })
            .collect();
        scorecard.composite = s.composite;
        scorecard.tier = s.tier.clone();
    }
    let mut lifetime = pb::LifetimeValue {
        absent_reason: reason(&e.lifetime, lang),
        ..Default::default()
    };
    if let Some(l) = e.lifetime.ready() {
        lifetime.probability_alive = l.probability_alive;
        lifetime.expected_purchases = l.expected_purchases;
        lifetime.expected_spend = l.expected_spend;
        lifetime.lifetime_value = l.lifetime_value;
        lifetime.horizon_months = i32::try_from(l.horizon_months).unwrap_or(i32::MAX);
        let (basis, subscription) = match &l.basis_facts {
            Some(facts) => (facts.words(currency, lang), facts.is_subscription()),
            // Stored before the facts were kept: as stored, and its first word says which.
            None => (l.basis.clone(), l.basis.starts_with("subscription")),
        };
        lifetime.basis = basis;
        lifetime.method = if subscription {
            "subscription"
        } else {
            "purchases"
        }
        .to_owned();
    }
    pb::Evaluation {
        customer_id: e.customer_id.clone(),
        external_id: e.external_id.clone(),
        as_of: Some(timestamp(e.as_of)),
        compute_time: Some(timestamp(e.computed_at)),
        churn: Some(churn_to_proto(&e.churn, currency, lang)),
        segment: Some(segment),
        rfm: Some(rfm),
        scorecard: Some(scorecard),
        lifecycle_stage: e.lifecycle.as_str().to_owned(),
        value: e.value,
        versions: Some(pb::ModelVersions {
            churn: e.versions.churn.unwrap_or(0),
            segments: e.versions.segments.unwrap_or(0),
            scoring_scheme: e.versions.scheme,
            clv: e.versions.clv.unwrap_or(0),
            text: e.versions.text.unwrap_or(0),
        }),
        comments: Some(pb::CommentSummary {
            comments: i32::try_from(e.comments.comments).unwrap_or(i32::MAX),
            negative: i32::try_from(e.comments.negative).unwrap_or(i32::MAX),
            mean_sentiment: e.comments.mean_sentiment,
            negative_topics: e
                .comments
                .negative_topics
                .iter()
                .map(|t| pb::TopicMention {
                    topic: t.topic.clone(),
                    comments: i32::try_from(t.comments).unwrap_or(i32::MAX),
                    last_time: Some(timestamp(t.last_time)),
                })
                .collect(),
        }),
        lifetime_value: Some(lifetime),
        currency: e.currency.clone().unwrap_or_default(),
        value_lost: e.value_lost,
        // The caller's view of the name: set by the handler, which knows the caller.
        display_name: String::new(),
    }
}

pub fn scheme_to_proto(stored: &StoredScheme, scheme: &ScoringScheme) -> pb::ScoringScheme {
    pb::ScoringScheme {
        version: stored.version,
        weights: scheme
            .weights
            .iter()
            .map(|(d, w)| (d.as_str().to_owned(), *w))
            .collect(),
        tiers: scheme
            .tiers
            .iter()
            .map(|t| pb::Tier {
                name: t.name.clone(),
                min_score: t.min_score,
            })
            .collect(),
        actor: stored.actor.clone(),
        create_time: Some(timestamp(stored.create_time)),
    }
}

/// A scheme from the wire; unknown dimensions are violations, and the business rules
/// (`ScoringScheme::validate`) are checked too, every field named under `scheme.`.
pub fn scheme_from_proto(s: &pb::ScoringScheme) -> Result<ScoringScheme, Violations> {
    let mut v = Violations::new();
    let mut weights = BTreeMap::new();
    for (name, w) in &s.weights {
        match Dimension::parse(name) {
            Some(d) => {
                weights.insert(d, *w);
            }
            None => v.push(
                format!("scheme.weights[{name}]"),
                format!(
                    "unknown dimension; expected one of {}",
                    Dimension::ALL.map(Dimension::as_str).join(", ")
                ),
            ),
        }
    }
    let scheme = ScoringScheme {
        weights,
        tiers: s
            .tiers
            .iter()
            .map(|t| TierRule {
                name: t.name.clone(),
                min_score: t.min_score,
            })
            .collect(),
    };
    if let Err(rules) = scheme.validate() {
        for f in rules.0 {
            v.push(format!("scheme.{}", f.field), f.description);
        }
    }
    v.into_result().map(|()| scheme)
}

/// Behavioural features by name into the domain's feature array; NaN where not given.
pub fn behaviour_from_proto(
    v: &mut Violations,
    features: &std::collections::HashMap<String, f64>,
) -> [f64; 28] {
    let mut out = [f64::NAN; 28];
    for (name, value) in features {
        match Behaviour::from_name(name) {
            Some(feature) if value.is_finite() => out[feature as usize] = *value,
            Some(_) => v.push(format!("features[{name}]"), "must be a finite number"),
            None => v.push(
                format!("features[{name}]"),
                "unknown feature; GetModel shows the feature schema",
            ),
        }
    }
    out
}
