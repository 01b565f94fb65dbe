//! The evaluation of one customer as of a time T, as data: churn risk and why, segment,
//! RFM, scorecard with composite score and tier, lifecycle stage, lifetime value, and the
//! versions of every model and scheme used. `vitals-engine` computes it with the models in
//! service; the store keeps it as a snapshot; the server answers with it.
//!
//! A part that needs a model not yet trained is `Absent` with the reason, never an error
//! for the whole evaluation. The parts that need no model (RFM, scorecard, lifecycle, the
//! scoring scheme) are computed here.

pub mod absence;
pub mod lifecycle;
pub mod lifetime;
pub mod rfm;
pub mod scheme;
pub mod scorecard;

use serde::{Deserialize, Serialize};

use crate::records::AttributeValue;
use crate::time::Micros;
use crate::words::Language;

pub use absence::{Absence, ModelPart};
pub use lifecycle::{LifecycleStage, risk_band};
pub use rfm::Rfm;
pub use scheme::{ScoringScheme, TierRule};
pub use scorecard::{Dimension, DimensionScore};

fn no_clv_part() -> Part<LifetimeValue> {
    // A snapshot written before lifetime values existed.
    Part::because(Absence::NoLifetimeModel)
}

/// A scheme with the version the store gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedScheme {
    pub version: i64,
    pub scheme: ScoringScheme,
}

/// A part of an evaluation, or why it is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part<T> {
    Ready(T),
    Absent {
        /// In English, as stored.
        reason: String,
        /// The facts `reason` is written from; None in a snapshot stored before they were
        /// kept (its reason then reads as stored).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<Absence>,
    },
}

impl<T> Part<T> {
    pub fn ready(&self) -> Option<&T> {
        match self {
            Self::Ready(t) => Some(t),
            Self::Absent { .. } => None,
        }
    }

    /// Missing for a reason only words say (a stored reason, or one with no `Absence`).
    pub fn absent(reason: impl Into<String>) -> Self {
        Self::Absent {
            reason: reason.into(),
            why: None,
        }
    }

    pub fn because(why: Absence) -> Self {
        Self::Absent {
            reason: why.words(Language::English),
            why: Some(why),
        }
    }

    /// Why the part is missing, in `lang`; None when it is there.
    pub fn reason_in(&self, lang: Language) -> Option<String> {
        match self {
            Self::Ready(_) => None,
            Self::Absent { why: Some(why), .. } => Some(why.words(lang)),
            Self::Absent { reason, why: None } => Some(reason.clone()),
        }
    }
}

/// One input's pull on the churn log-odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    /// The feature (e.g. `recency_days`, `attr.Contract`): every model column made from it
    /// folded into one (`explain::factor_facts`).
    pub feature: String,
    /// What a person calls it ("days since last purchase", "contract").
    #[serde(default)]
    pub label: String,
    /// The customer's value as a number in its natural unit (days, count, money), None
    /// when undefined or not a number.
    pub value: Option<f64>,
    /// The customer's value in words with its unit ("41 days", "Month-to-month",
    /// "120.50 USD"); empty when only a model input row was given.
    #[serde(default)]
    pub display_value: String,
    /// The customer's value of an attribute feature as stored, from which
    /// `explain::in_words` writes `display_value` in the reader's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<AttributeValue>,
    /// Change in log-odds of churn this input causes against an average customer.
    pub contribution: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnAssessment {
    pub probability: f64,
    pub band: String,
    pub horizon_days: f64,
    /// Largest contributions first.
    pub raising: Vec<Factor>,
    /// Most negative contributions first.
    pub lowering: Vec<Factor>,
    pub model_version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentAssignment {
    pub id: usize,
    /// In English, as stored; `explain::segment_words` writes them in any language from
    /// `trait_scores`.
    pub name: String,
    pub description: String,
    pub traits: Vec<String>,
    /// What sets the segment apart, the facts its words are made of. Empty in a snapshot
    /// stored before they were kept (its words then stay as stored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trait_scores: Vec<SegmentTrait>,
    pub model_version: u64,
}

/// One way a segment differs from the average customer: an input (a behaviour name or
/// `attr.NAME`) and how far the segment's mean lies from the population's, in standard
/// deviations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentTrait {
    pub input: String,
    pub z: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    pub dimensions: Vec<DimensionScore>,
    pub composite: f64,
    pub tier: String,
}

/// What the customer is worth, from BG/NBD (buying and silently dropping out) and
/// Gamma-Gamma (spend per purchase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifetimeValue {
    pub probability_alive: f64,
    /// Purchases expected over the horizon.
    pub expected_purchases: f64,
    /// Expected spend per purchase (major units).
    pub expected_spend: f64,
    /// Discounted value over the horizon (major units).
    pub lifetime_value: f64,
    pub horizon_months: u32,
    pub model_version: u64,
    /// How the value was reached, in words: the subscription's monthly revenue and
    /// expected paid months, or the purchase model's reading (and why probability alive
    /// and churn risk may seem to disagree).
    #[serde(default)]
    pub basis: String,
    /// The facts `basis` is written from (`Basis::words` in any language); None in a
    /// snapshot stored before they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis_facts: Option<lifetime::Basis>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    pub churn: Option<u64>,
    pub segments: Option<u64>,
    #[serde(default)]
    pub clv: Option<u64>,
    pub scheme: i64,
    /// The text model that read the customer's recent comments; None: the lexicons.
    #[serde(default)]
    pub text: Option<u64>,
}

/// What the customer wrote in the 90 days before the evaluation, as read now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommentSummary {
    /// Comments and notes written in the window.
    pub comments: u32,
    /// Of them, those reading negative (sentiment at or below -0.3).
    pub negative: u32,
    /// Their mean sentiment (-1..1); None without comments.
    pub mean_sentiment: Option<f64>,
    /// The subjects of the negative ones, most frequent first (ties: most recent first):
    /// what to raise with the customer.
    pub negative_topics: Vec<TopicMention>,
}

/// A subject the customer wrote negatively about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicMention {
    /// The topic's name in the text model in service (its top terms).
    pub topic: String,
    pub comments: u32,
    pub last_time: Micros,
}

/// How far back an evaluation reads comments: a quarter.
pub const RECENT_COMMENT_DAYS: i64 = 90;
/// At or below this sentiment a comment reads negative (the follow-up rule's default).
pub const NEGATIVE_SENTIMENT: f64 = -0.3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub customer_id: String,
    pub external_id: String,
    pub as_of: Micros,
    pub computed_at: Micros,
    pub churn: Part<ChurnAssessment>,
    pub segment: Part<SegmentAssignment>,
    pub rfm: Part<Rfm>,
    pub scorecard: Part<Scorecard>,
    #[serde(default = "no_clv_part")]
    pub lifetime: Part<LifetimeValue>,
    pub lifecycle: LifecycleStage,
    /// The value at stake if the customer leaves (major units): the lifetime value over
    /// the next 12 months when a lifetime-value model is in service, else the spend over
    /// the last 365 days.
    pub value: f64,
    /// The currency of `value` and of every amount in the evaluation: the customer's,
    /// from their latest purchase or invoice (ISO 4217); None when they have neither.
    #[serde(default)]
    pub currency: Option<String>,
    /// For a customer who has lapsed or churned (lifecycle dormant or churned): what
    /// leaving took with it (`lifetime::value_lost`), which orders the win-back list.
    /// None for everyone still with us.
    #[serde(default)]
    pub value_lost: Option<f64>,
    /// What the customer wrote lately; empty in snapshots stored before comments were read.
    #[serde(default)]
    pub comments: CommentSummary,
    pub versions: Versions,
}

impl Evaluation {
    pub fn churn_probability(&self) -> Option<f64> {
        self.churn.ready().map(|c| c.probability)
    }

    /// Probability of leaving times the value at stake.
    pub fn expected_loss(&self) -> Option<f64> {
        self.churn_probability().map(|p| p * self.value)
    }
}
