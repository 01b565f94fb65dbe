//! Evaluations, schemes and feature records between the domain and `vitals.v1`.

use std::collections::BTreeMap;

use vitals_domain::Violations;
use vitals_domain::features::Behaviour;
use vitals_engine::evaluation::{
    ChurnAssessment, Dimension, Evaluation, Factor, Part, ScoringScheme, TierRule,
};
use vitals_proto::v1 as pb;
use vitals_store::StoredScheme;

use crate::convert::timestamp;

fn reason<T>(part: &Part<T>) -> String {
    match part {
        Part::Ready(_) => String::new(),
        Part::Absent { reason } => reason.clone(),
    }
}

pub fn factor_to_proto(f: &Factor) -> pb::Factor {
    pb::Factor {
        feature: f.feature.clone(),
        value: f.value,
        contribution: f.contribution,
        label: f.label.clone(),
        display_value: f.display_value.clone(),
    }
}

fn churn_to_proto(part: &Part<ChurnAssessment>) -> pb::ChurnRisk {
    let mut out = pb::ChurnRisk {
        absent_reason: reason(part),
        ..Default::default()
    };
    if let Some(c) = part.ready() {
        out.probability = c.probability;
        out.risk_band = c.band.clone();
        out.horizon_days = c.horizon_days;
        out.raising = c.raising.iter().map(factor_to_proto).collect();
        out.lowering = c.lowering.iter().map(factor_to_proto).collect();
    }
    out
}

pub fn evaluation_to_proto(e: &Evaluation) -> pb::Evaluation {
    let mut segment = pb::SegmentAssignment {
        absent_reason: reason(&e.segment),
        ..Default::default()
    };
    if let Some(s) = e.segment.ready() {
        segment.segment_id = i32::try_from(s.id).unwrap_or(i32::MAX);
        segment.name = s.name.clone();
        segment.description = s.description.clone();
        segment.traits = s.traits.clone();
    }
    let mut rfm = pb::RfmStanding {
        absent_reason: reason(&e.rfm),
        ..Default::default()
    };
    if let Some(r) = e.rfm.ready() {
        rfm.recency_days = r.recency_days;
        rfm.frequency = r.frequency;
        rfm.monetary = r.monetary;
        rfm.r_score = i32::from(r.r);
        rfm.f_score = i32::from(r.f);
        rfm.m_score = i32::from(r.m);
        rfm.segment = r.segment.clone();
    }
    let mut scorecard = pb::Scorecard {
        absent_reason: reason(&e.scorecard),
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
        absent_reason: reason(&e.lifetime),
        ..Default::default()
    };
    if let Some(l) = e.lifetime.ready() {
        lifetime.probability_alive = l.probability_alive;
        lifetime.expected_purchases = l.expected_purchases;
        lifetime.expected_spend = l.expected_spend;
        lifetime.lifetime_value = l.lifetime_value;
        lifetime.horizon_months = i32::try_from(l.horizon_months).unwrap_or(i32::MAX);
        lifetime.basis = l.basis.clone();
    }
    pb::Evaluation {
        customer_id: e.customer_id.clone(),
        external_id: e.external_id.clone(),
        as_of: Some(timestamp(e.as_of)),
        compute_time: Some(timestamp(e.computed_at)),
        churn: Some(churn_to_proto(&e.churn)),
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
