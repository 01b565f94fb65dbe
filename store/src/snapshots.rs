//! Evaluation snapshots as rows, and the scoring scheme in force. Computing them is the
//! application layer's (`vitals_app::refresh`), shared by the server's
//! `RefreshEvaluations` and `vitals-trainer score --store`.

use vitals_domain::evaluation::{Evaluation, ScoringScheme, VersionedScheme};

use crate::db::Store;
use crate::error::{Result, StoreError};
use crate::evaluations::EvaluationRecord;
use crate::schemes::StoredScheme;

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
            value_lost: e.value_lost,
            currency: e.currency.clone(),
            lifecycle_stage: Some(e.lifecycle.as_str().to_owned()),
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
}
