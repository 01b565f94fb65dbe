//! The scoring scheme: how the six scorecard dimensions weigh into one composite score,
//! and which tier a composite score earns. Versioned by the store; every stored
//! evaluation names the version it used, so a change of weights is traceable.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::scorecard::Dimension;
use crate::validate::{MAX_LABEL_LEN, Violations};

/// Most tiers a scheme may define (CRM screens show them as a short legend).
pub const MAX_TIERS: usize = 10;
/// How far the weights' sum may stray from 1 (rounding in hand-written JSON or forms).
const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierRule {
    pub name: String,
    /// The lowest composite score (0-100) in this tier.
    pub min_score: f64,
}

/// Dimension weights (non-negative, summing to 1) and tiers, best tier first with
/// strictly decreasing thresholds, the last one starting at 0 so every score has a tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoringScheme {
    pub weights: BTreeMap<Dimension, f64>,
    pub tiers: Vec<TierRule>,
}

impl Default for ScoringScheme {
    /// Version 1: value and activity first (they move revenue), then satisfaction,
    /// loyalty and service, with credit as a guard rail.
    fn default() -> Self {
        let weights = [
            (Dimension::Value, 0.25),
            (Dimension::Activity, 0.20),
            (Dimension::Satisfaction, 0.15),
            (Dimension::Loyalty, 0.15),
            (Dimension::Credit, 0.10),
            (Dimension::Service, 0.15),
        ]
        .into_iter()
        .collect();
        let tier = |name: &str, min_score: f64| TierRule {
            name: name.to_owned(),
            min_score,
        };
        Self {
            weights,
            tiers: vec![
                tier("platinum", 80.0),
                tier("gold", 60.0),
                tier("silver", 40.0),
                tier("bronze", 0.0),
            ],
        }
    }
}

impl ScoringScheme {
    /// Every rule broken, by field (`weights[value]`, `tiers[2].min_score`, ...).
    pub fn validate(&self) -> Result<(), Violations> {
        let mut v = Violations::new();
        let mut sum = 0.0;
        for (dimension, &w) in &self.weights {
            if !w.is_finite() || w < 0.0 {
                v.push(
                    format!("weights[{}]", dimension.as_str()),
                    format!("must be a non-negative number, got {w}"),
                );
            } else {
                sum += w;
            }
        }
        if v.is_empty() && (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            // Rounded: 0.1 + 0.2 is not 0.3 in binary, and nobody should read 1.4999999999999998.
            v.push(
                "weights",
                format!("must sum to 1, they sum to {}", (sum * 1e6).round() / 1e6),
            );
        }
        if self.tiers.is_empty() || self.tiers.len() > MAX_TIERS {
            v.push(
                "tiers",
                format!("must hold 1 to {MAX_TIERS} tiers, got {}", self.tiers.len()),
            );
        }
        let mut names = HashSet::new();
        for (i, tier) in self.tiers.iter().enumerate() {
            let name = tier.name.trim();
            if name.is_empty() || tier.name.len() > MAX_LABEL_LEN {
                v.push(
                    format!("tiers[{i}].name"),
                    format!("must be 1 to {MAX_LABEL_LEN} characters"),
                );
            } else if !names.insert(name.to_lowercase()) {
                v.push(
                    format!("tiers[{i}].name"),
                    format!("{name:?} is used by an earlier tier; names must be unique"),
                );
            }
            if !(0.0..=100.0).contains(&tier.min_score) {
                v.push(
                    format!("tiers[{i}].min_score"),
                    format!("must be between 0 and 100, got {}", tier.min_score),
                );
            } else if i > 0 && tier.min_score >= self.tiers[i - 1].min_score {
                v.push(
                    format!("tiers[{i}].min_score"),
                    format!(
                        "thresholds must strictly decrease from the best tier down: {} follows {}",
                        tier.min_score,
                        self.tiers[i - 1].min_score
                    ),
                );
            }
        }
        if let Some(last) = self.tiers.last()
            && last.min_score != 0.0
        {
            v.push(
                format!("tiers[{}].min_score", self.tiers.len() - 1),
                "the lowest tier must start at 0, so every score has a tier",
            );
        }
        v.into_result()
    }

    pub fn weight(&self, dimension: Dimension) -> f64 {
        self.weights.get(&dimension).copied().unwrap_or(0.0)
    }

    /// The weighted sum of the dimension scores.
    pub fn composite(&self, scores: &BTreeMap<Dimension, f64>) -> f64 {
        scores
            .iter()
            .map(|(d, s)| self.weight(*d) * s)
            .sum::<f64>()
            .clamp(0.0, 100.0)
    }

    /// The best tier whose threshold the score reaches.
    pub fn tier(&self, composite: f64) -> Option<&str> {
        self.tiers
            .iter()
            .find(|t| composite >= t.min_score)
            .or(self.tiers.last())
            .map(|t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &ScoringScheme) -> Vec<String> {
        s.validate()
            .err()
            .map(|v| v.0.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_default_scheme_is_valid() {
        assert_eq!(ScoringScheme::default().validate(), Ok(()));
    }

    #[test]
    fn weights_must_be_non_negative_and_sum_to_one() {
        let mut s = ScoringScheme::default();
        s.weights.insert(Dimension::Value, -0.25);
        assert_eq!(fields(&s), ["weights[value]"]);
        s.weights.insert(Dimension::Value, 0.5);
        assert_eq!(fields(&s), ["weights"]);
        s.weights.insert(Dimension::Value, f64::NAN);
        assert_eq!(fields(&s), ["weights[value]"]);
    }

    #[test]
    fn tiers_must_be_unique_ordered_and_start_at_zero() {
        let mut s = ScoringScheme::default();
        s.tiers[1].name = "Platinum".into();
        s.tiers[2].min_score = 70.0;
        s.tiers[3].min_score = 10.0;
        assert_eq!(
            fields(&s),
            ["tiers[1].name", "tiers[2].min_score", "tiers[3].min_score"]
        );
        s.tiers.clear();
        assert_eq!(fields(&s), ["tiers"]);
    }

    #[test]
    fn composite_and_tier() {
        let s = ScoringScheme::default();
        let all = |x: f64| Dimension::ALL.into_iter().map(|d| (d, x)).collect();
        assert!((s.composite(&all(70.0)) - 70.0).abs() < 1e-9);
        assert_eq!(s.tier(85.0), Some("platinum"));
        assert_eq!(s.tier(80.0), Some("platinum"));
        assert_eq!(s.tier(79.9), Some("gold"));
        assert_eq!(s.tier(0.0), Some("bronze"));
    }
}
