//! Follow-ups: the rules that turn a bad signal (a detractor's answer, a complaint, an
//! overdue invoice, a churn risk that just crossed its threshold) into a task for a
//! department, and the status machine a task moves through until it is closed.
//!
//! Pure logic: the store decides whether a task for the same customer and reason is
//! already open (its partial unique index over `OPEN_STATUSES` enforces one), persists
//! the rules as versioned JSON, and records every move.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::records::*;
use crate::time::{MICROS_PER_DAY, MICROS_PER_SECOND, Micros};
use crate::validate::{MAX_LABEL_LEN, Violations};

/// An hour in microseconds: service levels are promised in hours.
const MICROS_PER_HOUR: Micros = 3_600 * MICROS_PER_SECOND;
/// Longest service level a rule may promise: a year. Longer is no service level at all.
pub const MAX_SERVICE_LEVEL_HOURS: u32 = 8_760;
/// Longest overdue threshold: ten years, far beyond any dunning process.
pub const MAX_DAYS_OVERDUE_OVER: u32 = 3_650;
/// Longest resolution outcome or dismissal reason: a paragraph, not a report.
pub const MAX_NOTE_LEN: usize = 1_000;

/// Why a follow-up task was opened. One open task per customer and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A low NPS or CSAT answer.
    Detractor,
    /// A complaint at or above the rule's severity.
    Complaint,
    /// An invoice unpaid too long after its due date.
    OverduePayment,
    /// The churn probability crossed the rule's threshold.
    ChurnRisk,
    /// A negative comment about a subject the rules route to a department.
    NegativeComment,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Self::Detractor,
        Self::Complaint,
        Self::OverduePayment,
        Self::ChurnRisk,
        Self::NegativeComment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detractor => "detractor",
            Self::Complaint => "complaint",
            Self::OverduePayment => "overdue_payment",
            Self::ChurnRisk => "churn_risk",
            Self::NegativeComment => "negative_comment",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Where a task stands. Open, assigned and in progress count as open; resolved and
/// dismissed are final, so a new signal for the same reason opens a new task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpStatus {
    Open,
    Assigned,
    InProgress,
    Resolved,
    Dismissed,
}

/// The statuses that count as open; the store's partial unique index (one open task per
/// customer and reason) lists exactly these, so keep the two in step.
pub const OPEN_STATUSES: [&str; 3] = ["open", "assigned", "in_progress"];

impl FollowUpStatus {
    pub const ALL: [FollowUpStatus; 5] = [
        Self::Open,
        Self::Assigned,
        Self::InProgress,
        Self::Resolved,
        Self::Dismissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Assigned => "assigned",
            Self::InProgress => "in_progress",
            Self::Resolved => "resolved",
            Self::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Resolved or dismissed: no move leads out of these.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Resolved | Self::Dismissed)
    }
}

/// Detractors: low survey answers, caught while the customer still remembers why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetractorRule {
    pub enabled: bool,
    /// The department the task goes to.
    pub department: String,
    /// The task is due this many hours after it opens.
    pub service_level_hours: u32,
    /// NPS answers (0-10) at or below this open a task.
    pub nps_at_most: i32,
    /// CSAT answers (1-5) at or below this open a task.
    pub csat_at_most: i32,
}

/// Complaints at or above a severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintRule {
    pub enabled: bool,
    pub department: String,
    pub service_level_hours: u32,
    /// `unspecified` takes every complaint, including those nobody graded.
    pub min_severity: Severity,
}

/// Invoices unpaid for longer than a grace period after their due date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverduePaymentRule {
    pub enabled: bool,
    pub department: String,
    pub service_level_hours: u32,
    /// An invoice overdue by strictly more than this many days opens a task.
    pub days_overdue_over: u32,
}

/// A churn probability that crosses a threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnRiskRule {
    pub enabled: bool,
    pub department: String,
    pub service_level_hours: u32,
    /// Crossing from below to at least this probability opens a task.
    pub probability_at_least: f64,
}

/// Rules, versioned by the store as JSON. Each rule says whether it is on, the department
/// its tasks go to, and the service level: the task is due this many hours after it opens.
/// Unknown fields are refused so a misspelt threshold is an error, not a silent default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRules {
    pub detractor: DetractorRule,
    pub complaint: ComplaintRule,
    pub overdue_payment: OverduePaymentRule,
    pub churn_risk: ChurnRiskRule,
    /// Absent from rules stored before comments were analysed: those get the default.
    #[serde(default)]
    pub negative_comment: NegativeCommentRule,
}

impl Default for FollowUpRules {
    /// Version 1: NPS detractors (0-6, the standard NPS cut) and CSAT 1-2 within two days;
    /// every complaint within three; invoices a month overdue within five; a churn
    /// probability reaching one half within a week.
    fn default() -> Self {
        Self {
            detractor: DetractorRule {
                enabled: true,
                department: "customer_service".into(),
                service_level_hours: 48,
                nps_at_most: 6,
                csat_at_most: 2,
            },
            complaint: ComplaintRule {
                enabled: true,
                department: "quality".into(),
                service_level_hours: 72,
                min_severity: Severity::Unspecified,
            },
            overdue_payment: OverduePaymentRule {
                enabled: true,
                department: "finance".into(),
                service_level_hours: 120,
                days_overdue_over: 30,
            },
            churn_risk: ChurnRiskRule {
                enabled: true,
                department: "account_management".into(),
                service_level_hours: 168,
                probability_at_least: 0.5,
            },
            negative_comment: NegativeCommentRule::default(),
        }
    }
}

/// Negative comments about a subject a department owns: "the parcel came a week late"
/// goes to logistics, "charged twice" to finance. A comment is about a route's subject
/// when one of the route's terms is among its topic's terms or its own words (so a
/// route works before any text model has found topics, and on words a topic's name
/// leaves out). The first route that matches wins; a negative comment no route matches
/// opens nothing (the detractor rule already covers low scores).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NegativeCommentRule {
    pub enabled: bool,
    /// A comment at or below this sentiment (-1 negative .. +1 positive) is negative.
    pub sentiment_at_most: f64,
    pub service_level_hours: u32,
    pub routes: Vec<TopicRoute>,
}

/// Where comments about one subject go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRoute {
    /// The subject, as the task's detail names it (`delivery`).
    pub subject: String,
    /// Words that mark the subject, in any language (`delivery`, `courier`, `快递`).
    /// Matched whole and lower-cased against a comment's normalised words.
    pub terms: Vec<String>,
    pub department: String,
}

/// Most routes one rule may hold, and most terms one route may list: a routing table,
/// not a dictionary.
pub const MAX_TOPIC_ROUTES: usize = 50;
pub const MAX_ROUTE_TERMS: usize = 100;

impl Default for NegativeCommentRule {
    /// Delivery complaints to logistics, billing complaints to finance, in English and
    /// Chinese, within two days; a comment is negative at a sentiment of -0.3 or below
    /// (a learned model's probability of a positive comment under 0.35).
    fn default() -> Self {
        let route = |subject: &str, terms: &[&str], department: &str| TopicRoute {
            subject: subject.into(),
            terms: terms.iter().map(|t| (*t).to_owned()).collect(),
            department: department.into(),
        };
        Self {
            enabled: true,
            sentiment_at_most: -0.3,
            service_level_hours: 48,
            routes: vec![
                route(
                    "delivery",
                    &[
                        "delivery",
                        "delivered",
                        "deliver",
                        "shipping",
                        "shipped",
                        "courier",
                        "parcel",
                        "package",
                        "arrived",
                        "late",
                        "快递",
                        "物流",
                        "配送",
                        "送货",
                        "发货",
                        "到货",
                        "包装",
                    ],
                    "logistics",
                ),
                route(
                    "billing",
                    &[
                        "bill",
                        "billing",
                        "invoice",
                        "charged",
                        "charge",
                        "refund",
                        "overcharged",
                        "payment",
                        "发票",
                        "退款",
                        "扣款",
                        "收费",
                        "账单",
                    ],
                    "finance",
                ),
            ],
        }
    }
}

impl NegativeCommentRule {
    /// Whether a comment of this sentiment could open a task: the rule is on and the
    /// comment negative enough (a NaN sentiment is not negative). Callers check this
    /// before gathering the words a route is matched on.
    pub fn opens_on(&self, sentiment: f64) -> bool {
        self.enabled && sentiment <= self.sentiment_at_most
    }

    /// The first route whose terms meet the comment: a term equal to one of `words` (the
    /// comment's normalised words and its topic's terms), or, for a term written in Han
    /// characters, found inside `text` (Chinese has no spaces, and a segmenter may keep
    /// 快递员 whole where the route says 快递).
    pub fn route_of(&self, words: &[&str], text: &str) -> Option<&TopicRoute> {
        self.routes.iter().find(|r| {
            r.terms.iter().any(|t| {
                words.iter().any(|w| w == t) || (t.chars().any(is_han) && text.contains(t.as_str()))
            })
        })
    }
}

/// A CJK unified ideograph (the basic block and extension A).
fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// Severity in increasing order. `Severity` has no `Ord` of its own (its order is a
/// business rule, not a property of the enum), so the one comparison lives here.
fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Unspecified => 0,
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

/// A department is a routing label: 1 to `MAX_LABEL_LEN` characters, no control
/// characters and no surrounding spaces, so "finance" and "finance " are not two queues.
fn check_department(v: &mut Violations, field: &str, value: &str) {
    if value.trim().is_empty() {
        v.push(field, "must not be empty");
    } else if value.chars().count() > MAX_LABEL_LEN {
        v.push(field, format!("must be at most {MAX_LABEL_LEN} characters"));
    } else if value.chars().any(char::is_control) || value.trim() != value {
        v.push(
            field,
            "must not contain control characters or leading/trailing spaces",
        );
    }
}

fn check_service_level(v: &mut Violations, field: &str, hours: u32) {
    if !(1..=MAX_SERVICE_LEVEL_HOURS).contains(&hours) {
        v.push(
            field,
            format!("must be 1 to {MAX_SERVICE_LEVEL_HOURS} hours, got {hours}"),
        );
    }
}

/// A bad signal that should open a task, if none is open for this customer and reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub reason: Reason,
    pub department: String,
    /// When the task is due: the signal's time plus the rule's service level.
    pub due_time: Micros,
    /// What happened, in words, for the task list.
    pub detail: String,
}

/// Whether an event could open a task under some rules: any NPS or CSAT answer, any
/// complaint, any comment or note (it may be negative about a routed subject), any
/// payment due and not paid. Independent of the rules, so the store can
/// skip reading them for the bulk of events (purchases).
pub fn might_signal(payload: &EventPayload) -> bool {
    match payload {
        EventPayload::Feedback(f) => {
            matches!(f.kind, FeedbackKind::Nps | FeedbackKind::Csat) || f.comment.is_some()
        }
        EventPayload::Interaction(i) => i.kind == InteractionKind::Complaint || i.note.is_some(),
        EventPayload::Payment(p) => p.due_time.is_some() && p.paid_time.is_none(),
        _ => false,
    }
}

/// Whole days in a span, rounded down; a negative span counts as 0.
fn whole_days(span: Micros) -> i64 {
    span.max(0) / MICROS_PER_DAY
}

/// The grace period in microseconds; saturating, since the field is a bare `u32` until
/// validated.
fn grace(days_overdue_over: u32) -> Micros {
    i64::from(days_overdue_over).saturating_mul(MICROS_PER_DAY)
}

/// One invoice as its payment events leave it.
struct Invoice<'a> {
    amount_minor: i64,
    currency: &'a str,
    due: Option<Micros>,
    paid: Option<Micros>,
}

impl FollowUpRules {
    /// Every rule broken, by field (`detractor.department`, `churn_risk.probability_at_least`, ...).
    pub fn validate(&self) -> Result<(), Violations> {
        let mut v = Violations::new();
        let d = &self.detractor;
        check_department(&mut v, "detractor.department", &d.department);
        check_service_level(
            &mut v,
            "detractor.service_level_hours",
            d.service_level_hours,
        );
        if !(0..=10).contains(&d.nps_at_most) {
            v.push(
                "detractor.nps_at_most",
                format!("must be 0 to 10 (the NPS scale), got {}", d.nps_at_most),
            );
        }
        if !(1..=5).contains(&d.csat_at_most) {
            v.push(
                "detractor.csat_at_most",
                format!("must be 1 to 5 (the CSAT scale), got {}", d.csat_at_most),
            );
        }
        let c = &self.complaint;
        check_department(&mut v, "complaint.department", &c.department);
        check_service_level(
            &mut v,
            "complaint.service_level_hours",
            c.service_level_hours,
        );
        let o = &self.overdue_payment;
        check_department(&mut v, "overdue_payment.department", &o.department);
        check_service_level(
            &mut v,
            "overdue_payment.service_level_hours",
            o.service_level_hours,
        );
        if o.days_overdue_over > MAX_DAYS_OVERDUE_OVER {
            v.push(
                "overdue_payment.days_overdue_over",
                format!(
                    "must be 0 to {MAX_DAYS_OVERDUE_OVER} days, got {}",
                    o.days_overdue_over
                ),
            );
        }
        let r = &self.churn_risk;
        check_department(&mut v, "churn_risk.department", &r.department);
        check_service_level(
            &mut v,
            "churn_risk.service_level_hours",
            r.service_level_hours,
        );
        let p = r.probability_at_least;
        // 0 is refused: every customer is at least 0, so the rule would fire for all.
        if !(p.is_finite() && p > 0.0 && p <= 1.0) {
            v.push(
                "churn_risk.probability_at_least",
                format!("must be above 0 and at most 1, got {p}"),
            );
        }
        let n = &self.negative_comment;
        check_service_level(
            &mut v,
            "negative_comment.service_level_hours",
            n.service_level_hours,
        );
        let s = n.sentiment_at_most;
        if !(s.is_finite() && (-1.0..1.0).contains(&s)) {
            v.push(
                "negative_comment.sentiment_at_most",
                format!("must be from -1 (most negative) to below 1, got {s}"),
            );
        }
        if n.routes.len() > MAX_TOPIC_ROUTES {
            v.push(
                "negative_comment.routes",
                format!("at most {MAX_TOPIC_ROUTES} routes, got {}", n.routes.len()),
            );
        }
        for (i, r) in n.routes.iter().enumerate() {
            let p = format!("negative_comment.routes[{i}]");
            check_department(&mut v, &format!("{p}.department"), &r.department);
            check_department(&mut v, &format!("{p}.subject"), &r.subject);
            if r.terms.is_empty() || r.terms.len() > MAX_ROUTE_TERMS {
                v.push(
                    format!("{p}.terms"),
                    format!(
                        "must list 1 to {MAX_ROUTE_TERMS} terms, got {}",
                        r.terms.len()
                    ),
                );
            }
            for (j, t) in r.terms.iter().enumerate() {
                if t.is_empty()
                    || t.chars().count() > MAX_LABEL_LEN
                    || t.chars().any(|c| c.is_whitespace() || c.is_control())
                    || t.to_lowercase() != *t
                {
                    v.push(
                        format!("{p}.terms[{j}]"),
                        format!(
                            "must be one lower-case word of 1 to {MAX_LABEL_LEN} characters, got {t:?}"
                        ),
                    );
                }
            }
        }
        v.into_result()
    }

    /// The settings every rule shares: whether it is on, its department and its service
    /// level in hours.
    pub fn rule(&self, reason: Reason) -> (bool, &str, u32) {
        match reason {
            Reason::Detractor => (
                self.detractor.enabled,
                &self.detractor.department,
                self.detractor.service_level_hours,
            ),
            Reason::Complaint => (
                self.complaint.enabled,
                &self.complaint.department,
                self.complaint.service_level_hours,
            ),
            Reason::OverduePayment => (
                self.overdue_payment.enabled,
                &self.overdue_payment.department,
                self.overdue_payment.service_level_hours,
            ),
            Reason::ChurnRisk => (
                self.churn_risk.enabled,
                &self.churn_risk.department,
                self.churn_risk.service_level_hours,
            ),
            // Each route has its own department; the detail names the subject.
            Reason::NegativeComment => (
                self.negative_comment.enabled,
                "",
                self.negative_comment.service_level_hours,
            ),
        }
    }

    /// A signal for `reason` if its rule is on; due the service level after `now`.
    fn signal(&self, reason: Reason, now: Micros, detail: String) -> Option<Signal> {
        let (enabled, department, hours) = self.rule(reason);
        enabled.then(|| Signal {
            reason,
            department: department.to_owned(),
            due_time: now.saturating_add(i64::from(hours).saturating_mul(MICROS_PER_HOUR)),
            detail,
        })
    }

    /// The signal a negative comment raises when it is about a routed subject: `sentiment`
    /// is the comment's (-1..1), `words` its normalised words and its topic's terms.
    pub fn signal_of_comment(
        &self,
        sentiment: f64,
        words: &[&str],
        text: &str,
        now: Micros,
    ) -> Option<Signal> {
        let rule = &self.negative_comment;
        if !rule.opens_on(sentiment) {
            return None;
        }
        let route = rule.route_of(words, text)?;
        Some(Signal {
            reason: Reason::NegativeComment,
            department: route.department.clone(),
            due_time: now.saturating_add(
                i64::from(rule.service_level_hours).saturating_mul(MICROS_PER_HOUR),
            ),
            detail: format!(
                "negative comment about {} (sentiment {sentiment:+.2})",
                route.subject
            ),
        })
    }

    /// The signal one new event raises, if any: a detractor's NPS or CSAT answer, a
    /// complaint at or above the rule's severity, or a payment due, unpaid and overdue by
    /// more than the grace period at `now`. A disabled rule raises nothing.
    pub fn signal_of_event(&self, event: &StoredEvent, now: Micros) -> Option<Signal> {
        match &event.payload {
            EventPayload::Feedback(f) => {
                let (name, limit) = match f.kind {
                    FeedbackKind::Nps => ("NPS", self.detractor.nps_at_most),
                    FeedbackKind::Csat => ("CSAT", self.detractor.csat_at_most),
                    _ => return None,
                };
                let score = f.score?;
                if score > limit {
                    return None;
                }
                let mut detail = format!("{name} {score}");
                if !f.channel.is_empty() {
                    detail.push_str(&format!(" (channel {})", f.channel));
                }
                self.signal(Reason::Detractor, now, detail)
            }
            EventPayload::Interaction(i) => {
                if i.kind != InteractionKind::Complaint
                    || severity_rank(i.severity) < severity_rank(self.complaint.min_severity)
                {
                    return None;
                }
                let mut detail = format!("complaint, severity {}", i.severity.as_str());
                if !i.category.is_empty() {
                    detail.push_str(&format!(", category {}", i.category));
                }
                if !i.ticket_id.is_empty() {
                    detail.push_str(&format!(", ticket {}", i.ticket_id));
                }
                self.signal(Reason::Complaint, now, detail)
            }
            EventPayload::Payment(p) => {
                let due = p.due_time?;
                if p.paid_time.is_some() {
                    return None;
                }
                let late = now.saturating_sub(due);
                if late <= grace(self.overdue_payment.days_overdue_over) {
                    return None;
                }
                let invoice = if p.invoice_id.is_empty() {
                    event.event_key.as_str()
                } else {
                    p.invoice_id.as_str()
                };
                let detail = format!(
                    "invoice {invoice}: {} {} (minor units) unpaid, {} days overdue",
                    p.amount_minor,
                    p.currency,
                    whole_days(late)
                );
                self.signal(Reason::OverduePayment, now, detail)
            }
            _ => None,
        }
    }

    /// The overdue signal of a customer's whole history, for a refresh. Payments are folded
    /// by invoice in slice order, as `features::behaviour` does (pass timelines oldest
    /// first): the last event's amount and currency win, and a due or paid time, once
    /// given, stays unless a later event gives another. One signal names how many invoices
    /// are overdue beyond the grace period, their total per currency and the oldest.
    pub fn signal_of_overdue(&self, events: &[StoredEvent], now: Micros) -> Option<Signal> {
        if !self.overdue_payment.enabled {
            return None;
        }
        let mut invoices: HashMap<&str, Invoice> = HashMap::new();
        for e in events {
            let EventPayload::Payment(p) = &e.payload else {
                continue;
            };
            let invoice = if p.invoice_id.is_empty() {
                e.event_key.as_str()
            } else {
                p.invoice_id.as_str()
            };
            let entry = invoices.entry(invoice).or_insert(Invoice {
                amount_minor: p.amount_minor,
                currency: &p.currency,
                due: None,
                paid: None,
            });
            entry.amount_minor = p.amount_minor;
            entry.currency = &p.currency;
            if p.due_time.is_some() {
                entry.due = p.due_time;
            }
            if p.paid_time.is_some() {
                entry.paid = p.paid_time;
            }
        }
        let grace = grace(self.overdue_payment.days_overdue_over);
        let mut count = 0usize;
        let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
        let mut oldest: Micros = 0;
        for invoice in invoices.into_values() {
            let (Some(due), None) = (invoice.due, invoice.paid) else {
                continue;
            };
            let late = now.saturating_sub(due);
            if late <= grace {
                continue;
            }
            count += 1;
            let total = totals.entry(invoice.currency).or_insert(0);
            *total = total.saturating_add(invoice.amount_minor);
            oldest = oldest.max(late);
        }
        if count == 0 {
            return None;
        }
        let amounts = totals
            .iter()
            .map(|(currency, total)| format!("{total} {currency}"))
            .collect::<Vec<_>>()
            .join(" and ");
        let noun = if count == 1 { "invoice" } else { "invoices" };
        let detail = format!(
            "{count} {noun} overdue by more than {} days: {amounts} (minor units) unpaid, the oldest {} days overdue",
            self.overdue_payment.days_overdue_over,
            whole_days(oldest)
        );
        self.signal(Reason::OverduePayment, now, detail)
    }

    /// A churn-risk signal when the probability crossed the threshold at this refresh:
    /// `current` reaches it and `previous` was below it or unknown. A customer who stays
    /// above the threshold raises no new signal on every refresh; one who drops below and
    /// comes back does. A `current` that is not a number raises nothing.
    pub fn signal_of_risk(
        &self,
        previous: Option<f64>,
        current: f64,
        now: Micros,
    ) -> Option<Signal> {
        let threshold = self.churn_risk.probability_at_least;
        if current.is_nan() || current < threshold {
            return None;
        }
        // A previous value that is not a number is as good as unknown.
        let previous = previous.filter(|p| !p.is_nan());
        if previous.is_some_and(|p| p >= threshold) {
            return None;
        }
        let was = match previous {
            Some(p) => format!("was {p:.2}"),
            None => "no earlier estimate".to_owned(),
        };
        let detail = format!("churn probability {current:.2} ({was}), threshold {threshold:.2}");
        self.signal(Reason::ChurnRisk, now, detail)
    }
}

/// A change of a task's status, asked for by a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Move {
    /// Give the task to someone (or to someone else).
    Assign { assignee: String },
    /// Begin work; names the assignee unless the task already has one.
    Start { assignee: Option<String> },
    /// Close the task with what was done.
    Resolve { outcome: String },
    /// Close the task without action, saying why.
    Dismiss { reason: String },
}

/// Why a move was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum MoveError {
    /// The move is allowed from this status, but its input is not (by field).
    #[error("{0}")]
    Invalid(Violations),
    /// The move is not allowed from this status.
    #[error("{0}")]
    Illegal(String),
}

fn invalid(field: &str, description: impl Into<String>) -> MoveError {
    let mut v = Violations::new();
    v.push(field, description);
    MoveError::Invalid(v)
}

/// A person's name or id: trimmed, 1 to `MAX_LABEL_LEN` characters, one line.
fn assignee_of(field: &str, value: &str) -> Result<String, MoveError> {
    let value = value.trim();
    if value.is_empty() {
        Err(invalid(field, "must not be empty"))
    } else if value.chars().count() > MAX_LABEL_LEN {
        Err(invalid(
            field,
            format!("must be at most {MAX_LABEL_LEN} characters"),
        ))
    } else if value.chars().any(char::is_control) {
        Err(invalid(field, "must not contain control characters"))
    } else {
        Ok(value.to_owned())
    }
}

/// A free-text note (outcome, reason): not blank, at most `MAX_NOTE_LEN` characters; it
/// may span lines.
fn check_note(field: &str, value: &str) -> Result<(), MoveError> {
    if value.trim().is_empty() {
        Err(invalid(field, "must not be empty"))
    } else if value.chars().count() > MAX_NOTE_LEN {
        Err(invalid(
            field,
            format!("must be at most {MAX_NOTE_LEN} characters"),
        ))
    } else {
        Ok(())
    }
}

/// The status and assignee after a move, or why it is refused. Legality is checked before
/// input, so a move that could never succeed says so rather than asking for better input.
///
/// - assign: from any open status; open becomes assigned, in progress stays in progress.
/// - start: from open or assigned; needs an assignee, given or already set.
/// - resolve: from in progress only; a task is worked on before it is resolved.
/// - dismiss: from any open status.
///
/// The outcome and the reason are not part of the task's state here; the store records
/// them with the move.
pub fn apply_move(
    status: FollowUpStatus,
    assignee: Option<&str>,
    mv: &Move,
) -> Result<(FollowUpStatus, Option<String>), MoveError> {
    use FollowUpStatus::*;
    if status.is_terminal() {
        return Err(MoveError::Illegal(format!(
            "the follow-up is already {}: open tasks only",
            status.as_str()
        )));
    }
    let current = assignee.map(str::to_owned);
    match mv {
        Move::Assign { assignee } => {
            let who = assignee_of("assign.assignee", assignee)?;
            let next = if status == InProgress {
                InProgress
            } else {
                Assigned
            };
            Ok((next, Some(who)))
        }
        Move::Start { assignee: given } => {
            if status == InProgress {
                return Err(MoveError::Illegal(
                    "the follow-up is already in progress".into(),
                ));
            }
            let who = match given {
                Some(given) => assignee_of("start.assignee", given)?,
                None => match assignee.map(str::trim).filter(|a| !a.is_empty()) {
                    Some(a) => a.to_owned(),
                    None => {
                        return Err(invalid(
                            "start.assignee",
                            "starting needs an assignee: give one or assign first",
                        ));
                    }
                },
            };
            Ok((InProgress, Some(who)))
        }
        Move::Resolve { outcome } => {
            if status != InProgress {
                return Err(MoveError::Illegal(
                    "a follow-up is started before it is resolved: start it first".into(),
                ));
            }
            check_note("resolve.outcome", outcome)?;
            Ok((Resolved, current))
        }
        Move::Dismiss { reason } => {
            check_note("dismiss.reason", reason)?;
            Ok((Dismissed, current))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: Micros = 1_700_000_000_000_000;
    const DAY: Micros = MICROS_PER_DAY;

    fn stored(key: &str, payload: EventPayload) -> StoredEvent {
        StoredEvent {
            customer_id: "c1".into(),
            event_key: key.into(),
            time: NOW - DAY,
            record_time: NOW - DAY,
            payload,
        }
    }

    fn feedback(kind: FeedbackKind, score: i32) -> StoredEvent {
        stored(
            "f",
            EventPayload::Feedback(Feedback {
                kind,
                score: Some(score),
                comment: None,
                channel: "web".into(),
            }),
        )
    }

    fn interaction(kind: InteractionKind, severity: Severity) -> StoredEvent {
        stored(
            "i",
            EventPayload::Interaction(Interaction {
                note: None,
                kind,
                severity,
                category: "billing".into(),
                channel: "phone".into(),
                ticket_id: "T-7".into(),
                resolved_time: None,
            }),
        )
    }

    fn payment(
        key: &str,
        invoice: &str,
        amount: i64,
        currency: &str,
        due: Option<Micros>,
        paid: Option<Micros>,
    ) -> StoredEvent {
        stored(
            key,
            EventPayload::Payment(Payment {
                invoice_id: invoice.into(),
                amount_minor: amount,
                currency: currency.into(),
                due_time: due,
                paid_time: paid,
                method: String::new(),
            }),
        )
    }

    fn purchase() -> StoredEvent {
        stored(
            "t",
            EventPayload::Transaction(Transaction {
                amount_minor: 100,
                currency: "EUR".into(),
                quantity: 1,
                category: String::new(),
                channel: String::new(),
            }),
        )
    }

    fn fields(rules: &FollowUpRules) -> Vec<String> {
        rules
            .validate()
            .err()
            .map(|v| v.0.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn names_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        for s in FollowUpStatus::ALL {
            assert_eq!(FollowUpStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
            assert_eq!(!s.is_terminal(), OPEN_STATUSES.contains(&s.as_str()));
        }
        assert_eq!(Reason::parse("Detractor"), None);
        assert_eq!(FollowUpStatus::parse(""), None);
    }

    #[test]
    fn default_rules_are_valid_and_round_trip_through_json() {
        let rules = FollowUpRules::default();
        assert_eq!(rules.validate(), Ok(()));
        let json = serde_json::to_string(&rules).unwrap();
        let back: FollowUpRules = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rules);
        assert_eq!(rules.rule(Reason::OverduePayment), (true, "finance", 120));
        assert_eq!(
            rules.rule(Reason::ChurnRisk),
            (true, "account_management", 168)
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut json = serde_json::to_value(FollowUpRules::default()).unwrap();
        json["detractor"]["nps_at_mots"] = 5.into();
        assert!(serde_json::from_value::<FollowUpRules>(json).is_err());
    }

    #[test]
    fn every_rule_field_is_validated() {
        type Edit = fn(&mut FollowUpRules);
        let cases: [(Edit, &str); 16] = [
            (
                |r| r.detractor.department = " ".into(),
                "detractor.department",
            ),
            (
                |r| r.complaint.department = "x".repeat(MAX_LABEL_LEN + 1),
                "complaint.department",
            ),
            (
                |r| r.overdue_payment.department = "fin\nance".into(),
                "overdue_payment.department",
            ),
            (
                |r| r.churn_risk.department = " am".into(),
                "churn_risk.department",
            ),
            (
                |r| r.detractor.service_level_hours = 0,
                "detractor.service_level_hours",
            ),
            (
                |r| r.complaint.service_level_hours = MAX_SERVICE_LEVEL_HOURS + 1,
                "complaint.service_level_hours",
            ),
            (
                |r| r.overdue_payment.service_level_hours = 0,
                "overdue_payment.service_level_hours",
            ),
            (
                |r| r.churn_risk.service_level_hours = u32::MAX,
                "churn_risk.service_level_hours",
            ),
            (|r| r.detractor.nps_at_most = -1, "detractor.nps_at_most"),
            (|r| r.detractor.nps_at_most = 11, "detractor.nps_at_most"),
            (|r| r.detractor.csat_at_most = 0, "detractor.csat_at_most"),
            (|r| r.detractor.csat_at_most = 6, "detractor.csat_at_most"),
            (
                |r| r.overdue_payment.days_overdue_over = MAX_DAYS_OVERDUE_OVER + 1,
                "overdue_payment.days_overdue_over",
            ),
            (
                |r| r.churn_risk.probability_at_least = 0.0,
                "churn_risk.probability_at_least",
            ),
            (
                |r| r.churn_risk.probability_at_least = 1.5,
                "churn_risk.probability_at_least",
            ),
            (
                |r| r.churn_risk.probability_at_least = f64::NAN,
                "churn_risk.probability_at_least",
            ),
        ];
        for (edit, field) in cases {
            let mut rules = FollowUpRules::default();
            edit(&mut rules);
            assert_eq!(fields(&rules), [field], "{rules:?}");
        }
        // The edges themselves are fine.
        let mut rules = FollowUpRules::default();
        rules.detractor.nps_at_most = 0;
        rules.detractor.csat_at_most = 5;
        rules.complaint.service_level_hours = MAX_SERVICE_LEVEL_HOURS;
        rules.overdue_payment.days_overdue_over = 0;
        rules.churn_risk.probability_at_least = 1.0;
        rules.churn_risk.department = "x".repeat(MAX_LABEL_LEN);
        assert_eq!(rules.validate(), Ok(()));
    }

    #[test]
    fn might_signal_is_a_cheap_superset() {
        assert!(might_signal(&feedback(FeedbackKind::Nps, 10).payload));
        assert!(might_signal(&feedback(FeedbackKind::Csat, 5).payload));
        assert!(!might_signal(&feedback(FeedbackKind::Ces, 1).payload));
        assert!(!might_signal(&feedback(FeedbackKind::Review, 1).payload));
        assert!(might_signal(
            &interaction(InteractionKind::Complaint, Severity::Low).payload
        ));
        assert!(!might_signal(
            &interaction(InteractionKind::Support, Severity::Critical).payload
        ));
        assert!(might_signal(
            &payment("p", "I1", 1, "EUR", Some(NOW), None).payload
        ));
        assert!(!might_signal(
            &payment("p", "I1", 1, "EUR", Some(NOW), Some(NOW)).payload
        ));
        assert!(!might_signal(
            &payment("p", "I1", 1, "EUR", None, None).payload
        ));
        assert!(!might_signal(&purchase().payload));
    }

    #[test]
    fn detractor_thresholds() {
        let rules = FollowUpRules::default();
        let s = rules
            .signal_of_event(&feedback(FeedbackKind::Nps, 6), NOW)
            .unwrap();
        assert_eq!(s.reason, Reason::Detractor);
        assert_eq!(s.department, "customer_service");
        assert_eq!(s.due_time, NOW + 48 * MICROS_PER_HOUR);
        assert_eq!(s.detail, "NPS 6 (channel web)");
        assert!(
            rules
                .signal_of_event(&feedback(FeedbackKind::Nps, 7), NOW)
                .is_none()
        );
        let s = rules
            .signal_of_event(&feedback(FeedbackKind::Csat, 2), NOW)
            .unwrap();
        assert_eq!(s.detail, "CSAT 2 (channel web)");
        assert!(
            rules
                .signal_of_event(&feedback(FeedbackKind::Csat, 3), NOW)
                .is_none()
        );
        // CES and reviews have no detractor rule.
        assert!(
            rules
                .signal_of_event(&feedback(FeedbackKind::Ces, 1), NOW)
                .is_none()
        );
        assert!(
            rules
                .signal_of_event(&feedback(FeedbackKind::Review, 1), NOW)
                .is_none()
        );
        assert!(rules.signal_of_event(&purchase(), NOW).is_none());
    }

    #[test]
    fn complaints_by_severity() {
        let mut rules = FollowUpRules::default();
        let s = rules
            .signal_of_event(
                &interaction(InteractionKind::Complaint, Severity::Unspecified),
                NOW,
            )
            .unwrap();
        assert_eq!(s.reason, Reason::Complaint);
        assert_eq!(s.department, "quality");
        assert_eq!(
            s.detail,
            "complaint, severity unspecified, category billing, ticket T-7"
        );
        assert!(
            rules
                .signal_of_event(&interaction(InteractionKind::Inquiry, Severity::High), NOW)
                .is_none()
        );
        rules.complaint.min_severity = Severity::High;
        for severity in Severity::ALL {
            let fired = rules
                .signal_of_event(&interaction(InteractionKind::Complaint, severity), NOW)
                .is_some();
            assert_eq!(
                fired,
                matches!(severity, Severity::High | Severity::Critical),
                "{severity:?}"
            );
        }
    }

    #[test]
    fn overdue_payment_edge_is_strict() {
        let rules = FollowUpRules::default();
        let due = NOW - 30 * DAY;
        let at = |due| payment("p", "INV-1", 12_000, "EUR", Some(due), None);
        assert!(rules.signal_of_event(&at(due), NOW).is_none());
        let s = rules.signal_of_event(&at(due - 1), NOW).unwrap();
        assert_eq!(s.reason, Reason::OverduePayment);
        assert_eq!(s.department, "finance");
        assert_eq!(s.due_time, NOW + 120 * MICROS_PER_HOUR);
        assert_eq!(
            s.detail,
            "invoice INV-1: 12000 EUR (minor units) unpaid, 30 days overdue"
        );
        let paid = payment("p", "INV-1", 12_000, "EUR", Some(due - DAY), Some(NOW));
        assert!(rules.signal_of_event(&paid, NOW).is_none());
        let undated = payment("p", "INV-1", 12_000, "EUR", None, None);
        assert!(rules.signal_of_event(&undated, NOW).is_none());
        // An invoice without an id is named by its event key, as features.rs does.
        let anonymous = payment("key-9", "", 5, "EUR", Some(i64::MIN), None);
        let s = rules.signal_of_event(&anonymous, i64::MAX).unwrap();
        assert!(s.detail.starts_with("invoice key-9:"), "{}", s.detail);
        assert_eq!(s.due_time, i64::MAX);
    }

    #[test]
    fn disabled_rules_raise_nothing() {
        let mut rules = FollowUpRules::default();
        rules.detractor.enabled = false;
        rules.complaint.enabled = false;
        rules.overdue_payment.enabled = false;
        rules.churn_risk.enabled = false;
        let overdue = payment("p", "I", 1, "EUR", Some(NOW - 90 * DAY), None);
        for e in [
            feedback(FeedbackKind::Nps, 0),
            interaction(InteractionKind::Complaint, Severity::Critical),
            overdue.clone(),
        ] {
            assert!(rules.signal_of_event(&e, NOW).is_none(), "{e:?}");
        }
        assert!(rules.signal_of_overdue(&[overdue], NOW).is_none());
        assert!(rules.signal_of_risk(None, 0.99, NOW).is_none());
    }

    #[test]
    fn overdue_history_folds_invoices_in_order() {
        let rules = FollowUpRules::default();
        let events = [
            // Paid later: not overdue.
            payment("a1", "A", 1_000, "EUR", Some(NOW - 60 * DAY), None),
            payment("a2", "A", 1_000, "EUR", None, Some(NOW - 10 * DAY)),
            // Overdue 45 days, amount corrected by a later event.
            payment("b1", "B", 2_000, "EUR", Some(NOW - 45 * DAY), None),
            payment("b2", "B", 2_500, "EUR", None, None),
            // Overdue 40 days, another currency.
            payment("c1", "C", 700, "USD", Some(NOW - 40 * DAY), None),
            // Due date moved later: inside the grace period.
            payment("d1", "D", 900, "EUR", Some(NOW - 50 * DAY), None),
            payment("d2", "D", 900, "EUR", Some(NOW - 5 * DAY), None),
            // Overdue 31 days.
            payment("e1", "E", 500, "EUR", Some(NOW - 31 * DAY), None),
            purchase(),
        ];
        let s = rules.signal_of_overdue(&events, NOW).unwrap();
        assert_eq!(s.reason, Reason::OverduePayment);
        assert_eq!(
            s.detail,
            "3 invoices overdue by more than 30 days: 3000 EUR and 700 USD (minor units) unpaid, the oldest 45 days overdue"
        );
        assert!(rules.signal_of_overdue(&events[..2], NOW).is_none());
        assert!(rules.signal_of_overdue(&[], NOW).is_none());
        let one = [payment("x", "X", 10, "GBP", Some(NOW - 31 * DAY), None)];
        assert_eq!(
            rules.signal_of_overdue(&one, NOW).unwrap().detail,
            "1 invoice overdue by more than 30 days: 10 GBP (minor units) unpaid, the oldest 31 days overdue"
        );
    }

    #[test]
    fn risk_fires_on_crossing_only() {
        let rules = FollowUpRules::default();
        let s = rules.signal_of_risk(Some(0.4), 0.6, NOW).unwrap();
        assert_eq!(s.reason, Reason::ChurnRisk);
        assert_eq!(s.department, "account_management");
        assert_eq!(s.due_time, NOW + 168 * MICROS_PER_HOUR);
        assert_eq!(
            s.detail,
            "churn probability 0.60 (was 0.40), threshold 0.50"
        );
        assert!(rules.signal_of_risk(Some(0.6), 0.7, NOW).is_none());
        assert!(rules.signal_of_risk(None, 0.6, NOW).is_some());
        assert!(rules.signal_of_risk(Some(0.49), 0.5, NOW).is_some());
        assert!(rules.signal_of_risk(Some(0.5), 0.9, NOW).is_none());
        assert!(rules.signal_of_risk(None, 0.49, NOW).is_none());
        assert!(rules.signal_of_risk(Some(0.9), 0.2, NOW).is_none());
        assert!(rules.signal_of_risk(None, f64::NAN, NOW).is_none());
        assert!(rules.signal_of_risk(Some(f64::NAN), 0.6, NOW).is_some());
    }

    #[test]
    fn moves() {
        use FollowUpStatus::*;
        let assign = |a: &str| Move::Assign { assignee: a.into() };
        let start = |a: Option<&str>| Move::Start {
            assignee: a.map(Into::into),
        };
        let resolve = Move::Resolve {
            outcome: "called back, refunded".into(),
        };
        let dismiss = Move::Dismiss {
            reason: "duplicate".into(),
        };
        let ok = |s: FollowUpStatus, a: Option<&str>| Ok((s, a.map(str::to_owned)));
        let cases: Vec<(FollowUpStatus, Option<&str>, Move, Result<_, MoveError>)> = vec![
            (Open, None, assign(" ann "), ok(Assigned, Some("ann"))),
            (
                Assigned,
                Some("ann"),
                assign("bob"),
                ok(Assigned, Some("bob")),
            ),
            (
                InProgress,
                Some("ann"),
                assign("bob"),
                ok(InProgress, Some("bob")),
            ),
            (Open, None, start(Some("ann")), ok(InProgress, Some("ann"))),
            (Open, Some("ann"), start(None), ok(InProgress, Some("ann"))),
            (
                Assigned,
                Some("ann"),
                start(None),
                ok(InProgress, Some("ann")),
            ),
            (
                Assigned,
                Some("ann"),
                start(Some("bob")),
                ok(InProgress, Some("bob")),
            ),
            (
                InProgress,
                Some("ann"),
                resolve.clone(),
                ok(Resolved, Some("ann")),
            ),
            (Open, None, dismiss.clone(), ok(Dismissed, None)),
            (
                Assigned,
                Some("ann"),
                dismiss.clone(),
                ok(Dismissed, Some("ann")),
            ),
            (
                InProgress,
                Some("ann"),
                dismiss.clone(),
                ok(Dismissed, Some("ann")),
            ),
        ];
        for (status, who, mv, want) in cases {
            assert_eq!(apply_move(status, who, &mv), want, "{status:?} {mv:?}");
        }

        let illegal = |status, who: Option<&str>, mv: &Move| match apply_move(status, who, mv) {
            Err(MoveError::Illegal(m)) => m,
            other => panic!("{status:?} {mv:?}: {other:?}"),
        };
        let first_start = "a follow-up is started before it is resolved: start it first";
        assert_eq!(illegal(Open, None, &resolve), first_start);
        assert_eq!(illegal(Assigned, Some("ann"), &resolve), first_start);
        assert_eq!(
            illegal(InProgress, Some("ann"), &start(None)),
            "the follow-up is already in progress"
        );
        for mv in [
            assign("ann"),
            start(Some("ann")),
            resolve.clone(),
            dismiss.clone(),
        ] {
            assert_eq!(
                illegal(Resolved, Some("ann"), &mv),
                "the follow-up is already resolved: open tasks only"
            );
            assert_eq!(
                illegal(Dismissed, None, &mv),
                "the follow-up is already dismissed: open tasks only"
            );
        }
        // Legality is checked before input.
        assert!(matches!(
            apply_move(Resolved, None, &assign("")),
            Err(MoveError::Illegal(_))
        ));

        let invalid = |status, who: Option<&str>, mv: Move| match apply_move(status, who, &mv) {
            Err(MoveError::Invalid(v)) => v.0[0].field.clone(),
            other => panic!("{status:?} {mv:?}: {other:?}"),
        };
        assert_eq!(invalid(Open, None, assign("  ")), "assign.assignee");
        assert_eq!(
            invalid(Open, None, assign(&"x".repeat(MAX_LABEL_LEN + 1))),
            "assign.assignee"
        );
        assert_eq!(invalid(Open, None, assign("a\tb")), "assign.assignee");
        assert_eq!(invalid(Open, None, start(None)), "start.assignee");
        assert_eq!(invalid(Open, Some(" "), start(None)), "start.assignee");
        assert_eq!(
            invalid(Assigned, Some("ann"), start(Some(""))),
            "start.assignee"
        );
        assert_eq!(
            invalid(
                InProgress,
                Some("ann"),
                Move::Resolve {
                    outcome: " \n".into()
                }
            ),
            "resolve.outcome"
        );
        assert_eq!(
            invalid(
                InProgress,
                Some("ann"),
                Move::Resolve {
                    outcome: "x".repeat(MAX_NOTE_LEN + 1)
                }
            ),
            "resolve.outcome"
        );
        assert_eq!(
            invalid(Open, None, Move::Dismiss { reason: "".into() }),
            "dismiss.reason"
        );
        assert_eq!(
            invalid(
                Open,
                None,
                Move::Dismiss {
                    reason: "x".repeat(MAX_NOTE_LEN + 1)
                }
            ),
            "dismiss.reason"
        );
        let message = apply_move(Open, None, &start(None))
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "start.assignee: starting needs an assignee: give one or assign first"
        );
    }

    #[test]
    fn a_negative_comment_opens_a_task_for_its_subject_s_department_only() {
        let rules = FollowUpRules::default();
        let text = "The parcel arrived two weeks late";
        let words = ["the", "parcel", "arrived", "two", "weeks", "late"];
        let s = rules
            .signal_of_comment(-0.8, &words, text, NOW)
            .expect("negative, about delivery");
        assert_eq!(
            (s.reason, s.department.as_str()),
            (Reason::NegativeComment, "logistics")
        );
        assert!(s.detail.contains("about delivery"), "{s:?}");
        // Not negative enough, not negative at all, or NaN: nothing.
        assert!(rules.signal_of_comment(-0.29, &words, text, NOW).is_none());
        assert!(rules.signal_of_comment(0.9, &words, text, NOW).is_none());
        assert!(
            rules
                .signal_of_comment(f64::NAN, &words, text, NOW)
                .is_none()
        );
        // Negative about nothing routed: nothing.
        assert!(
            rules
                .signal_of_comment(-0.9, &["rude", "staff"], "rude staff", NOW)
                .is_none()
        );
        // A Chinese term is found inside the text even when segmented into a longer word.
        let zh = rules
            .signal_of_comment(-0.7, &["快递员", "态度", "差"], "快递员态度差", NOW)
            .expect("快递 inside 快递员");
        assert_eq!(zh.department, "logistics");
        let billing = rules
            .signal_of_comment(-0.7, &["charged", "twice"], "charged twice", NOW)
            .expect("billing");
        assert_eq!(billing.department, "finance");
        let mut off = rules.clone();
        off.negative_comment.enabled = false;
        assert!(off.signal_of_comment(-0.9, &words, text, NOW).is_none());
    }

    #[test]
    fn negative_comment_routes_are_validated_by_field() {
        let mut rules = FollowUpRules::default();
        rules.negative_comment.sentiment_at_most = 1.0;
        rules.negative_comment.routes[1].terms = vec!["Refund".into()];
        rules.negative_comment.routes[0].department = " logistics".into();
        let v = rules.validate().expect_err("three mistakes");
        let fields: Vec<&str> = v.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "negative_comment.sentiment_at_most",
                "negative_comment.routes[0].department",
                "negative_comment.routes[1].terms[0]",
            ]
        );
        // Rules stored before the rule existed read with its default.
        let mut old = serde_json::to_value(FollowUpRules::default()).expect("json");
        if let Some(o) = old.as_object_mut() {
            o.remove("negative_comment");
        }
        let read: FollowUpRules = serde_json::from_value(old).expect("old rules read");
        assert_eq!(read.negative_comment, NegativeCommentRule::default());
    }
}
