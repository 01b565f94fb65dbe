//! Customers' histories for single evaluations: read together when many are asked for at
//! once (`loader`), kept in memory on PostgreSQL (`cache`) and forgotten whenever they
//! change, whoever changes them: by the database's announcements for other writers, and
//! by [`HistoryWriter`] for this process's own writes, before they return.

pub mod cache;
pub mod compact;
pub mod loader;

use std::sync::Arc;

use vitals_domain::time::Micros;
use vitals_domain::{Customer, CustomerData, NewEvent, Violations};
use vitals_engine::evaluation::{LoadedText, analyse_comment};
use vitals_store::{BatchOutcome, RecordMode, Result, Store, UpsertOutcome};

use crate::followups::{RulesCache, rules_for, with_opener};

pub use cache::{CacheStats, CachedHistory, HistoryCache, listen, warm};
pub use loader::{HistoryLoader, HistorySource};

/// The writes that change customers' histories. Each makes this process forget what it
/// held of the customers it changed before it returns, so a caller reads its own writes at
/// once; other servers hear of them from the database's announcement. A server writes
/// histories only through here, so no write path has to remember the cache.
/// A live event batch also opens the follow-ups its events signal under the rules in
/// force, in the batch's transaction.
#[derive(Debug, Clone)]
pub struct HistoryWriter {
    store: Store,
    cache: Arc<HistoryCache>,
    rules: Arc<RulesCache>,
}

impl HistoryWriter {
    pub fn new(store: Store, cache: Arc<HistoryCache>, rules: Arc<RulesCache>) -> Self {
        Self {
            store,
            cache,
            rules,
        }
    }

    /// [`Store::update_customer`], then forgets the customer.
    pub fn update_customer(
        &self,
        id: &str,
        expected_version: i64,
        now: Micros,
        change: impl FnOnce(&CustomerData) -> std::result::Result<CustomerData, Violations>,
    ) -> Result<Customer> {
        let updated = self
            .store
            .update_customer(id, expected_version, now, change)?;
        self.cache.drop_customer(&updated.id);
        Ok(updated)
    }

    /// [`Store::erase_customer`], then forgets the customer.
    pub fn erase_customer(
        &self,
        id: &str,
        expected_version: Option<i64>,
        now: Micros,
    ) -> Result<Customer> {
        let erased = self.store.erase_customer(id, expected_version, now)?;
        self.cache.drop_customer(&erased.id);
        Ok(erased)
    }

    /// [`Store::upsert_customers`]; when it changed existing customers, forgets every
    /// history (an upsert by external id does not report which: imports are rare).
    pub fn upsert_customers(
        &self,
        rows: Vec<(u64, CustomerData)>,
        now: Micros,
    ) -> Result<UpsertOutcome> {
        let outcome = self.store.upsert_customers(rows, now)?;
        if outcome.updated > 0 {
            self.cache.drop_all();
        }
        Ok(outcome)
    }

    /// [`Store::record_events`] with the follow-ups a live batch opens (a backfill, a
    /// history load, opens none: its signals are long past), every comment analysed by
    /// `text` (the text model in service; the built-in lexicons without one), then
    /// forgets every customer the batch touched.
    pub fn record_events(
        &self,
        batch: Vec<(usize, NewEvent)>,
        mode: RecordMode,
        text: Option<&LoadedText>,
        now: Micros,
    ) -> Result<BatchOutcome> {
        let rules = match mode {
            RecordMode::Live => rules_for(&self.rules, &self.store, &batch)?,
            RecordMode::Backfill => None,
        };
        let analyse = |said: &str| analyse_comment(text, said);
        let outcome = with_opener(rules.as_deref(), text, now, |opens| {
            self.store
                .record_events(batch, mode, opens, Some(&analyse), now)
        })?;
        for id in &outcome.customers {
            self.cache.drop_customer(id);
        }
        Ok(outcome)
    }
}
