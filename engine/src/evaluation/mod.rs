//! The evaluation of one customer as of a time T: churn risk and why, segment, RFM,
//! scorecard with composite score and tier, lifecycle stage, and the versions of every
//! model and scheme used. The server answers with it and stores it as a snapshot; the
//! trainer's batch scoring computes the same thing.
//!
//! A part that needs a model not yet trained is `Absent` with the reason, never an error
//! for the whole evaluation.

use std::path::Path;
use std::sync::Arc;

pub mod comments;
pub use crate::text::{LoadedText, TEXT_KIND, load_text};
pub use comments::{analyse_comment, routing_words};

use serde::{Deserialize, Serialize};

use crate::domain::{Customer, CustomerData, StoredEvent};
use crate::features::{BEHAVIOUR, Behaviour, RawFeatures};
use crate::labels::{Population, standing};
use crate::models::ModelError;
use crate::models::churn::{LoadedChurn, PopulationChurn};
use crate::models::clv::{LoadedClv, RfmSummary, summarize};
use crate::models::segments::{SegmentInput, SegmentModel, SegmentProfile};
use crate::reference::ReferenceStats;
use crate::registry::{Manifest, ModelRegistry};
use crate::time::{MICROS_PER_DAY, Micros};

// The evaluation's parts and result types are the domain's (the store keeps them as
// snapshots); this module computes them with the models in service.
use vitals_domain::evaluation::lifetime::Basis;
pub use vitals_domain::evaluation::*;
use vitals_domain::words::Language;

/// The model kinds the evaluation uses, as named in the registry.
pub const CHURN_KIND: &str = "churn";
pub const SEGMENTS_KIND: &str = "segments";
pub const CLV_KIND: &str = "clv";
/// Lifetime value is reported over the next 12 months, discounted 1% a month, at a 100%
/// margin (revenue): the value at stake when deciding what a retention call is worth.
/// Margins differ by business; revenue keeps the number checkable against spend.
pub const CLV_HORIZON_MONTHS: u32 = 12;
pub const CLV_MONTHLY_DISCOUNT: f64 = 0.01;
pub const CLV_MARGIN: f64 = 1.0;
/// The reference statistics file published beside the segments model.
pub const REFERENCE_FILE: &str = "reference.json";
/// Factors listed on each side (raising, lowering) of a churn probability.
pub const TOP_FACTORS: usize = 5;

/// One population's segmentation within a segments version. Segment ids are unique
/// across the version: this population's start at `first_id`.
#[derive(Debug)]
pub struct PopulationSegments {
    /// None for a version from before segmentations were fitted per population: it
    /// segments every customer.
    pub population: Option<Population>,
    pub model: SegmentModel,
    pub first_id: usize,
}

/// A segmentation (one per population: subscribers and shop customers are described
/// against their own kind, never against each other) with the statistics the scorecard
/// and RFM are placed against (computed on the same training population).
#[derive(Debug)]
pub struct LoadedSegments {
    pub manifest: Manifest,
    pub populations: Vec<PopulationSegments>,
    pub reference: ReferenceStats,
}

impl LoadedSegments {
    fn for_population(&self, population: Population) -> Option<&PopulationSegments> {
        self.populations
            .iter()
            .find(|p| p.population == Some(population))
            .or_else(|| self.populations.iter().find(|p| p.population.is_none()))
    }

    /// The customer's segment (its version-wide id) and profile, from their own
    /// population's segmentation; None when the version has none for their population.
    pub fn assign(
        &self,
        customer: &CustomerData,
        raw: &RawFeatures,
    ) -> Option<(usize, &SegmentProfile)> {
        let part = self.for_population(Population::of(customer))?;
        let local = part.model.assign(raw);
        Some((part.first_id + local, part.model.profiles.get(local)?))
    }

    /// Every segment with its version-wide id and population, in id order.
    pub fn profiles(&self) -> impl Iterator<Item = (usize, Option<Population>, &SegmentProfile)> {
        self.populations.iter().flat_map(|p| {
            p.model
                .profiles
                .iter()
                .enumerate()
                .map(move |(i, profile)| (p.first_id + i, p.population, profile))
        })
    }

    /// The profile of a version-wide segment id.
    pub fn profile(&self, id: usize) -> Option<&SegmentProfile> {
        self.profiles()
            .find(|(i, _, _)| *i == id)
            .map(|(_, _, p)| p)
    }

    /// Segments in all.
    pub fn k(&self) -> usize {
        self.populations.iter().map(|p| p.model.k()).sum()
    }
}

/// One population's entry in a segments manifest's `feature_schema`:
/// `{"populations": [{"population", "inputs"}, ...]}`; its files are in the version's
/// subdirectory named after the population.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PopulationSegmentInputs {
    pub population: Population,
    pub inputs: Vec<SegmentInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PopulationSegmentSchemas {
    pub populations: Vec<PopulationSegmentInputs>,
}

/// Loads a segments version after verifying its files' hashes.
pub fn load_segments(
    registry: &dyn ModelRegistry,
    version: u64,
) -> Result<LoadedSegments, ModelError> {
    let bad = |path: &Path, reason: String| ModelError::File {
        path: path.display().to_string(),
        reason,
    };
    let (manifest, dir) = registry.verified(SEGMENTS_KIND, version).map_err(|e| {
        let at = format!("{}/{SEGMENTS_KIND}/{version}", registry.location());
        bad(Path::new(&at), e.to_string())
    })?;
    let parts: Vec<(Option<Population>, std::path::PathBuf)> =
        if manifest.feature_schema.get("populations").is_some() {
            let schemas: PopulationSegmentSchemas =
                serde_json::from_value(manifest.feature_schema.clone()).map_err(|e| {
                    bad(
                        &dir,
                        format!("per-population segment inputs unreadable: {e}"),
                    )
                })?;
            schemas
                .populations
                .iter()
                .map(|p| (Some(p.population), dir.join(p.population.as_str())))
                .collect()
        } else {
            vec![(None, dir.clone())]
        };
    let mut populations = Vec::new();
    let mut first_id = 0;
    for (population, part_dir) in parts {
        let model = SegmentModel::load(&part_dir)?;
        for input in &model.inputs {
            let known = input.name.starts_with("attr.") || BEHAVIOUR.contains(&input.name.as_str());
            if !known {
                return Err(bad(
                    &part_dir,
                    format!(
                        "segment input {:?} is not a feature this engine computes",
                        input.name
                    ),
                ));
            }
        }
        let k = model.k();
        populations.push(PopulationSegments {
            population,
            model,
            first_id,
        });
        first_id += k;
    }
    if populations.is_empty() {
        return Err(bad(&dir, "the version has no segmentation".into()));
    }
    let path = dir.join(REFERENCE_FILE);
    let bytes = std::fs::read(&path).map_err(|e| bad(&path, e.to_string()))?;
    let reference: ReferenceStats =
        serde_json::from_slice(&bytes).map_err(|e| bad(&path, e.to_string()))?;
    Ok(LoadedSegments {
        manifest,
        populations,
        reference,
    })
}

/// The models in service; each kind may be missing (not trained yet).
#[derive(Debug, Clone, Default)]
pub struct Models {
    pub churn: Option<Arc<LoadedChurn>>,
    pub segments: Option<Arc<LoadedSegments>>,
    pub clv: Option<Arc<LoadedClv>>,
    /// Comment sentiment and topics; without it the built-in lexicons analyse comments.
    pub text: Option<Arc<LoadedText>>,
}

/// The churn probability of a feature record with its top factors each way, in words
/// (`currency` for the money among them).
pub fn assess_churn(
    churn: &LoadedChurn,
    model: &PopulationChurn,
    raw: &RawFeatures,
    currency: Option<&str>,
) -> ChurnAssessment {
    let row = model.schema.transform(raw);
    assess_churn_row(churn, model, &row, Some(raw), currency)
}

/// As [`assess_churn`], for a row already in model input form (standardized, schema
/// order); `raw` is the record it came from, when known (without it, factors have names
/// but no values).
pub fn assess_churn_row(
    churn: &LoadedChurn,
    model: &PopulationChurn,
    row: &[f32],
    raw: Option<&RawFeatures>,
    currency: Option<&str>,
) -> ChurnAssessment {
    let probability = model.model.probability(row);
    let contributions = model.model.contributions(row);
    let (raising, lowering) = vitals_domain::explain::strongest_factors(
        &model.schema,
        &contributions,
        raw,
        currency,
        TOP_FACTORS,
    );
    ChurnAssessment {
        probability,
        band: risk_band(probability).to_owned(),
        horizon_days: churn.horizon as f64 / MICROS_PER_DAY as f64,
        raising,
        lowering,
        model_version: churn.manifest.version,
    }
}

/// The lifetime value of one non-contractual customer's purchases, or why there is none.
pub fn assess_lifetime(
    clv: &LoadedClv,
    customer: &Customer,
    events: &[StoredEvent],
    as_of: Micros,
) -> Part<LifetimeValue> {
    let unit = (clv.model.unit_days * MICROS_PER_DAY as f64).round() as Micros;
    let model = &clv.model;
    let (summary, never_bought) = match summarize(events, as_of, unit) {
        Some(summary) => (summary, false),
        // No purchase yet: valued as a customer whose first contact was their sign-up,
        // with no purchase since: the shop's purchase rates and spend, weighed by how
        // long they have been quiet.
        None => match customer.data.signup_time.filter(|&t| t <= as_of) {
            Some(signup) => (
                RfmSummary {
                    x: 0.0,
                    t_x: 0.0,
                    t: (as_of - signup) as f64 / unit as f64,
                    monetary: 0.0,
                },
                true,
            ),
            None => {
                return Part::because(Absence::NothingToValue);
            }
        },
    };
    let probability_alive = model.bgnbd.probability_alive(&summary);
    let basis = if never_bought {
        Basis::NeverBought {
            days_since_signup: summary.t * model.unit_days,
        }
    } else if summary.x == 0.0 {
        Basis::OnePurchase
    } else {
        Basis::Purchases {
            repeat_days: summary.x,
            days_since_last: (summary.t - summary.t_x) * model.unit_days,
        }
    };
    Part::Ready(LifetimeValue {
        probability_alive,
        expected_purchases: model
            .expected_purchases_months(&summary, f64::from(CLV_HORIZON_MONTHS)),
        expected_spend: model.gamma_gamma.expected_spend(&summary),
        lifetime_value: model.lifetime_value(
            &summary,
            CLV_HORIZON_MONTHS,
            CLV_MONTHLY_DISCOUNT,
            CLV_MARGIN,
        ),
        horizon_months: CLV_HORIZON_MONTHS,
        model_version: clv.manifest.version,
        basis: basis.words(None, Language::English),
        basis_facts: Some(basis),
    })
}

/// The lifetime value of a contractual customer: their monthly revenue for as long as
/// their churn risk says they stay (`vitals_domain::evaluation::lifetime`).
pub fn assess_subscription(
    customer: &Customer,
    events: &[StoredEvent],
    as_of: Micros,
    churn: &Part<ChurnAssessment>,
    currency: Option<&str>,
) -> Part<LifetimeValue> {
    let churn = match churn {
        Part::Ready(c) => c,
        Part::Absent { reason, why } => {
            return match why {
                Some(why) => Part::because(Absence::NoChurnRiskToValue {
                    because: Box::new(why.clone()),
                }),
                None => Part::absent(format!(
                    "a subscription is valued from its churn risk, and there is none: {reason}"
                )),
            };
        }
    };
    let Some(revenue) = lifetime::monthly_revenue(&customer.data, events, as_of) else {
        return Part::because(Absence::NoMonthlyRevenue);
    };
    let v = lifetime::subscription_value(
        churn.probability,
        churn.horizon_days,
        revenue.amount,
        CLV_HORIZON_MONTHS,
        CLV_MONTHLY_DISCOUNT,
        CLV_MARGIN,
    );
    let basis = Basis::Subscription {
        monthly: revenue.amount,
        source: revenue.source,
        expected_months: v.expected_months,
        horizon_months: CLV_HORIZON_MONTHS,
        monthly_retention: v.monthly_retention,
        churn_probability: churn.probability,
        churn_horizon_days: churn.horizon_days,
    };
    Part::Ready(LifetimeValue {
        probability_alive: 1.0,
        expected_purchases: v.expected_months,
        expected_spend: revenue.amount,
        lifetime_value: v.lifetime_value,
        horizon_months: CLV_HORIZON_MONTHS,
        model_version: churn.model_version,
        basis: basis.words(currency, Language::English),
        basis_facts: Some(basis),
    })
}

/// Evaluates one customer from their whole history as of `as_of`; events not yet known
/// at `as_of` are ignored.
pub fn evaluate(
    customer: &Customer,
    events: &[StoredEvent],
    as_of: Micros,
    models: &Models,
    scheme: &VersionedScheme,
    computed_at: Micros,
) -> Evaluation {
    let raw = RawFeatures::of(&customer.data, events, as_of);
    let currency = crate::features::currency_of(&customer.data, events, as_of);

    let churn = match &models.churn {
        None => Part::because(Absence::NoChurnModel),
        Some(churn) => {
            let population = Population::of(&customer.data);
            match (
                standing(&customer.data, events, as_of).absence(),
                churn.for_population(population),
            ) {
                (Some(why), _) => Part::because(why),
                (None, None) => Part::because(Absence::NoModelForPopulation {
                    part: ModelPart::Churn,
                    version: churn.manifest.version,
                    population,
                }),
                (None, Some(model)) => {
                    Part::Ready(assess_churn(churn, model, &raw, currency.as_deref()))
                }
            }
        }
    };
    let churn_probability = churn.ready().map(|c| c.probability);

    let (segment, rfm, scorecard) = match &models.segments {
        None => (
            Part::because(Absence::NoSegmentsModel),
            Part::because(Absence::NoSegmentsModel),
            Part::because(Absence::NoSegmentsModel),
        ),
        Some(s) => {
            let segment = match s.assign(&customer.data, &raw) {
                Some((id, p)) => Part::Ready(SegmentAssignment {
                    id,
                    name: p.name.clone(),
                    description: p.description.clone(),
                    traits: p.traits.iter().map(|t| t.phrase.clone()).collect(),
                    trait_scores: p.scores(),
                    model_version: s.manifest.version,
                }),
                None => Part::because(Absence::NoModelForPopulation {
                    part: ModelPart::Segments,
                    version: s.manifest.version,
                    population: Population::of(&customer.data),
                }),
            };
            let rfm = match rfm::rfm(&raw.behaviour, &s.reference) {
                Ok(r) => Part::Ready(r),
                Err(why) => Part::because(why),
            };
            let dimensions = scorecard::scorecard(&raw.behaviour, &s.reference);
            let composite = scheme
                .scheme
                .composite(&scorecard::by_dimension(&dimensions));
            let tier = scheme.scheme.tier(composite).unwrap_or_default().to_owned();
            let card = Part::Ready(Scorecard {
                dimensions,
                composite,
                tier,
            });
            (segment, rfm, card)
        }
    };

    let lifetime = match &models.clv {
        _ if customer.data.contractual => {
            assess_subscription(customer, events, as_of, &churn, currency.as_deref())
        }
        None => Part::because(Absence::NoLifetimeModel),
        Some(clv) => assess_lifetime(clv, customer, events, as_of),
    };
    // A customer with no money of their own is valued in the purchase model's currency.
    let currency = currency.or_else(|| {
        lifetime
            .ready()
            .filter(|_| !customer.data.contractual)
            .and(models.clv.as_ref())
            .and_then(|clv| clv.currency().map(str::to_owned))
    });
    let monetary = Behaviour::Monetary365d.of(&raw.behaviour);
    let value = match lifetime.ready() {
        Some(l) if l.lifetime_value.is_finite() => l.lifetime_value,
        _ if monetary.is_finite() => monetary,
        _ => 0.0,
    };
    let lifecycle = lifecycle::stage(
        &customer.data,
        events,
        as_of,
        Behaviour::TenureDays.of(&raw.behaviour),
        churn_probability,
    );
    let value_lost = match lifecycle {
        LifecycleStage::Dormant | LifecycleStage::Churned => {
            lifetime::value_lost(&customer.data, events, as_of)
        }
        _ => None,
    };
    Evaluation {
        customer_id: customer.id.clone(),
        external_id: customer.data.external_id.clone(),
        as_of,
        computed_at,
        churn,
        segment,
        rfm,
        scorecard,
        lifetime,
        lifecycle,
        value,
        currency,
        value_lost,
        comments: comments::summary(models.text.as_deref(), events, as_of),
        versions: Versions {
            churn: models.churn.as_ref().map(|c| c.manifest.version),
            segments: models.segments.as_ref().map(|s| s.manifest.version),
            clv: models.clv.as_ref().map(|c| c.manifest.version),
            scheme: scheme.version,
            text: models.text.as_ref().map(|t| t.manifest.version),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CustomerData;

    #[test]
    fn without_models_every_model_part_is_absent_with_a_reason() {
        let customer = Customer {
            id: "c1".into(),
            data: CustomerData::new("ext-1"),
            version: 1,
            create_time: 0,
            update_time: 0,
        };
        let scheme = VersionedScheme {
            version: 1,
            scheme: ScoringScheme::default(),
        };
        let e = evaluate(
            &customer,
            &[],
            100 * MICROS_PER_DAY,
            &Models::default(),
            &scheme,
            0,
        );
        assert!(matches!(&e.churn, Part::Absent { reason, .. } if reason.contains("churn")));
        assert!(matches!(&e.scorecard, Part::Absent { .. }));
        assert_eq!(e.expected_loss(), None);
        assert_eq!(e.versions.scheme, 1);
        let json = serde_json::to_string(&e).expect("json");
        let back: Evaluation = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, e);
    }
}
