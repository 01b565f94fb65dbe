//! The scorecard: six dimensions, each 0-100 against the population, from the reference
//! percentiles published with the segments model.
//!
//! A dimension's score is the mean of its inputs' scores, each 0-100 against the
//! population's percentiles:
//! - where less is better (complaints, days late), the share of the population the
//!   customer does at least as well as: no complaints, when most customers have none,
//!   scores 100, since none is as good as it gets;
//! - where more is better (spend, purchases), the percentile rank with ties counted half:
//!   no purchase, when half the population made none, scores 25, not 50 or 100.
//!
//! Inputs the customer has no data for (no survey answered), and inputs on which the whole
//! population is alike (every percentile equal: nothing to rank against), are left out;
//! a dimension with no input left scores a neutral 50 and says so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::Behaviour;
use crate::reference::ReferenceStats;

/// Neutral score of a dimension the customer has no data for.
pub const NEUTRAL: f64 = 50.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Value,
    Activity,
    Satisfaction,
    Loyalty,
    Credit,
    Service,
}

/// Whether a larger value of an input is better for the customer's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

impl Dimension {
    pub const ALL: [Dimension; 6] = [
        Self::Value,
        Self::Activity,
        Self::Satisfaction,
        Self::Loyalty,
        Self::Credit,
        Self::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Value => "value",
            Self::Activity => "activity",
            Self::Satisfaction => "satisfaction",
            Self::Loyalty => "loyalty",
            Self::Credit => "credit",
            Self::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The behavioural features a dimension is made of, and which way is better.
    fn inputs(self) -> &'static [(&'static str, Better)] {
        use Better::*;
        match self {
            Self::Value => &[
                ("monetary_365d", Higher),
                ("monetary_total", Higher),
                ("avg_order_value", Higher),
            ],
            Self::Activity => &[
                ("frequency_90d", Higher),
                ("recency_days", Lower),
                ("spend_trend", Higher),
            ],
            // CES is read as in CES 2.0 ("the company made it easy for me", 7 = agree).
            Self::Satisfaction => &[
                ("nps_mean", Higher),
                ("csat_mean", Higher),
                ("ces_mean", Higher),
                ("detractor_answers", Lower),
            ],
            Self::Loyalty => &[
                ("tenure_days", Higher),
                ("distinct_purchase_days", Higher),
                ("nps_last", Higher),
            ],
            Self::Credit => &[
                ("late_payment_share", Lower),
                ("mean_days_late", Lower),
                ("overdue_amount", Lower),
            ],
            Self::Service => &[
                ("complaints_365d", Lower),
                ("open_tickets", Lower),
                ("mean_resolution_hours", Lower),
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionScore {
    pub dimension: Dimension,
    /// 0-100.
    pub score: f64,
    /// How many of the dimension's inputs the customer had data for; 0 means neutral.
    pub inputs_used: usize,
    pub inputs_total: usize,
}

/// Share (0-100) of the population at or below `v`, from percentile points 0, 5, ..., 100.
fn share_at_or_below(points: &[f64], v: f64) -> f64 {
    let step = 100.0 / (points.len().max(2) - 1) as f64;
    match points.iter().rposition(|&q| q <= v) {
        None => 0.0,
        Some(i) if i + 1 == points.len() => 100.0,
        Some(i) => {
            let (lo, hi) = (points[i], points[i + 1]);
            step * i as f64 + step * (v - lo) / (hi - lo)
        }
    }
}

/// Share (0-100) of the population strictly below `v`.
fn share_below(points: &[f64], v: f64) -> f64 {
    let step = 100.0 / (points.len().max(2) - 1) as f64;
    match points.iter().position(|&q| q >= v) {
        None => 100.0,
        Some(0) => 0.0,
        Some(i) => {
            let (lo, hi) = (points[i - 1], points[i]);
            step * i as f64 - step * (hi - v) / (hi - lo)
        }
    }
}

/// The score (0-100) of one input value (see the module notes). `None` when the value is
/// undefined or the population gives nothing to rank it against.
fn input_score(reference: &ReferenceStats, feature: &str, better: Better, v: f64) -> Option<f64> {
    let points = reference.percentiles.get(feature)?;
    let (first, last) = (points.first()?, points.last()?);
    if !v.is_finite() || first >= last {
        return None;
    }
    let score = match better {
        Better::Higher => (share_below(points, v) + share_at_or_below(points, v)) / 2.0,
        Better::Lower => 100.0 - share_below(points, v),
    };
    Some(score.clamp(0.0, 100.0))
}

/// Every dimension's score for one customer's behavioural features.
pub fn scorecard(behaviour: &[f64; 28], reference: &ReferenceStats) -> Vec<DimensionScore> {
    Dimension::ALL
        .into_iter()
        .map(|dimension| {
            let inputs = dimension.inputs();
            let scores: Vec<f64> = inputs
                .iter()
                .filter_map(|(feature, better)| {
                    let input = Behaviour::from_name(feature)?;
                    if !has_evidence(input, behaviour) {
                        return None;
                    }
                    input_score(reference, feature, *better, input.of(behaviour))
                })
                .collect();
            let score = if scores.is_empty() {
                NEUTRAL
            } else {
                scores.iter().sum::<f64>() / scores.len() as f64
            };
            DimensionScore {
                dimension,
                score,
                inputs_used: scores.len(),
                inputs_total: inputs.len(),
            }
        })
        .collect()
}

/// Whether a count of bad things says anything: no detractor answers means nothing
/// without any NPS answer, nothing overdue nothing without an invoice due. Without this,
/// a customer who never answered a survey would score full satisfaction.
fn has_evidence(input: Behaviour, behaviour: &[f64; 28]) -> bool {
    let answered = |b: Behaviour| b.of(behaviour).is_finite();
    match input {
        Behaviour::DetractorAnswers => answered(Behaviour::NpsMean),
        Behaviour::OverdueAmount => Behaviour::PaymentsDue.of(behaviour) > 0.0,
        _ => true,
    }
}

/// The scores by dimension, as the scheme's composite wants them.
pub fn by_dimension(scores: &[DimensionScore]) -> BTreeMap<Dimension, f64> {
    scores.iter().map(|s| (s.dimension, s.score)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(f: impl Fn(usize) -> f64) -> Vec<f64> {
        (0..=20).map(f).collect()
    }

    #[test]
    fn shares_interpolate_between_percentiles() {
        let p = points(|i| i as f64); // uniform 0..20
        assert_eq!(share_at_or_below(&p, -1.0), 0.0);
        assert_eq!(share_at_or_below(&p, 20.0), 100.0);
        assert!((share_at_or_below(&p, 10.0) - 50.0).abs() < 1e-9);
        assert!((share_at_or_below(&p, 10.5) - 52.5).abs() < 1e-9);
        assert!((share_below(&p, 10.5) - 52.5).abs() < 1e-9);
        assert_eq!(share_below(&p, 0.0), 0.0);
        assert_eq!(share_below(&p, 21.0), 100.0);
    }

    #[test]
    fn ties_favour_the_customer() {
        // 90% of customers have no complaint: none is as good as it gets.
        let p = points(|i| if i < 19 { 0.0 } else { (i - 18) as f64 });
        let mut r = ReferenceStats {
            population: 100,
            rfm_quintiles: BTreeMap::new(),
            percentiles: BTreeMap::new(),
        };
        r.percentiles.insert("complaints_365d".into(), p.clone());
        assert_eq!(
            input_score(&r, "complaints_365d", Better::Lower, 0.0),
            Some(100.0)
        );
        assert!(input_score(&r, "complaints_365d", Better::Lower, 2.0).is_some_and(|s| s <= 10.0));
        assert_eq!(
            input_score(&r, "complaints_365d", Better::Lower, f64::NAN),
            None
        );
        assert_eq!(input_score(&r, "unknown", Better::Lower, 1.0), None);
    }

    #[test]
    fn more_is_better_counts_ties_half() {
        // Half the population bought nothing.
        let p = points(|i| if i <= 10 { 0.0 } else { (i - 10) as f64 });
        let mut r = ReferenceStats {
            population: 100,
            rfm_quintiles: BTreeMap::new(),
            percentiles: BTreeMap::new(),
        };
        r.percentiles.insert("frequency_90d".into(), p);
        r.percentiles.insert("flat".into(), points(|_| 0.0));
        let none = input_score(&r, "frequency_90d", Better::Higher, 0.0).expect("score");
        assert!((none - 25.0).abs() < 1e-9, "{none}");
        assert_eq!(
            input_score(&r, "frequency_90d", Better::Higher, 10.0),
            Some(100.0)
        );
        assert_eq!(
            input_score(&r, "flat", Better::Higher, 0.0),
            None,
            "no spread"
        );
    }

    #[test]
    fn a_dimension_without_data_is_neutral() {
        let r = ReferenceStats {
            population: 0,
            rfm_quintiles: BTreeMap::new(),
            percentiles: BTreeMap::new(),
        };
        let card = scorecard(&[f64::NAN; 28], &r);
        assert_eq!(card.len(), 6);
        assert!(
            card.iter()
                .all(|d| d.score == NEUTRAL && d.inputs_used == 0)
        );
    }

    #[test]
    fn no_survey_answer_is_no_satisfaction_score() {
        let mut r = ReferenceStats {
            population: 100,
            rfm_quintiles: BTreeMap::new(),
            percentiles: BTreeMap::new(),
        };
        r.percentiles
            .insert("detractor_answers".into(), points(|i| (i / 5) as f64));
        let mut b = [f64::NAN; 28];
        b[Behaviour::DetractorAnswers as usize] = 0.0;
        b[Behaviour::FeedbackCount as usize] = 0.0;
        let card = scorecard(&b, &r);
        let satisfaction = card
            .iter()
            .find(|d| d.dimension == Dimension::Satisfaction)
            .expect("satisfaction");
        assert_eq!(satisfaction.inputs_used, 0, "{satisfaction:?}");
        assert_eq!(satisfaction.score, NEUTRAL);
        // With an NPS answer the detractor count counts.
        b[Behaviour::NpsMean as usize] = 9.0;
        let card = scorecard(&b, &r);
        assert!(
            card.iter()
                .any(|d| d.dimension == Dimension::Satisfaction && d.inputs_used == 1)
        );
    }
}
