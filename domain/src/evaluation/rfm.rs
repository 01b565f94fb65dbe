//! RFM: recency, frequency and monetary value, scored 1-5 against the population's
//! quintiles, and named with the usual RFM segments.

use serde::{Deserialize, Serialize};

use crate::evaluation::Absence;
use crate::features::Behaviour;
use crate::reference::ReferenceStats;
use crate::words::Language;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rfm {
    /// Days since the last purchase.
    pub recency_days: f64,
    /// Purchases in the last 365 days.
    pub frequency: f64,
    /// Spend in the last 365 days, in major currency units.
    pub monetary: f64,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: String,
}

/// The customer's RFM standing, or why there is none.
pub fn rfm(behaviour: &[f64; 28], reference: &ReferenceStats) -> Result<Rfm, Absence> {
    let recency_days = Behaviour::RecencyDays.of(behaviour);
    if !recency_days.is_finite() {
        return Err(Absence::NoPurchaseForRfm);
    }
    let frequency = Behaviour::Frequency365d.of(behaviour);
    let monetary = Behaviour::Monetary365d.of(behaviour);
    let cuts = |key: &str| {
        reference
            .rfm_quintiles
            .get(key)
            .filter(|c| c.len() == 4)
            .ok_or_else(|| Absence::NoReferenceQuintiles {
                key: key.to_owned(),
            })
    };
    let r = recency_capped(
        ReferenceStats::quintile_score(cuts("recency")?, recency_days, false),
        recency_days,
    );
    let f = ReferenceStats::quintile_score(cuts("frequency")?, frequency, true);
    let m = ReferenceStats::quintile_score(cuts("monetary")?, monetary, true);
    Ok(Rfm {
        recency_days,
        frequency,
        monetary,
        r,
        f,
        m,
        segment: segment_name(r, f, Language::English).to_owned(),
    })
}

/// The recency score agrees with the lifecycle stage's notion of recent, whatever the
/// population's quintiles say (a population full of long-lapsed customers would make
/// a half-year-old purchase look recent): no purchase for more than 180 days (dormant)
/// scores 1, for more than 90 days (at risk) at most 2.
fn recency_capped(r: u8, recency_days: f64) -> u8 {
    use super::lifecycle::{AT_RISK_AFTER_DAYS, DORMANT_AFTER_DAYS};
    if recency_days > DORMANT_AFTER_DAYS {
        1
    } else if recency_days > AT_RISK_AFTER_DAYS {
        r.min(2)
    } else {
        r
    }
}

/// The RFM segment from the recency and frequency scores: the widely used R×F grid
/// (monetary value follows frequency closely and is reported beside it).
pub fn segment_name(r: u8, f: u8, lang: Language) -> &'static str {
    let (en, zh) = match (r, f) {
        (5, 4..=5) => ("Champions", "冠军客户"),
        (3..=4, 4..=5) => ("Loyal", "忠诚客户"),
        (4..=5, 2..=3) => ("Potential loyalist", "潜在忠诚客户"),
        (5, 1) => ("New", "新客户"),
        (4, 1) => ("Promising", "有潜力的客户"),
        (3, 3) => ("Need attention", "需要关注"),
        (3, 1..=2) => ("About to sleep", "即将沉睡"),
        (1..=2, 5) => ("Can't lose them", "不能失去的客户"),
        (1..=2, 3..=4) => ("At risk", "有流失风险"),
        (1, 1) => ("Lost", "已流失"),
        _ => ("Hibernating", "休眠客户"),
    };
    lang.pick(en, zh)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn recency_scores_agree_with_the_lifecycle_stage() {
        assert_eq!(recency_capped(5, 200.0), 1, "dormant is never recent");
        assert_eq!(recency_capped(5, 100.0), 2, "at risk is at most R2");
        assert_eq!(recency_capped(5, 10.0), 5);
    }

    #[test]
    fn every_cell_of_the_grid_has_a_name() {
        for r in 1..=5 {
            for f in 1..=5 {
                assert!(!segment_name(r, f, Language::English).is_empty());
                assert!(!segment_name(r, f, Language::Chinese).is_ascii());
            }
        }
        assert_eq!(segment_name(5, 5, Language::English), "Champions");
        assert_eq!(segment_name(1, 5, Language::English), "Can't lose them");
        assert_eq!(segment_name(2, 1, Language::English), "Hibernating");
        assert_eq!(segment_name(1, 1, Language::English), "Lost");
    }

    #[test]
    fn scores_against_quintiles() {
        let mut reference = ReferenceStats {
            population: 10,
            rfm_quintiles: BTreeMap::new(),
            percentiles: BTreeMap::new(),
        };
        reference
            .rfm_quintiles
            .insert("recency".into(), vec![10.0, 30.0, 60.0, 120.0]);
        reference
            .rfm_quintiles
            .insert("frequency".into(), vec![1.0, 2.0, 4.0, 8.0]);
        reference
            .rfm_quintiles
            .insert("monetary".into(), vec![10.0, 50.0, 100.0, 500.0]);
        let mut b = [f64::NAN; 28];
        assert!(rfm(&b, &reference).is_err(), "no purchase, no RFM");
        b[Behaviour::RecencyDays as usize] = 5.0;
        b[Behaviour::Frequency365d as usize] = 12.0;
        b[Behaviour::Monetary365d as usize] = 900.0;
        let got = rfm(&b, &reference).expect("rfm");
        assert_eq!((got.r, got.f, got.m), (5, 5, 5));
        assert_eq!(got.segment, "Champions");
    }
}
