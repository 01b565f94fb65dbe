//! Reference statistics of the population, published with each training run: the RFM
//! quintile cut points and percentiles of every behavioural feature, against which a
//! single customer's scorecard is later placed ("top 10% by spend").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::{BEHAVIOUR, Behaviour, RawFeatures};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceStats {
    /// How many customers the statistics describe.
    pub population: usize,
    /// Quintile cut points (20th, 40th, 60th, 80th percentiles) of recency (days),
    /// frequency (purchases in the last 365 days) and monetary value (spend in the last
    /// 365 days), over customers with at least one purchase.
    pub rfm_quintiles: BTreeMap<String, Vec<f64>>,
    /// Percentiles 0, 5, ..., 100 of every behavioural feature, over customers for whom
    /// it is defined.
    pub percentiles: BTreeMap<String, Vec<f64>>,
}

/// The `q`-quantile (0..=1) of sorted values, by linear interpolation.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn column(rows: &[&RawFeatures], name: &str, only_buyers: bool) -> Vec<f64> {
    let Some(feature) = Behaviour::from_name(name) else {
        return Vec::new();
    };
    let mut v: Vec<f64> = rows
        .iter()
        .filter(|r| !only_buyers || Behaviour::FrequencyTotal.of(&r.behaviour) > 0.0)
        .map(|r| feature.of(&r.behaviour))
        .filter(|x| x.is_finite())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

impl ReferenceStats {
    pub fn compute(rows: &[&RawFeatures]) -> Self {
        let mut rfm_quintiles = BTreeMap::new();
        for (key, feature) in [
            ("recency", "recency_days"),
            ("frequency", "frequency_365d"),
            ("monetary", "monetary_365d"),
        ] {
            let values = column(rows, feature, true);
            if !values.is_empty() {
                let cuts = [0.2, 0.4, 0.6, 0.8].map(|q| quantile(&values, q)).to_vec();
                rfm_quintiles.insert(key.to_owned(), cuts);
            }
        }
        let mut percentiles = BTreeMap::new();
        for name in BEHAVIOUR {
            let values = column(rows, name, false);
            if !values.is_empty() {
                let p = (0..=20)
                    .map(|i| quantile(&values, f64::from(i) / 20.0))
                    .collect();
                percentiles.insert(name.to_owned(), p);
            }
        }
        Self {
            population: rows.len(),
            rfm_quintiles,
            percentiles,
        }
    }

    /// The 1-5 score of a value against quintile cut points; `higher_is_better` is false
    /// for recency (fewer days since the last purchase is better).
    pub fn quintile_score(cuts: &[f64], value: f64, higher_is_better: bool) -> u8 {
        let below = cuts.iter().filter(|&&c| value > c).count() as u8;
        let score = below + 1;
        if higher_is_better { score } else { 6 - score }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&v, 0.1), 1.4);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn quintile_scores() {
        let cuts = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(ReferenceStats::quintile_score(&cuts, 5.0, true), 1);
        assert_eq!(ReferenceStats::quintile_score(&cuts, 45.0, true), 5);
        assert_eq!(ReferenceStats::quintile_score(&cuts, 25.0, true), 3);
        assert_eq!(ReferenceStats::quintile_score(&cuts, 5.0, false), 5);
    }
}
