//! A customer's events packed into one byte buffer for the history cache.
//!
//! A `StoredEvent` is 216 bytes inline plus a heap block per string (its customer id, its
//! key, the payload's currency, channel, category...): about 450 bytes an event with the
//! allocator's rounding (BENCHMARKS.md, "Histories kept in memory"), so a 1 GiB cache held
//! 100,000 of 1,000,000 customers. Packed, an event is a kind byte, its times as varint
//! deltas, and its strings as one-byte references to the first time the history wrote them
//! (a history says "USD", "web" and its customer id over and over): 20-40 bytes.
//!
//! Unpacking gives back exactly the events packed (a property test says so), so
//! evaluations cannot tell a cached history from one read from the database. Unpacking
//! allocates the events' strings again: about 2.5% of the server's CPU at 11,000
//! evaluations a second (BENCHMARKS.md, "A million customers"), far less than the database
//! read a miss costs.
//!
//! The format is written by hand: it lives only in this process's memory (never stored,
//! never sent), so it needs no versioning, and a serde format would write every string in
//! full, which is most of what this saves.

use vitals_domain::portfolio::PortfolioEvent;
use vitals_domain::time::Micros;
use vitals_domain::{
    EventPayload, Feedback, FeedbackKind, Interaction, InteractionKind, Payment, RetentionAction,
    Severity, StoredEvent, Transaction,
};

/// A history's events, packed. See the module's documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedEvents {
    bytes: Box<[u8]>,
    count: u32,
}

/// The packed buffer could not be read back: a bug in this module, never the data's fault
/// (the buffer is only ever written by [`PackedEvents::pack`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a packed history is malformed at byte {at}: {what}")]
pub struct Malformed {
    at: usize,
    what: &'static str,
}

impl PackedEvents {
    /// Packs `events`, in their order.
    pub fn pack(events: &[StoredEvent]) -> Self {
        let mut w = Writer::default();
        let mut previous_time: Micros = 0;
        for e in events {
            w.byte(kind_tag(&e.payload));
            w.str(&e.customer_id);
            w.str(&e.event_key);
            w.signed(e.time.wrapping_sub(previous_time));
            w.signed(e.record_time.wrapping_sub(e.time));
            previous_time = e.time;
            match &e.payload {
                EventPayload::Transaction(t) => {
                    w.signed(t.amount_minor);
                    w.str(&t.currency);
                    w.signed(i64::from(t.quantity));
                    w.str(&t.category);
                    w.str(&t.channel);
                }
                EventPayload::Payment(p) => {
                    w.str(&p.invoice_id);
                    w.signed(p.amount_minor);
                    w.str(&p.currency);
                    w.time(p.due_time, e.time);
                    w.time(p.paid_time, e.time);
                    w.str(&p.method);
                }
                EventPayload::Feedback(f) => {
                    w.byte(feedback_tag(f.kind));
                    // A presence byte, then the score: a review may have none.
                    match f.score {
                        None => w.byte(0),
                        Some(score) => {
                            w.byte(1);
                            w.signed(i64::from(score));
                        }
                    }
                    w.opt_str(f.comment.as_deref());
                    w.str(&f.channel);
                }
                EventPayload::Interaction(i) => {
                    w.byte(interaction_tag(i.kind));
                    w.byte(severity_tag(i.severity));
                    w.str(&i.category);
                    w.str(&i.channel);
                    w.str(&i.ticket_id);
                    w.time(i.resolved_time, e.time);
                    w.opt_str(i.note.as_deref());
                }
                EventPayload::RetentionAction(r) => {
                    w.str(&r.kind);
                    w.signed(r.cost_minor);
                    w.str(&r.currency);
                    w.str(&r.campaign);
                    w.str(&r.channel);
                    w.str(&r.actor);
                    w.opt_str(r.note.as_deref());
                }
            }
        }
        Self {
            bytes: w.bytes.into_boxed_slice(),
            // A history of more than 4 billion events cannot be read into memory anyway.
            count: u32::try_from(events.len()).unwrap_or(u32::MAX),
        }
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the packed events take on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The events as they were packed.
    pub fn unpack(&self) -> Result<Vec<StoredEvent>, Malformed> {
        let mut events = Vec::with_capacity(self.len());
        let mut failed = None;
        self.walk(|e| match e.stored() {
            Ok(e) => events.push(e),
            Err(e) => {
                failed.get_or_insert(e);
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(events),
        }
    }

    /// What the portfolio metrics count of these events, borrowed from the buffer: no
    /// string is copied, nor checked for UTF-8 (the metrics compare their bytes). Nothing
    /// is returned unless the whole buffer reads.
    pub fn portfolio_events(&self) -> Result<Vec<PortfolioEvent<'_>>, Malformed> {
        let mut events = Vec::with_capacity(self.len());
        self.walk(|e| {
            let event = match e.payload {
                Raw::Transaction {
                    amount_minor,
                    currency,
                    ..
                } => Some(PortfolioEvent::Purchase {
                    time: e.time,
                    currency,
                    amount_minor,
                }),
                Raw::Feedback { kind, score, .. } => PortfolioEvent::answer(e.time, kind, score),
                Raw::Interaction {
                    kind,
                    ticket_id,
                    resolved_time,
                    ..
                } => Some(PortfolioEvent::Contact {
                    event_key: e.event_key,
                    ticket_id,
                    time: e.time,
                    resolved_time,
                    complaint: kind == InteractionKind::Complaint,
                }),
                Raw::Payment { .. } | Raw::RetentionAction { .. } => None,
            };
            events.extend(event);
        })?;
        Ok(events)
    }

    /// Reads every event in order, its strings borrowed from the buffer: the one parser
    /// behind [`Self::unpack`] and [`Self::portfolio_events`].
    fn walk<'a>(&'a self, mut each: impl FnMut(RawEvent<'a>)) -> Result<(), Malformed> {
        let mut r = Reader {
            bytes: &self.bytes,
            at: 0,
            seen: Vec::with_capacity(16),
        };
        let mut previous_time: Micros = 0;
        for _ in 0..self.count {
            let kind = r.byte()?;
            let customer_id = r.str()?;
            let event_key = r.str()?;
            let time = previous_time.wrapping_add(r.signed()?);
            let record_time = time.wrapping_add(r.signed()?);
            previous_time = time;
            let payload = match kind {
                0 => Raw::Transaction {
                    amount_minor: r.signed()?,
                    currency: r.str()?,
                    quantity: r.int32()?,
                    category: r.str()?,
                    channel: r.str()?,
                },
                1 => Raw::Payment {
                    invoice_id: r.str()?,
                    amount_minor: r.signed()?,
                    currency: r.str()?,
                    due_time: r.time(time)?,
                    paid_time: r.time(time)?,
                    method: r.str()?,
                },
                2 => Raw::Feedback {
                    kind: r.tagged(&FeedbackKind::ALL)?,
                    score: match r.byte()? {
                        0 => None,
                        1 => Some(r.int32()?),
                        _ => return Err(r.malformed("a score's presence byte is not 0 or 1")),
                    },
                    comment: r.opt_str()?,
                    channel: r.str()?,
                },
                3 => Raw::Interaction {
                    kind: r.tagged(&InteractionKind::ALL)?,
                    severity: r.tagged(&Severity::ALL)?,
                    category: r.str()?,
                    channel: r.str()?,
                    ticket_id: r.str()?,
                    resolved_time: r.time(time)?,
                    note: r.opt_str()?,
                },
                4 => Raw::RetentionAction {
                    kind: r.str()?,
                    cost_minor: r.signed()?,
                    currency: r.str()?,
                    campaign: r.str()?,
                    channel: r.str()?,
                    actor: r.str()?,
                    note: r.opt_str()?,
                },
                _ => return Err(r.malformed("an unknown event kind")),
            };
            each(RawEvent {
                customer_id,
                event_key,
                time,
                record_time,
                payload,
            });
        }
        if r.at != r.bytes.len() {
            return Err(r.malformed("bytes left after the last event"));
        }
        Ok(())
    }
}

/// An event as the buffer holds it, its strings borrowed.
struct RawEvent<'a> {
    customer_id: &'a [u8],
    event_key: &'a [u8],
    time: Micros,
    record_time: Micros,
    payload: Raw<'a>,
}

/// A payload as the buffer holds it: [`EventPayload`] with its strings borrowed as
/// bytes, checked for UTF-8 only when an owned event is made of them.
enum Raw<'a> {
    Transaction {
        amount_minor: i64,
        currency: &'a [u8],
        quantity: i32,
        category: &'a [u8],
        channel: &'a [u8],
    },
    Payment {
        invoice_id: &'a [u8],
        amount_minor: i64,
        currency: &'a [u8],
        due_time: Option<Micros>,
        paid_time: Option<Micros>,
        method: &'a [u8],
    },
    Feedback {
        kind: FeedbackKind,
        score: Option<i32>,
        comment: Option<&'a [u8]>,
        channel: &'a [u8],
    },
    Interaction {
        kind: InteractionKind,
        severity: Severity,
        category: &'a [u8],
        channel: &'a [u8],
        ticket_id: &'a [u8],
        resolved_time: Option<Micros>,
        note: Option<&'a [u8]>,
    },
    RetentionAction {
        kind: &'a [u8],
        cost_minor: i64,
        currency: &'a [u8],
        campaign: &'a [u8],
        channel: &'a [u8],
        actor: &'a [u8],
        note: Option<&'a [u8]>,
    },
}

impl RawEvent<'_> {
    fn stored(&self) -> Result<StoredEvent, Malformed> {
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| Malformed {
                    at: 0,
                    what: "a string that is not UTF-8",
                })
        };
        let payload = match self.payload {
            Raw::Transaction {
                amount_minor,
                currency,
                quantity,
                category,
                channel,
            } => EventPayload::Transaction(Transaction {
                amount_minor,
                currency: text(currency)?,
                quantity,
                category: text(category)?,
                channel: text(channel)?,
            }),
            Raw::Payment {
                invoice_id,
                amount_minor,
                currency,
                due_time,
                paid_time,
                method,
            } => EventPayload::Payment(Payment {
                invoice_id: text(invoice_id)?,
                amount_minor,
                currency: text(currency)?,
                due_time,
                paid_time,
                method: text(method)?,
            }),
            Raw::Feedback {
                kind,
                score,
                comment,
                channel,
            } => EventPayload::Feedback(Feedback {
                kind,
                score,
                comment: comment.map(text).transpose()?,
                channel: text(channel)?,
            }),
            Raw::Interaction {
                kind,
                severity,
                category,
                channel,
                ticket_id,
                resolved_time,
                note,
            } => EventPayload::Interaction(Interaction {
                kind,
                severity,
                category: text(category)?,
                channel: text(channel)?,
                ticket_id: text(ticket_id)?,
                resolved_time,
                note: note.map(text).transpose()?,
            }),
            Raw::RetentionAction {
                kind,
                cost_minor,
                currency,
                campaign,
                channel,
                actor,
                note,
            } => EventPayload::RetentionAction(RetentionAction {
                kind: text(kind)?,
                cost_minor,
                currency: text(currency)?,
                campaign: text(campaign)?,
                channel: text(channel)?,
                actor: text(actor)?,
                note: note.map(text).transpose()?,
            }),
        };
        Ok(StoredEvent {
            customer_id: text(self.customer_id)?,
            event_key: text(self.event_key)?,
            time: self.time,
            record_time: self.record_time,
            payload,
        })
    }
}

fn kind_tag(payload: &EventPayload) -> u8 {
    match payload {
        EventPayload::Transaction(_) => 0,
        EventPayload::Payment(_) => 1,
        EventPayload::Feedback(_) => 2,
        EventPayload::Interaction(_) => 3,
        EventPayload::RetentionAction(_) => 4,
    }
}

/// An enum's position in its `ALL` list, which [`Reader::tagged`] reads back.
fn position<T: PartialEq>(all: &[T], value: &T) -> u8 {
    all.iter()
        .position(|v| v == value)
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or(u8::MAX)
}

fn feedback_tag(kind: FeedbackKind) -> u8 {
    position(&FeedbackKind::ALL, &kind)
}

fn interaction_tag(kind: InteractionKind) -> u8 {
    position(&InteractionKind::ALL, &kind)
}

fn severity_tag(severity: Severity) -> u8 {
    position(&Severity::ALL, &severity)
}

/// Strings at most this long are remembered for later references; longer ones (comments,
/// notes) are written in full each time, as they rarely repeat.
const REMEMBERED_LEN: usize = 64;

#[derive(Default)]
struct Writer<'a> {
    bytes: Vec<u8>,
    /// Strings written so far, by their reference number.
    seen: Vec<&'a str>,
}

impl<'a> Writer<'a> {
    fn byte(&mut self, b: u8) {
        self.bytes.push(b);
    }

    /// LEB128.
    fn unsigned(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.bytes.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.bytes.push(v as u8);
    }

    /// Zigzag, then LEB128: small magnitudes of either sign take few bytes.
    fn signed(&mut self, v: i64) {
        self.unsigned(((v << 1) ^ (v >> 63)) as u64);
    }

    /// 0 and the string in full the first time, or 1 + its reference number after.
    /// A linear search: a history has a few dozen distinct short strings, and a search
    /// through them is faster than hashing each one.
    fn str(&mut self, s: &'a str) {
        if s.len() <= REMEMBERED_LEN
            && let Some(i) = self.seen.iter().position(|seen| *seen == s)
        {
            self.unsigned(i as u64 + 1);
            return;
        }
        self.unsigned(0);
        self.unsigned(s.len() as u64);
        self.bytes.extend_from_slice(s.as_bytes());
        if s.len() <= REMEMBERED_LEN {
            self.seen.push(s);
        }
    }

    fn opt_str(&mut self, s: Option<&'a str>) {
        match s {
            None => self.byte(0),
            Some(s) => {
                self.byte(1);
                self.str(s);
            }
        }
    }

    /// An optional time, relative to the event's own time.
    fn time(&mut self, t: Option<Micros>, event_time: Micros) {
        match t {
            None => self.byte(0),
            Some(t) => {
                self.byte(1);
                self.signed(t.wrapping_sub(event_time));
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    seen: Vec<&'a [u8]>,
}

impl<'a> Reader<'a> {
    fn malformed(&self, what: &'static str) -> Malformed {
        Malformed { at: self.at, what }
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| self.malformed("ends early"))?;
        self.at += 1;
        Ok(b)
    }

    fn unsigned(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.malformed("a varint longer than 64 bits"))
    }

    fn signed(&mut self) -> Result<i64, Malformed> {
        let v = self.unsigned()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn int32(&mut self) -> Result<i32, Malformed> {
        let v = self.signed()?;
        i32::try_from(v).map_err(|_| self.malformed("a 32-bit number out of range"))
    }

    /// A string's bytes: checked for UTF-8 by whoever makes a `String` of them.
    fn str(&mut self) -> Result<&'a [u8], Malformed> {
        let reference = self.unsigned()?;
        if reference > 0 {
            let i = usize::try_from(reference - 1).unwrap_or(usize::MAX);
            return self
                .seen
                .get(i)
                .copied()
                .ok_or_else(|| self.malformed("a reference to a string not yet written"));
        }
        let len = usize::try_from(self.unsigned()?).unwrap_or(usize::MAX);
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.malformed("a string past the end"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        if s.len() <= REMEMBERED_LEN {
            self.seen.push(s);
        }
        Ok(s)
    }

    fn opt_str(&mut self) -> Result<Option<&'a [u8]>, Malformed> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            _ => Err(self.malformed("an option that is neither none nor some")),
        }
    }

    fn time(&mut self, event_time: Micros) -> Result<Option<Micros>, Malformed> {
        match self.byte()? {
            0 => Ok(None),
            1 => Ok(Some(event_time.wrapping_add(self.signed()?))),
            _ => Err(self.malformed("an option that is neither none nor some")),
        }
    }

    fn tagged<T: Copy>(&mut self, all: &[T]) -> Result<T, Malformed> {
        let tag = self.byte()?;
        all.get(usize::from(tag))
            .copied()
            .ok_or_else(|| self.malformed("an unknown enum value"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn short() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("USD".to_owned()),
            Just("web".to_owned()),
            "[a-z0-9-]{1,12}",
            "\\PC{0,80}",
        ]
    }

    fn time() -> impl Strategy<Value = Micros> {
        prop_oneof![any::<i64>(), -10_000_000_000_000i64..10_000_000_000_000]
    }

    fn payload() -> impl Strategy<Value = EventPayload> {
        prop_oneof![
            (any::<i64>(), short(), any::<i32>(), short(), short()).prop_map(
                |(amount_minor, currency, quantity, category, channel)| {
                    EventPayload::Transaction(Transaction {
                        amount_minor,
                        currency,
                        quantity,
                        category,
                        channel,
                    })
                }
            ),
            (
                short(),
                any::<i64>(),
                short(),
                proptest::option::of(time()),
                proptest::option::of(time()),
                short()
            )
                .prop_map(
                    |(invoice_id, amount_minor, currency, due_time, paid_time, method)| {
                        EventPayload::Payment(Payment {
                            invoice_id,
                            amount_minor,
                            currency,
                            due_time,
                            paid_time,
                            method,
                        })
                    }
                ),
            (
                0..4usize,
                proptest::option::of(any::<i32>()),
                proptest::option::of(short()),
                short()
            )
                .prop_map(|(k, score, comment, channel)| {
                    EventPayload::Feedback(Feedback {
                        kind: FeedbackKind::ALL[k],
                        score,
                        comment,
                        channel,
                    })
                }),
            (
                0..5usize,
                0..5usize,
                short(),
                short(),
                short(),
                proptest::option::of(time()),
                proptest::option::of(short())
            )
                .prop_map(
                    |(k, s, category, channel, ticket_id, resolved_time, note)| {
                        EventPayload::Interaction(Interaction {
                            kind: InteractionKind::ALL[k],
                            severity: Severity::ALL[s],
                            category,
                            channel,
                            ticket_id,
                            resolved_time,
                            note,
                        })
                    }
                ),
            (
                short(),
                any::<i64>(),
                short(),
                short(),
                short(),
                short(),
                proptest::option::of(short())
            )
                .prop_map(
                    |(kind, cost_minor, currency, campaign, channel, actor, note)| {
                        EventPayload::RetentionAction(RetentionAction {
                            kind,
                            cost_minor,
                            currency,
                            campaign,
                            channel,
                            actor,
                            note,
                        })
                    }
                ),
        ]
    }

    fn event() -> impl Strategy<Value = StoredEvent> {
        (short(), short(), time(), time(), payload()).prop_map(
            |(customer_id, event_key, time, record_time, payload)| StoredEvent {
                customer_id,
                event_key,
                time,
                record_time,
                payload,
            },
        )
    }

    proptest! {
        #[test]
        fn unpacking_gives_back_exactly_what_was_packed(
            events in proptest::collection::vec(event(), 0..40)
        ) {
            let packed = PackedEvents::pack(&events);
            prop_assert_eq!(packed.len(), events.len());
            prop_assert_eq!(packed.unpack(), Ok(events));
        }
    }

    /// A history as the generator writes one: 22 events, mostly purchases.
    fn typical() -> Vec<StoredEvent> {
        let customer = "0193f1c2-7a2b-7cc1-9d3e-5f7a8b9c0d1e";
        let day = 86_400_000_000i64;
        (0..22)
            .map(|i| StoredEvent {
                customer_id: customer.to_owned(),
                event_key: format!("gen-000123-{i:05}"),
                time: 1_700_000_000_000_000 + i * 13 * day,
                record_time: 1_700_000_000_000_000 + i * 13 * day + 1_000_000,
                payload: if i % 7 == 3 {
                    EventPayload::Feedback(Feedback {
                        kind: FeedbackKind::Nps,
                        score: Some(8),
                        comment: None,
                        channel: "email".into(),
                    })
                } else {
                    EventPayload::Transaction(Transaction {
                        amount_minor: 4_599 + i * 100,
                        currency: "USD".into(),
                        quantity: 1,
                        category: "electronics".into(),
                        channel: "web".into(),
                    })
                },
            })
            .collect()
    }

    #[test]
    fn a_typical_event_packs_into_a_few_dozen_bytes() {
        let events = typical();
        let packed = PackedEvents::pack(&events);
        let per_event = packed.heap_bytes() as f64 / events.len() as f64;
        // The key is 16 bytes of it; the rest is a kind, two times, an amount and
        // references.
        assert!(per_event < 40.0, "{per_event} bytes an event");
        assert_eq!(packed.unpack(), Ok(events));
    }

    #[test]
    fn a_damaged_buffer_is_an_error_not_a_panic() {
        let packed = PackedEvents::pack(&typical());
        for cut in [0, 1, 5, packed.bytes.len() / 2, packed.bytes.len() - 1] {
            let damaged = PackedEvents {
                bytes: packed.bytes[..cut].into(),
                count: packed.count,
            };
            assert!(damaged.unpack().is_err(), "cut at {cut}");
        }
        let mut extra = packed.bytes.to_vec();
        extra.push(0);
        let damaged = PackedEvents {
            bytes: extra.into(),
            count: packed.count,
        };
        assert!(damaged.unpack().is_err());
    }
}
