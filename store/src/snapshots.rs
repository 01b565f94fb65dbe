//! Computing and storing evaluation snapshots: the batch path shared by the server's
//! `RefreshEvaluations` and `vitals-trainer score --store`, so both store the same thing.

use std::time::Instant;

use vitals_engine::evaluation::{Evaluation, Models, ScoringScheme, VersionedScheme, evaluate};
use vitals_engine::time::{Micros, now_micros};

use crate::db::Store;
use crate::error::{Result, StoreError};
use crate::evaluations::EvaluationRecord;
use crate::followups::CustomerSignal;
use crate::schemes::StoredScheme;

/// Customers read, evaluated and written per step.
const CHUNK: usize = 2_000;

/// Where a refresh stands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RefreshProgress {
    pub customers_done: u64,
    pub customers_total: u64,
    pub evaluations_stored: u64,
    /// Follow-up tasks the refresh opened (churn risk crossings, overdue invoices).
    pub follow_ups_opened: u64,
    pub seconds: f64,
}

/// A refresh as of more than this before now is a look at the past: it opens no tasks.
const LIVE_REFRESH_SLACK: Micros = vitals_engine::time::MICROS_PER_DAY;

impl EvaluationRecord {
    /// The snapshot row of an evaluation: its sortable parts as columns, the whole as JSON.
    pub fn of(e: &Evaluation) -> Result<Self> {
        Ok(Self {
            customer_id: e.customer_id.clone(),
            external_id: e.external_id.clone(),
            as_of: e.as_of,
            computed_at: e.computed_at,
            churn_probability: e.churn_probability(),
            value: Some(e.value),
            expected_loss: e.expected_loss(),
            segment_id: e.segment.ready().and_then(|s| i32::try_from(s.id).ok()),
            tier: e.scorecard.ready().map(|s| s.tier.clone()),
            composite: e.scorecard.ready().map(|s| s.composite),
            churn_version: e.versions.churn.and_then(|v| i64::try_from(v).ok()),
            segments_version: e.versions.segments.and_then(|v| i64::try_from(v).ok()),
            scheme_version: e.versions.scheme,
            body: serde_json::to_string(e).map_err(|e| StoreError::Internal(e.to_string()))?,
        })
    }
}

/// A stored scheme's body, parsed.
pub fn parse_scheme(stored: &StoredScheme) -> Result<VersionedScheme> {
    serde_json::from_str(&stored.body)
        .map(|scheme| VersionedScheme {
            version: stored.version,
            scheme,
        })
        .map_err(|e| {
            StoreError::Internal(format!(
                "scoring scheme version {} is unreadable: {e}",
                stored.version
            ))
        })
}

impl Store {
    /// The scoring scheme in force: the latest version, after storing the built-in
    /// default as version 1 on a database that has none.
    pub fn scheme_in_force(&self) -> Result<(VersionedScheme, StoredScheme)> {
        let stored = match self.latest_scoring_scheme()? {
            Some(s) => s,
            None => {
                let body = serde_json::to_string(&ScoringScheme::default())
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                match self.insert_scoring_scheme(Some(0), &body, "vitals (default scheme)") {
                    Ok(s) => s,
                    // Another process stored version 1 first: use theirs.
                    Err(StoreError::Aborted(_)) => self
                        .latest_scoring_scheme()?
                        .ok_or_else(|| StoreError::Internal("scoring scheme vanished".into()))?,
                    Err(e) => return Err(e),
                }
            }
        };
        Ok((parse_scheme(&stored)?, stored))
    }

    /// Evaluates every customer as of `as_of` and stores the snapshots, a chunk at a time
    /// (each chunk one transaction), calling `progress` after each chunk.
    pub fn refresh_evaluations(
        &self,
        as_of: Micros,
        models: &Models,
        scheme: &VersionedScheme,
        mut progress: impl FnMut(RefreshProgress),
    ) -> Result<RefreshProgress> {
        let started = Instant::now();
        let mut state = RefreshProgress {
            customers_total: self.count_customers()?,
            ..RefreshProgress::default()
        };
        progress(state);
        let live = as_of >= now_micros().saturating_sub(LIVE_REFRESH_SLACK);
        let rules = if live {
            Some(self.rules_in_force()?)
        } else {
            None
        };
        self.scan_histories(CHUNK, |histories| {
            let now = now_micros();
            let evaluations: Vec<Evaluation> = histories
                .iter()
                .map(|h| evaluate(&h.customer, &h.events, as_of, models, scheme, now))
                .collect();
            let records = evaluations
                .iter()
                .map(EvaluationRecord::of)
                .collect::<Result<Vec<_>>>()?;
            let mut signals = Vec::new();
            if let Some(rules) = &rules {
                let ids: Vec<String> = histories.iter().map(|h| h.customer.id.clone()).collect();
                let previous = self.stored_probabilities(&ids)?;
                for (h, e) in histories.iter().zip(&evaluations) {
                    let id = &h.customer.id;
                    let risk = e.churn_probability().and_then(|p| {
                        rules
                            .rules
                            .signal_of_risk(previous.get(id).copied(), p, now)
                    });
                    let overdue = rules.rules.signal_of_overdue(&h.events, now);
                    signals.extend(
                        risk.into_iter()
                            .chain(overdue)
                            .map(|signal| CustomerSignal {
                                customer_id: id.clone(),
                                source: "refresh".into(),
                                signal,
                            }),
                    );
                }
            }
            let rules_version = rules.as_ref().map_or(0, |r| r.version);
            let (written, opened) =
                self.upsert_evaluations_opening(&records, &signals, rules_version, now)?;
            state.evaluations_stored += written as u64;
            state.follow_ups_opened += opened as u64;
            state.customers_done += histories.len() as u64;
            state.seconds = started.elapsed().as_secs_f64();
            progress(state);
            Ok(())
        })?;
        // Customers created during the run make the first count low.
        state.customers_total = state.customers_total.max(state.customers_done);
        state.seconds = started.elapsed().as_secs_f64();
        Ok(state)
    }
}
