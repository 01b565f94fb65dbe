//! Mapping between the API's messages (`vitals.v1`) and the domain's types (`vitals-domain`).
//!
//! Conversions from the wire collect every structural problem (an unknown enum value,
//! a missing oneof, an impossible timestamp) as a named field violation; the business
//! rules then run on the domain value (`vitals_domain::validate`).

use prost_types::Timestamp;
use vitals_domain::comments::CommentAnalysis;
use vitals_domain::time::{Micros, micros_from_parts, parts_from_micros};
use vitals_domain::{
    AttributeValue, Attributes, Customer, CustomerData, CustomerRef, CustomerStatus, EventKind,
    EventPayload, Feedback, FeedbackKind, Interaction, InteractionKind, NewEvent, Payment,
    Severity, StoredEvent, Transaction, Violations,
};
use vitals_proto::v1 as pb;

pub(crate) fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

pub fn timestamp(micros: Micros) -> Timestamp {
    let (seconds, nanos) = parts_from_micros(micros);
    Timestamp { seconds, nanos }
}

/// A timestamp from the wire, or a violation for one no clock can show.
pub fn micros(v: &mut Violations, field: &str, ts: &Timestamp) -> Option<Micros> {
    let m = micros_from_parts(ts.seconds, ts.nanos);
    if m.is_none() {
        v.push(field, "is not a valid timestamp");
    }
    m
}

fn opt_micros(v: &mut Violations, field: &str, ts: Option<&Timestamp>) -> Option<Micros> {
    ts.and_then(|t| micros(v, field, t))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

pub fn status_to_proto(s: CustomerStatus) -> pb::CustomerStatus {
    match s {
        CustomerStatus::Active => pb::CustomerStatus::Active,
        CustomerStatus::Churned => pb::CustomerStatus::Churned,
        CustomerStatus::Erased => pb::CustomerStatus::Erased,
    }
}

/// A status a client may set (ERASED only comes from DeleteCustomer); UNSPECIFIED is `None`.
pub fn settable_status(v: &mut Violations, field: &str, raw: i32) -> Option<CustomerStatus> {
    match pb::CustomerStatus::try_from(raw) {
        Ok(pb::CustomerStatus::Unspecified) => None,
        Ok(pb::CustomerStatus::Active) => Some(CustomerStatus::Active),
        Ok(pb::CustomerStatus::Churned) => Some(CustomerStatus::Churned),
        Ok(pb::CustomerStatus::Erased) => {
            v.push(field, "ERASED is set only by DeleteCustomer");
            None
        }
        Err(_) => {
            v.push(field, format!("unknown CustomerStatus value {raw}"));
            None
        }
    }
}

/// A status filter: any known value, UNSPECIFIED meaning "any".
pub fn status_filter(v: &mut Violations, field: &str, raw: i32) -> Option<CustomerStatus> {
    match pb::CustomerStatus::try_from(raw) {
        Ok(pb::CustomerStatus::Unspecified) => None,
        Ok(pb::CustomerStatus::Active) => Some(CustomerStatus::Active),
        Ok(pb::CustomerStatus::Churned) => Some(CustomerStatus::Churned),
        Ok(pb::CustomerStatus::Erased) => Some(CustomerStatus::Erased),
        Err(_) => {
            v.push(field, format!("unknown CustomerStatus value {raw}"));
            None
        }
    }
}

pub fn customer_to_proto(c: &Customer) -> pb::Customer {
    let d = &c.data;
    pb::Customer {
        id: c.id.clone(),
        external_id: d.external_id.clone(),
        display_name: d.display_name.clone().unwrap_or_default(),
        email: d.email.clone().unwrap_or_default(),
        phone: d.phone.clone().unwrap_or_default(),
        region: d.region.clone(),
        acquisition_channel: d.acquisition_channel.clone(),
        status: status_to_proto(d.status) as i32,
        contractual: d.contractual,
        signup_time: d.signup_time.map(timestamp),
        churn_time: d.churn_time.map(timestamp),
        attributes: d
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), attribute_to_proto(v)))
            .collect(),
        etag: c.etag(),
        create_time: Some(timestamp(c.create_time)),
        update_time: Some(timestamp(c.update_time)),
    }
}

fn attribute_to_proto(v: &AttributeValue) -> pb::AttributeValue {
    use pb::attribute_value::Value;
    let value = match v {
        AttributeValue::String(s) => Value::StringValue(s.clone()),
        AttributeValue::Number(n) => Value::NumberValue(*n),
        AttributeValue::Bool(b) => Value::BoolValue(*b),
    };
    pb::AttributeValue { value: Some(value) }
}

pub fn attributes_from_proto(
    v: &mut Violations,
    prefix: &str,
    attrs: &std::collections::HashMap<String, pb::AttributeValue>,
) -> Attributes {
    use pb::attribute_value::Value;
    let mut out = Attributes::new();
    for (name, value) in attrs {
        let value = match &value.value {
            Some(Value::StringValue(s)) => AttributeValue::String(s.clone()),
            Some(Value::NumberValue(n)) => AttributeValue::Number(*n),
            Some(Value::BoolValue(b)) => AttributeValue::Bool(*b),
            None => {
                v.push(
                    format!("{}[{name:?}]", join(prefix, "attributes")),
                    "must hold a string, number or bool value",
                );
                continue;
            }
        };
        out.insert(name.clone(), value);
    }
    out
}

/// The client-settable data of a customer message (output-only fields are ignored).
pub fn customer_data_from_proto(
    v: &mut Violations,
    prefix: &str,
    c: &pb::Customer,
) -> CustomerData {
    let pb::Customer {
        id: _,
        external_id,
        display_name,
        email,
        phone,
        region,
        acquisition_channel,
        status,
        contractual,
        signup_time,
        churn_time,
        attributes,
        etag: _,
        create_time: _,
        update_time: _,
    } = c;
    CustomerData {
        external_id: external_id.clone(),
        display_name: non_empty(display_name),
        email: non_empty(email),
        phone: non_empty(phone),
        region: region.clone(),
        acquisition_channel: acquisition_channel.clone(),
        status: settable_status(v, &join(prefix, "status"), *status)
            .unwrap_or(CustomerStatus::Active),
        contractual: *contractual,
        signup_time: opt_micros(v, &join(prefix, "signup_time"), signup_time.as_ref()),
        churn_time: opt_micros(v, &join(prefix, "churn_time"), churn_time.as_ref()),
        attributes: attributes_from_proto(v, prefix, attributes),
    }
}

/// The paths UpdateCustomer accepts in its field mask.
pub const UPDATABLE_PATHS: &[&str] = &[
    "external_id",
    "display_name",
    "email",
    "phone",
    "region",
    "acquisition_channel",
    "status",
    "contractual",
    "signup_time",
    "churn_time",
    "attributes",
];

/// Copies the fields named by `paths` from `patch` onto `current`. `*` names them all.
pub fn apply_mask(current: &CustomerData, patch: &CustomerData, paths: &[String]) -> CustomerData {
    let mut out = current.clone();
    let all = paths.iter().any(|p| p == "*");
    let named = |p: &str| all || paths.iter().any(|q| q == p);
    if named("external_id") {
        out.external_id = patch.external_id.clone();
    }
    if named("display_name") {
        out.display_name = patch.display_name.clone();
    }
    if named("email") {
        out.email = patch.email.clone();
    }
    if named("phone") {
        out.phone = patch.phone.clone();
    }
    if named("region") {
        out.region = patch.region.clone();
    }
    if named("acquisition_channel") {
        out.acquisition_channel = patch.acquisition_channel.clone();
    }
    if named("status") {
        out.status = patch.status;
    }
    if named("contractual") {
        out.contractual = patch.contractual;
    }
    if named("signup_time") {
        out.signup_time = patch.signup_time;
    }
    if named("churn_time") {
        out.churn_time = patch.churn_time;
    }
    if named("attributes") {
        out.attributes = patch.attributes.clone();
    }
    out
}

pub fn event_kind_from_proto(v: &mut Violations, field: &str, raw: i32) -> Option<EventKind> {
    match pb::EventKind::try_from(raw) {
        Ok(pb::EventKind::Transaction) => Some(EventKind::Transaction),
        Ok(pb::EventKind::Payment) => Some(EventKind::Payment),
        Ok(pb::EventKind::Feedback) => Some(EventKind::Feedback),
        Ok(pb::EventKind::Interaction) => Some(EventKind::Interaction),
        Ok(pb::EventKind::RetentionAction) => Some(EventKind::RetentionAction),
        Ok(pb::EventKind::Unspecified) => {
            v.push(field, "EVENT_KIND_UNSPECIFIED is not a kind");
            None
        }
        Err(_) => {
            v.push(field, format!("unknown EventKind value {raw}"));
            None
        }
    }
}

/// An event from the wire; `None` when it is structurally incomplete (violations say why).
pub fn event_from_proto(v: &mut Violations, prefix: &str, e: pb::Event) -> Option<NewEvent> {
    use pb::event::{Customer as Who, Payload};
    let pb::Event {
        event_key,
        customer,
        time,
        record_time: _,
        comment_analysis: _,
        payload,
    } = e;
    let customer = match customer {
        Some(Who::CustomerId(id)) => Some(CustomerRef::Id(id)),
        Some(Who::CustomerExternalId(ext)) => Some(CustomerRef::ExternalId(ext)),
        None => {
            v.push(
                join(prefix, "customer_id"),
                "an event names its customer by customer_id or customer_external_id",
            );
            None
        }
    };
    let time = match time {
        Some(t) => micros(v, &join(prefix, "time"), &t),
        None => {
            v.push(join(prefix, "time"), "is required");
            None
        }
    };
    let payload = match payload {
        Some(Payload::Transaction(t)) => Some(EventPayload::Transaction(Transaction {
            amount_minor: t.amount_minor,
            currency: t.currency,
            quantity: if t.quantity == 0 { 1 } else { t.quantity },
            category: t.category,
            channel: t.channel,
        })),
        Some(Payload::Payment(p)) => {
            let pp = join(prefix, "payment");
            Some(EventPayload::Payment(Payment {
                invoice_id: p.invoice_id,
                amount_minor: p.amount_minor,
                currency: p.currency,
                due_time: opt_micros(v, &join(&pp, "due_time"), p.due_time.as_ref()),
                paid_time: opt_micros(v, &join(&pp, "paid_time"), p.paid_time.as_ref()),
                method: p.method,
            }))
        }
        Some(Payload::Feedback(f)) => {
            let field = join(&join(prefix, "feedback"), "kind");
            let kind = match pb::FeedbackKind::try_from(f.kind) {
                Ok(pb::FeedbackKind::Nps) => Some(FeedbackKind::Nps),
                Ok(pb::FeedbackKind::Csat) => Some(FeedbackKind::Csat),
                Ok(pb::FeedbackKind::Ces) => Some(FeedbackKind::Ces),
                Ok(pb::FeedbackKind::Review) => Some(FeedbackKind::Review),
                Ok(pb::FeedbackKind::Unspecified) => {
                    v.push(field, "is required: NPS, CSAT, CES or REVIEW");
                    None
                }
                Err(_) => {
                    v.push(field, format!("unknown FeedbackKind value {}", f.kind));
                    None
                }
            };
            kind.map(|kind| {
                EventPayload::Feedback(Feedback {
                    kind,
                    score: f.score,
                    comment: non_empty(&f.comment),
                    channel: f.channel,
                })
            })
        }
        Some(Payload::Interaction(i)) => {
            let ip = join(prefix, "interaction");
            let kind = match pb::InteractionKind::try_from(i.kind) {
                Ok(pb::InteractionKind::Inquiry) => Some(InteractionKind::Inquiry),
                Ok(pb::InteractionKind::Complaint) => Some(InteractionKind::Complaint),
                Ok(pb::InteractionKind::Support) => Some(InteractionKind::Support),
                Ok(pb::InteractionKind::Sales) => Some(InteractionKind::Sales),
                Ok(pb::InteractionKind::Other) => Some(InteractionKind::Other),
                Ok(pb::InteractionKind::Unspecified) => {
                    v.push(join(&ip, "kind"), "is required");
                    None
                }
                Err(_) => {
                    v.push(
                        join(&ip, "kind"),
                        format!("unknown InteractionKind value {}", i.kind),
                    );
                    None
                }
            };
            let severity = severity_from_proto(v, &join(&ip, "severity"), i.severity);
            let resolved_time =
                opt_micros(v, &join(&ip, "resolved_time"), i.resolved_time.as_ref());
            match (kind, severity) {
                (Some(kind), Some(severity)) => Some(EventPayload::Interaction(Interaction {
                    kind,
                    severity,
                    category: i.category,
                    channel: i.channel,
                    ticket_id: i.ticket_id,
                    resolved_time,
                    note: non_empty(&i.note),
                })),
                _ => None,
            }
        }
        Some(Payload::RetentionAction(a)) => Some(EventPayload::RetentionAction(
            retention_action_from_proto(a),
        )),
        None => {
            v.push(
                join(prefix, "payload"),
                "an event is one of transaction, payment, feedback, interaction or retention_action",
            );
            None
        }
    };
    Some(NewEvent {
        event_key,
        customer: customer?,
        time: time?,
        payload: payload?,
    })
}

pub fn event_to_proto(e: StoredEvent) -> pb::Event {
    use pb::event::{Customer as Who, Payload};
    let payload = match e.payload {
        EventPayload::Transaction(t) => Payload::Transaction(pb::Transaction {
            amount_minor: t.amount_minor,
            currency: t.currency,
            quantity: t.quantity,
            category: t.category,
            channel: t.channel,
        }),
        EventPayload::Payment(p) => Payload::Payment(pb::Payment {
            invoice_id: p.invoice_id,
            amount_minor: p.amount_minor,
            currency: p.currency,
            due_time: p.due_time.map(timestamp),
            paid_time: p.paid_time.map(timestamp),
            method: p.method,
        }),
        EventPayload::Feedback(f) => Payload::Feedback(pb::Feedback {
            kind: feedback_kind_to_proto(f.kind) as i32,
            score: f.score,
            comment: f.comment.unwrap_or_default(),
            channel: f.channel,
        }),
        EventPayload::Interaction(i) => Payload::Interaction(pb::Interaction {
            kind: interaction_kind_to_proto(i.kind) as i32,
            severity: severity_to_proto(i.severity) as i32,
            category: i.category,
            channel: i.channel,
            ticket_id: i.ticket_id,
            resolved_time: i.resolved_time.map(timestamp),
            note: i.note.unwrap_or_default(),
        }),
        EventPayload::RetentionAction(a) => Payload::RetentionAction(pb::RetentionAction {
            kind: a.kind,
            cost_minor: a.cost_minor,
            currency: a.currency,
            campaign: a.campaign,
            channel: a.channel,
            actor: a.actor,
            note: a.note.unwrap_or_default(),
        }),
    };
    pb::Event {
        event_key: e.event_key,
        customer: Some(Who::CustomerId(e.customer_id)),
        time: Some(timestamp(e.time)),
        record_time: Some(timestamp(e.record_time)),
        payload: Some(payload),
        comment_analysis: None,
    }
}

pub fn feedback_kind_to_proto(k: FeedbackKind) -> pb::FeedbackKind {
    match k {
        FeedbackKind::Nps => pb::FeedbackKind::Nps,
        FeedbackKind::Csat => pb::FeedbackKind::Csat,
        FeedbackKind::Ces => pb::FeedbackKind::Ces,
        FeedbackKind::Review => pb::FeedbackKind::Review,
    }
}

pub fn interaction_kind_to_proto(k: InteractionKind) -> pb::InteractionKind {
    match k {
        InteractionKind::Inquiry => pb::InteractionKind::Inquiry,
        InteractionKind::Complaint => pb::InteractionKind::Complaint,
        InteractionKind::Support => pb::InteractionKind::Support,
        InteractionKind::Sales => pb::InteractionKind::Sales,
        InteractionKind::Other => pb::InteractionKind::Other,
    }
}

pub fn comment_analysis_to_proto(a: CommentAnalysis) -> pb::CommentAnalysis {
    pb::CommentAnalysis {
        sentiment: a.sentiment,
        language: a.language,
        topics: a
            .topic
            .into_iter()
            .map(|t| pb::CommentTopic {
                id: i32::try_from(t.id).unwrap_or(i32::MAX),
                name: t.name,
            })
            .collect(),
        model_version: i64::try_from(a.model_version).unwrap_or(i64::MAX),
    }
}

/// A retention action as the domain holds it; `check_event` validates it afterwards.
pub fn retention_action_from_proto(a: pb::RetentionAction) -> vitals_domain::RetentionAction {
    vitals_domain::RetentionAction {
        kind: a.kind,
        cost_minor: a.cost_minor,
        currency: a.currency,
        campaign: a.campaign,
        channel: a.channel,
        actor: a.actor,
        note: (!a.note.is_empty()).then_some(a.note),
    }
}

pub fn severity_to_proto(s: Severity) -> pb::Severity {
    match s {
        Severity::Unspecified => pb::Severity::Unspecified,
        Severity::Low => pb::Severity::Low,
        Severity::Medium => pb::Severity::Medium,
        Severity::High => pb::Severity::High,
        Severity::Critical => pb::Severity::Critical,
    }
}

/// The severity a wire value names; `None` (with a violation on `field`) for an unknown one.
pub fn severity_from_proto(v: &mut Violations, field: &str, raw: i32) -> Option<Severity> {
    match pb::Severity::try_from(raw) {
        Ok(pb::Severity::Unspecified) => Some(Severity::Unspecified),
        Ok(pb::Severity::Low) => Some(Severity::Low),
        Ok(pb::Severity::Medium) => Some(Severity::Medium),
        Ok(pb::Severity::High) => Some(Severity::High),
        Ok(pb::Severity::Critical) => Some(Severity::Critical),
        Err(_) => {
            v.push(field, format!("unknown Severity value {raw}"));
            None
        }
    }
}
