//! `vitals.v1.EventService`.

use tonic::{Request, Response, Status, Streaming};
use vitals_app::histories::HistoryWriter;
use vitals_domain::Violations;
use vitals_domain::comments::comment_of;
use vitals_domain::time::now_micros;
use vitals_domain::validate::{MAX_BATCH_EVENTS, check_event};
use vitals_domain::validate::{MAX_LABEL_LEN, check_text};
use vitals_proto::v1 as pb;
use vitals_proto::v1::event_service_server::EventService;
use vitals_store::customers::CustomerName;
use vitals_store::{
    BatchOutcome, CameWith, CommentFilter, CommentRecord, EventFilter, RecordMode, Store,
    StoreError, page,
};

use super::customers::shown_name;

use std::sync::Arc;

use crate::audit::with_record;
use crate::auth::{Caller, Role};
use crate::convert::{self, event_from_proto, event_to_proto};
use crate::error::{blocking, check, from_store, invalid, invalid_field};
use crate::models::ModelHub;

#[derive(Debug, Clone)]
pub struct EventApi {
    store: Store,
    /// Histories this server holds: a batch's customers are forgotten before it answers.
    /// Every write of a history goes through it, so this server forgets what it held.
    writer: HistoryWriter,
    /// The text model in service analyses every comment as it arrives.
    hub: Arc<ModelHub>,
}

impl EventApi {
    pub fn new(store: Store, writer: HistoryWriter, hub: Arc<ModelHub>) -> Self {
        Self { store, writer, hub }
    }

    /// Validates and records one batch. Invalid events are rejected one by one while the
    /// valid ones are recorded. The batch fails as a whole with INVALID_ARGUMENT when it is
    /// too large, or (with `refuse_if_all_invalid`) when not one event in it is valid:
    /// then there is nothing to record and the violations are the whole answer.
    async fn record_batch(
        &self,
        request: pb::RecordEventsRequest,
        refuse_if_all_invalid: bool,
    ) -> Result<BatchOutcome, Status> {
        let pb::RecordEventsRequest { events, backfill } = request;
        if events.len() > MAX_BATCH_EVENTS {
            return Err(invalid_field(
                "events",
                format!(
                    "a batch holds at most {MAX_BATCH_EVENTS} events, got {}",
                    events.len()
                ),
            ));
        }
        let now = now_micros();
        let mut rejected = Vec::new();
        let mut all_violations = Violations::new();
        let mut valid = Vec::with_capacity(events.len());
        for (index, event) in events.into_iter().enumerate() {
            let prefix = format!("events[{index}]");
            let key = event.event_key.clone();
            let mut v = Violations::new();
            let parsed = event_from_proto(&mut v, &prefix, event);
            if let Some(e) = &parsed {
                check_event(&mut v, &prefix, e, now);
            }
            match (parsed, v.first()) {
                (Some(e), None) => valid.push((index, e)),
                (_, first) => {
                    rejected.push(vitals_store::RejectedEvent {
                        index,
                        event_key: key,
                        field: first.map(|f| f.field.clone()).unwrap_or_default(),
                        reason: v.summary(),
                    });
                    all_violations.0.extend(v.0);
                }
            }
        }
        if refuse_if_all_invalid && valid.is_empty() && !all_violations.is_empty() {
            return Err(invalid(&all_violations));
        }
        let mode = if backfill {
            RecordMode::Backfill
        } else {
            RecordMode::Live
        };
        // The writer forgets the customers the batch touched before answering, so the
        // caller's next evaluation here sees what it recorded.
        let writer = self.writer.clone();
        let models = self.hub.models();
        let mut outcome =
            blocking(move || writer.record_events(valid, mode, models.text.as_deref(), now))
                .await?;
        outcome.rejected.extend(rejected);
        outcome.rejected.sort_by_key(|r| r.index);
        Ok(outcome)
    }
}

/// Free text (feedback comments, interaction and retention-action notes) may name people: readers
/// without the pii-reader role see it masked.
pub fn mask_free_text(e: &mut pb::Event) {
    use pb::event::Payload;
    let text = match e.payload.as_mut() {
        Some(Payload::Feedback(f)) => &mut f.comment,
        Some(Payload::Interaction(i)) => &mut i.note,
        Some(Payload::RetentionAction(a)) => &mut a.note,
        _ => return,
    };
    if !text.is_empty() {
        *text = crate::api::customers::MASKED.to_owned();
    }
}

fn rejected_to_proto(r: vitals_store::RejectedEvent, batch_index: i32) -> pb::RejectedEvent {
    pb::RejectedEvent {
        index: r.index as i32,
        event_key: r.event_key,
        field: r.field,
        reason: r.reason,
        batch_index,
    }
}

#[tonic::async_trait]
impl EventService for EventApi {
    #[tracing::instrument(skip_all, fields(events))]
    async fn record_events(
        &self,
        request: Request<pb::RecordEventsRequest>,
    ) -> Result<Response<pb::RecordEventsResponse>, Status> {
        let request = request.into_inner();
        tracing::Span::current().record("events", request.events.len());
        let outcome = self.record_batch(request, true).await?;
        Ok(Response::new(pb::RecordEventsResponse {
            accepted: outcome.accepted as i32,
            duplicates: outcome.duplicates as i32,
            follow_ups_opened: outcome.follow_ups_opened as i32,
            rejected: outcome
                .rejected
                .into_iter()
                .map(|r| rejected_to_proto(r, 0))
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn stream_events(
        &self,
        request: Request<Streaming<pb::RecordEventsRequest>>,
    ) -> Result<Response<pb::StreamEventsResponse>, Status> {
        let mut stream = request.into_inner();
        let mut response = pb::StreamEventsResponse::default();
        let mut batch_index = 0i32;
        while let Some(batch) = stream.message().await? {
            // Earlier batches are committed: a bad batch is reported, not fatal.
            let outcome = self.record_batch(batch, false).await?;
            response.batches += 1;
            response.accepted += outcome.accepted as i64;
            response.duplicates += outcome.duplicates as i64;
            response.rejected.extend(
                outcome
                    .rejected
                    .into_iter()
                    .map(|r| rejected_to_proto(r, batch_index)),
            );
            batch_index += 1;
        }
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all)]
    async fn list_customer_events(
        &self,
        request: Request<pb::ListCustomerEventsRequest>,
    ) -> Result<Response<pb::ListCustomerEventsResponse>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        use pb::list_customer_events_request::Customer as Who;
        let r = request.into_inner();
        let mut v = Violations::new();
        let kinds = r
            .kinds
            .iter()
            .enumerate()
            .filter_map(|(i, k)| convert::event_kind_from_proto(&mut v, &format!("kinds[{i}]"), *k))
            .collect();
        let filter = EventFilter {
            kinds,
            start_time: r
                .start_time
                .and_then(|t| convert::micros(&mut v, "start_time", &t)),
            end_time: r
                .end_time
                .and_then(|t| convert::micros(&mut v, "end_time", &t)),
        };
        match &r.customer {
            Some(Who::CustomerId(id)) => {
                vitals_domain::validate::check_id(&mut v, "customer_id", id)
            }
            Some(Who::CustomerExternalId(ext)) => {
                vitals_domain::validate::check_id(&mut v, "customer_external_id", ext)
            }
            None => v.push("customer_id", "give customer_id or customer_external_id"),
        }
        check(v)?;
        let size = page::page_size(r.page_size).map_err(from_store)?;
        let Some(who) = r.customer else {
            return Err(invalid_field(
                "customer_id",
                "give customer_id or customer_external_id",
            ));
        };
        let store = self.store.clone();
        let token = r.page_token;
        let page = blocking(move || {
            let customer = match who {
                Who::CustomerId(id) => store.get_customer(&id)?,
                Who::CustomerExternalId(ext) => store.get_customer_by_external_id(&ext)?,
            };
            // A writer reads its own writes: the replica once it has replayed them.
            let reader = store.fresh_reader()?;
            let page = reader.list_customer_events(&customer.id, &filter, size, &token)?;
            let with_comments: Vec<&str> = page
                .items
                .iter()
                .filter(|e| comment_of(&e.payload).is_some())
                .map(|e| e.event_key.as_str())
                .collect();
            let analyses = reader.comment_analyses_of(&customer.id, &with_comments)?;
            Ok((customer.id, page, analyses))
        })
        .await?;
        let (customer_id, page, mut analyses) = page;
        let response = Response::new(pb::ListCustomerEventsResponse {
            events: page
                .items
                .into_iter()
                .map(|e| {
                    let analysis = analyses.remove(&e.event_key);
                    let mut e = event_to_proto(e);
                    e.comment_analysis = analysis.map(convert::comment_analysis_to_proto);
                    if !pii {
                        mask_free_text(&mut e);
                    }
                    e
                })
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        });
        Ok(with_record(response, customer_id))
    }

    #[tracing::instrument(skip_all)]
    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        use pb::list_comments_request::Customer as Who;
        let r = request.into_inner();
        let mut v = Violations::new();
        match &r.customer {
            Some(Who::CustomerId(id)) => {
                vitals_domain::validate::check_id(&mut v, "customer_id", id)
            }
            Some(Who::CustomerExternalId(ext)) => {
                vitals_domain::validate::check_id(&mut v, "customer_external_id", ext)
            }
            None => {}
        }
        for (field, bound) in [
            ("sentiment_at_most", r.sentiment_at_most),
            ("sentiment_at_least", r.sentiment_at_least),
        ] {
            if let Some(b) = bound
                && !(-1.0..=1.0).contains(&b)
            {
                v.push(field, format!("sentiment runs from -1 to 1, got {b}"));
            }
        }
        if let (Some(most), Some(least)) = (r.sentiment_at_most, r.sentiment_at_least)
            && least > most
        {
            v.push(
                "sentiment_at_least",
                format!("{least} is above sentiment_at_most {most}: no comment can match"),
            );
        }
        if !r.language.is_empty()
            && !["en", "zh-Hans", "zh-Hant", "und"].contains(&r.language.as_str())
        {
            v.push(
                "language",
                format!("is one of en, zh-Hans, zh-Hant, und; got {:?}", r.language),
            );
        }
        for (field, value) in [("topic", &r.topic), ("channel", &r.channel)] {
            check_text(&mut v, field, value, MAX_LABEL_LEN);
        }
        let start_time = r
            .start_time
            .and_then(|t| convert::micros(&mut v, "start_time", &t));
        let end_time = r
            .end_time
            .and_then(|t| convert::micros(&mut v, "end_time", &t));
        check(v)?;
        let size = page::page_size(r.page_size).map_err(from_store)?;
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        let mut filter = CommentFilter {
            customer_id: None,
            topic: non_empty(r.topic),
            sentiment_at_most: r.sentiment_at_most,
            sentiment_at_least: r.sentiment_at_least,
            channel: non_empty(r.channel),
            language: non_empty(r.language),
            start_time,
            end_time,
        };
        let store = self.store.clone();
        let token = r.page_token;
        let (page, names) = blocking(move || {
            filter.customer_id = match r.customer {
                Some(Who::CustomerId(id)) => Some(store.get_customer(&id)?.id),
                Some(Who::CustomerExternalId(ext)) => {
                    Some(store.get_customer_by_external_id(&ext)?.id)
                }
                None => None,
            };
            let page = store.list_comments(&filter, size, &token)?;
            let ids: Vec<&str> = page.items.iter().map(|c| c.customer_id.as_str()).collect();
            let names = store.names_of(&ids)?;
            Ok::<_, StoreError>((page, names))
        })
        .await?;
        Ok(Response::new(pb::ListCommentsResponse {
            comments: page
                .items
                .into_iter()
                .map(|c| comment_to_proto(c, &names, pii))
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
}

fn comment_to_proto(
    c: CommentRecord,
    names: &std::collections::HashMap<String, CustomerName>,
    pii: bool,
) -> pb::Comment {
    use pb::comment::Source;
    let name = names.get(&c.customer_id);
    let external_id = name.map(|n| n.external_id.clone()).unwrap_or_default();
    let customer_name = shown_name(
        name.and_then(|n| n.display_name.as_deref()),
        &external_id,
        pii,
    );
    let text = match c.text {
        Some(_) if !pii => crate::api::customers::MASKED.to_owned(),
        Some(t) => t,
        None => String::new(),
    };
    let (source, score) = match c.came_with {
        Some(CameWith::Feedback(kind, score)) => (
            Some(Source::FeedbackKind(
                convert::feedback_kind_to_proto(kind) as i32
            )),
            score,
        ),
        Some(CameWith::Interaction(kind)) => (
            Some(Source::InteractionKind(
                convert::interaction_kind_to_proto(kind) as i32,
            )),
            None,
        ),
        None => (None, None),
    };
    pb::Comment {
        customer_id: c.customer_id,
        customer_external_id: external_id,
        customer_name,
        event_key: c.event_key,
        time: Some(convert::timestamp(c.time)),
        channel: c.channel,
        text,
        source,
        score,
        analysis: Some(convert::comment_analysis_to_proto(c.analysis)),
    }
}
