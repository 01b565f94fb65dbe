//! Business rules for what Vitals accepts, shared by the API and the importers, with
//! violations named by field so a caller knows exactly what to fix.

use crate::currency;
use crate::records::*;
use crate::time::{MICROS_PER_DAY, Micros};

pub const MAX_ID_LEN: usize = 128;
pub const MAX_NAME_LEN: usize = 256;
pub const MAX_LABEL_LEN: usize = 64;
pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_ATTRIBUTES: usize = 64;
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 64;
pub const MAX_ATTRIBUTE_STRING_LEN: usize = 256;
pub const MAX_COMMENT_LEN: usize = 4_000;
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// How far past the server's clock an event may lie (clock skew between systems).
pub const MAX_FUTURE_SKEW: Micros = MICROS_PER_DAY;
/// How far ahead an invoice may be due.
pub const MAX_DUE_AHEAD: Micros = 400 * MICROS_PER_DAY;

/// One thing wrong with a request: the field (proto path, e.g. `events[3].time`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// Everything wrong with a request, collected so the caller can fix it in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn first(&self) -> Option<&FieldViolation> {
        self.0.first()
    }

    /// `Ok(())` when nothing was found.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// One line listing every violation, for messages and logs.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

impl std::error::Error for Violations {}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A required identifier: 1 to 128 characters, no control characters, no surrounding space.
pub fn check_id(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        v.push(field, "must not be empty");
    } else if value.chars().count() > MAX_ID_LEN {
        v.push(field, format!("must be at most {MAX_ID_LEN} characters"));
    } else if has_control(value) || value.trim() != value {
        v.push(
            field,
            "must not contain control characters or leading/trailing spaces",
        );
    }
}

/// Optional free text with a length limit.
pub fn check_text(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        v.push(field, format!("must be at most {max} characters"));
    } else if has_control(value) {
        v.push(field, "must not contain control characters");
    }
}

/// Free text that may span lines (comments): only its length is limited.
fn check_multiline(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        v.push(field, format!("must be at most {max} characters"));
    }
}

/// A pragmatic e-mail check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_email(s: &str) -> bool {
    if s.len() > MAX_EMAIL_LEN || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

/// 7 to 15 digits (E.164), optionally with `+`, spaces, dashes, dots and parentheses.
pub fn is_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits)
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'))
        && s.chars().skip(1).all(|c| c != '+')
}

/// A time that has happened: not before 1970 and at most a day past `now`.
pub fn check_past_time(v: &mut Violations, field: &str, t: Micros, now: Micros) {
    if t < 0 {
        v.push(field, "must not be before 1970-01-01");
    } else if t > now.saturating_add(MAX_FUTURE_SKEW) {
        v.push(field, "must not be more than a day in the future");
    }
}

fn check_currency(v: &mut Violations, field: &str, code: &str) {
    if !currency::is_known(code) {
        v.push(
            field,
            format!("unknown currency {code:?}: expected an ISO 4217 code such as \"USD\""),
        );
    }
}

fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ATTRIBUTE_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Checks a customer's data; `prefix` is the field path of the customer (e.g. `customer`).
pub fn check_customer(v: &mut Violations, prefix: &str, c: &CustomerData, now: Micros) {
    check_id(v, &join(prefix, "external_id"), &c.external_id);
    if let Some(name) = &c.display_name {
        check_text(v, &join(prefix, "display_name"), name, MAX_NAME_LEN);
    }
    if let Some(email) = &c.email
        && !is_email(email)
    {
        v.push(join(prefix, "email"), "is not a well-formed e-mail address");
    }
    if let Some(phone) = &c.phone
        && !is_phone(phone)
    {
        v.push(
            join(prefix, "phone"),
            "must be 7 to 15 digits, optionally with +, spaces, dashes, dots or parentheses",
        );
    }
    check_text(v, &join(prefix, "region"), &c.region, MAX_LABEL_LEN);
    check_text(
        v,
        &join(prefix, "acquisition_channel"),
        &c.acquisition_channel,
        MAX_LABEL_LEN,
    );
    if let Some(t) = c.signup_time {
        check_past_time(v, &join(prefix, "signup_time"), t, now);
    }
    if let Some(t) = c.churn_time {
        check_past_time(v, &join(prefix, "churn_time"), t, now);
        if let Some(signup) = c.signup_time
            && t < signup
        {
            v.push(join(prefix, "churn_time"), "must not be before signup_time");
        }
    }
    if c.attributes.len() > MAX_ATTRIBUTES {
        v.push(
            join(prefix, "attributes"),
            format!(
                "has {} entries; at most {MAX_ATTRIBUTES} are allowed",
                c.attributes.len()
            ),
        );
    }
    for (name, value) in &c.attributes {
        let field = format!("{}[{name:?}]", join(prefix, "attributes"));
        if !is_attribute_name(name) {
            v.push(
                &field,
                format!(
                    "attribute names are 1 to {MAX_ATTRIBUTE_NAME_LEN} letters, digits, '_', '-' or '.'"
                ),
            );
        }
        match value {
            AttributeValue::Number(x) if !x.is_finite() => {
                v.push(&field, "must be a finite number")
            }
            AttributeValue::String(s) => check_text(v, &field, s, MAX_ATTRIBUTE_STRING_LEN),
            _ => {}
        }
    }
}

/// Checks one event; `prefix` is its field path (e.g. `events[3]`).
pub fn check_event(v: &mut Violations, prefix: &str, e: &NewEvent, now: Micros) {
    check_id(v, &join(prefix, "event_key"), &e.event_key);
    match &e.customer {
        CustomerRef::Id(id) => check_id(v, &join(prefix, "customer_id"), id),
        CustomerRef::ExternalId(id) => check_id(v, &join(prefix, "customer_external_id"), id),
    }
    check_past_time(v, &join(prefix, "time"), e.time, now);
    match &e.payload {
        EventPayload::Transaction(t) => {
            let p = join(prefix, "transaction");
            check_currency(v, &join(&p, "currency"), &t.currency);
            if t.quantity < 0 {
                v.push(join(&p, "quantity"), "must not be negative");
            }
            check_text(v, &join(&p, "category"), &t.category, MAX_LABEL_LEN);
            check_text(v, &join(&p, "channel"), &t.channel, MAX_LABEL_LEN);
        }
        EventPayload::Payment(pay) => {
            let p = join(prefix, "payment");
            check_text(v, &join(&p, "invoice_id"), &pay.invoice_id, MAX_ID_LEN);
            check_currency(v, &join(&p, "currency"), &pay.currency);
            if pay.amount_minor < 0 {
                v.push(join(&p, "amount_minor"), "must not be negative");
            }
            if let Some(due) = pay.due_time {
                if due < 0 {
                    v.push(join(&p, "due_time"), "must not be before 1970-01-01");
                } else if due > now.saturating_add(MAX_DUE_AHEAD) {
                    v.push(join(&p, "due_time"), "must be within 400 days from now");
                }
            }
            if let Some(paid) = pay.paid_time {
                check_past_time(v, &join(&p, "paid_time"), paid, now);
            }
            check_text(v, &join(&p, "method"), &pay.method, MAX_LABEL_LEN);
        }
        EventPayload::Feedback(f) => {
            let p = join(prefix, "feedback");
            let range = f.kind.score_range();
            match f.score {
                Some(score) if !range.contains(&score) => v.push(
                    join(&p, "score"),
                    format!(
                        "{} scores are {} to {}, got {score}",
                        f.kind.as_str().to_uppercase(),
                        range.start(),
                        range.end(),
                    ),
                ),
                Some(_) => {}
                None if f.kind == FeedbackKind::Review => {
                    if f.comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
                        v.push(
                            join(&p, "comment"),
                            "a review without a score needs a comment: it is all the review says",
                        );
                    }
                }
                None => v.push(
                    join(&p, "score"),
                    format!(
                        "{} answers need a score ({} to {}); only a review may come without one",
                        f.kind.as_str().to_uppercase(),
                        range.start(),
                        range.end(),
                    ),
                ),
            }
            if let Some(comment) = &f.comment {
                check_multiline(v, &join(&p, "comment"), comment, MAX_COMMENT_LEN);
            }
            check_text(v, &join(&p, "channel"), &f.channel, MAX_LABEL_LEN);
        }
        EventPayload::Interaction(i) => {
            let p = join(prefix, "interaction");
            check_text(v, &join(&p, "category"), &i.category, MAX_LABEL_LEN);
            check_text(v, &join(&p, "channel"), &i.channel, MAX_LABEL_LEN);
            check_text(v, &join(&p, "ticket_id"), &i.ticket_id, MAX_ID_LEN);
            if let Some(note) = &i.note {
                check_multiline(v, &join(&p, "note"), note, MAX_COMMENT_LEN);
            }
            if let Some(resolved) = i.resolved_time {
                check_past_time(v, &join(&p, "resolved_time"), resolved, now);
                if resolved < e.time {
                    v.push(
                        join(&p, "resolved_time"),
                        "must not be before the event's time",
                    );
                }
            }
        }
        EventPayload::RetentionAction(a) => {
            let p = join(prefix, "retention_action");
            if a.kind.trim().is_empty() {
                v.push(
                    join(&p, "kind"),
                    "must name the action (call, discount, upgrade, ...)",
                );
            }
            check_text(v, &join(&p, "kind"), &a.kind, MAX_LABEL_LEN);
            if a.cost_minor < 0 {
                v.push(join(&p, "cost_minor"), "must not be negative");
            }
            // A free action (a call) needs no currency.
            if a.cost_minor != 0 || !a.currency.is_empty() {
                check_currency(v, &join(&p, "currency"), &a.currency);
            }
            check_text(v, &join(&p, "campaign"), &a.campaign, MAX_LABEL_LEN);
            check_text(v, &join(&p, "channel"), &a.channel, MAX_LABEL_LEN);
            check_text(v, &join(&p, "actor"), &a.actor, MAX_LABEL_LEN);
            if let Some(note) = &a.note {
                check_multiline(v, &join(&p, "note"), note, MAX_COMMENT_LEN);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::now_micros;

    fn event(payload: EventPayload) -> NewEvent {
        NewEvent {
            event_key: "k1".into(),
            customer: CustomerRef::ExternalId("c1".into()),
            time: 1_600_000_000_000_000,
            payload,
        }
    }

    fn violations_of(e: &NewEvent) -> Violations {
        let mut v = Violations::new();
        check_event(&mut v, "events[0]", e, now_micros());
        v
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.co.uk", "x@müller.de"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a b@c.de", "a@b..de", "a@.b.de", "a@b@c.de",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn phones() {
        for ok in ["+44 20 7946 0000", "(555) 123-4567", "5551234"] {
            assert!(is_phone(ok), "{ok}");
        }
        for bad in ["", "123", "phone", "+1 555 123 4567 8901 23", "555+1234567"] {
            assert!(!is_phone(bad), "{bad}");
        }
    }

    #[test]
    fn feedback_scores_are_checked_against_their_kind() {
        let cases = [
            (FeedbackKind::Nps, 0, true),
            (FeedbackKind::Nps, 10, true),
            (FeedbackKind::Nps, 11, false),
            (FeedbackKind::Csat, 0, false),
            (FeedbackKind::Csat, 5, true),
            (FeedbackKind::Ces, 7, true),
            (FeedbackKind::Ces, 8, false),
            (FeedbackKind::Review, 6, false),
        ];
        for (kind, score, ok) in cases {
            let e = event(EventPayload::Feedback(Feedback {
                kind,
                score: Some(score),
                comment: None,
                channel: String::new(),
            }));
            let v = violations_of(&e);
            assert_eq!(v.is_empty(), ok, "{kind:?} {score}: {v}");
            if !ok {
                assert_eq!(v.0[0].field, "events[0].feedback.score");
            }
        }
    }

    #[test]
    fn times_before_1970_or_far_ahead_are_refused() {
        let mut e = event(EventPayload::Transaction(Transaction {
            amount_minor: 100,
            currency: "EUR".into(),
            quantity: 1,
            category: String::new(),
            channel: String::new(),
        }));
        e.time = -1;
        assert_eq!(violations_of(&e).0[0].field, "events[0].time");
        e.time = now_micros() + 2 * MICROS_PER_DAY;
        assert_eq!(violations_of(&e).0[0].field, "events[0].time");
        e.time = now_micros() + MICROS_PER_DAY / 2;
        assert!(violations_of(&e).is_empty());
    }

    #[test]
    fn unknown_currency_and_bad_ids() {
        let mut e = event(EventPayload::Transaction(Transaction {
            amount_minor: 100,
            currency: "usd".into(),
            quantity: 1,
            category: String::new(),
            channel: String::new(),
        }));
        e.event_key = "x".repeat(129);
        let v = violations_of(&e);
        let fields: Vec<_> = v.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["events[0].event_key", "events[0].transaction.currency"]
        );
    }

    #[test]
    fn customers() {
        let now = now_micros();
        let mut c = CustomerData::new("");
        c.email = Some("nope".into());
        for i in 0..=MAX_ATTRIBUTES {
            c.attributes
                .insert(format!("a{i}"), AttributeValue::Number(1.0));
        }
        c.attributes
            .insert("bad name".into(), AttributeValue::Number(f64::NAN));
        c.signup_time = Some(10);
        c.churn_time = Some(5);
        let mut v = Violations::new();
        check_customer(&mut v, "customer", &c, now);
        let fields: Vec<_> = v.0.iter().map(|f| f.field.clone()).collect();
        assert!(fields.contains(&"customer.external_id".to_string()));
        assert!(fields.contains(&"customer.email".to_string()));
        assert!(fields.contains(&"customer.attributes".to_string()));
        assert!(fields.contains(&"customer.churn_time".to_string()));
        assert!(fields.contains(&"customer.attributes[\"bad name\"]".to_string()));
    }
}
