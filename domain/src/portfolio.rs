//! Portfolio metrics from raw rows: NPS, CSAT, retention and churn, repeat purchases,
//! complaints, resolution time and revenue, per time bucket and group.
//!
//! The store streams the rows in: the customers into the `Portfolio`; NPS and CSAT
//! answers, purchases and contacts into `Tally`s (any number, filled from any threads,
//! before or after the customers are added). `Portfolio::finish` puts the tallies
//! together. Counting happens here rather than in SQL because most metrics count
//! *customers* per bucket (buyers, repeat buyers, the retention base, complaining
//! customers), which in SQL is a grouping of every event by (customer, bucket): about a
//! microsecond per row in PostgreSQL's executor, against tens of nanoseconds here.
//!
//! Buckets are given as boundaries `[b0, b1, ..., bn]`: bucket k is `[b_k, b_{k+1})`.
//! Bucket 0 is the one before the period, only a base for retention; buckets 1.. are
//! reported. The definitions of every metric are in `proto/vitals/v1/portfolio.proto`.

use crate::evaluation::NEGATIVE_SENTIMENT;
use std::collections::BTreeMap;

use crate::time::Micros;
use crate::{EventPayload, FeedbackKind, InteractionKind, StoredEvent};

/// Maps keyed by customer: millions of lookups per call, where SipHash alone was a
/// sixth of the time. foldhash is seeded at random per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One bucket's counts for one group; the rates derive from them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketMetrics {
    pub start: Micros,
    pub end: Micros,
    pub group: String,
    pub nps_answers: i64,
    pub promoters: i64,
    pub detractors: i64,
    pub csat_answers: i64,
    pub csat_sum: i64,
    /// Contractual customers on contract at the start plus non-contractual buyers of
    /// the bucket before.
    pub customers_at_start: i64,
    pub churned: i64,
    pub buyers: i64,
    pub repeat_buyers: i64,
    pub complaints: i64,
    pub complaining_customers: i64,
    /// Customers signed up (or created) before the bucket's end and not churned
    /// before its start: the complaint rate's denominator.
    pub customers_on_books: i64,
    pub resolved_interactions: i64,
    pub resolution_micros: f64,
    pub revenue_minor: BTreeMap<String, i64>,
    /// Comments and notes written in the bucket, those at or below -0.3 sentiment, and
    /// the sum of their sentiments.
    pub comments: i64,
    pub negative_comments: i64,
    pub sentiment_sum: f64,
    /// The topics written about most more than in the bucket before, for the same
    /// group: at most [`RISING_TOPICS`], the largest rise first.
    pub rising_topics: Vec<TopicTrend>,
}

/// A topic's comments in a bucket against the bucket before.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicTrend {
    pub topic: String,
    pub comments: i64,
    pub previous: i64,
    /// The mean sentiment of the bucket's comments about it (-1..1).
    pub mean_sentiment: f64,
}

/// Rising topics reported per bucket and group.
pub const RISING_TOPICS: usize = 3;

fn ratio(n: f64, d: i64) -> Option<f64> {
    (d > 0).then(|| n / d as f64)
}

impl BucketMetrics {
    /// 100 × (promoters − detractors) / answers.
    pub fn nps(&self) -> Option<f64> {
        ratio(
            100.0 * (self.promoters - self.detractors) as f64,
            self.nps_answers,
        )
    }
    pub fn mean_csat(&self) -> Option<f64> {
        ratio(self.csat_sum as f64, self.csat_answers)
    }
    pub fn churn_rate(&self) -> Option<f64> {
        ratio(self.churned as f64, self.customers_at_start)
    }
    pub fn retention_rate(&self) -> Option<f64> {
        self.churn_rate().map(|c| 1.0 - c)
    }
    pub fn repeat_purchase_rate(&self) -> Option<f64> {
        ratio(self.repeat_buyers as f64, self.buyers)
    }
    pub fn complaint_rate(&self) -> Option<f64> {
        ratio(self.complaining_customers as f64, self.customers_on_books)
    }
    /// The share of comments that read negative.
    pub fn negative_share(&self) -> Option<f64> {
        ratio(self.negative_comments as f64, self.comments)
    }

    pub fn mean_sentiment(&self) -> Option<f64> {
        ratio(self.sentiment_sum, self.comments)
    }

    pub fn mean_resolution_hours(&self) -> Option<f64> {
        ratio(self.resolution_micros / 3.6e9, self.resolved_interactions)
    }
}

/// Customers are known by a 64-bit key derived from their id with a seed (on PostgreSQL
/// `hashtextextended(id, seed)`, computed by the server; elsewhere `customer_key`), so the
/// hot paths hash and compare 8 bytes instead of a 36-byte id. Two customers with one key
/// are noticed when they are added, and the caller starts again with another seed:
/// counting is exact, not probably right.
pub type CustomerKey = u64;

/// A customer key from an id, for databases that do not compute one.
pub fn customer_key(id: &[u8], seed: u64) -> CustomerKey {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(seed).hash_one(id)
}

/// The largest (bucket, group, currency) grid revenue is summed on per tally (16 MiB of
/// cells); a larger one is summed in a map.
const DENSE_REVENUE_CELLS: usize = 1 << 20;

/// What stops the counting.
#[derive(Debug, thiserror::Error)]
pub enum PortfolioError {
    /// Two customers have one key under this seed: count again with another.
    #[error("two customers share key {0} under this seed")]
    KeyCollision(CustomerKey),
    /// A row named a customer the portfolio was not given. The store reads every table
    /// in one snapshot, so this means a bug, not a race.
    #[error("an event of a customer (key {0}) who is not among the customers read")]
    UnknownCustomer(CustomerKey),
    /// A bucket's revenue in one currency does not fit in 64-bit minor units.
    #[error("a revenue sum in {0} exceeds the 64-bit range of minor units")]
    RevenueOverflow(String),
}

/// A customer as the metrics see them.
#[derive(Debug, Clone, Copy)]
struct Member {
    group: u32,
    contractual: bool,
    /// Signed up, or created without a signup time.
    since: Micros,
    churn_time: Option<Micros>,
}

/// The customers and the buckets; rows are counted into `Tally`s, put together by `finish`.
#[derive(Debug)]
pub struct Portfolio {
    bounds: Vec<Micros>,
    index: HashMap<CustomerKey, u32>,
    members: Vec<Member>,
    groups: Vec<String>,
    group_index: HashMap<String, u32>,
}

/// A ticket's events folded into one contact: opened at its first event in the period,
/// resolved at the latest resolution, a complaint if any event says so.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    opened: Micros,
    resolved: Option<Micros>,
    complaint: bool,
}

impl Ticket {
    fn absorb(&mut self, other: Ticket) {
        self.opened = self.opened.min(other.opened);
        self.resolved = self.resolved.max(other.resolved);
        self.complaint |= other.complaint;
    }
}

/// Which contact an interaction belongs to: its ticket, or itself when it has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ContactKey {
    Ticket(Box<str>),
    Event(Box<str>),
}

/// Contacts by (customer, ticket): the customer in a tally's numbering or the portfolio's.
type Tickets = HashMap<(u32, ContactKey), Ticket>;

/// One reader's rows, kept compact and counted in `Portfolio::finish`. A tally needs no
/// customers (it numbers the ids it meets itself), so every table can be read at once,
/// the customers included.
#[derive(Debug)]
pub struct Tally {
    bounds: Vec<Micros>,
    /// Customers named by the portfolio's own numbers (the order they were added in)
    /// rather than by key: see [`Portfolio::member_tally`].
    by_member: bool,
    /// The ids met, numbered in order of first sight (unused `by_member`).
    ids: HashMap<CustomerKey, u32>,
    answers: Vec<Answer>,
    purchases: Vec<Purchase>,
    currencies: Vec<String>,
    tickets: Tickets,
    /// Contacts of a member tally, already folded by ticket: it meets each customer's
    /// events all at once ([`Tally::member_events`]).
    member_tickets: Vec<(u32, Ticket)>,
    comments: Vec<Comment>,
    /// Topic names met, numbered in order of first sight.
    topics: Vec<String>,
    topic_index: HashMap<String, u32>,
}

/// A comment in any bucket (the one before the period included, for the rise).
#[derive(Debug, Clone, Copy)]
struct Comment {
    customer: u32,
    bucket: u32,
    sentiment: f32,
    /// The tally's topic number; `u32::MAX` for none.
    topic: u32,
}

/// An NPS or CSAT answer in a reported bucket; `customer` is the tally's own number.
#[derive(Debug, Clone, Copy)]
struct Answer {
    customer: u32,
    bucket: u32,
    nps: bool,
    score: i32,
}

/// A purchase in any bucket (the one before the period included).
#[derive(Debug, Clone, Copy)]
/// Consecutive purchases of one customer in one bucket and currency are summed into one
/// (`count` of them): a reader that goes customer by customer stores a row per customer
/// and bucket rather than per purchase.
struct Purchase {
    customer: u32,
    bucket: u32,
    currency: u32,
    count: u32,
    amount_minor: i64,
}

impl Portfolio {
    /// `bounds` as `bucket_bounds` in the store makes them: at least two buckets (the
    /// one before and one reported), strictly increasing.
    pub fn new(bounds: Vec<Micros>) -> Self {
        Self {
            bounds,
            index: HashMap::default(),
            members: Vec::new(),
            groups: Vec::new(),
            group_index: HashMap::default(),
        }
    }

    /// Adds a customer; an error if another has the same key.
    pub fn add_customer(
        &mut self,
        key: CustomerKey,
        group: &str,
        contractual: bool,
        since: Micros,
        churn_time: Option<Micros>,
    ) -> Result<(), PortfolioError> {
        if self.index.contains_key(&key) {
            return Err(PortfolioError::KeyCollision(key));
        }
        let group = match self.group_index.get(group) {
            Some(&g) => g,
            None => {
                let g = self.groups.len() as u32;
                self.groups.push(group.to_owned());
                self.group_index.insert(group.to_owned(), g);
                g
            }
        };
        self.index.insert(key, self.members.len() as u32);
        self.members.push(Member {
            group,
            contractual,
            since,
            churn_time,
        });
        Ok(())
    }

    /// The customers added so far.
    pub fn customers(&self) -> usize {
        self.members.len()
    }

    /// A tally to count rows into, before or after the customers are added; any number
    /// may count at once.
    pub fn tally(&self) -> Tally {
        Tally {
            bounds: self.bounds.clone(),
            by_member: false,
            ids: HashMap::default(),
            answers: Vec::new(),
            purchases: Vec::new(),
            currencies: Vec::new(),
            tickets: HashMap::default(),
            member_tickets: Vec::new(),
            comments: Vec::new(),
            topics: Vec::new(),
            topic_index: HashMap::default(),
        }
    }

    /// A tally that names customers by their number here (0 for the first added, and so
    /// on) through [`Tally::member_events`]: no hashing of keys per event, for a reader that
    /// goes through the customers themselves (histories held in memory).
    pub fn member_tally(&self) -> Tally {
        Tally {
            by_member: true,
            ..self.tally()
        }
    }

    /// The bucket holding `time`, if any (bucket 0 included).
    fn bucket(&self, time: Micros) -> Option<u32> {
        bucket_of(&self.bounds, time)
    }

    /// The earliest time a reported bucket holds, and the end of the last.
    pub fn reported_span(&self) -> (Micros, Micros) {
        spans(&self.bounds).0
    }

    /// The span purchases count in: the bucket before the period included.
    pub fn purchase_span(&self) -> (Micros, Micros) {
        spans(&self.bounds).1
    }

    /// The portfolio's number of each customer a tally met, by the tally's number.
    fn members_of(&self, tally: &Tally) -> Result<Vec<u32>, PortfolioError> {
        if tally.by_member {
            return Ok((0..self.members.len() as u32).collect());
        }
        let mut global = vec![0u32; tally.ids.len()];
        for (key, &local) in &tally.ids {
            global[local as usize] = self
                .index
                .get(key)
                .copied()
                .ok_or(PortfolioError::UnknownCustomer(*key))?;
        }
        Ok(global)
    }

    /// Puts the tallies together: one row per bucket (1..) and group that anything
    /// counted in, buckets in time order and groups by name. Every customer a tally met
    /// must have been added.
    pub fn finish(&self, tallies: Vec<Tally>) -> Result<Vec<BucketMetrics>, PortfolioError> {
        let buckets = self.bounds.len().saturating_sub(1);
        let groups = self.groups.len().max(1);
        let mut cells = Cells {
            bounds: &self.bounds,
            groups: &self.groups,
            width: groups,
            cells: vec![None; buckets * groups],
        };
        let mut currencies: Vec<String> = Vec::new();
        // (bucket, group, currency) to the amount in minor units.
        // Summed wide: amounts are not range-checked, and a wrapped sum would be wrong
        // without a word.
        let mut revenue: HashMap<(u32, u32, u32), i128> = HashMap::default();
        // (customer, bucket, purchases) for the buyer counts.
        let mut purchases: Vec<(u32, u32, u32)> = Vec::new();
        let mut tickets: Vec<(Vec<u32>, Tickets)> = Vec::new();
        // Folded already, each customer's in one member tally.
        let mut member_tickets: Vec<(u32, Ticket)> = Vec::new();
        // (bucket, group, topic) to comments and their sentiment sum, bucket 0 included
        // for the first rise.
        // Topics by number across the tallies (a tally numbers those it meets itself).
        let mut topics: Vec<String> = Vec::new();
        let mut topic_counts: HashMap<(u32, u32, u32), (i64, f64)> = HashMap::default();
        for t in tallies {
            let members = self.members_of(&t)?;
            let group = |local: u32| self.members[members[local as usize] as usize].group;
            for a in &t.answers {
                if let Some(m) = cells.at(a.bucket as usize, group(a.customer)) {
                    if a.nps {
                        m.nps_answers += 1;
                        m.promoters += i64::from(a.score >= 9);
                        m.detractors += i64::from(a.score <= 6);
                    } else {
                        m.csat_answers += 1;
                        m.csat_sum += i64::from(a.score);
                    }
                }
            }
            let currency = renumber(&t.currencies, &mut currencies);
            purchases.reserve(t.purchases.len());
            // Summed into a dense (bucket, group, currency) grid first, when it is small
            // enough: a hash update per purchase was a fifth of the counting at a
            // million customers. Weeks over years, thousands of regions and dozens of
            // currencies would make the grid larger than the rows; then the map serves.
            let width = t.currencies.len();
            let grid = (buckets + 1).saturating_mul(groups).saturating_mul(width);
            // `None`: no purchase in the cell (a cell whose purchases sum to 0 still shows).
            let mut sums: Vec<Option<i128>> = if grid <= DENSE_REVENUE_CELLS {
                vec![None; grid]
            } else {
                Vec::new()
            };
            for p in &t.purchases {
                let member = members[p.customer as usize];
                purchases.push((member, p.bucket, p.count));
                if p.bucket >= 1 {
                    let g = self.members[member as usize].group;
                    let amount = i128::from(p.amount_minor);
                    if sums.is_empty() {
                        *revenue
                            .entry((p.bucket, g, currency[p.currency as usize]))
                            .or_default() += amount;
                        continue;
                    }
                    let cell =
                        (p.bucket as usize * groups + g as usize) * width + p.currency as usize;
                    if let Some(sum) = sums.get_mut(cell) {
                        *sum.get_or_insert(0) += amount;
                    }
                }
            }
            for (cell, amount) in sums.into_iter().enumerate() {
                if let Some(amount) = amount {
                    let (bucket, rest) = (cell / (groups * width), cell % (groups * width));
                    let (g, c) = (rest / width, rest % width);
                    *revenue
                        .entry((bucket as u32, g as u32, currency[c]))
                        .or_default() += amount;
                }
            }
            let topic_of = renumber(&t.topics, &mut topics);
            for c in &t.comments {
                let g = group(c.customer);
                if let Some(m) = cells.at(c.bucket as usize, g) {
                    m.comments += 1;
                    m.negative_comments += i64::from(f64::from(c.sentiment) <= NEGATIVE_SENTIMENT);
                    m.sentiment_sum += f64::from(c.sentiment);
                }
                if let Some(&topic) = topic_of.get(c.topic as usize) {
                    let entry = topic_counts.entry((c.bucket, g, topic)).or_default();
                    entry.0 += 1;
                    entry.1 += f64::from(c.sentiment);
                }
            }
            member_tickets.extend(
                t.member_tickets
                    .iter()
                    .map(|&(local, ticket)| (members[local as usize], ticket)),
            );
            if !t.tickets.is_empty() {
                tickets.push((members, t.tickets));
            }
        }
        for ((k, g, topic), &(comments, sentiment_sum)) in &topic_counts {
            let previous = k
                .checked_sub(1)
                .and_then(|before| topic_counts.get(&(before, *g, *topic)))
                .map_or(0, |(n, _)| *n);
            if comments > previous
                && let Some(m) = cells.at(*k as usize, *g)
            {
                m.rising_topics.push(TopicTrend {
                    topic: topics.get(*topic as usize).cloned().unwrap_or_default(),
                    comments,
                    previous,
                    mean_sentiment: sentiment_sum / comments as f64,
                });
            }
        }
        for ((k, g, c), amount) in revenue {
            if let Some(m) = cells.at(k as usize, g) {
                let currency = currencies.get(c as usize).cloned().unwrap_or_default();
                let amount = i64::try_from(amount)
                    .map_err(|_| PortfolioError::RevenueOverflow(currency.clone()))?;
                *m.revenue_minor.entry(currency).or_default() = amount;
            }
        }
        self.count_contacts(&mut cells, tickets, member_tickets);
        self.count_buyers(&mut cells, purchases, buckets);
        self.count_books(&mut cells, buckets);
        let mut out: Vec<(usize, BucketMetrics)> = cells
            .cells
            .into_iter()
            .enumerate()
            .filter_map(|(i, m)| m.map(|m| (i / groups, m)))
            .collect();
        out.sort_by(|(ka, a), (kb, b)| ka.cmp(kb).then_with(|| a.group.cmp(&b.group)));
        for (_, m) in &mut out {
            m.rising_topics.sort_by(|a, b| {
                (b.comments - b.previous)
                    .cmp(&(a.comments - a.previous))
                    .then(b.comments.cmp(&a.comments))
                    .then(a.topic.cmp(&b.topic))
            });
            m.rising_topics.truncate(RISING_TOPICS);
        }
        Ok(out.into_iter().map(|(_, m)| m).collect())
    }

    /// Complaints and resolutions: per customer and bucket, from the folded tickets.
    /// A ticket met by several tallies is folded once more here; with one tally (the
    /// usual case: one stream reads the interactions) its map is used as it is.
    fn count_contacts(
        &self,
        cells: &mut Cells<'_>,
        mut tallied: Vec<(Vec<u32>, Tickets)>,
        folded: Vec<(u32, Ticket)>,
    ) {
        let tickets: Box<dyn Iterator<Item = (u32, Ticket)>> = if tallied.len() <= 1 {
            if tallied.is_empty() {
                tallied.push((Vec::new(), HashMap::default()));
            }
            let (members, tickets) = tallied.remove(0);
            Box::new(
                tickets
                    .into_iter()
                    .map(move |((local, _), t)| (members[local as usize], t)),
            )
        } else {
            let mut merged: Tickets = HashMap::default();
            for (members, tickets) in tallied {
                for ((local, key), t) in tickets {
                    merged
                        .entry((members[local as usize], key))
                        .and_modify(|mine| mine.absorb(t))
                        .or_insert(t);
                }
            }
            Box::new(merged.into_iter().map(|((customer, _), t)| (customer, t)))
        };
        let tickets = tickets.chain(folded);
        // Counts add up per cell directly; complaining customers are distinct
        // (customer, bucket) pairs, found by sorting the complaints' pairs.
        let mut complained: Vec<u64> = Vec::new();
        for (customer, t) in tickets {
            let Some(k) = self.bucket(t.opened) else {
                continue;
            };
            if !t.complaint && t.resolved.is_none() {
                continue;
            }
            let g = self.members[customer as usize].group;
            let Some(m) = cells.at(k as usize, g) else {
                continue;
            };
            if t.complaint {
                m.complaints += 1;
                complained.push((u64::from(customer) << 32) | u64::from(k));
            }
            if let Some(resolved) = t.resolved {
                m.resolved_interactions += 1;
                m.resolution_micros += (resolved - t.opened) as f64;
            }
        }
        complained.sort_unstable();
        complained.dedup();
        for pair in complained {
            let (customer, k) = ((pair >> 32) as usize, (pair & 0xffff_ffff) as usize);
            if let Some(m) = cells.at(k, self.members[customer].group) {
                m.complaining_customers += 1;
            }
        }
    }

    /// Buyers, repeat buyers and non-contractual retention, customer by customer. The
    /// purchases are grouped by customer with a counting sort (two passes, no
    /// comparisons).
    fn count_buyers(&self, cells: &mut Cells<'_>, purchases: Vec<(u32, u32, u32)>, buckets: usize) {
        let customers = self.members.len();
        let mut start = vec![0u32; customers + 1];
        for &(c, _, _) in &purchases {
            start[c as usize + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut next = start.clone();
        let mut by_customer = vec![(0u32, 0u32); purchases.len()];
        for &(c, k, n) in &purchases {
            by_customer[next[c as usize] as usize] = (k, n);
            next[c as usize] += 1;
        }
        drop(purchases);
        // Purchases per bucket of the customer at hand, reset between customers.
        let mut counts = vec![0u32; buckets];
        let mut touched: Vec<usize> = Vec::new();
        for (customer, member) in self.members.iter().enumerate() {
            let mine = &by_customer[start[customer] as usize..start[customer + 1] as usize];
            for &(k, n) in mine {
                let k = k as usize;
                if k < buckets {
                    if counts[k] == 0 {
                        touched.push(k);
                    }
                    counts[k] += n;
                }
            }
            for &k in &touched {
                // This bucket's buyers.
                if k >= 1
                    && let Some(m) = cells.at(k, member.group)
                {
                    m.buyers += 1;
                    m.repeat_buyers += i64::from(counts[k] > 1);
                }
                // Non-contractual retention: this bucket's buyers are the next one's
                // base; those who do not buy again in it left.
                if !member.contractual
                    && k + 1 < buckets
                    && let Some(m) = cells.at(k + 1, member.group)
                {
                    m.customers_at_start += 1;
                    m.churned += i64::from(counts[k + 1] == 0);
                }
            }
            for &k in &touched {
                counts[k] = 0;
            }
            touched.clear();
        }
    }

    /// Customers on the books, and contractual retention. Each customer is on the
    /// books over one run of buckets (and, if contractual, on contract at the start of
    /// a shorter one), so they are counted with difference arrays per group: two
    /// binary searches per customer, whatever the number of buckets.
    fn count_books(&self, cells: &mut Cells<'_>, buckets: usize) {
        let width = buckets + 1;
        let groups = self.groups.len();
        let mut books = vec![0i64; width * groups];
        let mut at_start = vec![0i64; width * groups];
        let mut churned = vec![0i64; width * groups];
        let last = buckets as i64 - 1;
        // The number of bounds at or before `t`.
        let count_le = |t: Micros| self.bounds.partition_point(|b| *b <= t) as i64;
        for c in &self.members {
            let row = c.group as usize * width;
            // On the books in k: signed up before k's end and not churned before its start.
            let first = (count_le(c.since) - 1).max(1);
            let through = c.churn_time.map_or(last, |t| (count_le(t) - 1).min(last));
            if first > through {
                continue;
            }
            books[row + first as usize] += 1;
            books[row + through as usize + 1] -= 1;
            if !c.contractual {
                continue;
            }
            // On contract at k's start: signed up before it; churned in the bucket that
            // holds the churn time.
            let first = count_le(c.since).max(1);
            if first > through {
                continue;
            }
            at_start[row + first as usize] += 1;
            at_start[row + through as usize + 1] -= 1;
            if let Some(t) = c.churn_time
                && count_le(t) - 1 == through
            {
                churned[row + through as usize] += 1;
            }
        }
        for g in 0..groups {
            let row = g * width;
            let (mut on_books, mut on_contract) = (0, 0);
            for k in 1..buckets {
                on_books += books[row + k];
                on_contract += at_start[row + k];
                if on_books == 0 {
                    continue;
                }
                if let Some(m) = cells.at(k, g as u32) {
                    m.customers_on_books += on_books;
                    m.customers_at_start += on_contract;
                    m.churned += churned[row + k];
                }
            }
        }
    }
}

/// A tally's names (by its own numbers) as numbers in `known`, which gains those it lacks.
/// A linear search: currencies and topics are a few dozen at most.
fn renumber(names: &[String], known: &mut Vec<String>) -> Vec<u32> {
    names
        .iter()
        .map(|name| match known.iter().position(|k| k == name) {
            Some(i) => i as u32,
            None => {
                known.push(name.clone());
                (known.len() - 1) as u32
            }
        })
        .collect()
}

/// The (bucket, group) grid, a row created on first use.
struct Cells<'a> {
    bounds: &'a [Micros],
    groups: &'a [String],
    width: usize,
    cells: Vec<Option<BucketMetrics>>,
}

impl Cells<'_> {
    /// The row of reported bucket `k` (1..) and group `g`; `None` for bucket 0 and
    /// anything outside.
    fn at(&mut self, k: usize, g: u32) -> Option<&mut BucketMetrics> {
        if k == 0 || k + 1 >= self.bounds.len() {
            return None;
        }
        let (bounds, groups) = (self.bounds, self.groups);
        let cell = self.cells.get_mut(k * self.width + g as usize)?;
        Some(cell.get_or_insert_with(|| BucketMetrics {
            start: bounds[k],
            end: bounds[k + 1],
            group: groups.get(g as usize).cloned().unwrap_or_default(),
            ..BucketMetrics::default()
        }))
    }
}

/// The reported span (answers and contacts outside it are not counted) and the span of
/// purchases (a bucket earlier), both `[from, to)`.
fn spans(bounds: &[Micros]) -> ((Micros, Micros), (Micros, Micros)) {
    let at = |i: usize| bounds.get(i).copied().unwrap_or_default();
    let end = at(bounds.len().saturating_sub(1));
    ((at(1), end), (at(0), end))
}

/// The bucket of `time` under `bounds`, if any (bucket 0 included).
fn bucket_of(bounds: &[Micros], time: Micros) -> Option<u32> {
    let (first, last) = (*bounds.first()?, *bounds.last()?);
    if time < first || time >= last {
        return None;
    }
    u32::try_from(bounds.partition_point(|b| *b <= time) - 1).ok()
}

/// What the metrics read of one event, borrowed: from a stored event
/// ([`PortfolioEvent::of`]) or from a history held packed in memory, without copying its
/// strings. The rows the store streams carry the same fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PortfolioEvent<'a> {
    /// A transaction.
    Purchase {
        time: Micros,
        currency: &'a [u8],
        amount_minor: i64,
    },
    /// An NPS (`nps` true) or CSAT answer with its score.
    Answer { time: Micros, nps: bool, score: i32 },
    /// An interaction: `ticket_id` empty when it stands alone.
    Contact {
        event_key: &'a [u8],
        ticket_id: &'a [u8],
        time: Micros,
        resolved_time: Option<Micros>,
        complaint: bool,
    },
}

impl<'a> PortfolioEvent<'a> {
    /// What the metrics count of `event`, if anything: payments, retention actions and
    /// other answers than NPS and CSAT count nowhere.
    pub fn of(event: &'a StoredEvent) -> Option<Self> {
        match &event.payload {
            EventPayload::Transaction(t) => Some(Self::Purchase {
                time: event.time,
                currency: t.currency.as_bytes(),
                amount_minor: t.amount_minor,
            }),
            EventPayload::Feedback(f) => Self::answer(event.time, f.kind, f.score),
            EventPayload::Interaction(i) => Some(Self::Contact {
                event_key: event.event_key.as_bytes(),
                ticket_id: i.ticket_id.as_bytes(),
                time: event.time,
                resolved_time: i.resolved_time,
                complaint: i.kind == InteractionKind::Complaint,
            }),
            EventPayload::Payment(_) | EventPayload::RetentionAction(_) => None,
        }
    }

    /// An answer the metrics count: NPS or CSAT, with a score.
    pub fn answer(time: Micros, kind: FeedbackKind, score: Option<i32>) -> Option<Self> {
        let nps = match kind {
            FeedbackKind::Nps => true,
            FeedbackKind::Csat => false,
            FeedbackKind::Ces | FeedbackKind::Review => return None,
        };
        Some(Self::Answer {
            time,
            nps,
            score: score?,
        })
    }
}

impl Tally {
    /// Counts every event of the portfolio's customer number `member`, in a tally from
    /// [`Portfolio::member_tally`]; each member's events must come in one call. Their
    /// contacts are folded by ticket here, among themselves, rather than in a map of
    /// every customer's tickets.
    pub fn member_events(&mut self, member: u32, events: &[PortfolioEvent<'_>]) {
        debug_assert!(self.by_member, "a member's events in a tally by key");
        // (is a ticket, its id or the event's key, the contact), sorted to fold.
        let mut contacts: Vec<(bool, &[u8], Ticket)> = Vec::new();
        for &event in events {
            match event {
                PortfolioEvent::Contact {
                    event_key,
                    ticket_id,
                    time,
                    resolved_time,
                    complaint,
                } => {
                    if bucket_of(&self.bounds, time).is_none_or(|k| k == 0) {
                        continue;
                    }
                    let ticket = Ticket {
                        opened: time,
                        resolved: resolved_time,
                        complaint,
                    };
                    contacts.push(if ticket_id.is_empty() {
                        (false, event_key, ticket)
                    } else {
                        (true, ticket_id, ticket)
                    });
                }
                other => self.event(CustomerKey::from(member), other),
            }
        }
        contacts.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut folded: Option<(bool, &[u8], Ticket)> = None;
        for (is_ticket, key, ticket) in contacts {
            match &mut folded {
                Some((t, k, open)) if *t == is_ticket && *k == key => open.absorb(ticket),
                _ => {
                    if let Some((_, _, done)) = folded.replace((is_ticket, key, ticket)) {
                        self.member_tickets.push((member, done));
                    }
                }
            }
        }
        if let Some((_, _, done)) = folded {
            self.member_tickets.push((member, done));
        }
    }

    /// Counts one event of `customer`, as the row streams would (in a member tally,
    /// `customer` is the member's number: see [`Self::member_events`]).
    pub fn event(&mut self, customer: CustomerKey, event: PortfolioEvent<'_>) {
        match event {
            PortfolioEvent::Purchase {
                time,
                currency,
                amount_minor,
            } => self.purchase(customer, time, currency, amount_minor),
            PortfolioEvent::Answer { time, nps, score } => self.answer(customer, time, nps, score),
            PortfolioEvent::Contact {
                event_key,
                ticket_id,
                time,
                resolved_time,
                complaint,
            } => self.interaction(
                customer,
                event_key,
                ticket_id,
                time,
                resolved_time,
                complaint,
            ),
        }
    }

    /// See `Portfolio::reported_span`: what the reader of this tally should select.
    pub fn reported_span(&self) -> (Micros, Micros) {
        spans(&self.bounds).0
    }

    /// See `Portfolio::purchase_span`.
    pub fn purchase_span(&self) -> (Micros, Micros) {
        spans(&self.bounds).1
    }

    /// The tally's number for customer `key` (the member's number itself `by_member`).
    fn customer(&mut self, key: CustomerKey) -> u32 {
        if self.by_member {
            return key as u32;
        }
        let next = self.ids.len() as u32;
        *self.ids.entry(key).or_insert(next)
    }

    /// An NPS (`nps` true) or CSAT answer; other times than the reported buckets' are
    /// not counted.
    pub fn answer(&mut self, customer: CustomerKey, time: Micros, nps: bool, score: i32) {
        let Some(bucket) = bucket_of(&self.bounds, time).filter(|&k| k >= 1) else {
            return;
        };
        let customer = self.customer(customer);
        self.answers.push(Answer {
            customer,
            bucket,
            nps,
            score,
        });
    }

    /// A comment or note with its sentiment and topic name (empty: none), in the
    /// bucket before the period too (topics rise against it).
    pub fn comment(&mut self, customer: CustomerKey, time: Micros, sentiment: f32, topic: &str) {
        let Some(bucket) = bucket_of(&self.bounds, time) else {
            return;
        };
        let customer = self.customer(customer);
        let topic = if topic.is_empty() {
            u32::MAX
        } else {
            match self.topic_index.get(topic) {
                Some(&i) => i,
                None => {
                    let i = self.topics.len() as u32;
                    self.topics.push(topic.to_owned());
                    self.topic_index.insert(topic.to_owned(), i);
                    i
                }
            }
        };
        self.comments.push(Comment {
            customer,
            bucket,
            sentiment,
            topic,
        });
    }

    /// A purchase (a transaction), in the bucket before the period too.
    pub fn purchase(
        &mut self,
        customer: CustomerKey,
        time: Micros,
        currency: &[u8],
        amount_minor: i64,
    ) {
        let Some(bucket) = bucket_of(&self.bounds, time) else {
            return;
        };
        let customer = self.customer(customer);
        let currency = match self
            .currencies
            .iter()
            .position(|c| c.as_bytes() == currency)
        {
            Some(c) => c as u32,
            None => {
                self.currencies
                    .push(String::from_utf8_lossy(currency).into_owned());
                (self.currencies.len() - 1) as u32
            }
        };
        if let Some(last) = self.purchases.last_mut()
            && (last.customer, last.bucket, last.currency) == (customer, bucket, currency)
            && let Some(sum) = last.amount_minor.checked_add(amount_minor)
        {
            last.amount_minor = sum;
            last.count += 1;
            return;
        }
        self.purchases.push(Purchase {
            customer,
            bucket,
            currency,
            count: 1,
            amount_minor,
        });
    }

    /// An interaction event: `ticket_id` empty when it stands alone. Events outside the
    /// reported buckets are not folded into their ticket.
    pub fn interaction(
        &mut self,
        customer: CustomerKey,
        event_key: &[u8],
        ticket_id: &[u8],
        time: Micros,
        resolved_time: Option<Micros>,
        complaint: bool,
    ) {
        if bucket_of(&self.bounds, time).is_none_or(|k| k == 0) {
            return;
        }
        let customer = self.customer(customer);
        let text = |b: &[u8]| -> Box<str> { String::from_utf8_lossy(b).into() };
        let key = if ticket_id.is_empty() {
            ContactKey::Event(text(event_key))
        } else {
            ContactKey::Ticket(text(ticket_id))
        };
        let event = Ticket {
            opened: time,
            resolved: resolved_time,
            complaint,
        };
        self.tickets
            .entry((customer, key))
            .and_modify(|t| t.absorb(event))
            .or_insert(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Micros = crate::time::MICROS_PER_DAY;

    fn key(id: &str) -> CustomerKey {
        customer_key(id.as_bytes(), 0)
    }

    /// Three 10-day buckets: [0,10) before, [10,20) and [20,30) reported.
    fn portfolio() -> Portfolio {
        let mut p = Portfolio::new(vec![0, 10 * DAY, 20 * DAY, 30 * DAY]);
        for (id, group, contractual, since, churn) in [
            ("a", "north", false, 0, None),
            ("b", "north", false, 0, None),
            ("c", "south", true, 0, Some(25 * DAY)),
            ("d", "south", true, 15 * DAY, None),
        ] {
            p.add_customer(key(id), group, contractual, since, churn)
                .expect("distinct keys");
        }
        p
    }

    fn row<'a>(rows: &'a [BucketMetrics], start: Micros, group: &str) -> &'a BucketMetrics {
        rows.iter()
            .find(|m| m.start == start && m.group == group)
            .expect("a row for the bucket and group")
    }

    #[test]
    fn comments_count_by_sentiment_and_topics_rise_against_the_bucket_before() {
        let p = portfolio();
        let mut t = p.tally();
        // Delivery: one before the period, three in the first bucket, one in the second;
        // billing: none, then two. Every comment by a north customer.
        t.comment(key("a"), 5 * DAY, -0.8, "delivery / late");
        for (day, sentiment) in [(11, -0.9), (12, -0.5), (13, 0.6)] {
            t.comment(key("a"), day * DAY, sentiment, "delivery / late");
        }
        t.comment(key("b"), 14 * DAY, 0.9, "");
        t.comment(key("b"), 21 * DAY, -0.7, "delivery / late");
        t.comment(key("b"), 22 * DAY, -0.4, "billing / refund");
        t.comment(key("a"), 23 * DAY, -0.2, "billing / refund");
        let rows = p.finish(vec![t]).expect("every customer known");
        let first = row(&rows, 10 * DAY, "north");
        assert_eq!((first.comments, first.negative_comments), (4, 2));
        assert_eq!(first.negative_share(), Some(0.5));
        assert!((first.mean_sentiment().unwrap_or(0.0) - 0.025).abs() < 1e-6);
        assert_eq!(
            first.rising_topics,
            vec![TopicTrend {
                topic: "delivery / late".into(),
                comments: 3,
                previous: 1,
                mean_sentiment: (f64::from(-0.9_f32) + f64::from(-0.5_f32) + f64::from(0.6_f32))
                    / 3.0
            }]
        );
        let second = row(&rows, 20 * DAY, "north");
        assert_eq!((second.comments, second.negative_comments), (3, 2));
        // Billing rose from none; delivery fell and is not listed.
        assert_eq!(
            second.rising_topics,
            vec![TopicTrend {
                topic: "billing / refund".into(),
                comments: 2,
                previous: 0,
                mean_sentiment: (f64::from(-0.4_f32) + f64::from(-0.2_f32)) / 2.0
            }]
        );
    }

    #[test]
    fn buyers_repeat_buyers_and_non_contractual_retention() {
        let p = portfolio();
        let mut t = p.tally();
        // a buys before and in both buckets, twice in the first; b buys only before.
        for (who, day) in [("a", 5), ("a", 12), ("a", 13), ("a", 25), ("b", 2)] {
            t.purchase(key(who), day * DAY, b"USD", 100);
        }
        let rows = p.finish(vec![t]).expect("every customer known");
        let first = row(&rows, 10 * DAY, "north");
        assert_eq!((first.buyers, first.repeat_buyers), (1, 1));
        // Base: a and b bought before; b did not buy again.
        assert_eq!((first.customers_at_start, first.churned), (2, 1));
        assert_eq!(first.revenue_minor.get("USD"), Some(&200));
        let second = row(&rows, 20 * DAY, "north");
        assert_eq!((second.buyers, second.repeat_buyers), (1, 0));
        assert_eq!((second.customers_at_start, second.churned), (1, 0));
        assert_eq!(second.revenue_minor.get("USD"), Some(&100));
    }

    #[test]
    fn contractual_retention_and_books() {
        let p = portfolio();
        let rows = p.finish(vec![p.tally()]).expect("no rows");
        let first = row(&rows, 10 * DAY, "south");
        // c is on contract from the start; d signs up inside the bucket.
        assert_eq!(first.customers_at_start, 1);
        assert_eq!(first.customers_on_books, 2);
        let second = row(&rows, 20 * DAY, "south");
        assert_eq!((second.customers_at_start, second.churned), (2, 1));
        assert_eq!(second.churn_rate(), Some(0.5));
    }

    #[test]
    fn a_ticket_counts_once_at_its_first_event_whatever_tally_saw_it() {
        let p = portfolio();
        let (mut t1, mut t2) = (p.tally(), p.tally());
        t1.interaction(key("a"), b"e1", b"T1", 11 * DAY, None, false);
        t2.interaction(key("a"), b"e2", b"T1", 21 * DAY, Some(22 * DAY), true);
        // A stand-alone contact of a whose event key is the ticket's id: a contact of
        // its own.
        t1.interaction(
            key("a"),
            b"T1",
            b"",
            12 * DAY,
            Some(12 * DAY + 3_600_000_000),
            false,
        );
        // Before the period: not counted.
        t1.interaction(key("b"), b"e9", b"", 5 * DAY, None, true);
        let rows = p.finish(vec![t1, t2]).expect("every customer known");
        let first = row(&rows, 10 * DAY, "north");
        assert_eq!((first.complaints, first.complaining_customers), (1, 1));
        assert_eq!(first.resolved_interactions, 2);
        // 11 days for the ticket (opened day 11, resolved day 22) and 1 hour.
        assert_eq!(
            first.mean_resolution_hours(),
            Some((11.0 * 24.0 + 1.0) / 2.0)
        );
        assert!(!rows.iter().any(|m| m.start == 20 * DAY && m.complaints > 0));
    }

    #[test]
    fn answers_count_by_kind_within_the_period() {
        let p = portfolio();
        let mut t = p.tally();
        for score in [10, 9, 7, 3] {
            t.answer(key("a"), 15 * DAY, true, score);
        }
        t.answer(key("c"), 15 * DAY, false, 4);
        // Before the period: not counted.
        t.answer(key("a"), 5 * DAY, true, 0);
        let rows = p.finish(vec![t]).expect("every customer known");
        let north = row(&rows, 10 * DAY, "north");
        assert_eq!(north.nps_answers, 4);
        assert_eq!(north.nps(), Some(25.0));
        assert_eq!(row(&rows, 10 * DAY, "south").mean_csat(), Some(4.0));
    }

    #[test]
    fn a_customer_never_added_is_an_error() {
        let p = portfolio();
        let mut t = p.tally();
        t.purchase(key("zz"), 15 * DAY, b"USD", 1);
        let e = p.finish(vec![t]).expect_err("zz was never added");
        assert!(matches!(e, PortfolioError::UnknownCustomer(k) if k == key("zz")));
    }

    #[test]
    fn two_customers_with_one_key_are_refused() {
        let mut p = portfolio();
        let e = p
            .add_customer(key("a"), "west", false, 0, None)
            .expect_err("a's key is taken");
        assert!(matches!(e, PortfolioError::KeyCollision(_)));
        assert_ne!(customer_key(b"a", 0), customer_key(b"a", 1));
    }

    #[test]
    fn rows_come_in_bucket_then_group_order() {
        let mut p = portfolio();
        // Added last, named first: the order is by name, not by arrival.
        p.add_customer(key("e"), "east", false, 0, None)
            .expect("a new key");
        let rows = p.finish(vec![p.tally()]).expect("no rows");
        let keys: Vec<(Micros, &str)> = rows.iter().map(|m| (m.start, m.group.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                (10 * DAY, "east"),
                (10 * DAY, "north"),
                (10 * DAY, "south"),
                (20 * DAY, "east"),
                (20 * DAY, "north"),
                (20 * DAY, "south")
            ]
        );
    }

    #[test]
    fn one_customers_purchases_in_different_tallies_count_together() {
        // PostgreSQL reads purchases in two page ranges: one customer's purchases can
        // land in both tallies.
        let p = portfolio();
        let (mut t1, mut t2) = (p.tally(), p.tally());
        t1.purchase(key("a"), 12 * DAY, b"USD", 100);
        t2.purchase(key("a"), 13 * DAY, b"USD", 50);
        t2.purchase(key("b"), 5 * DAY, b"USD", 10);
        t1.purchase(key("b"), 25 * DAY, b"USD", 10);
        let rows = p.finish(vec![t1, t2]).expect("every customer known");
        let first = row(&rows, 10 * DAY, "north");
        assert_eq!((first.buyers, first.repeat_buyers), (1, 1));
        assert_eq!(first.revenue_minor.get("USD"), Some(&150));
        // The base of the second bucket is a (bought in the first); b returns unbased.
        let second = row(&rows, 20 * DAY, "north");
        assert_eq!((second.buyers, second.customers_at_start), (1, 1));
        assert_eq!(second.churned, 1);
    }

    #[test]
    fn a_revenue_beyond_64_bits_is_an_error_not_a_wrapped_sum() {
        let p = portfolio();
        let mut t = p.tally();
        t.purchase(key("a"), 12 * DAY, b"USD", i64::MAX);
        t.purchase(key("b"), 13 * DAY, b"USD", 1);
        let e = p.finish(vec![t]).expect_err("the sum overflows");
        assert!(matches!(e, PortfolioError::RevenueOverflow(c) if c == "USD"));
    }

    /// Revenue on the dense grid (few groups) and in the map (so many buckets, groups and
    /// currencies that the grid would pass `DENSE_REVENUE_CELLS`) comes out the same: each
    /// customer's purchases in their own group and bucket, a refund leaving a zero shown.
    #[test]
    fn revenue_is_summed_alike_on_the_grid_and_in_the_map() {
        for customers in [10usize, 1_000] {
            let buckets = 600;
            let bounds: Vec<Micros> = (0..=buckets).map(|k| k as Micros * DAY).collect();
            let mut p = Portfolio::new(bounds);
            let id = |i: usize| format!("c{i}");
            for i in 0..customers {
                p.add_customer(key(&id(i)), &format!("g{i:04}"), false, 0, None)
                    .expect("distinct keys");
            }
            let grid = (buckets + 1) * customers * 2;
            assert_eq!(
                grid > DENSE_REVENUE_CELLS,
                customers == 1_000,
                "{grid} cells"
            );
            let mut t = p.tally();
            for i in 0..customers {
                let time = ((i % (buckets - 2)) as Micros + 1) * DAY + 1;
                t.purchase(key(&id(i)), time, b"USD", 100);
                t.purchase(key(&id(i)), time, b"EUR", 50);
                if i % 3 == 0 {
                    t.purchase(key(&id(i)), time + 1, b"USD", -100);
                }
            }
            let rows = p.finish(vec![t]).expect("counted");
            for i in 0..customers {
                let start = ((i % (buckets - 2)) as Micros + 1) * DAY;
                let r = row(&rows, start, &format!("g{i:04}"));
                let usd = if i % 3 == 0 { 0 } else { 100 };
                assert_eq!(r.revenue_minor.get("USD"), Some(&usd), "{customers}: c{i}");
                assert_eq!(r.revenue_minor.get("EUR"), Some(&50), "{customers}: c{i}");
            }
        }
    }
}
