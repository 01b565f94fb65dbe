//! `vitals.v1.FollowUpService`'s messages to and from the domain's types, and the checks
//! of its request fields that need no store.

use std::collections::HashMap;

use vitals_domain::followup::{
    ChurnRiskRule, ComplaintRule, DetractorRule, FollowUpRules, FollowUpStatus,
    NegativeCommentRule, OverduePaymentRule, Reason, TopicRoute,
};
use vitals_domain::validate::{MAX_LABEL_LEN, check_text};
use vitals_domain::words::Language;
use vitals_domain::{Severity, Violations};
use vitals_proto::v1 as pb;
use vitals_store::campaigns::{CampaignRecord, CampaignReview};
use vitals_store::{CustomerName, FollowUpRecord, VersionedRules};

use super::customers::shown_name;

use crate::convert::{severity_from_proto, severity_to_proto, timestamp};

/// The review horizon when a request names none.
const DEFAULT_HORIZON_DAYS: u32 = 90;
/// The longest review horizon: two years.
const MAX_HORIZON_DAYS: u32 = 730;

fn reason_to_proto(r: Reason) -> pb::FollowUpReason {
    match r {
        Reason::Detractor => pb::FollowUpReason::Detractor,
        Reason::Complaint => pb::FollowUpReason::Complaint,
        Reason::OverduePayment => pb::FollowUpReason::OverduePayment,
        Reason::ChurnRisk => pb::FollowUpReason::ChurnRisk,
        Reason::NegativeComment => pb::FollowUpReason::NegativeComment,
    }
}

pub(super) fn reason_from_proto(v: &mut Violations, field: &str, raw: i32) -> Option<Reason> {
    match pb::FollowUpReason::try_from(raw) {
        Ok(pb::FollowUpReason::Unspecified) => None,
        Ok(pb::FollowUpReason::Detractor) => Some(Reason::Detractor),
        Ok(pb::FollowUpReason::Complaint) => Some(Reason::Complaint),
        Ok(pb::FollowUpReason::OverduePayment) => Some(Reason::OverduePayment),
        Ok(pb::FollowUpReason::ChurnRisk) => Some(Reason::ChurnRisk),
        Ok(pb::FollowUpReason::NegativeComment) => Some(Reason::NegativeComment),
        Err(_) => {
            v.push(field, format!("unknown FollowUpReason value {raw}"));
            None
        }
    }
}

fn status_to_proto(s: FollowUpStatus) -> pb::FollowUpStatus {
    match s {
        FollowUpStatus::Open => pb::FollowUpStatus::Open,
        FollowUpStatus::Assigned => pb::FollowUpStatus::Assigned,
        FollowUpStatus::InProgress => pb::FollowUpStatus::InProgress,
        FollowUpStatus::Resolved => pb::FollowUpStatus::Resolved,
        FollowUpStatus::Dismissed => pb::FollowUpStatus::Dismissed,
    }
}

pub(super) fn status_from_proto(
    v: &mut Violations,
    field: &str,
    raw: i32,
) -> Option<FollowUpStatus> {
    match pb::FollowUpStatus::try_from(raw) {
        Ok(pb::FollowUpStatus::Open) => Some(FollowUpStatus::Open),
        Ok(pb::FollowUpStatus::Assigned) => Some(FollowUpStatus::Assigned),
        Ok(pb::FollowUpStatus::InProgress) => Some(FollowUpStatus::InProgress),
        Ok(pb::FollowUpStatus::Resolved) => Some(FollowUpStatus::Resolved),
        Ok(pb::FollowUpStatus::Dismissed) => Some(FollowUpStatus::Dismissed),
        Ok(pb::FollowUpStatus::Unspecified) => {
            v.push(field, "FOLLOW_UP_STATUS_UNSPECIFIED is not a status");
            None
        }
        Err(_) => {
            v.push(field, format!("unknown FollowUpStatus value {raw}"));
            None
        }
    }
}

/// A task as the caller sees it: `names` from `Store::names_of` (a customer erased since
/// shows their internal id), `pii` whether the caller may see names.
pub(super) fn follow_up_to_proto(
    r: FollowUpRecord,
    now: i64,
    names: &HashMap<String, CustomerName>,
    pii: bool,
) -> pb::FollowUp {
    let (external_id, display_name) = match names.get(&r.customer_id) {
        Some(n) => (
            n.external_id.clone(),
            shown_name(n.display_name.as_deref(), &n.external_id, pii),
        ),
        None => (String::new(), r.customer_id.clone()),
    };
    pb::FollowUp {
        external_id,
        display_name,
        overdue: r.is_overdue(now),
        etag: r.etag(),
        id: r.id,
        customer_id: r.customer_id,
        reason: reason_to_proto(r.reason) as i32,
        department: r.department,
        status: status_to_proto(r.status) as i32,
        detail: r.detail,
        source: r.source,
        rules_version: r.rules_version,
        assignee: r.assignee.unwrap_or_default(),
        outcome: r.outcome.unwrap_or_default(),
        dismiss_reason: r.dismiss_reason.unwrap_or_default(),
        due_time: Some(timestamp(r.due_time)),
        create_time: Some(timestamp(r.create_time)),
        update_time: Some(timestamp(r.update_time)),
        close_time: r.close_time.map(timestamp),
    }
}

fn routing(enabled: bool, department: &str, hours: u32) -> Option<pb::RuleRouting> {
    Some(pb::RuleRouting {
        enabled,
        department: department.to_owned(),
        service_level_hours: hours,
    })
}

pub(super) fn rules_to_proto(r: &VersionedRules) -> pb::FollowUpRules {
    let rules = &r.rules;
    pb::FollowUpRules {
        version: r.version,
        detractor: Some(pb::DetractorRule {
            routing: routing(
                rules.detractor.enabled,
                &rules.detractor.department,
                rules.detractor.service_level_hours,
            ),
            nps_at_most: rules.detractor.nps_at_most,
            csat_at_most: rules.detractor.csat_at_most,
        }),
        complaint: Some(pb::ComplaintRule {
            routing: routing(
                rules.complaint.enabled,
                &rules.complaint.department,
                rules.complaint.service_level_hours,
            ),
            min_severity: severity_to_proto(rules.complaint.min_severity) as i32,
        }),
        overdue_payment: Some(pb::OverduePaymentRule {
            routing: routing(
                rules.overdue_payment.enabled,
                &rules.overdue_payment.department,
                rules.overdue_payment.service_level_hours,
            ),
            days_overdue_over: rules.overdue_payment.days_overdue_over,
        }),
        churn_risk: Some(pb::ChurnRiskRule {
            routing: routing(
                rules.churn_risk.enabled,
                &rules.churn_risk.department,
                rules.churn_risk.service_level_hours,
            ),
            probability_at_least: rules.churn_risk.probability_at_least,
        }),
        actor: r.actor.clone(),
        create_time: (r.create_time > 0).then(|| timestamp(r.create_time)),
        negative_comment: Some(pb::NegativeCommentRule {
            enabled: rules.negative_comment.enabled,
            sentiment_at_most: rules.negative_comment.sentiment_at_most,
            service_level_hours: rules.negative_comment.service_level_hours,
            routes: rules
                .negative_comment
                .routes
                .iter()
                .map(|r| pb::TopicRoute {
                    subject: r.subject.clone(),
                    terms: r.terms.clone(),
                    department: r.department.clone(),
                })
                .collect(),
        }),
    }
}

/// The routing of one rule; every rule must be given whole, so an update never turns a
/// rule off by leaving it out.
fn routing_from_proto(
    v: &mut Violations,
    field: &str,
    r: Option<&pb::RuleRouting>,
) -> (bool, String, u32) {
    match r {
        Some(r) => (r.enabled, r.department.clone(), r.service_level_hours),
        None => {
            v.push(
                format!("{field}.routing"),
                "is required: enabled, department and service_level_hours",
            );
            (false, String::new(), 0)
        }
    }
}

/// The rules an update asks for. `negative_comment` may be left out (clients written
/// before it existed send four rules): the rule then stays as `current` has it.
pub(super) fn rules_from_proto(
    wire: &pb::FollowUpRules,
    current: &NegativeCommentRule,
) -> Result<FollowUpRules, Violations> {
    let mut v = Violations::new();
    let missing = |v: &mut Violations, f: &str| v.push(format!("rules.{f}"), "is required");
    let detractor = wire.detractor.as_ref().map(|d| {
        let (enabled, department, service_level_hours) =
            routing_from_proto(&mut v, "rules.detractor", d.routing.as_ref());
        DetractorRule {
            enabled,
            department,
            service_level_hours,
            nps_at_most: d.nps_at_most,
            csat_at_most: d.csat_at_most,
        }
    });
    let complaint = wire.complaint.as_ref().map(|c| {
        let (enabled, department, service_level_hours) =
            routing_from_proto(&mut v, "rules.complaint", c.routing.as_ref());
        ComplaintRule {
            enabled,
            department,
            service_level_hours,
            min_severity: severity_from_proto(
                &mut v,
                "rules.complaint.min_severity",
                c.min_severity,
            )
            .unwrap_or(Severity::Unspecified),
        }
    });
    let overdue_payment = wire.overdue_payment.as_ref().map(|o| {
        let (enabled, department, service_level_hours) =
            routing_from_proto(&mut v, "rules.overdue_payment", o.routing.as_ref());
        OverduePaymentRule {
            enabled,
            department,
            service_level_hours,
            days_overdue_over: o.days_overdue_over,
        }
    });
    let churn_risk = wire.churn_risk.as_ref().map(|c| {
        let (enabled, department, service_level_hours) =
            routing_from_proto(&mut v, "rules.churn_risk", c.routing.as_ref());
        ChurnRiskRule {
            enabled,
            department,
            service_level_hours,
            probability_at_least: c.probability_at_least,
        }
    });
    for (present, name) in [
        (detractor.is_some(), "detractor"),
        (complaint.is_some(), "complaint"),
        (overdue_payment.is_some(), "overdue_payment"),
        (churn_risk.is_some(), "churn_risk"),
    ] {
        if !present {
            missing(&mut v, name);
        }
    }
    // A missing rule is reported; the defaults stand in for it only so that the rules
    // given are checked too, and every mistake is named at once.
    let defaults = FollowUpRules::default();
    let rules = FollowUpRules {
        detractor: detractor.unwrap_or(defaults.detractor),
        complaint: complaint.unwrap_or(defaults.complaint),
        overdue_payment: overdue_payment.unwrap_or(defaults.overdue_payment),
        churn_risk: churn_risk.unwrap_or(defaults.churn_risk),
        negative_comment: wire.negative_comment.as_ref().map_or_else(
            || current.clone(),
            |n| NegativeCommentRule {
                enabled: n.enabled,
                sentiment_at_most: n.sentiment_at_most,
                service_level_hours: n.service_level_hours,
                routes: n
                    .routes
                    .iter()
                    .map(|r| TopicRoute {
                        subject: r.subject.clone(),
                        terms: r.terms.clone(),
                        department: r.department.clone(),
                    })
                    .collect(),
            },
        ),
    };
    if let Err(more) = rules.validate() {
        for f in more.0 {
            v.push(format!("rules.{}", f.field), f.description);
        }
    }
    v.into_result().map(|()| rules)
}

pub(super) fn campaign_to_proto(c: CampaignRecord) -> pb::Campaign {
    pb::Campaign {
        id: c.id,
        name: c.name,
        action_kind: c.action_kind,
        target: Some(pb::CampaignTarget {
            risk_bands: c.target.risk_bands,
            segment_ids: c.target.segment_ids,
            tiers: c.target.tiers,
            min_churn_probability: c.target.min_churn_probability,
        }),
        holdout_share: c.holdout_share,
        seed: c.seed,
        horizon_days: c.horizon_days,
        draw_time: Some(timestamp(c.draw_time)),
        treated_count: c.treated_count,
        control_count: c.control_count,
        actor: c.actor,
    }
}

pub(super) fn review_to_proto(r: CampaignReview, lang: Language) -> pb::CampaignReview {
    let e = &r.effect;
    let arm = |a: &vitals_domain::campaign::Arm, rate: f64| pb::ReviewArm {
        customers: a.customers as i64,
        churned: a.churned as i64,
        churn_rate: rate,
    };
    pb::CampaignReview {
        campaign: r.campaign.clone(),
        evidence: r.evidence.as_str().to_owned(),
        treated: Some(arm(&e.treated, e.treated_churn_rate)),
        control: Some(arm(&e.control, e.control_churn_rate)),
        difference: e.difference,
        ci_low: e.ci_low,
        ci_high: e.ci_high,
        confidence: e.confidence,
        customers_kept: e.customers_kept,
        treatment_cost_minor: r.treatment_cost_minor,
        currency: r.currency.clone(),
        cost_per_customer_kept_minor: e.cost_per_customer_kept_minor,
        verdict: e.verdict.as_str().to_owned(),
        summary: e.sentence_in(&r.currency, r.evidence, lang),
        not_reached: r.not_reached as i64,
        pending: r.pending as i64,
    }
}

/// A required short label: the domain's text rule, and not blank.
pub(super) fn check_label(v: &mut Violations, field: &str, value: &str) {
    if value.trim().is_empty() {
        v.push(field, "is required");
    } else {
        check_text(v, field, value, MAX_LABEL_LEN);
    }
}

pub(super) fn horizon(v: &mut Violations, field: &str, days: u32) -> u32 {
    match days {
        0 => DEFAULT_HORIZON_DAYS,
        d if d > MAX_HORIZON_DAYS => {
            v.push(field, format!("must be at most {MAX_HORIZON_DAYS} days"));
            d
        }
        d => d,
    }
}
