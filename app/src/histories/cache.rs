//! Customers' histories kept in memory between evaluations, dropped the moment they change.
//!
//! An `EvaluateCustomer` needs the customer's whole history. Reading it from PostgreSQL
//! (two statements, a round trip, a blocking thread) was most of the call's CPU
//! (BENCHMARKS.md, "EvaluateCustomer on PostgreSQL"), while histories change far less often
//! than they are read. So each server keeps the histories it read, within a memory budget;
//! `quick_cache` evicts by weight (CLOCK-Pro: rarely read histories go first).
//!
//! Coherence, whoever writes:
//! - PostgreSQL announces every change to a history on the channel
//!   `vitals_history:<schema>` (statement triggers, migration `000005_history_changes`):
//!   one customer id, or `*` for a statement that touched more than 1,000 customers or a
//!   truncation. A listener connection ([`listen`]) drops what was announced: writes by
//!   another server, the trainer or psql reach this server within the notification's
//!   delivery.
//! - Writes through this server drop their customers themselves right after commit, so a
//!   caller reads its own writes at once.
//! - A read that raced a change is not kept: it carries a [`Ticket`] taken before it
//!   started and is discarded if its customer (or everything) was dropped since.
//! - Without a live listener nothing is cached or served from memory: every evaluation
//!   reads the database, as it does on SQLite (embedded, no round trip, no channel).
//!
//! Each time the listener goes live the cache is warmed ([`warm`]): histories are scanned
//! in customer order until the budget is nearly spent, so a freshly started server answers
//! from memory within seconds rather than after every customer was asked for once.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use vitals_domain::portfolio::Tally;
use vitals_domain::{AttributeValue, Customer};
use vitals_store::portfolio::HeldHistories;
use vitals_store::{CustomerLookup, History, Store, StoreError};

use super::compact::PackedEvents;

/// The payload that means "drop every history".
const EVERYTHING: &str = "*";
/// Single drops remembered for in-flight reads to check against; a read older than the
/// oldest one remembered is not kept.
const REMEMBERED_DROPS: usize = 4096;

/// A history as the cache holds it: the customer as read, the events packed
/// ([`PackedEvents`]: 20-40 bytes an event instead of about 450).
#[derive(Debug)]
pub struct CachedHistory {
    pub customer: Customer,
    pub events: PackedEvents,
}

/// Packed outside the cache's lock, which is taken again to insert.
fn pack(customer: Customer, events: &[vitals_domain::StoredEvent]) -> CachedHistory {
    CachedHistory {
        customer,
        events: PackedEvents::pack(events),
    }
}

/// What one history costs beyond its own blocks: the cache's slot and tables, the
/// external-id map's entry and strings, and the allocator's partly used pages. Calibrated
/// against the server's resident memory with 100,000 and 546,000 histories held: without
/// it the estimate was a third below the truth (BENCHMARKS.md, "A million customers").
const ENTRY_OVERHEAD: usize = 850;

/// What one heap block costs beyond its bytes: the allocator's header and rounding.
const BLOCK: usize = 16;

/// Approximate bytes a history holds, for the memory budget.
#[derive(Debug, Clone, Copy)]
struct HistoryBytes;

impl Weighter<String, Arc<CachedHistory>> for HistoryBytes {
    fn weight(&self, id: &String, history: &Arc<CachedHistory>) -> u64 {
        let text = |s: &str| if s.is_empty() { 0 } else { s.len() + BLOCK };
        let opt = |s: &Option<String>| s.as_deref().map_or(0, text);
        let data = &history.customer.data;
        let attributes: usize = data
            .attributes
            .iter()
            .map(|(name, value)| {
                // A B-tree node's share per entry, and the key's and value's blocks.
                let value = match value {
                    AttributeValue::String(s) => text(s),
                    AttributeValue::Number(_) | AttributeValue::Bool(_) => 0,
                };
                64 + text(name) + value
            })
            .sum();
        let customer = text(&history.customer.id)
            + text(&data.external_id)
            + opt(&data.display_name)
            + opt(&data.email)
            + opt(&data.phone)
            + text(&data.region)
            + text(&data.acquisition_channel)
            + attributes;
        let bytes = std::mem::size_of::<CachedHistory>()
            + BLOCK
            + customer
            + history.events.heap_bytes()
            + BLOCK
            + text(id)
            + ENTRY_OVERHEAD;
        bytes as u64
    }
}

/// When a read started, in drops: see [`HistoryCache::keep`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

#[derive(Debug, Default)]
struct Drops {
    /// Drops so far (single or all).
    count: u64,
    /// `count` at the last drop of everything.
    everything_at: u64,
    /// The latest single drops, oldest first: (`count` after it, customer id).
    recent: VecDeque<(u64, String)>,
}

/// What the cache holds, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    /// Estimated bytes (what the budget counts).
    pub bytes: u64,
    /// Lookups answered from memory, and lookups that were not, since the start.
    pub hits: u64,
    pub misses: u64,
}

pub struct HistoryCache {
    /// The memory budget, in (estimated) bytes.
    budget: u64,
    histories: Cache<String, Arc<CachedHistory>, HistoryBytes>,
    /// External id → customer id. Checked against the history found, since an external id
    /// can move to another customer: a stale entry is a miss, never a wrong answer.
    external: Cache<String, String>,
    drops: Mutex<Drops>,
    /// A listener is connected and hearing every change: only then is anything served.
    live: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for HistoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryCache")
            .field("live", &self.is_live())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl HistoryCache {
    /// A cache of at most about `budget_bytes` of histories; not live until a listener
    /// says so ([`Self::set_live`]).
    pub fn new(budget_bytes: u64) -> Self {
        // quick_cache sizes its tables from an item estimate. A typical history weighs
        // about 1.5 KiB packed (22 events); counting 1 KiB each only makes the tables
        // roomier.
        let items = usize::try_from(budget_bytes / 1024)
            .unwrap_or(usize::MAX)
            .max(16);
        Self {
            budget: budget_bytes,
            histories: Cache::with_weighter(items, budget_bytes.max(1), HistoryBytes),
            external: Cache::new(items),
            drops: Mutex::new(Drops::default()),
            live: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn drops(&self) -> MutexGuard<'_, Drops> {
        // The guarded state is a few counters and a queue, consistent after every
        // statement: a panic elsewhere cannot leave it half-updated.
        self.drops.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.histories.len(),
            bytes: self.histories.weight(),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The customer's history if it is in memory and the cache is live.
    pub fn get(&self, lookup: &CustomerLookup) -> Option<Arc<CachedHistory>> {
        if !self.is_live() {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let found = match lookup {
            CustomerLookup::Id(id) => self.histories.get(id.as_str()),
            CustomerLookup::ExternalId(external) => self
                .external
                .get(external.as_str())
                .and_then(|id| self.histories.get(id.as_str()))
                .filter(|h| h.customer.data.external_id == *external),
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The events held for `customer` when the cache is live and holds them for this
    /// version of the customer: a bulk reader's lookup (the refresh), not counted in the
    /// hit rate, which is the evaluations'.
    pub fn events_of(&self, customer: &Customer) -> Option<Vec<vitals_domain::StoredEvent>> {
        if !self.is_live() {
            return None;
        }
        let held = self.histories.get(customer.id.as_str())?;
        if held.customer.version != customer.version {
            return None;
        }
        match held.events.unpack() {
            Ok(events) => Some(events),
            // A bug in the packing, never the data: the caller reads the database.
            Err(e) => {
                tracing::error!(customer_id = %customer.id, error = %e, "history cache");
                None
            }
        }
    }

    /// Taken before a database read whose histories may be kept; `None` when nothing may.
    pub fn ticket(&self) -> Option<Ticket> {
        if !self.is_live() {
            return None;
        }
        Some(Ticket(self.drops().count))
    }

    /// Whether histories read under `ticket` can still be kept: the cache is live and
    /// everything was not dropped since.
    fn still_valid(&self, ticket: Ticket) -> bool {
        self.valid_under(&self.drops(), ticket)
    }

    fn valid_under(&self, drops: &Drops, ticket: Ticket) -> bool {
        self.is_live() && ticket.0 >= drops.everything_at
    }

    /// Keeps (packed) a history read under `ticket`, unless its customer was dropped since
    /// the ticket was taken: that read may predate the change.
    pub fn keep(&self, ticket: Ticket, history: &History) {
        if self.still_valid(ticket) {
            self.keep_packed(ticket, pack(history.customer.clone(), &history.events));
        }
    }

    /// [`Self::keep`] of a history the caller no longer needs.
    pub fn keep_owned(&self, ticket: Ticket, history: History) {
        if self.still_valid(ticket) {
            self.keep_packed(ticket, pack(history.customer, &history.events));
        }
    }

    fn keep_packed(&self, ticket: Ticket, history: CachedHistory) {
        let drops = self.drops();
        if !self.valid_under(&drops, ticket) {
            return;
        }
        if drops.count > ticket.0 {
            // Every drop after the ticket must still be remembered to be checked.
            let remembered_from = drops.recent.front().map_or(drops.count + 1, |(n, _)| *n);
            if remembered_from > ticket.0 + 1 {
                return;
            }
            let id = history.customer.id.as_str();
            if drops.recent.iter().any(|(n, d)| *n > ticket.0 && d == id) {
                return;
            }
        }
        // Inserted under the lock, so no drop can slip between the check and the insert.
        let id = history.customer.id.clone();
        let external = history.customer.data.external_id.clone();
        self.histories.insert(id.clone(), Arc::new(history));
        if !external.is_empty() {
            self.external.insert(external, id);
        }
    }

    /// Forgets one customer's history: it changed, or is about to be announced as changed.
    pub fn drop_customer(&self, id: &str) {
        let mut drops = self.drops();
        drops.count += 1;
        let n = drops.count;
        drops.recent.push_back((n, id.to_owned()));
        if drops.recent.len() > REMEMBERED_DROPS {
            drops.recent.pop_front();
        }
        self.histories.remove(id);
    }

    /// Forgets every history.
    pub fn drop_all(&self) {
        self.forget_everything(&mut self.drops());
    }

    /// Under the lock, so that no read in flight is kept afterwards.
    fn forget_everything(&self, drops: &mut Drops) {
        drops.count += 1;
        drops.everything_at = drops.count;
        drops.recent.clear();
        self.histories.clear();
        self.external.clear();
    }

    /// Whether a listener hears every change. Either way everything held is dropped: going
    /// live, changes may have been missed before; going dark, they may be missed from now.
    pub fn set_live(&self, live: bool) {
        let mut drops = self.drops();
        self.forget_everything(&mut drops);
        self.live.store(live, Ordering::Release);
    }

    /// Applies one announcement from the channel.
    pub fn apply(&self, payload: &str) {
        if payload == EVERYTHING {
            self.drop_all();
        } else {
            self.drop_customer(payload);
        }
    }
}

impl HeldHistories for HistoryCache {
    /// Counts a held history's events into a portfolio tally: a bulk reader's lookup,
    /// not counted in the hit rate. False (nothing counted) when the cache is not live,
    /// does not hold the customer, or the packed buffer does not read.
    fn tally_held(&self, id: &str, member: u32, tally: &mut Tally) -> bool {
        if !self.is_live() {
            return false;
        }
        let Some(held) = self.histories.get(id) else {
            return false;
        };
        match held.events.portfolio_events() {
            Ok(events) => {
                tally.member_events(member, &events);
                true
            }
            // A bug in the packing, never the data: the caller reads the database.
            Err(e) => {
                tracing::error!(customer_id = %id, error = %e, "history cache");
                false
            }
        }
    }
}

/// Customers per read while warming.
const WARM_CHUNK: usize = 1000;

/// Fills the cache from a scan of every history in customer id order, until the scan ends
/// or 95% of the budget is spent (what is left takes the customers asked for later). One
/// ticket, taken before the scan, covers every history it reads: a customer whose history
/// changed meanwhile is not kept. Stops early when the cache is flushed or
/// stops being live (a newer warm-up takes over). Blocking: run it off the async workers.
pub fn warm(cache: &HistoryCache, store: &Store) -> Result<WarmUp, StoreError> {
    let started = std::time::Instant::now();
    let Some(ticket) = cache.ticket() else {
        return Ok(WarmUp::default());
    };
    let full = cache.budget / 20 * 19;
    let mut warmed = WarmUp::default();
    // Everything committed before listening began is in what a replica gives from here.
    let scanned = store
        .fresh_reader()?
        .scan_histories(WARM_CHUNK, |histories| {
            if !cache.still_valid(ticket) {
                // Flushed while warming: what was read may be stale; stop.
                return Ok(ControlFlow::Break(()));
            }
            for history in histories {
                warmed.events += history.events.len() as u64;
                warmed.customers += 1;
                cache.keep_owned(ticket, history);
            }
            if cache.histories.weight() >= full {
                // The budget is spent.
                return Ok(ControlFlow::Break(()));
            }
            Ok(ControlFlow::Continue(()))
        });
    warmed.seconds = started.elapsed().as_secs_f64();
    scanned.map(|()| warmed)
}

/// What a warm-up read.
#[derive(Debug, Default, Clone, Copy)]
pub struct WarmUp {
    pub customers: u64,
    pub events: u64,
    pub seconds: f64,
}

/// How often the listener checks that its connection still answers.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Longest wait between attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Keeps `cache` live while a PostgreSQL connection listening on the store's history
/// channel is up (and
/// warms it each time it goes live), and reconnects when it drops. Runs until aborted;
/// does nothing on SQLite.
pub async fn listen(cache: Arc<HistoryCache>, store: Store) {
    let Some(url) = store.postgres_url().map(str::to_owned) else {
        return;
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        let started = std::time::Instant::now();
        let outcome = listen_once(&cache, &store, &url).await;
        cache.set_live(false);
        match outcome {
            Ok(()) => tracing::warn!(
                "history cache: the change listener's connection closed; evaluations read \
                 the database until it is back"
            ),
            Err(e) => tracing::warn!(
                error = %describe(&e),
                "history cache: not listening for changes; evaluations read the database \
                 until it is back"
            ),
        }
        if started.elapsed() > MAX_BACKOFF * 3 {
            backoff = Duration::from_millis(200);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The error with PostgreSQL's own message: tokio-postgres displays only "db error".
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// One listening session: returns when the connection ends.
async fn listen_once(
    cache: &Arc<HistoryCache>,
    store: &Store,
    url: &str,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let heard = cache.clone();
    let mut driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => heard.apply(n.payload()),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    // Changes may be missed from here on: stop serving from memory now.
                    heard.set_live(false);
                    return Err(e);
                }
                None => {
                    heard.set_live(false);
                    return Ok(());
                }
            }
        }
    });
    let session = async {
        // The channel of the schema this connection's search_path (the store's URL) finds
        // first, named by the migration's own function: without the migration (and so
        // without its triggers) this fails and nothing is ever cached.
        let row = client
            .query_one("SELECT vitals_history_channel(current_schema())", &[])
            .await?;
        let channel: String = row.try_get(0)?;
        client
            .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))
            .await?;
        cache.set_live(true);
        tracing::info!("history cache live: listening for history changes");
        let (cache, store) = (cache.clone(), store.clone());
        tokio::task::spawn_blocking(move || match warm(&cache, &store) {
            Ok(w) => tracing::info!(
                customers = w.customers,
                events = w.events,
                seconds = w.seconds,
                mib = cache.stats().bytes >> 20,
                "history cache warmed"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "history cache: warming failed; it fills as customers are asked for")
            }
        });
        loop {
            tokio::time::sleep(PING_EVERY).await;
            // A connection that died without a word would otherwise look idle forever.
            match tokio::time::timeout(PING_EVERY, client.simple_query("")).await {
                Ok(result) => {
                    result?;
                }
                Err(_) => return Ok(()),
            }
        }
    };
    let outcome = tokio::select! {
        ended = &mut driver => ended.unwrap_or(Ok(())),
        ended = session => ended,
    };
    driver.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use vitals_domain::{Customer, CustomerData};

    use super::*;

    fn history(id: &str, external: &str) -> History {
        History {
            customer: Customer {
                id: id.to_owned(),
                data: CustomerData::new(external),
                version: 1,
                create_time: 0,
                update_time: 0,
            },
            events: Vec::new(),
        }
    }

    fn live_cache() -> HistoryCache {
        let cache = HistoryCache::new(1 << 20);
        cache.set_live(true);
        cache
    }

    #[test]
    fn nothing_is_kept_or_served_while_not_live() {
        let cache = HistoryCache::new(1 << 20);
        assert!(cache.ticket().is_none());
        let live = live_cache();
        let ticket = live.ticket().expect("live");
        live.keep(ticket, &history("c1", "x1"));
        assert!(live.get(&CustomerLookup::Id("c1".into())).is_some());
        live.set_live(false);
        assert!(live.get(&CustomerLookup::Id("c1".into())).is_none());
        live.keep(ticket, &history("c1", "x1"));
        assert_eq!(live.stats().entries, 0);
    }

    #[test]
    fn found_by_id_and_by_external_id() {
        let cache = live_cache();
        let ticket = cache.ticket().expect("live");
        cache.keep(ticket, &history("c1", "x1"));
        let by_id = cache.get(&CustomerLookup::Id("c1".into())).expect("by id");
        let by_external = cache
            .get(&CustomerLookup::ExternalId("x1".into()))
            .expect("by external id");
        assert!(Arc::ptr_eq(&by_id, &by_external));
        assert!(cache.get(&CustomerLookup::Id("c2".into())).is_none());
    }

    #[test]
    fn an_external_id_that_moved_is_a_miss() {
        let cache = live_cache();
        cache.keep(cache.ticket().expect("live"), &history("c1", "x1"));
        // c1's external id changed to x2 (announced, then read again).
        cache.apply("c1");
        cache.keep(cache.ticket().expect("live"), &history("c1", "x2"));
        assert!(
            cache
                .get(&CustomerLookup::ExternalId("x1".into()))
                .is_none()
        );
        assert!(
            cache
                .get(&CustomerLookup::ExternalId("x2".into()))
                .is_some()
        );
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = live_cache();
        let before = cache.ticket().expect("live");
        cache.apply("c1");
        cache.keep(before, &history("c1", "x1"));
        assert!(cache.get(&CustomerLookup::Id("c1".into())).is_none());
        // Another customer's change does not spoil this read.
        cache.keep(before, &history("c2", "x2"));
        assert!(cache.get(&CustomerLookup::Id("c2".into())).is_some());
        // A read started after the change is kept.
        cache.keep(cache.ticket().expect("live"), &history("c1", "x1"));
        assert!(cache.get(&CustomerLookup::Id("c1".into())).is_some());
    }

    #[test]
    fn a_change_drops_what_is_held() {
        let cache = live_cache();
        cache.keep(cache.ticket().expect("live"), &history("c1", "x1"));
        cache.keep(cache.ticket().expect("live"), &history("c2", "x2"));
        cache.apply("c1");
        assert!(cache.get(&CustomerLookup::Id("c1".into())).is_none());
        assert!(
            cache
                .get(&CustomerLookup::ExternalId("x1".into()))
                .is_none()
        );
        assert!(cache.get(&CustomerLookup::Id("c2".into())).is_some());
        cache.apply("*");
        assert!(cache.get(&CustomerLookup::Id("c2".into())).is_none());
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn everything_dropped_or_too_many_drops_spoil_older_reads() {
        let cache = live_cache();
        let before = cache.ticket().expect("live");
        cache.apply("*");
        cache.keep(before, &history("c1", "x1"));
        assert!(cache.get(&CustomerLookup::Id("c1".into())).is_none());

        let before = cache.ticket().expect("live");
        for i in 0..=REMEMBERED_DROPS {
            cache.apply(&format!("other{i}"));
        }
        // The drops right after the ticket are forgotten: c1 may be among them.
        cache.keep(before, &history("c1", "x1"));
        assert!(cache.get(&CustomerLookup::Id("c1".into())).is_none());
    }

    #[test]
    fn the_budget_bounds_what_is_held() {
        let cache = HistoryCache::new(64 * 1024);
        cache.set_live(true);
        for i in 0..1000 {
            cache.keep_owned(
                cache.ticket().expect("live"),
                history(&format!("c{i}"), &format!("x{i}")),
            );
        }
        let stats = cache.stats();
        assert!(stats.bytes <= 64 * 1024, "{stats:?}");
        assert!(stats.entries > 10 && stats.entries < 1000, "{stats:?}");
    }
}
