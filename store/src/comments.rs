//! Comments and what their analysis found: written with the event batch that brought them
//! (`events/`), read here for a timeline's events, for `ListComments`, and for training.
//!
//! An analysis sits in `comment_analyses`, keyed like its event; the comment's words stay
//! in the event's own table (feedback comment, interaction note), so erasure wipes them in
//! one place and deletes the analyses with them.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use vitals_domain::comments::{CommentAnalysis, CommentSource, CommentTopic};
use vitals_domain::time::Micros;
use vitals_domain::{FeedbackKind, InteractionKind};

use diesel::sql_types::{Array, BigInt, Float, Integer, Nullable, Text};

use crate::db::{DbPool, Store, WriteTransaction, with_conn};
use crate::error::{Result, StoreError};
use crate::page::{self, Page};
use crate::schema::{comment_analyses, feedback, interactions};

/// One analysis as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = comment_analyses, treat_none_as_default_value = false)]
pub(crate) struct CommentAnalysisRow {
    pub(crate) customer_id: String,
    pub(crate) event_key: String,
    pub(crate) time: i64,
    pub(crate) source: String,
    pub(crate) channel: String,
    pub(crate) language: String,
    pub(crate) sentiment: f32,
    pub(crate) topic_id: Option<i32>,
    pub(crate) topic: Option<String>,
    pub(crate) model_version: i64,
}

impl CommentAnalysisRow {
    pub(crate) fn new(
        customer_id: &str,
        event_key: &str,
        time: Micros,
        source: CommentSource,
        channel: &str,
        a: &CommentAnalysis,
    ) -> Self {
        let v = AnalysisColumns::of(a);
        Self {
            customer_id: customer_id.to_owned(),
            event_key: event_key.to_owned(),
            time,
            source: source.as_str().to_owned(),
            channel: channel.to_owned(),
            language: v.language,
            sentiment: v.sentiment,
            topic_id: v.topic_id,
            topic: v.topic,
            model_version: v.model_version,
        }
    }

    fn analysis(&self) -> CommentAnalysis {
        CommentAnalysis {
            language: self.language.clone(),
            sentiment: self.sentiment,
            topic: match (self.topic_id, &self.topic) {
                (Some(id), Some(name)) => Some(CommentTopic {
                    id: u32::try_from(id).unwrap_or_default(),
                    name: name.clone(),
                }),
                _ => None,
            },
            model_version: u64::try_from(self.model_version).unwrap_or_default(),
        }
    }
}

/// The columns an analysis fills, as stored: written with the event, or replaced by a
/// re-analysis.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = comment_analyses, treat_none_as_null = true)]
struct AnalysisColumns {
    language: String,
    sentiment: f32,
    topic_id: Option<i32>,
    topic: Option<String>,
    model_version: i64,
}

impl AnalysisColumns {
    fn of(a: &CommentAnalysis) -> Self {
        Self {
            language: a.language.clone(),
            // The column's CHECK holds it to -1..1; a NaN would fail the whole batch.
            sentiment: if a.sentiment.is_nan() {
                0.0
            } else {
                a.sentiment.clamp(-1.0, 1.0)
            },
            topic_id: a
                .topic
                .as_ref()
                .map(|t| i32::try_from(t.id).unwrap_or(i32::MAX)),
            topic: a.topic.as_ref().map(|t| t.name.clone()),
            model_version: i64::try_from(a.model_version).unwrap_or(i64::MAX),
        }
    }
}

/// Which comments a listing shows; a page token is only valid with the filter it was
/// issued for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommentFilter {
    /// One customer's comments only.
    pub customer_id: Option<String>,
    /// Only comments about this topic (its name as listed, or its number).
    pub topic: Option<String>,
    /// At or below this sentiment (-1..1).
    pub sentiment_at_most: Option<f32>,
    /// At or above this sentiment.
    pub sentiment_at_least: Option<f32>,
    /// Only this channel.
    pub channel: Option<String>,
    /// Only this language tag (`en`, `zh-Hans`, `zh-Hant`, `und`).
    pub language: Option<String>,
    /// Written at or after.
    pub start_time: Option<Micros>,
    /// Written before.
    pub end_time: Option<Micros>,
}

/// A comment with its analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRecord {
    pub customer_id: String,
    pub event_key: String,
    pub time: Micros,
    pub source: CommentSource,
    pub channel: String,
    /// The words; `None` once erased.
    pub text: Option<String>,
    /// The event it came with; `None` only if the event's row was not found.
    pub came_with: Option<CameWith>,
    pub analysis: CommentAnalysis,
}

/// The event a comment came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameWith {
    /// A survey answer or review, with its score when it had one.
    Feedback(FeedbackKind, Option<i32>),
    Interaction(InteractionKind),
}

/// A comment for training a sentiment model: its words, its score's lean when it came
/// with one, and whose it is (held-out splits are by customer).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingComment {
    pub customer_id: String,
    pub text: String,
    pub feedback: Option<(FeedbackKind, Option<i32>)>,
    pub time: Micros,
}

impl Store {
    /// The analyses of some of a customer's events, by event key: the timeline's comments.
    pub fn comment_analyses_of(
        &self,
        customer_id: &str,
        event_keys: &[&str],
    ) -> Result<HashMap<String, CommentAnalysis>> {
        if event_keys.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<CommentAnalysisRow> = with_conn!(self.fresh_reader()?, conn => {
            comment_analyses::table
                .filter(comment_analyses::customer_id.eq(customer_id))
                .filter(comment_analyses::event_key.eq_any(event_keys))
                .select(CommentAnalysisRow::as_select())
                .load(conn)?
        });
        Ok(rows
            .into_iter()
            .map(|r| {
                let a = r.analysis();
                (r.event_key, a)
            })
            .collect())
    }

    /// Comments with their analyses, newest first, filtered; the words are read from the
    /// events' own tables for the page only.
    pub fn list_comments(
        &self,
        filter: &CommentFilter,
        page_size: usize,
        page_token: &str,
    ) -> Result<Page<CommentRecord>> {
        type Cursor = (i64, String, String);
        let after: Option<Cursor> = page::decode(page_token, filter)?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let topic_id: Option<i32> = filter.topic.as_deref().and_then(|t| t.parse().ok());
        let store = self.reader();
        let rows: Vec<CommentAnalysisRow> = with_conn!(store, conn => {
            use comment_analyses as c;
            let mut q = c::table
                .select(CommentAnalysisRow::as_select())
                .order((c::time.desc(), c::customer_id.desc(), c::event_key.desc()))
                .limit(limit)
                .into_boxed();
            if let Some(id) = &filter.customer_id {
                q = q.filter(c::customer_id.eq(id.clone()));
            }
            match (&filter.topic, topic_id) {
                (Some(_), Some(id)) => q = q.filter(c::topic_id.eq(id)),
                (Some(name), None) => q = q.filter(c::topic.eq(name.clone())),
                _ => {}
            }
            if let Some(s) = filter.sentiment_at_most {
                q = q.filter(c::sentiment.le(s));
            }
            if let Some(s) = filter.sentiment_at_least {
                q = q.filter(c::sentiment.ge(s));
            }
            if let Some(ch) = &filter.channel {
                q = q.filter(c::channel.eq(ch.clone()));
            }
            if let Some(l) = &filter.language {
                q = q.filter(c::language.eq(l.clone()));
            }
            if let Some(t) = filter.start_time {
                q = q.filter(c::time.ge(t));
            }
            if let Some(t) = filter.end_time {
                q = q.filter(c::time.lt(t));
            }
            if let Some((time, customer, key)) = &after {
                q = q.filter(
                    c::time.lt(*time).or(c::time.eq(*time).and(
                        c::customer_id
                            .lt(customer.clone())
                            .or(c::customer_id.eq(customer.clone()).and(c::event_key.lt(key.clone()))),
                    )),
                );
            }
            q.load(conn)?
        });
        let words = store.words_of(&rows)?;
        let mut records = Vec::with_capacity(rows.len());
        for r in rows {
            let source = CommentSource::parse(&r.source).ok_or_else(|| {
                StoreError::Internal(format!("stored comment has unknown source {:?}", r.source))
            })?;
            let said = words.get(&(r.customer_id.clone(), r.event_key.clone()));
            let analysis = r.analysis();
            records.push(CommentRecord {
                text: said.and_then(|w| w.text.clone()),
                came_with: said.map(|w| w.came_with),
                customer_id: r.customer_id,
                event_key: r.event_key,
                time: r.time,
                source,
                channel: r.channel,
                analysis,
            });
        }
        Ok(page::paginate(records, page_size, filter.clone(), |c| {
            (c.time, c.customer_id.clone(), c.event_key.clone())
        }))
    }

    /// The words and what they came with, for a page of analyses.
    fn words_of(&self, rows: &[CommentAnalysisRow]) -> Result<HashMap<(String, String), Said>> {
        let mut out = HashMap::new();
        let (from_feedback, from_interactions): (Vec<_>, Vec<_>) = rows
            .iter()
            .partition(|r| r.source == CommentSource::Feedback.as_str());
        let customers = |rows: &[&CommentAnalysisRow]| -> Vec<String> {
            let mut ids: Vec<String> = rows.iter().map(|r| r.customer_id.clone()).collect();
            ids.sort();
            ids.dedup();
            ids
        };
        let keys = |rows: &[&CommentAnalysisRow]| -> Vec<String> {
            rows.iter().map(|r| r.event_key.clone()).collect()
        };
        with_conn!(self, conn => {
            if !from_feedback.is_empty() {
                let found: Vec<AnswerRow> =
                    feedback::table
                        .filter(feedback::customer_id.eq_any(customers(&from_feedback)))
                        .filter(feedback::event_key.eq_any(keys(&from_feedback)))
                        .select((
                            feedback::customer_id,
                            feedback::event_key,
                            feedback::kind,
                            feedback::score,
                            feedback::comment,
                        ))
                        .load(conn)?;
                for (customer, key, kind, score, text) in found {
                    let kind = FeedbackKind::parse(&kind).ok_or_else(|| {
                        StoreError::Internal(format!("stored feedback has unknown kind {kind:?}"))
                    })?;
                    out.insert(
                        (customer, key),
                        Said { text, came_with: CameWith::Feedback(kind, score) },
                    );
                }
            }
            if !from_interactions.is_empty() {
                let found: Vec<(String, String, String, Option<String>)> = interactions::table
                    .filter(interactions::customer_id.eq_any(customers(&from_interactions)))
                    .filter(interactions::event_key.eq_any(keys(&from_interactions)))
                    .select((
                        interactions::customer_id,
                        interactions::event_key,
                        interactions::kind,
                        interactions::note,
                    ))
                    .load(conn)?;
                for (customer, key, kind, text) in found {
                    let kind = InteractionKind::parse(&kind).ok_or_else(|| {
                        StoreError::Internal(format!("stored interaction has unknown kind {kind:?}"))
                    })?;
                    out.insert(
                        (customer, key),
                        Said { text, came_with: CameWith::Interaction(kind) },
                    );
                }
            }
        });
        Ok(out)
    }

    /// Up to `limit` comments of the customers in `(after, last]` (either end open when
    /// `None`) that a text model other than `version` analysed, after the keyset
    /// position `from` (customer, event key), in key order, with their words: what a
    /// refresh re-analyses once a newer text model is in service. Erased comments have
    /// no analysis left and are not read. With the page comes the position to go on from
    /// when the page was full (more may follow).
    #[allow(clippy::type_complexity)]
    pub fn comments_analysed_by_another(
        &self,
        version: u64,
        (after, last): (Option<&str>, Option<&str>),
        from: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<(Vec<StaleComment>, Option<(String, String)>)> {
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<CommentAnalysisRow> = with_conn!(self, conn => {
            use comment_analyses as c;
            let mut q = c::table
                .filter(c::model_version.ne(version))
                .select(CommentAnalysisRow::as_select())
                .order((c::customer_id.asc(), c::event_key.asc()))
                .limit(limit)
                .into_boxed();
            if let Some(a) = after {
                q = q.filter(c::customer_id.gt(a.to_owned()));
            }
            if let Some(l) = last {
                q = q.filter(c::customer_id.le(l.to_owned()));
            }
            if let Some((customer, key)) = from {
                // A row comparison, so that the key's index starts the page where the last
                // one ended: with `a > x OR (a = x AND b > y)` PostgreSQL walked the index
                // from its start on every page, quadratic in the comments re-analysed.
                q = q.filter(c::customer_id.ge(customer.to_owned())).filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>("(customer_id, event_key) > (")
                        .bind::<diesel::sql_types::Text, _>(customer.to_owned())
                        .sql(", ")
                        .bind::<diesel::sql_types::Text, _>(key.to_owned())
                        .sql(")"),
                );
            }
            q.load(conn)?
        });
        let next = (rows.len() as i64 == limit)
            .then(|| {
                rows.last()
                    .map(|r| (r.customer_id.clone(), r.event_key.clone()))
            })
            .flatten();
        let words = self.words_of(&rows)?;
        let stale = rows
            .into_iter()
            .filter_map(|r| {
                let said = words.get(&(r.customer_id.clone(), r.event_key.clone()))?;
                Some(StaleComment {
                    text: said.text.clone()?,
                    customer_id: r.customer_id,
                    event_key: r.event_key,
                })
            })
            .collect();
        Ok((stale, next))
    }

    /// Replaces the analyses of existing comments (a re-analysis by a newer text model),
    /// in one transaction; an analysis erased meanwhile stays erased.
    pub fn update_comment_analyses(
        &self,
        updates: &[(String, String, CommentAnalysis)],
    ) -> Result<usize> {
        if updates.is_empty() {
            return Ok(0);
        }
        if let DbPool::Postgres(pool) = &self.pool {
            // One statement for the page: a round trip per row made re-analysing a million
            // comments take minutes.
            let columns: Vec<AnalysisColumns> = updates
                .iter()
                .map(|(_, _, a)| AnalysisColumns::of(a))
                .collect();
            let mut conn = self.checkout(pool)?;
            let changed = diesel::sql_query(
                "UPDATE comment_analyses AS a SET language = v.language, \
                 sentiment = v.sentiment, topic_id = v.topic_id, topic = v.topic, \
                 model_version = v.model_version \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::real[], $5::int4[], \
                 $6::text[], $7::int8[]) \
                 AS v(customer_id, event_key, language, sentiment, topic_id, topic, model_version) \
                 WHERE a.customer_id = v.customer_id AND a.event_key = v.event_key",
            )
            .bind::<Array<Text>, _>(updates.iter().map(|u| &u.0).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(updates.iter().map(|u| &u.1).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(columns.iter().map(|c| &c.language).collect::<Vec<_>>())
            .bind::<Array<Float>, _>(columns.iter().map(|c| c.sentiment).collect::<Vec<_>>())
            .bind::<Array<Nullable<Integer>>, _>(
                columns.iter().map(|c| c.topic_id).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                columns.iter().map(|c| c.topic.as_ref()).collect::<Vec<_>>(),
            )
            .bind::<Array<BigInt>, _>(columns.iter().map(|c| c.model_version).collect::<Vec<_>>())
            .execute(&mut conn)?;
            return Ok(changed);
        }
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let mut changed = 0;
                for (customer, key, a) in updates {
                    changed += diesel::update(
                        comment_analyses::table.find((customer.as_str(), key.as_str())),
                    )
                    .set(AnalysisColumns::of(a))
                    .execute(conn)?;
                }
                Ok(changed)
            })
        })
    }

    /// Every comment customers wrote (feedback comments and interaction notes), for
    /// training the text model, oldest first. Erased comments are gone and not read.
    /// At most `newest` of each source (answers' comments, interactions' notes), the
    /// newest, oldest first.
    pub fn training_comments(&self, newest: usize) -> Result<Vec<TrainingComment>> {
        let newest = i64::try_from(newest).unwrap_or(i64::MAX);
        let store = self.fresh_reader()?;
        let mut out = Vec::new();
        with_conn!(store, conn => {
            let answers: Vec<TrainingAnswerRow> = feedback::table
                .filter(feedback::comment.is_not_null())
                .select((
                    feedback::customer_id,
                    feedback::time,
                    feedback::kind,
                    feedback::score,
                    feedback::comment,
                ))
                .order(feedback::time.desc())
                .limit(newest)
                .load(conn)?;
            for (customer_id, time, kind, score, text) in answers.into_iter().rev() {
                let (Some(kind), Some(text)) = (FeedbackKind::parse(&kind), text) else {
                    continue;
                };
                out.push(TrainingComment { customer_id, text, feedback: Some((kind, score)), time });
            }
            let notes: Vec<(String, i64, Option<String>)> = interactions::table
                .filter(interactions::note.is_not_null())
                .select((interactions::customer_id, interactions::time, interactions::note))
                .order(interactions::time.desc())
                .limit(newest)
                .load(conn)?;
            for (customer_id, time, text) in notes.into_iter().rev() {
                if let Some(text) = text {
                    out.push(TrainingComment { customer_id, text, feedback: None, time });
                }
            }
        });
        Ok(out)
    }
}

/// (customer, event key, kind, score, comment) of a feedback row.
type AnswerRow = (String, String, String, Option<i32>, Option<String>);
/// (customer, time, kind, score, comment) of a feedback row.
type TrainingAnswerRow = (String, i64, String, Option<i32>, Option<String>);

/// A comment whose analysis an older text model made.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleComment {
    pub customer_id: String,
    pub event_key: String,
    pub text: String,
}

/// What a comment's event says besides the analysis.
struct Said {
    text: Option<String>,
    came_with: CameWith,
}
