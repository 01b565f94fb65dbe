//! Scoring schemes: every version kept, the highest current, changed under optimistic
//! concurrency so two editors working from one version cannot both win.

use diesel::prelude::*;
use vitals_domain::time::{Micros, now_micros};

use crate::db::{Store, WriteTransaction, with_conn};
use crate::error::{Result, StoreError};
use crate::schema::scoring_schemes;

/// One stored version of the scoring scheme; `body` is JSON the store never looks into.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = scoring_schemes)]
pub struct StoredScheme {
    pub version: i64,
    pub body: String,
    pub actor: String,
    pub create_time: Micros,
}

fn stale(expected: i64, latest: i64) -> StoreError {
    StoreError::Aborted(format!(
        "the scoring scheme was changed by someone else (expected version {expected}, latest is {latest}): read it again and retry"
    ))
}

impl Store {
    pub fn latest_scoring_scheme(&self) -> Result<Option<StoredScheme>> {
        with_conn!(self, conn => {
            Ok(scoring_schemes::table
                .order(scoring_schemes::version.desc())
                .select(StoredScheme::as_select())
                .first(conn)
                .optional()?)
        })
    }

    pub fn get_scoring_scheme(&self, version: i64) -> Result<Option<StoredScheme>> {
        with_conn!(self, conn => {
            Ok(scoring_schemes::table
                .find(version)
                .select(StoredScheme::as_select())
                .first(conn)
                .optional()?)
        })
    }

    /// Stores a new version, the latest + 1 (1 when there is none). With
    /// `expected_version` (0 meaning "none yet"), a latest version other than it is
    /// `Aborted`. The check alone cannot settle a race on PostgreSQL, where two
    /// transactions can both read the same latest version; the primary key does: the
    /// second insert of one version fails its unique check and is `Aborted` too.
    pub fn insert_scoring_scheme(
        &self,
        expected_version: Option<i64>,
        body: &str,
        actor: &str,
    ) -> Result<StoredScheme> {
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let latest: Option<i64> = scoring_schemes::table
                    .select(diesel::dsl::max(scoring_schemes::version))
                    .first(conn)?;
                let latest = latest.unwrap_or(0);
                if let Some(expected) = expected_version
                    && expected != latest
                {
                    return Err(stale(expected, latest));
                }
                let scheme = StoredScheme {
                    version: latest + 1,
                    body: body.to_owned(),
                    actor: actor.to_owned(),
                    create_time: now_micros(),
                };
                match diesel::insert_into(scoring_schemes::table)
                    .values(&scheme)
                    .execute(conn)
                {
                    Ok(_) => Ok(scheme),
                    Err(e) if StoreError::is_unique_violation(&e) => {
                        Err(stale(expected_version.unwrap_or(latest), latest + 1))
                    }
                    Err(e) => Err(e.into()),
                }
            })
        })
    }
}
