//! RefreshEvaluations shared between servers: a run cut into chunks of customers by id
//! range, leased one at a time by whichever server's worker asks, done once.
//!
//! A lease is taken with a conditional `UPDATE` (the chunk is not done and its lease is
//! free or has run out): PostgreSQL re-checks that condition after waiting for a
//! concurrent claimer's commit, so two workers never both get a chunk; the loser moves on
//! to the next. A server that dies holding a lease holds it only until it runs out. A chunk
//! is marked done only by its lease holder; re-evaluating a chunk whose holder died
//! midway writes the same snapshots again, and follow-ups open once per customer and
//! reason, so nothing is counted twice that matters.

use diesel::prelude::*;

use crate::db::{Store, WriteTransaction, with_conn};
use crate::error::{Result, StoreError};
use crate::schema::{customers, refresh_chunks, refresh_runs};

/// A leased chunk: customers with `after_id < id <= last_id` (None: unbounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedChunk {
    pub run_id: String,
    pub seq: i32,
    pub after_id: Option<String>,
    pub last_id: Option<String>,
    pub as_of: i64,
}

/// Where a run stands, summed over its chunks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunProgress {
    pub customers_total: u64,
    pub customers_done: u64,
    pub evaluations_stored: u64,
    pub follow_ups_opened: u64,
    pub chunks: u64,
    pub chunks_done: u64,
    pub finished: bool,
}

/// A chunk's run, number, bounds and the run's as-of time, as read for leasing.
type ChunkRow = (String, i32, Option<String>, Option<String>, i64);

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// Starts a shared refresh as of `as_of`: chunks of `chunk` customers by id, the last
    /// one open-ended (customers created meanwhile are in it). Refused while another run
    /// is unfinished, on any server.
    pub fn start_refresh_run(&self, as_of: i64, chunk: usize, now: i64) -> Result<String> {
        let limit = i64::try_from(chunk.max(1)).unwrap_or(i64::MAX);
        let run_id = uuid::Uuid::now_v7().to_string();
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let running: Option<(String, i64)> = refresh_runs::table
                    .filter(refresh_runs::finish_time.is_null())
                    .select((refresh_runs::id, refresh_runs::create_time))
                    .first(conn)
                    .optional()?;
                if let Some((id, started)) = running {
                    let age = (now - started) / 1_000_000;
                    return Err(StoreError::FailedPrecondition(format!(
                        "a refresh is already running across the servers (run {id}, started \
                         {age} s ago); wait for it to finish"
                    )));
                }
                // Boundaries: every chunk-th id, read by keyset pages of ids only.
                let mut bounds: Vec<String> = Vec::new();
                let mut after: Option<String> = None;
                let mut total = 0i64;
                loop {
                    let mut q = customers::table
                        .select(customers::id)
                        .order(customers::id.asc())
                        .limit(limit)
                        .into_boxed();
                    if let Some(after) = &after {
                        q = q.filter(customers::id.gt(after.clone()));
                    }
                    let ids: Vec<String> = q.load(conn)?;
                    let Some(last) = ids.last().cloned() else { break };
                    total += ids.len() as i64;
                    let full = ids.len() as i64 == limit;
                    after = Some(last.clone());
                    if full {
                        bounds.push(last);
                    } else {
                        break;
                    }
                }
                diesel::insert_into(refresh_runs::table)
                    .values((
                        refresh_runs::id.eq(&run_id),
                        refresh_runs::as_of.eq(as_of),
                        refresh_runs::create_time.eq(now),
                        refresh_runs::customers_total.eq(total),
                    ))
                    .execute(conn)
                    .map_err(|e| {
                        // Another server started one between the check above and here
                        // (`refresh_runs_one_running`).
                        if StoreError::is_unique_violation(&e) {
                            StoreError::FailedPrecondition(
                                "a refresh is already running across the servers (it was \
                                 started a moment ago); wait for it to finish"
                                    .into(),
                            )
                        } else {
                            e.into()
                        }
                    })?;
                // Chunk i: (bounds[i-1], bounds[i]]; the last one open above.
                let mut previous: Option<String> = None;
                let mut rows = Vec::with_capacity(bounds.len() + 1);
                for (seq, last) in bounds
                    .into_iter()
                    .map(Some)
                    .chain(std::iter::once(None))
                    .enumerate()
                {
                    rows.push((
                        refresh_chunks::run_id.eq(run_id.clone()),
                        refresh_chunks::seq.eq(i32::try_from(seq).unwrap_or(i32::MAX)),
                        refresh_chunks::after_id.eq(previous.clone()),
                        refresh_chunks::last_id.eq(last.clone()),
                    ));
                    previous = last;
                }
                for batch in rows.chunks(500) {
                    diesel::insert_into(refresh_chunks::table)
                        .values(batch)
                        .execute(conn)?;
                }
                Ok(())
            })
        })?;
        Ok(run_id)
    }

    /// Leases the first chunk of any unfinished run that is not done and not leased (or
    /// whose lease ran out) to `owner` until `lease_until`; None when there is none.
    pub fn lease_refresh_chunk(
        &self,
        owner: &str,
        lease_until: i64,
        now: i64,
    ) -> Result<Option<LeasedChunk>> {
        with_conn!(self, conn => {
            let candidates: Vec<ChunkRow> =
                refresh_chunks::table
                    .inner_join(refresh_runs::table)
                    .filter(refresh_chunks::done_time.is_null())
                    .filter(
                        refresh_chunks::lease_until
                            .is_null()
                            .or(refresh_chunks::lease_until.lt(now)),
                    )
                    .order((refresh_chunks::run_id.asc(), refresh_chunks::seq.asc()))
                    .select((
                        refresh_chunks::run_id,
                        refresh_chunks::seq,
                        refresh_chunks::after_id,
                        refresh_chunks::last_id,
                        refresh_runs::as_of,
                    ))
                    .limit(16)
                    .load(conn)?;
            for (run_id, seq, after_id, last_id, as_of) in candidates {
                // Taken only if still free when this update runs (after any concurrent
                // claimer's commit): one winner per chunk.
                let taken = diesel::update(
                    refresh_chunks::table
                        .filter(refresh_chunks::run_id.eq(&run_id))
                        .filter(refresh_chunks::seq.eq(seq))
                        .filter(refresh_chunks::done_time.is_null())
                        .filter(
                            refresh_chunks::lease_until
                                .is_null()
                                .or(refresh_chunks::lease_until.lt(now)),
                        ),
                )
                .set((
                    refresh_chunks::lease_owner.eq(owner),
                    refresh_chunks::lease_until.eq(lease_until),
                    refresh_chunks::attempts.eq(refresh_chunks::attempts + 1),
                ))
                .execute(conn)?;
                if taken == 1 {
                    return Ok(Some(LeasedChunk {
                        run_id,
                        seq,
                        after_id,
                        last_id,
                        as_of,
                    }));
                }
            }
            Ok(None)
        })
    }

    /// Marks a leased chunk done with what it did; false when `owner` no longer holds its
    /// lease (it ran out and another worker took the chunk: theirs counts).
    pub fn finish_refresh_chunk(
        &self,
        chunk: &LeasedChunk,
        owner: &str,
        done: (u64, u64, u64),
        now: i64,
    ) -> Result<bool> {
        let (customers, stored, opened) = done;
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let updated = with_conn!(self, conn => {
            diesel::update(
                refresh_chunks::table
                    .filter(refresh_chunks::run_id.eq(&chunk.run_id))
                    .filter(refresh_chunks::seq.eq(chunk.seq))
                    .filter(refresh_chunks::done_time.is_null())
                    .filter(refresh_chunks::lease_owner.eq(owner)),
            )
            .set((
                refresh_chunks::done_time.eq(now),
                refresh_chunks::customers.eq(as_i64(customers)),
                refresh_chunks::stored.eq(as_i64(stored)),
                refresh_chunks::opened.eq(as_i64(opened)),
            ))
            .execute(conn)?
        });
        Ok(updated == 1)
    }

    /// A run's progress; once every chunk is done the run is marked finished (once).
    pub fn refresh_run_progress(&self, run_id: &str, now: i64) -> Result<RunProgress> {
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let (total, finished): (i64, Option<i64>) = refresh_runs::table
                    .find(run_id)
                    .select((refresh_runs::customers_total, refresh_runs::finish_time))
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| StoreError::NotFound(format!("no refresh run {run_id}")))?;
                let chunks: Vec<(Option<i64>, i64, i64, i64)> = refresh_chunks::table
                    .filter(refresh_chunks::run_id.eq(run_id))
                    .select((
                        refresh_chunks::done_time,
                        refresh_chunks::customers,
                        refresh_chunks::stored,
                        refresh_chunks::opened,
                    ))
                    .load(conn)?;
                let mut p = RunProgress {
                    customers_total: count(total),
                    chunks: chunks.len() as u64,
                    finished: finished.is_some(),
                    ..RunProgress::default()
                };
                for (done, customers, stored, opened) in chunks {
                    if done.is_some() {
                        p.chunks_done += 1;
                        p.customers_done += count(customers);
                        p.evaluations_stored += count(stored);
                        p.follow_ups_opened += count(opened);
                    }
                }
                if !p.finished && p.chunks_done == p.chunks {
                    diesel::update(
                        refresh_runs::table
                            .find(run_id)
                            .filter(refresh_runs::finish_time.is_null()),
                    )
                    .set(refresh_runs::finish_time.eq(now))
                    .execute(conn)?;
                    p.finished = true;
                }
                // Customers created during the run make the first count low.
                p.customers_total = p.customers_total.max(p.customers_done);
                Ok(p)
            })
        })
    }
}
