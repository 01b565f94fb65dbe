//! Follow-up tasks and the versioned rules that open them.
//!
//! Tasks open in the same transaction as what triggered them (an event batch, a chunk of
//! a refresh), so a signal is never recorded without its task or the other way round.
//! "One open task per customer and reason" is a partial unique index, and every insert is
//! `ON CONFLICT DO NOTHING`: a repeated signal, or two servers racing on one, opens one.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use vitals_domain::StoredEvent;
use vitals_domain::comments::CommentAnalysis;
use vitals_domain::followup::{
    FollowUpRules, FollowUpStatus, Move, MoveError, OPEN_STATUSES, Reason, Signal, apply_move,
};
use vitals_domain::time::{Micros, now_micros};

use crate::db::{Store, WriteTransaction, with_conn};
use crate::error::{Result, StoreError};
use crate::page::{self, Page};
use crate::schema::{follow_up_rules, follow_ups};

/// How a live event batch opens follow-ups, as its caller decided: which of the batch's
/// new events signal, under which version of the rules. The store only records the tasks,
/// in the batch's own transaction.
pub struct FollowUpOpener<'a> {
    pub rules_version: i64,
    /// The signals a new event raises, given what the analysis of its comment found.
    pub signal_of: &'a (dyn Fn(&StoredEvent, Option<&CommentAnalysis>) -> Vec<Signal> + Sync),
}

/// How a batch's comments are analysed, as its caller decided (the text model in
/// service); the store records each analysis with its event, in the batch's transaction.
pub type CommentAnalyser<'a> = &'a (dyn Fn(&str) -> CommentAnalysis + Sync);

impl std::fmt::Debug for FollowUpOpener<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowUpOpener")
            .field("rules_version", &self.rules_version)
            .finish_non_exhaustive()
    }
}

/// A version of the follow-up rules.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionedRules {
    pub version: i64,
    pub rules: FollowUpRules,
    pub actor: String,
    pub create_time: Micros,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = follow_up_rules)]
struct RulesRow {
    version: i64,
    body: String,
    actor: String,
    create_time: i64,
}

impl RulesRow {
    fn parse(self) -> Result<VersionedRules> {
        let rules = serde_json::from_str(&self.body).map_err(|e| {
            StoreError::Internal(format!(
                "follow-up rules version {} are unreadable: {e}",
                self.version
            ))
        })?;
        Ok(VersionedRules {
            version: self.version,
            rules,
            actor: self.actor,
            create_time: self.create_time,
        })
    }
}

/// A follow-up task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpRecord {
    pub customer_id: String,
    pub id: String,
    pub reason: Reason,
    pub department: String,
    pub status: FollowUpStatus,
    pub detail: String,
    /// The triggering event's key, or `refresh`.
    pub source: String,
    pub rules_version: i64,
    pub assignee: Option<String>,
    pub outcome: Option<String>,
    pub dismiss_reason: Option<String>,
    pub due_time: Micros,
    pub create_time: Micros,
    pub update_time: Micros,
    pub close_time: Option<Micros>,
    pub version: i64,
}

impl FollowUpRecord {
    pub fn etag(&self) -> String {
        self.version.to_string()
    }

    pub fn is_overdue(&self, now: Micros) -> bool {
        !self.status.is_terminal() && self.due_time < now
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = follow_ups, treat_none_as_null = true, treat_none_as_default_value = false)]
pub(crate) struct FollowUpRow {
    pub(crate) customer_id: String,
    pub(crate) id: String,
    pub(crate) reason: String,
    pub(crate) department: String,
    pub(crate) status: String,
    pub(crate) detail: String,
    pub(crate) source: String,
    pub(crate) rules_version: i64,
    pub(crate) assignee: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) dismiss_reason: Option<String>,
    pub(crate) due_time: i64,
    pub(crate) create_time: i64,
    pub(crate) update_time: i64,
    pub(crate) close_time: Option<i64>,
    pub(crate) version: i64,
}

impl FollowUpRow {
    fn into_record(self) -> Result<FollowUpRecord> {
        let corrupt = |what: &str, v: &str| {
            StoreError::Internal(format!("follow-up {} has unknown {what} {v:?}", self.id))
        };
        let reason = Reason::parse(&self.reason).ok_or_else(|| corrupt("reason", &self.reason))?;
        let status =
            FollowUpStatus::parse(&self.status).ok_or_else(|| corrupt("status", &self.status))?;
        Ok(FollowUpRecord {
            customer_id: self.customer_id,
            id: self.id,
            reason,
            department: self.department,
            status,
            detail: self.detail,
            source: self.source,
            rules_version: self.rules_version,
            assignee: self.assignee,
            outcome: self.outcome,
            dismiss_reason: self.dismiss_reason,
            due_time: self.due_time,
            create_time: self.create_time,
            update_time: self.update_time,
            close_time: self.close_time,
            version: self.version,
        })
    }

    fn of(r: &FollowUpRecord) -> Self {
        Self {
            customer_id: r.customer_id.clone(),
            id: r.id.clone(),
            reason: r.reason.as_str().to_owned(),
            department: r.department.clone(),
            status: r.status.as_str().to_owned(),
            detail: r.detail.clone(),
            source: r.source.clone(),
            rules_version: r.rules_version,
            assignee: r.assignee.clone(),
            outcome: r.outcome.clone(),
            dismiss_reason: r.dismiss_reason.clone(),
            due_time: r.due_time,
            create_time: r.create_time,
            update_time: r.update_time,
            close_time: r.close_time,
            version: r.version,
        }
    }
}

/// A signal for one customer, from an event (its key) or from a refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSignal {
    pub customer_id: String,
    pub source: String,
    pub signal: Signal,
}

/// The customer a task id names: ids are `<customer_id>/<UUIDv7>`.
fn customer_of(id: &str) -> Option<&str> {
    id.rsplit_once('/').map(|(customer, _)| customer)
}

/// A new open task per signal, as rows.
pub(crate) fn new_follow_up_rows(
    signals: &[CustomerSignal],
    rules_version: i64,
    now: Micros,
) -> Vec<FollowUpRow> {
    signals
        .iter()
        .map(|s| FollowUpRow {
            customer_id: s.customer_id.clone(),
            id: format!("{}/{}", s.customer_id, uuid::Uuid::now_v7()),
            reason: s.signal.reason.as_str().to_owned(),
            department: s.signal.department.clone(),
            status: FollowUpStatus::Open.as_str().to_owned(),
            detail: s.signal.detail.clone(),
            source: s.source.clone(),
            rules_version,
            assignee: None,
            outcome: None,
            dismiss_reason: None,
            due_time: s.signal.due_time,
            create_time: now,
            update_time: now,
            close_time: None,
            version: 1,
        })
        .collect()
}

/// Tasks per INSERT: 16 bind parameters each, under SQLite's 32,766.
const FOLLOW_UP_CHUNK: usize = 1_000;

/// Inserts new tasks unless one is open for that customer and reason; returns how many
/// opened. Runs inside the caller's transaction.
pub(crate) trait OpenFollowUps {
    fn open_follow_ups(&mut self, rows: &[FollowUpRow]) -> QueryResult<usize>;
}

macro_rules! impl_open_follow_ups {
    ($conn:ty) => {
        impl OpenFollowUps for $conn {
            fn open_follow_ups(&mut self, rows: &[FollowUpRow]) -> QueryResult<usize> {
                let mut opened = 0;
                // Multi-row statements: a refresh can open tens of thousands of tasks.
                for chunk in rows.chunks(FOLLOW_UP_CHUNK) {
                    // The partial unique index turns a second open task into nothing.
                    opened += diesel::insert_into(follow_ups::table)
                        .values(chunk)
                        .on_conflict_do_nothing()
                        .execute(self)?;
                }
                Ok(opened)
            }
        }
    };
}
impl_open_follow_ups!(diesel::pg::PgConnection);
impl_open_follow_ups!(diesel::sqlite::SqliteConnection);

/// The rules to apply when none are stored: the built-in defaults, as version 1 (the
/// version the first stored rules get, so tasks name a version that reads back the same).
pub fn default_rules() -> VersionedRules {
    VersionedRules {
        version: 1,
        rules: FollowUpRules::default(),
        actor: "vitals (default rules)".into(),
        create_time: 0,
    }
}

/// Filters of ListFollowUps; a page token is only valid with the filter it was issued for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FollowUpFilter {
    /// Empty: every status.
    pub statuses: Vec<FollowUpStatus>,
    pub department: Option<String>,
    pub customer_id: Option<String>,
    pub reason: Option<Reason>,
    /// Open tasks past their due time only.
    pub overdue_only: bool,
}

fn stale_rules(expected: i64, latest: i64) -> StoreError {
    StoreError::Aborted(format!(
        "the follow-up rules were changed by someone else (expected version {expected}, latest is {latest}): read them again and retry"
    ))
}

impl Store {
    /// The rules in force: the latest stored version, or the built-in defaults.
    pub fn rules_in_force(&self) -> Result<VersionedRules> {
        let latest: Option<RulesRow> = with_conn!(self, conn => {
            follow_up_rules::table
                .order(follow_up_rules::version.desc())
                .select(RulesRow::as_select())
                .first(conn)
                .optional()?
        });
        let latest = latest.map(RulesRow::parse).transpose()?;
        Ok(latest.unwrap_or_else(default_rules))
    }

    /// One version; version 1 reads as the defaults while nothing is stored.
    pub fn get_follow_up_rules(&self, version: i64) -> Result<Option<VersionedRules>> {
        let row: Option<RulesRow> = with_conn!(self, conn => {
            follow_up_rules::table
                .find(version)
                .select(RulesRow::as_select())
                .first(conn)
                .optional()?
        });
        match row {
            Some(r) => Ok(Some(r.parse()?)),
            None if version == 1 && self.rules_in_force()?.create_time == 0 => {
                Ok(Some(default_rules()))
            }
            None => Ok(None),
        }
    }

    /// Stores `rules` as the next version, when `expected_version` is the version in
    /// force (the defaults count as version 1); otherwise `Aborted`.
    pub fn update_follow_up_rules(
        &self,
        expected_version: i64,
        rules: &FollowUpRules,
        actor: &str,
    ) -> Result<VersionedRules> {
        rules.validate().map_err(StoreError::Invalid)?;
        let body = serde_json::to_string(rules).map_err(|e| StoreError::Internal(e.to_string()))?;
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let stored: Option<i64> = follow_up_rules::table
                    .select(diesel::dsl::max(follow_up_rules::version))
                    .first(conn)?;
                // With nothing stored the defaults are version 1; the first update stores
                // them as such and itself as version 2.
                let latest = stored.unwrap_or(1);
                if expected_version != latest {
                    return Err(stale_rules(expected_version, latest));
                }
                if stored.is_none() {
                    // Keep version 1 readable: the defaults the tasks so far were opened by.
                    let defaults = default_rules();
                    let row = RulesRow {
                        version: 1,
                        body: serde_json::to_string(&defaults.rules)
                            .map_err(|e| StoreError::Internal(e.to_string()))?,
                        actor: defaults.actor,
                        create_time: now_micros(),
                    };
                    diesel::insert_into(follow_up_rules::table).values(&row).execute(conn)?;
                }
                let row = RulesRow {
                    version: latest + 1,
                    body: body.clone(),
                    actor: actor.to_owned(),
                    create_time: now_micros(),
                };
                match diesel::insert_into(follow_up_rules::table).values(&row).execute(conn) {
                    Ok(_) => row.parse(),
                    Err(e) if StoreError::is_unique_violation(&e) => {
                        Err(stale_rules(expected_version, latest + 1))
                    }
                    Err(e) => Err(e.into()),
                }
            })
        })
    }

    pub fn get_follow_up(&self, id: &str) -> Result<Option<FollowUpRecord>> {
        let Some(customer_id) = customer_of(id) else {
            return Ok(None);
        };
        let row: Option<FollowUpRow> = with_conn!(self, conn => {
            follow_ups::table
                .filter(follow_ups::customer_id.eq(customer_id))
                .filter(follow_ups::id.eq(id))
                .select(FollowUpRow::as_select())
                .first(conn)
                .optional()?
        });
        row.map(FollowUpRow::into_record).transpose()
    }

    /// Tasks matching `filter`, earliest due first (ties by id), a page at a time.
    pub fn list_follow_ups(
        &self,
        filter: &FollowUpFilter,
        page_size: usize,
        page_token: &str,
        now: Micros,
    ) -> Result<Page<FollowUpRecord>> {
        let after: Option<(i64, String)> = page::decode(page_token, filter)?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let mut statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        if filter.overdue_only {
            statuses = if statuses.is_empty() {
                OPEN_STATUSES.to_vec()
            } else {
                statuses
                    .into_iter()
                    .filter(|s| OPEN_STATUSES.contains(s))
                    .collect()
            };
            if statuses.is_empty() {
                return Ok(Page {
                    items: Vec::new(),
                    next_page_token: None,
                });
            }
        }
        let rows: Vec<FollowUpRow> = with_conn!(self, conn => {
            let mut q = follow_ups::table
                .select(FollowUpRow::as_select())
                .order((follow_ups::due_time.asc(), follow_ups::id.asc()))
                .limit(limit)
                .into_boxed();
            if !statuses.is_empty() {
                q = q.filter(follow_ups::status.eq_any(statuses.clone()));
            }
            if let Some(d) = &filter.department {
                q = q.filter(follow_ups::department.eq(d.clone()));
            }
            if let Some(c) = &filter.customer_id {
                q = q.filter(follow_ups::customer_id.eq(c.clone()));
            }
            if let Some(r) = filter.reason {
                q = q.filter(follow_ups::reason.eq(r.as_str()));
            }
            if filter.overdue_only {
                q = q.filter(follow_ups::due_time.lt(now));
            }
            if let Some((due, id)) = &after {
                q = q.filter(
                    follow_ups::due_time
                        .gt(*due)
                        .or(follow_ups::due_time.eq(*due).and(follow_ups::id.gt(id.clone()))),
                );
            }
            q.load(conn)?
        });
        let records = rows
            .into_iter()
            .map(FollowUpRow::into_record)
            .collect::<Result<Vec<_>>>()?;
        Ok(page::paginate(records, page_size, filter.clone(), |r| {
            (r.due_time, r.id.clone())
        }))
    }

    /// Applies one move to a task whose version is `expected_version`: `Aborted` when
    /// stale, `FailedPrecondition` when its status does not allow the move.
    pub fn update_follow_up(
        &self,
        id: &str,
        expected_version: i64,
        mv: &Move,
        now: Micros,
    ) -> Result<FollowUpRecord> {
        let customer_id = customer_of(id)
            .ok_or_else(|| StoreError::NotFound(format!("follow-up {id:?} not found")))?;
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let current = follow_ups::table
                    .filter(follow_ups::customer_id.eq(customer_id))
                    .filter(follow_ups::id.eq(id))
                    .select(FollowUpRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| StoreError::NotFound(format!("follow-up {id:?} not found")))?
                    .into_record()?;
                if current.version != expected_version {
                    return Err(StoreError::Aborted(format!(
                        "follow-up {id:?} was changed by someone else (etag {expected_version}, current {}): read it again and retry",
                        current.version
                    )));
                }
                let (status, assignee) = apply_move(current.status, current.assignee.as_deref(), mv)
                    .map_err(|e| match e {
                        MoveError::Invalid(v) => StoreError::Invalid(v),
                        MoveError::Illegal(why) => StoreError::FailedPrecondition(why),
                    })?;
                let mut next = FollowUpRecord {
                    status,
                    assignee,
                    update_time: now,
                    version: current.version + 1,
                    ..current.clone()
                };
                match mv {
                    Move::Resolve { outcome } => next.outcome = Some(outcome.trim().to_owned()),
                    Move::Dismiss { reason } => next.dismiss_reason = Some(reason.trim().to_owned()),
                    Move::Assign { .. } | Move::Start { .. } => {}
                }
                if status.is_terminal() {
                    next.close_time = Some(now);
                }
                let updated = diesel::update(
                    follow_ups::table
                        .filter(follow_ups::customer_id.eq(&current.customer_id))
                        .filter(follow_ups::id.eq(id))
                        .filter(follow_ups::version.eq(current.version)),
                )
                .set(&FollowUpRow::of(&next))
                .execute(conn)?;
                if updated != 1 {
                    return Err(StoreError::Aborted(format!(
                        "follow-up {id:?} was changed by someone else: read it again and retry"
                    )));
                }
                Ok(next)
            })
        })
    }
}
