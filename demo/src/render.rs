//! An evaluation as a person reads it in a terminal.

use std::fmt::Write;

use vitals_proto::v1 as pb;

fn factors(out: &mut String, title: &str, list: &[pb::Factor]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "    {title}:");
    for f in list {
        let label = if f.label.is_empty() {
            &f.feature
        } else {
            &f.label
        };
        let reason = if f.display_value.is_empty() {
            label.clone()
        } else {
            format!("{label}: {}", f.display_value)
        };
        let _ = writeln!(out, "      {reason:<58} {:+.2} log-odds", f.contribution);
    }
}

/// Money with the evaluation's currency.
fn money(v: f64, currency: &str) -> String {
    vitals_domain::explain::money(v, (!currency.is_empty()).then_some(currency))
}

/// The customer as a person reads them: their name, with the external id to look them up.
pub fn name(e: &pb::Evaluation) -> String {
    if e.display_name.is_empty() || e.display_name == e.external_id {
        e.external_id.clone()
    } else {
        format!("{} ({})", e.display_name, e.external_id)
    }
}

/// A short at-risk list: who, how likely to leave, what they are worth, where they stand.
pub fn at_risk_table(rows: &[pb::Evaluation]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<24} {:>10} {:>16} {:>16}  {:<10} top reason",
        "customer", "churn risk", "lifetime value", "expected loss", "stage"
    );
    for e in rows {
        let (p, reason) = match &e.churn {
            Some(c) if c.absent_reason.is_empty() => (
                format!("{:.1}%", c.probability * 100.0),
                c.raising
                    .first()
                    .map(|f| format!("{}: {}", f.label, f.display_value))
                    .unwrap_or_default(),
            ),
            _ => ("-".to_owned(), String::new()),
        };
        let probability = e
            .churn
            .as_ref()
            .filter(|c| c.absent_reason.is_empty())
            .map_or(0.0, |c| c.probability);
        let _ = writeln!(
            out,
            "  {:<24} {:>10} {:>16} {:>16}  {:<10} {reason}",
            name(e),
            p,
            money(e.value, &e.currency),
            money(e.value * probability, &e.currency),
            stage(e),
        );
    }
    out
}

/// The lifecycle stage in words: `at_risk` → "at risk".
fn stage(e: &pb::Evaluation) -> String {
    e.lifecycle_stage.replace('_', " ")
}

/// The win-back list: who left, what it cost, and since when.
pub fn win_back_table(rows: &[pb::Evaluation]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<24} {:>16}  {:<10} why they count as gone",
        "customer", "value lost", "stage"
    );
    for e in rows {
        let why = e
            .churn
            .as_ref()
            .map(|c| {
                c.absent_reason
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<24} {:>16}  {:<10} {why}",
            name(e),
            money(e.value_lost.unwrap_or_default(), &e.currency),
            stage(e),
        );
    }
    out
}

pub fn evaluation(e: &pb::Evaluation) -> String {
    let mut out = String::new();
    if e.display_name.is_empty() || e.display_name == e.external_id {
        let _ = writeln!(out, "Customer {}", e.external_id);
    } else {
        let _ = writeln!(out, "Customer {} ({})", e.display_name, e.external_id);
    }
    let _ = writeln!(out, "  lifecycle stage: {}", stage(e));
    match &e.lifetime_value {
        Some(l) if l.absent_reason.is_empty() && l.method == "subscription" => {
            let _ = writeln!(
                out,
                "  lifetime value:  {} over the next {} months\n    ({})",
                money(l.lifetime_value, &e.currency),
                l.horizon_months,
                l.basis
            );
        }
        Some(l) if l.absent_reason.is_empty() => {
            let _ = writeln!(
                out,
                "  lifetime value:  {} over the next {} months ({:.1} purchases of {} expected; still buying with probability {:.2})",
                money(l.lifetime_value, &e.currency),
                l.horizon_months,
                l.expected_purchases,
                money(l.expected_spend, &e.currency),
                l.probability_alive
            );
            if !l.basis.is_empty() {
                let _ = writeln!(out, "    ({})", l.basis);
            }
        }
        Some(l) => {
            let _ = writeln!(out, "  lifetime value:  - ({})", l.absent_reason);
        }
        None => {}
    }
    let _ = writeln!(out, "  value at stake:  {}", money(e.value, &e.currency));
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
                .map(|d| {
                    if d.inputs_used == 0 {
                        // Scored neutral (50) for want of data: say so rather than show 50.
                        format!("{} (no data)", d.dimension)
                    } else {
                        format!("{} {:.0}", d.dimension, d.score)
                    }
                })
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
    if let Some(c) = e.comments.as_ref().filter(|c| c.comments > 0) {
        let _ = writeln!(
            out,
            "  wrote lately:    {} comment{} in the last 90 days, {} negative (mean sentiment {:+.2} on -1..+1)",
            c.comments,
            if c.comments == 1 { "" } else { "s" },
            c.negative,
            c.mean_sentiment.unwrap_or(0.0)
        );
        for t in &c.negative_topics {
            let _ = writeln!(
                out,
                "    - negative about \"{}\" ({} comment{})",
                t.topic,
                t.comments,
                if t.comments == 1 { "" } else { "s" }
            );
        }
    }
    if let Some(v) = &e.versions {
        let _ = writeln!(
            out,
            "  versions:        churn model {}, segments model {}, lifetime-value model {}, text model {}, scoring scheme {}",
            v.churn, v.segments, v.clv, v.text, v.scoring_scheme
        );
    }
    out
}

/// Negative comments with who wrote them, when, in which language, about what.
pub fn comments_table(rows: &[pb::Comment]) -> String {
    let mut out = String::new();
    for c in rows {
        let when = c
            .time
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let (sentiment, language, topic) = c.analysis.as_ref().map_or((0.0, "", ""), |a| {
            (
                a.sentiment,
                a.language.as_str(),
                a.topics.first().map_or("", |t| t.name.as_str()),
            )
        });
        let _ = writeln!(
            out,
            "  {when}  {:<22} {language:<7} sentiment {sentiment:+.2}  topic: {}\n      \"{}\"",
            c.customer_name,
            if topic.is_empty() { "-" } else { topic },
            c.text
        );
    }
    out
}
