//! An evaluation as a person reads it in a terminal.

use std::fmt::Write;

use vitals_proto::v1 as pb;

fn factors(out: &mut String, title: &str, list: &[pb::Factor]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "    {title}:");
    for f in list {
        let value = f
            .value
            .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"));
        let _ = writeln!(
            out,
            "      {:<38} value {:>9}   {:+.3} log-odds",
            f.feature, value, f.contribution
        );
    }
}

pub fn evaluation(e: &pb::Evaluation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Customer {} (id {})", e.external_id, e.customer_id);
    let _ = writeln!(out, "  lifecycle stage: {}", e.lifecycle_stage);
    match &e.lifetime_value {
        Some(l) if l.absent_reason.is_empty() => {
            let _ = writeln!(
                out,
                "  lifetime value:  {:.2} over {} months ({:.2} purchases of {:.2}; still buying with probability {:.2})",
                l.lifetime_value,
                l.horizon_months,
                l.expected_purchases,
                l.expected_spend,
                l.probability_alive
            );
        }
        Some(l) => {
            let _ = writeln!(out, "  lifetime value:  - ({})", l.absent_reason);
        }
        None => {}
    }
    let _ = writeln!(out, "  value at stake:  {:.2}", e.value);
    match &e.churn {
        Some(c) if c.absent_reason.is_empty() => {
            let _ = writeln!(
                out,
                "  churn risk:      {:.1}% within {:.0} days ({} risk)",
                c.probability * 100.0,
                c.horizon_days,
                c.risk_band
            );
            factors(&mut out, "raising it", &c.raising);
            factors(&mut out, "lowering it", &c.lowering);
        }
        Some(c) => {
            let _ = writeln!(out, "  churn risk:      - ({})", c.absent_reason);
        }
        None => {}
    }
    match &e.segment {
        Some(s) if s.absent_reason.is_empty() => {
            let _ = writeln!(
                out,
                "  segment:         {} (segment {})",
                s.name, s.segment_id
            );
            for t in &s.traits {
                let _ = writeln!(out, "    - {t}");
            }
        }
        Some(s) => {
            let _ = writeln!(out, "  segment:         - ({})", s.absent_reason);
        }
        None => {}
    }
    match &e.rfm {
        Some(r) if r.absent_reason.is_empty() => {
            let _ = writeln!(
                out,
                "  RFM:             R{} F{} M{}: {}",
                r.r_score, r.f_score, r.m_score, r.segment
            );
        }
        Some(r) => {
            let _ = writeln!(out, "  RFM:             - ({})", r.absent_reason);
        }
        None => {}
    }
    match &e.scorecard {
        Some(s) if s.absent_reason.is_empty() => {
            let dims: Vec<String> = s
                .dimensions
                .iter()
                .map(|d| format!("{} {:.0}", d.dimension, d.score))
                .collect();
            let _ = writeln!(out, "  scorecard:       {}", dims.join(" · "));
            let _ = writeln!(
                out,
                "  composite:       {:.1} → tier {}",
                s.composite, s.tier
            );
        }
        Some(s) => {
            let _ = writeln!(out, "  scorecard:       - ({})", s.absent_reason);
        }
        None => {}
    }
    if let Some(v) = &e.versions {
        let _ = writeln!(
            out,
            "  versions:        churn model {}, segments model {}, lifetime-value model {}, scoring scheme {}",
            v.churn, v.segments, v.clv, v.scoring_scheme
        );
    }
    out
}
