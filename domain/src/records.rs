//! The records Vitals keeps: customers and the events of their history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time::Micros;

/// Where a customer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    Active,
    Churned,
    /// PII wiped for good; the history is kept without it.
    Erased,
}

impl CustomerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Churned => "churned",
            Self::Erased => "erased",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "churned" => Some(Self::Churned),
            "erased" => Some(Self::Erased),
            _ => None,
        }
    }
}

/// A typed customer attribute (contract type, plan, monthly charge, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Bool(bool),
    Number(f64),
    String(String),
}

pub type Attributes = BTreeMap<String, AttributeValue>;

/// Everything a client sets on a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerData {
    pub external_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub region: String,
    pub acquisition_channel: String,
    pub status: CustomerStatus,
    pub contractual: bool,
    pub signup_time: Option<Micros>,
    pub churn_time: Option<Micros>,
    pub attributes: Attributes,
}

impl CustomerData {
    /// A new active customer with only an external id.
    pub fn new(external_id: impl Into<String>) -> Self {
        Self {
            external_id: external_id.into(),
            display_name: None,
            email: None,
            phone: None,
            region: String::new(),
            acquisition_channel: String::new(),
            status: CustomerStatus::Active,
            contractual: false,
            signup_time: None,
            churn_time: None,
            attributes: Attributes::new(),
        }
    }

    /// The same data with every PII field wiped and the status ERASED.
    pub fn erased(mut self) -> Self {
        self.display_name = None;
        self.email = None;
        self.phone = None;
        self.status = CustomerStatus::Erased;
        self
    }
}

/// A stored customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: String,
    pub data: CustomerData,
    /// Bumped on every change; the API shows it as the etag.
    pub version: i64,
    pub create_time: Micros,
    pub update_time: Micros,
}

impl Customer {
    pub fn etag(&self) -> String {
        self.version.to_string()
    }
}

/// How an event names its customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CustomerRef {
    Id(String),
    ExternalId(String),
}

/// An event as a client sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_key: String,
    pub customer: CustomerRef,
    /// When it happened.
    pub time: Micros,
    pub payload: EventPayload,
}

/// An event as stored, with the time Vitals learned of it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub customer_id: String,
    pub event_key: String,
    pub time: Micros,
    pub record_time: Micros,
    pub payload: EventPayload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Transaction,
    Payment,
    Feedback,
    Interaction,
    RetentionAction,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        Self::Transaction,
        Self::Payment,
        Self::Feedback,
        Self::Interaction,
        Self::RetentionAction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transaction => "transaction",
            Self::Payment => "payment",
            Self::Feedback => "feedback",
            Self::Interaction => "interaction",
            Self::RetentionAction => "retention_action",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventPayload {
    Transaction(Transaction),
    Payment(Payment),
    Feedback(Feedback),
    Interaction(Interaction),
    /// What the company did to keep the customer: part of their timeline like anything
    /// they did themselves, and what a campaign's effect review counts as treatment.
    RetentionAction(RetentionAction),
}

impl EventPayload {
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Transaction(_) => EventKind::Transaction,
            Self::Payment(_) => EventKind::Payment,
            Self::Feedback(_) => EventKind::Feedback,
            Self::Interaction(_) => EventKind::Interaction,
            Self::RetentionAction(_) => EventKind::RetentionAction,
        }
    }
}

/// A retention action: a call, a discount, an upgrade, ... with what it cost and, when it
/// was part of one, the campaign's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionAction {
    /// A short label such as `call`, `discount`, `upgrade`.
    pub kind: String,
    /// What it cost, in minor units of `currency`; 0 when free.
    pub cost_minor: i64,
    pub currency: String,
    /// The campaign it belongs to; empty when it was done on its own.
    pub campaign: String,
    pub channel: String,
    /// Who did it (a person or team); empty when unknown.
    pub actor: String,
    pub note: Option<String>,
}

/// A purchase, order or bill. Money is exact: integer minor units and a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub amount_minor: i64,
    pub currency: String,
    pub quantity: i32,
    pub category: String,
    pub channel: String,
}

/// An invoice and its settlement; a later event with the same invoice id records payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub invoice_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub due_time: Option<Micros>,
    pub paid_time: Option<Micros>,
    pub method: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// Net Promoter Score, 0-10.
    Nps,
    /// Customer satisfaction, 1-5.
    Csat,
    /// Customer effort, 1-7.
    Ces,
    /// A review's stars, 1-5.
    Review,
}

impl FeedbackKind {
    pub const ALL: [FeedbackKind; 4] = [Self::Nps, Self::Csat, Self::Ces, Self::Review];

    /// The inclusive range of valid scores.
    pub fn score_range(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Self::Nps => 0..=10,
            Self::Csat | Self::Review => 1..=5,
            Self::Ces => 1..=7,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nps => "nps",
            Self::Csat => "csat",
            Self::Ces => "ces",
            Self::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    pub kind: FeedbackKind,
    /// The answer on the kind's scale. Only a review may come without one (a written
    /// review, an e-mail, a chat): its comment then speaks for itself.
    pub score: Option<i32>,
    /// Free text: PII, wiped on erasure.
    pub comment: Option<String>,
    pub channel: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    Inquiry,
    Complaint,
    Support,
    Sales,
    Other,
}

impl InteractionKind {
    pub const ALL: [InteractionKind; 5] = [
        Self::Inquiry,
        Self::Complaint,
        Self::Support,
        Self::Sales,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inquiry => "inquiry",
            Self::Complaint => "complaint",
            Self::Support => "support",
            Self::Sales => "sales",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Unspecified,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Self::Unspecified,
        Self::Low,
        Self::Medium,
        Self::High,
        Self::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A contact or ticket, opened at the event's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub kind: InteractionKind,
    pub severity: Severity,
    pub category: String,
    pub channel: String,
    pub ticket_id: String,
    pub resolved_time: Option<Micros>,
    /// Free text (what the customer said, a call note): PII, wiped on erasure. Left out
    /// of the content hash when absent, so interactions recorded before notes existed
    /// keep their fingerprint and stay idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A fingerprint of what an event says (its time and payload, not its key or customer):
/// the same key re-sent with the same fingerprint is a duplicate, with another a conflict.
pub fn content_hash(time: Micros, payload: &EventPayload) -> String {
    let mut hasher = Sha256::new();
    hasher.update(time.to_le_bytes());
    // Serializing plain structs of strings, integers and enums cannot fail; the field
    // order is the declaration order, so the encoding is canonical.
    let encoded = serde_json::to_vec(payload).unwrap_or_default();
    hasher.update(&encoded);
    hex::encode(&hasher.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase(amount: i64) -> EventPayload {
        EventPayload::Transaction(Transaction {
            amount_minor: amount,
            currency: "USD".into(),
            quantity: 1,
            category: String::new(),
            channel: "web".into(),
        })
    }

    #[test]
    fn content_hash_tells_contents_apart() {
        assert_eq!(
            content_hash(5, &purchase(100)),
            content_hash(5, &purchase(100))
        );
        assert_ne!(
            content_hash(5, &purchase(100)),
            content_hash(5, &purchase(101))
        );
        assert_ne!(
            content_hash(5, &purchase(100)),
            content_hash(6, &purchase(100))
        );
    }

    #[test]
    fn attribute_values_round_trip_through_json() {
        let mut attrs = Attributes::new();
        attrs.insert("plan".into(), AttributeValue::String("gold".into()));
        attrs.insert("charge".into(), AttributeValue::Number(29.85));
        attrs.insert("senior".into(), AttributeValue::Bool(true));
        let json = serde_json::to_string(&attrs).expect("serializes");
        let back: Attributes = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, attrs);
    }

    #[test]
    fn erasure_wipes_pii_only() {
        let mut data = CustomerData::new("c-1");
        data.display_name = Some("Ada".into());
        data.email = Some("ada@example.com".into());
        data.phone = Some("+44 20 7946 0000".into());
        data.region = "EU".into();
        let erased = data.erased();
        assert_eq!(erased.display_name, None);
        assert_eq!(erased.email, None);
        assert_eq!(erased.phone, None);
        assert_eq!(erased.region, "EU");
        assert_eq!(erased.status, CustomerStatus::Erased);
    }
}
