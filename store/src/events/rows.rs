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
    pub(crate) score: Option<i32>,
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
    pub(crate) note: Option<String>,
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

impl KindRow for RetentionActionRow {
    const KIND: EventKind = EventKind::RetentionAction;
    const IN_HISTORY: bool = false;

    fn of(e: &StoredEvent) -> Option<Self> {
        let EventPayload::RetentionAction(a) = &e.payload else {
            return None;
        };
        Some(Self {
            customer_id: e.customer_id.clone(),
            event_key: e.event_key.clone(),
            time: e.time,
            record_time: e.record_time,
            kind: a.kind.clone(),
            cost_minor: a.cost_minor,
            currency: a.currency.clone(),
            campaign: a.campaign.clone(),
            channel: a.channel.clone(),
            actor: a.actor.clone(),
            note: a.note.clone(),
        })
    }

    fn into_event(self) -> Result<StoredEvent> {
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

impl KindRow for TransactionRow {
    const KIND: EventKind = EventKind::Transaction;
    const IN_HISTORY: bool = true;

    fn of(e: &StoredEvent) -> Option<Self> {
        let EventPayload::Transaction(t) = &e.payload else {
            return None;
        };
        Some(Self {
            customer_id: e.customer_id.clone(),
            event_key: e.event_key.clone(),
            time: e.time,
            record_time: e.record_time,
            amount_minor: t.amount_minor,
            currency: t.currency.clone(),
            quantity: t.quantity,
            category: t.category.clone(),
            channel: t.channel.clone(),
        })
    }

    fn into_event(self) -> Result<StoredEvent> {
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

impl KindRow for PaymentRow {
    const KIND: EventKind = EventKind::Payment;
    const IN_HISTORY: bool = true;

    fn of(e: &StoredEvent) -> Option<Self> {
        let EventPayload::Payment(p) = &e.payload else {
            return None;
        };
        Some(Self {
            customer_id: e.customer_id.clone(),
            event_key: e.event_key.clone(),
            time: e.time,
            record_time: e.record_time,
            invoice_id: p.invoice_id.clone(),
            amount_minor: p.amount_minor,
            currency: p.currency.clone(),
            due_time: p.due_time,
            paid_time: p.paid_time,
            method: p.method.clone(),
        })
    }

    fn into_event(self) -> Result<StoredEvent> {
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

impl KindRow for FeedbackRow {
    const KIND: EventKind = EventKind::Feedback;
    const IN_HISTORY: bool = true;

    fn of(e: &StoredEvent) -> Option<Self> {
        let EventPayload::Feedback(f) = &e.payload else {
            return None;
        };
        Some(Self {
            customer_id: e.customer_id.clone(),
            event_key: e.event_key.clone(),
            time: e.time,
            record_time: e.record_time,
            kind: f.kind.as_str().to_owned(),
            score: f.score,
            comment: f.comment.clone(),
            channel: f.channel.clone(),
        })
    }

    fn into_event(self) -> Result<StoredEvent> {
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

impl KindRow for InteractionRow {
    const KIND: EventKind = EventKind::Interaction;
    const IN_HISTORY: bool = true;

    fn of(e: &StoredEvent) -> Option<Self> {
        let EventPayload::Interaction(i) = &e.payload else {
            return None;
        };
        Some(Self {
            customer_id: e.customer_id.clone(),
            event_key: e.event_key.clone(),
            time: e.time,
            record_time: e.record_time,
            kind: i.kind.as_str().to_owned(),
            severity: i.severity.as_str().to_owned(),
            category: i.category.clone(),
            channel: i.channel.clone(),
            ticket_id: i.ticket_id.clone(),
            resolved_time: i.resolved_time,
            note: i.note.clone(),
        })
    }

    fn into_event(self) -> Result<StoredEvent> {
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
                note: self.note,
            }),
        })
    }
}

/// One event kind's table row: made from an event of that kind, and made back into one.
/// With its `statement_row!` columns (`write.rs`: they drive the one-statement insert and
/// the binary COPY reader) and its line in `with_event_kinds!`, this is all the store
/// needs to know of a kind, except the one-statement history read (`history/single.rs`).
pub(crate) trait KindRow: Sized {
    const KIND: EventKind;
    /// Whether a customer's history (what evaluations, training and refresh read) holds
    /// this kind. Retention actions are Vitals' own doings, read by the timeline and
    /// campaign reviews, not evidence of how the customer behaves.
    const IN_HISTORY: bool;
    /// The row of `e`, when `e` is of this kind.
    fn of(e: &StoredEvent) -> Option<Self>;
    fn into_event(self) -> Result<StoredEvent>;
}

macro_rules! batch_rows {
    ([] $($table:ident: $row:ty),*) => {
        /// The rows of one batch, by table.
        #[derive(Default)]
        pub(super) struct BatchRows {
            pub(super) ledger: Vec<EventRow>,
            $(pub(super) $table: Vec<$row>,)*
            /// What the analysis of the batch's comments found.
            pub(super) analyses: Vec<crate::comments::CommentAnalysisRow>,
        }

        impl BatchRows {
            pub(super) fn push(&mut self, e: &StoredEvent, hash: String) {
                self.ledger.push(EventRow {
                    customer_id: e.customer_id.clone(),
                    event_key: e.event_key.clone(),
                    kind: e.payload.kind().as_str().to_owned(),
                    time: e.time,
                    record_time: e.record_time,
                    content_hash: hash,
                });
                $(
                    if let Some(row) = <$row as KindRow>::of(e) {
                        self.$table.push(row);
                        return;
                    }
                )*
            }
        }
    };
}
with_event_kinds!(batch_rows);

/// A stored row whose kind, severity or other code this build does not know.
pub(super) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Internal(format!("stored event has unknown {what} {value:?}"))
}
