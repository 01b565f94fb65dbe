//! The rows of the ledger and of each event kind's table, and a batch of them to write.

use super::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub(crate) struct EventRow {
    pub(super) customer_id: String,
    pub(super) event_key: String,
    pub(super) kind: String,
    pub(super) time: i64,
    pub(super) record_time: i64,
    pub(super) content_hash: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = transactions, treat_none_as_default_value = false)]
pub(crate) struct TransactionRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) record_time: i64,
    pub(crate) amount_minor: i64,
    pub(crate) currency: String,
    pub(crate) quantity: i32,
    pub(crate) category: String,
    pub(crate) channel: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payments, treat_none_as_default_value = false)]
pub(crate) struct PaymentRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) record_time: i64,
    pub(crate) invoice_id: String,
    pub(crate) amount_minor: i64,
    pub(crate) currency: String,
    pub(crate) due_time: Option<i64>,
    pub(crate) paid_time: Option<i64>,
    pub(crate) method: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = feedback, treat_none_as_default_value = false)]
pub(crate) struct FeedbackRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) record_time: i64,
    pub(crate) kind: String,
    pub(crate) score: i32,
    pub(crate) comment: Option<String>,
    pub(crate) channel: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = interactions, treat_none_as_default_value = false)]
pub(crate) struct InteractionRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) record_time: i64,
    pub(crate) kind: String,
    pub(crate) severity: String,
    pub(crate) category: String,
    pub(crate) channel: String,
    pub(crate) ticket_id: String,
    pub(crate) resolved_time: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = retention_actions, treat_none_as_default_value = false)]
pub(crate) struct RetentionActionRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) record_time: i64,
    pub(crate) kind: String,
    pub(crate) cost_minor: i64,
    pub(crate) currency: String,
    pub(crate) campaign: String,
    pub(crate) channel: String,
    pub(crate) actor: String,
    pub(crate) note: Option<String>,
}

impl RetentionActionRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            customer_id: self.customer_id,
            event_key: self.event_key,
            time: self.time,
            record_time: self.record_time,
            payload: EventPayload::RetentionAction(RetentionAction {
                kind: self.kind,
                cost_minor: self.cost_minor,
                currency: self.currency,
                campaign: self.campaign,
                channel: self.channel,
                actor: self.actor,
                note: self.note,
            }),
        })
    }
}

impl TransactionRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            customer_id: self.customer_id,
            event_key: self.event_key,
            time: self.time,
            record_time: self.record_time,
            payload: EventPayload::Transaction(Transaction {
                amount_minor: self.amount_minor,
                currency: self.currency,
                quantity: self.quantity,
                category: self.category,
                channel: self.channel,
            }),
        })
    }
}

impl PaymentRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            customer_id: self.customer_id,
            event_key: self.event_key,
            time: self.time,
            record_time: self.record_time,
            payload: EventPayload::Payment(Payment {
                invoice_id: self.invoice_id,
                amount_minor: self.amount_minor,
                currency: self.currency,
                due_time: self.due_time,
                paid_time: self.paid_time,
                method: self.method,
            }),
        })
    }
}

impl FeedbackRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        let kind =
            FeedbackKind::parse(&self.kind).ok_or_else(|| corrupt("feedback kind", &self.kind))?;
        Ok(StoredEvent {
            customer_id: self.customer_id,
            event_key: self.event_key,
            time: self.time,
            record_time: self.record_time,
            payload: EventPayload::Feedback(Feedback {
                kind,
                score: self.score,
                comment: self.comment,
                channel: self.channel,
            }),
        })
    }
}

impl InteractionRow {
    pub(crate) fn into_event(self) -> Result<StoredEvent> {
        let kind = InteractionKind::parse(&self.kind)
            .ok_or_else(|| corrupt("interaction kind", &self.kind))?;
        let severity =
            Severity::parse(&self.severity).ok_or_else(|| corrupt("severity", &self.severity))?;
        Ok(StoredEvent {
            customer_id: self.customer_id,
            event_key: self.event_key,
            time: self.time,
            record_time: self.record_time,
            payload: EventPayload::Interaction(Interaction {
                kind,
                severity,
                category: self.category,
                channel: self.channel,
                ticket_id: self.ticket_id,
                resolved_time: self.resolved_time,
            }),
        })
    }
}

/// The rows of one batch, by table.
#[derive(Default)]
pub(super) struct BatchRows {
    pub(super) ledger: Vec<EventRow>,
    pub(super) transactions: Vec<TransactionRow>,
    pub(super) payments: Vec<PaymentRow>,
    pub(super) feedback: Vec<FeedbackRow>,
    pub(super) interactions: Vec<InteractionRow>,
    pub(super) retention_actions: Vec<RetentionActionRow>,
}

impl BatchRows {
    pub(super) fn push(&mut self, e: &StoredEvent, hash: String) {
        let (customer_id, event_key, time, record_time) = (
            e.customer_id.clone(),
            e.event_key.clone(),
            e.time,
            e.record_time,
        );
        self.ledger.push(EventRow {
            customer_id: customer_id.clone(),
            event_key: event_key.clone(),
            kind: e.payload.kind().as_str().to_owned(),
            time,
            record_time,
            content_hash: hash,
        });
        match &e.payload {
            EventPayload::Transaction(t) => self.transactions.push(TransactionRow {
                customer_id,
                event_key,
                time,
                record_time,
                amount_minor: t.amount_minor,
                currency: t.currency.clone(),
                quantity: t.quantity,
                category: t.category.clone(),
                channel: t.channel.clone(),
            }),
            EventPayload::Payment(p) => self.payments.push(PaymentRow {
                customer_id,
                event_key,
                time,
                record_time,
                invoice_id: p.invoice_id.clone(),
                amount_minor: p.amount_minor,
                currency: p.currency.clone(),
                due_time: p.due_time,
                paid_time: p.paid_time,
                method: p.method.clone(),
            }),
            EventPayload::Feedback(f) => self.feedback.push(FeedbackRow {
                customer_id,
                event_key,
                time,
                record_time,
                kind: f.kind.as_str().to_owned(),
                score: f.score,
                comment: f.comment.clone(),
                channel: f.channel.clone(),
            }),
            EventPayload::Interaction(i) => self.interactions.push(InteractionRow {
                customer_id,
                event_key,
                time,
                record_time,
                kind: i.kind.as_str().to_owned(),
                severity: i.severity.as_str().to_owned(),
                category: i.category.clone(),
                channel: i.channel.clone(),
                ticket_id: i.ticket_id.clone(),
                resolved_time: i.resolved_time,
            }),
            EventPayload::RetentionAction(a) => self.retention_actions.push(RetentionActionRow {
                customer_id,
                event_key,
                time,
                record_time,
                kind: a.kind.clone(),
                cost_minor: a.cost_minor,
                currency: a.currency.clone(),
                campaign: a.campaign.clone(),
                channel: a.channel.clone(),
                actor: a.actor.clone(),
                note: a.note.clone(),
            }),
        }
    }
}

/// A stored row whose kind, severity or other code this build does not know.
pub(super) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Internal(format!("stored event has unknown {what} {value:?}"))
}
