//! One customer's timeline, newest first, with each event's kind-specific details.

use super::*;

/// Filters of a timeline listing; a page token is only valid with the filters it was issued for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only these kinds; empty means all.
    pub kinds: Vec<EventKind>,
    /// At or after.
    pub start_time: Option<Micros>,
    /// Before.
    pub end_time: Option<Micros>,
}

#[derive(Serialize, Deserialize, PartialEq)]
pub(super) struct TimelineFilter<'a> {
    pub(super) customer_id: std::borrow::Cow<'a, str>,
    pub(super) filter: std::borrow::Cow<'a, EventFilter>,
}

impl Store {
    /// One customer's events, newest first, with their kind-specific details.
    pub fn list_customer_events(
        &self,
        customer_id: &str,
        filter: &EventFilter,
        page_size: usize,
        page_token: &str,
    ) -> Result<Page<StoredEvent>> {
        let token_filter = TimelineFilter {
            customer_id: customer_id.into(),
            filter: std::borrow::Cow::Borrowed(filter),
        };
        let after: Option<(i64, String)> = page::decode(page_token, &token_filter)?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let kinds: Vec<&str> = filter.kinds.iter().map(|k| k.as_str()).collect();
        let events = with_conn!(self, conn => {
            let mut q = events::table
                .filter(events::customer_id.eq(customer_id))
                .select(EventRow::as_select())
                .order((events::time.desc(), events::event_key.desc()))
                .limit(limit)
                .into_boxed();
            if !kinds.is_empty() {
                q = q.filter(events::kind.eq_any(kinds.clone()));
            }
            if let Some(t) = filter.start_time {
                q = q.filter(events::time.ge(t));
            }
            if let Some(t) = filter.end_time {
                q = q.filter(events::time.lt(t));
            }
            if let Some((time, key)) = &after {
                q = q.filter(
                    events::time
                        .lt(*time)
                        .or(events::time.eq(*time).and(events::event_key.lt(key.clone()))),
                );
            }
            let ledger: Vec<EventRow> = q.load(conn)?;
            let mut keys: HashMap<&str, Vec<String>> = HashMap::new();
            for row in &ledger {
                keys.entry(row.kind.as_str()).or_default().push(row.event_key.clone());
            }
            let none = Vec::new();
            let mut payloads: HashMap<String, EventPayload> = HashMap::new();
            let mut keep = |e: StoredEvent| {
                payloads.insert(e.event_key, e.payload);
            };
            // Each kind's rows for the keys the ledger names, in one query per kind.
            macro_rules! load_kinds {
                ([] $($table:ident: $row:ty),*) => {
                    $(
                        let kind_keys = keys.get(<$row as KindRow>::KIND.as_str()).unwrap_or(&none);
                        if !kind_keys.is_empty() {
                            let rows: Vec<$row> = $table::table
                                .filter($table::customer_id.eq(customer_id))
                                .filter($table::event_key.eq_any(kind_keys))
                                .select(<$row>::as_select())
                                .load(conn)?;
                            for r in rows {
                                keep(r.into_event()?);
                            }
                        }
                    )*
                };
            }
            with_event_kinds!(load_kinds);
            ledger
                .into_iter()
                .map(|row| {
                    let payload = payloads.remove(&row.event_key).ok_or_else(|| {
                        StoreError::Internal(format!(
                            "event {:?} of customer {customer_id:?} has no {} row",
                            row.event_key, row.kind
                        ))
                    })?;
                    Ok(StoredEvent {
                        customer_id: row.customer_id,
                        event_key: row.event_key,
                        time: row.time,
                        record_time: row.record_time,
                        payload,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        });
        Ok(page::paginate(events, page_size, token_filter, |e| {
            (e.time, e.event_key.clone())
        }))
    }
}
