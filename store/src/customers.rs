//! Customer records: create, read, optimistic update, erasure, listing, bulk upsert.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use vitals_domain::time::Micros;
use vitals_domain::{Attributes, Customer, CustomerData, CustomerStatus, Violations};

use crate::db::{Store, WriteTransaction, with_conn};
use crate::error::{Result, StoreError};
use crate::page::{self, Page};
use crate::schema::{comment_analyses, customers, feedback, interactions, retention_actions};

/// Rows per statement and per transaction in bulk upserts: far below both backends'
/// bind-parameter limits, and small enough to keep transactions short.
const UPSERT_CHUNK: usize = 500;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = customers, treat_none_as_null = true, treat_none_as_default_value = false)]
pub(crate) struct CustomerRow {
    id: String,
    external_id: String,
    display_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    region: String,
    acquisition_channel: String,
    status: String,
    contractual: bool,
    signup_time: Option<i64>,
    churn_time: Option<i64>,
    attributes: String,
    version: i64,
    create_time: i64,
    update_time: i64,
}

impl CustomerRow {
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    fn from_domain(c: &Customer) -> Self {
        let d = &c.data;
        Self {
            id: c.id.clone(),
            external_id: d.external_id.clone(),
            display_name: d.display_name.clone(),
            email: d.email.clone(),
            phone: d.phone.clone(),
            region: d.region.clone(),
            acquisition_channel: d.acquisition_channel.clone(),
            status: d.status.as_str().to_owned(),
            contractual: d.contractual,
            signup_time: d.signup_time,
            churn_time: d.churn_time,
            // A map of strings, finite numbers and bools always serializes.
            attributes: serde_json::to_string(&d.attributes).unwrap_or_else(|_| "{}".into()),
            version: c.version,
            create_time: c.create_time,
            update_time: c.update_time,
        }
    }

    pub(crate) fn into_domain(self) -> Result<Customer> {
        let status = CustomerStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Internal(format!(
                "customer {} has unknown status {:?}",
                self.id, self.status
            ))
        })?;
        let attributes: Attributes = serde_json::from_str(&self.attributes).map_err(|e| {
            StoreError::Internal(format!("customer {} has bad attributes: {e}", self.id))
        })?;
        Ok(Customer {
            id: self.id,
            data: CustomerData {
                external_id: self.external_id,
                display_name: self.display_name,
                email: self.email,
                phone: self.phone,
                region: self.region,
                acquisition_channel: self.acquisition_channel,
                status,
                contractual: self.contractual,
                signup_time: self.signup_time,
                churn_time: self.churn_time,
                attributes,
            },
            version: self.version,
            create_time: self.create_time,
            update_time: self.update_time,
        })
    }
}

/// Filters of `list_customers`; a page token is only valid with the filters it was issued for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerFilter {
    pub status: Option<CustomerStatus>,
    pub region: Option<String>,
    /// Updated at or after.
    pub updated_after: Option<Micros>,
    /// Updated before.
    pub updated_before: Option<Micros>,
}

/// What a bulk upsert did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpsertOutcome {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: Vec<RejectedRow>,
}

impl UpsertOutcome {
    pub fn absorb(&mut self, other: UpsertOutcome) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.rejected.extend(other.rejected);
    }
}

/// A row a bulk operation refused, by its position in the caller's input.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    pub position: u64,
    pub external_id: String,
    pub field: String,
    pub reason: String,
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) fn not_found_id(id: &str) -> StoreError {
    StoreError::NotFound(format!("customer {id:?} not found"))
}

pub(crate) fn not_found_external_id(external_id: &str) -> StoreError {
    StoreError::NotFound(format!("no customer with external_id {external_id:?}"))
}

fn external_id_taken(external_id: &str) -> StoreError {
    StoreError::AlreadyExists(format!(
        "a customer with external_id {external_id:?} already exists"
    ))
}

fn stale(id: &str, expected: i64, current: i64) -> StoreError {
    StoreError::Aborted(format!(
        "customer {id:?} was changed by someone else (etag {expected:?} is stale, current is {current:?}): read it again and retry"
    ))
}

impl Store {
    /// Stores a new customer; `data` must already be validated.
    pub fn create_customer(&self, data: CustomerData, now: Micros) -> Result<Customer> {
        let customer = Customer {
            id: new_id(),
            data,
            version: 1,
            create_time: now,
            update_time: now,
        };
        let row = CustomerRow::from_domain(&customer);
        with_conn!(self, conn => {
            match diesel::insert_into(customers::table).values(&row).execute(conn) {
                Ok(_) => Ok(customer),
                Err(e) if StoreError::is_unique_violation(&e) => {
                    Err(external_id_taken(&customer.data.external_id))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    /// The external id and display name of each of `ids` that exists, by id: what a list
    /// of tasks or snapshots shows a person instead of an internal id. One query per
    /// call (chunked under the bind-parameter limits).
    pub fn names_of(&self, ids: &[&str]) -> Result<HashMap<String, CustomerName>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(1_000) {
            let rows: Vec<(String, String, Option<String>)> = with_conn!(self, conn => {
                customers::table
                    .filter(customers::id.eq_any(chunk))
                    .select((customers::id, customers::external_id, customers::display_name))
                    .load(conn)?
            });
            for (id, external_id, display_name) in rows {
                out.insert(
                    id,
                    CustomerName {
                        external_id,
                        display_name,
                    },
                );
            }
        }
        Ok(out)
    }

    pub fn get_customer(&self, id: &str) -> Result<Customer> {
        let row: Option<CustomerRow> = with_conn!(self, conn => {
            customers::table
                .find(id)
                .select(CustomerRow::as_select())
                .first(conn)
                .optional()?
        });
        row.ok_or_else(|| not_found_id(id))?.into_domain()
    }

    pub fn get_customer_by_external_id(&self, external_id: &str) -> Result<Customer> {
        let row: Option<CustomerRow> = with_conn!(self, conn => {
            customers::table
                .filter(customers::external_id.eq(external_id))
                .select(CustomerRow::as_select())
                .first(conn)
                .optional()?
        });
        row.ok_or_else(|| not_found_external_id(external_id))?
            .into_domain()
    }

    /// Updates a customer if `expected_version` is still current. `change` turns the
    /// current data into the new data (applying a field mask, validating); it runs inside
    /// the transaction, so the check and the write are one step.
    pub fn update_customer(
        &self,
        id: &str,
        expected_version: i64,
        now: Micros,
        change: impl FnOnce(&CustomerData) -> std::result::Result<CustomerData, Violations>,
    ) -> Result<Customer> {
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let current = customers::table
                    .find(id)
                    .select(CustomerRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| not_found_id(id))?
                    .into_domain()?;
                if current.data.status == CustomerStatus::Erased {
                    return Err(StoreError::FailedPrecondition(format!(
                        "customer {id:?} is erased and can no longer be changed"
                    )));
                }
                if current.version != expected_version {
                    return Err(stale(id, expected_version, current.version));
                }
                let data = change(&current.data).map_err(StoreError::Invalid)?;
                if data == current.data {
                    return Ok(current);
                }
                let updated = Customer {
                    data,
                    version: current.version + 1,
                    update_time: now,
                    ..current
                };
                let written = diesel::update(
                    customers::table
                        .filter(customers::id.eq(id))
                        .filter(customers::version.eq(expected_version)),
                )
                .set(&CustomerRow::from_domain(&updated))
                .execute(conn);
                match written {
                    Ok(1) => Ok(updated),
                    Ok(_) => Err(stale(id, expected_version, expected_version + 1)),
                    Err(e) if StoreError::is_unique_violation(&e) => {
                        Err(external_id_taken(&updated.data.external_id))
                    }
                    Err(e) => Err(e.into()),
                }
            })
        })
    }

    /// Erases a customer: PII, free-text feedback comments and retention-action notes are wiped for good in one
    /// transaction, the history stays. Erasing an erased customer changes nothing.
    pub fn erase_customer(
        &self,
        id: &str,
        expected_version: Option<i64>,
        now: Micros,
    ) -> Result<Customer> {
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let current = customers::table
                    .find(id)
                    .select(CustomerRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| not_found_id(id))?
                    .into_domain()?;
                if let Some(expected) = expected_version
                    && expected != current.version
                {
                    return Err(stale(id, expected, current.version));
                }
                if current.data.status == CustomerStatus::Erased {
                    return Ok(current);
                }
                let erased = Customer {
                    data: current.data.clone().erased(),
                    version: current.version + 1,
                    update_time: now,
                    ..current
                };
                diesel::update(customers::table.find(id))
                    .set(&CustomerRow::from_domain(&erased))
                    .execute(conn)?;
                diesel::update(feedback::table.filter(feedback::customer_id.eq(id)))
                    .set(feedback::comment.eq(None::<String>))
                    .execute(conn)?;
                diesel::update(
                    retention_actions::table.filter(retention_actions::customer_id.eq(id)),
                )
                .set(retention_actions::note.eq(None::<String>))
                .execute(conn)?;
                diesel::update(interactions::table.filter(interactions::customer_id.eq(id)))
                    .set(interactions::note.eq(None::<String>))
                    .execute(conn)?;
                // What was read from the customer's words goes with the words: their
                // sentiment and topics are theirs too.
                diesel::delete(
                    comment_analyses::table.filter(comment_analyses::customer_id.eq(id)),
                )
                .execute(conn)?;
                Ok(erased)
            })
        })
    }

    /// Lists customers by id (time-ordered UUIDv7), seeking past the page token's id.
    pub fn list_customers(
        &self,
        filter: &CustomerFilter,
        page_size: usize,
        page_token: &str,
    ) -> Result<Page<Customer>> {
        let after: Option<String> = page::decode(page_token, filter)?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let rows: Vec<CustomerRow> = with_conn!(self, conn => {
            let mut q = customers::table
                .select(CustomerRow::as_select())
                .order(customers::id.asc())
                .limit(limit)
                .into_boxed();
            if let Some(status) = filter.status {
                q = q.filter(customers::status.eq(status.as_str()));
            }
            if let Some(region) = &filter.region {
                q = q.filter(customers::region.eq(region.clone()));
            }
            if let Some(t) = filter.updated_after {
                q = q.filter(customers::update_time.ge(t));
            }
            if let Some(t) = filter.updated_before {
                q = q.filter(customers::update_time.lt(t));
            }
            if let Some(after) = &after {
                q = q.filter(customers::id.gt(after.clone()));
            }
            q.load(conn)?
        });
        let customers = rows
            .into_iter()
            .map(CustomerRow::into_domain)
            .collect::<Result<Vec<_>>>()?;
        Ok(page::paginate(customers, page_size, filter, |c| {
            c.id.clone()
        }))
    }

    /// Creates or updates customers by external id; rows must already be validated.
    /// Each chunk of rows is one transaction; an erased customer's row is rejected.
    pub fn upsert_customers(
        &self,
        rows: Vec<(u64, CustomerData)>,
        now: Micros,
    ) -> Result<UpsertOutcome> {
        let mut outcome = UpsertOutcome::default();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<_> = rows.by_ref().take(UPSERT_CHUNK).collect();
            outcome.absorb(self.upsert_chunk(chunk, now)?);
        }
        Ok(outcome)
    }

    fn upsert_chunk(&self, chunk: Vec<(u64, CustomerData)>, now: Micros) -> Result<UpsertOutcome> {
        let external_ids: Vec<String> = chunk.iter().map(|(_, d)| d.external_id.clone()).collect();
        with_conn!(self, conn => {
            conn.write_transaction(|conn| {
                let existing: Vec<CustomerRow> = customers::table
                    .filter(customers::external_id.eq_any(&external_ids))
                    .select(CustomerRow::as_select())
                    .load(conn)?;
                let mut known: HashMap<String, Customer> = HashMap::new();
                for row in existing {
                    let c = row.into_domain()?;
                    known.insert(c.data.external_id.clone(), c);
                }
                let mut outcome = UpsertOutcome::default();
                // Rows new to the database, by external id; a later row with the same
                // external id in this chunk replaces an earlier one.
                let mut fresh: Vec<Customer> = Vec::new();
                let mut fresh_index: HashMap<String, usize> = HashMap::new();
                let mut changed: HashMap<String, Customer> = HashMap::new();
                for (position, data) in chunk {
                    let ext = data.external_id.clone();
                    if let Some(&i) = fresh_index.get(&ext) {
                        if fresh[i].data != data {
                            fresh[i].data = data;
                            outcome.updated += 1;
                        } else {
                            outcome.unchanged += 1;
                        }
                        continue;
                    }
                    match known.get_mut(&ext) {
                        Some(current) if current.data.status == CustomerStatus::Erased => {
                            outcome.rejected.push(RejectedRow {
                                position,
                                external_id: ext,
                                field: "external_id".into(),
                                reason: "the customer was erased and cannot be re-imported".into(),
                            });
                        }
                        Some(current) if current.data == data => outcome.unchanged += 1,
                        Some(current) => {
                            current.data = data;
                            if !changed.contains_key(&ext) {
                                current.version += 1;
                                current.update_time = now;
                            }
                            changed.insert(ext, current.clone());
                            outcome.updated += 1;
                        }
                        None => {
                            fresh_index.insert(ext, fresh.len());
                            fresh.push(Customer {
                                id: new_id(),
                                data,
                                version: 1,
                                create_time: now,
                                update_time: now,
                            });
                            outcome.created += 1;
                        }
                    }
                }
                for c in changed.values() {
                    diesel::update(customers::table.find(&c.id))
                        .set(&CustomerRow::from_domain(c))
                        .execute(conn)?;
                }
                if !fresh.is_empty() {
                    let rows: Vec<CustomerRow> = fresh.iter().map(CustomerRow::from_domain).collect();
                    diesel::insert_into(customers::table).values(&rows).execute(conn)?;
                }
                Ok(outcome)
            })
        })
    }

    /// How many customers are stored (erased ones included).
    pub fn count_customers(&self) -> Result<u64> {
        let n: i64 = with_conn!(self, conn => customers::table.count().get_result(conn)?);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Looks up many customers at once by id and by external id.
    pub(crate) fn customers_by_keys(
        &self,
        ids: &[String],
        external_ids: &[String],
    ) -> Result<Vec<(String, String, CustomerStatus)>> {
        let mut found = Vec::new();
        with_conn!(self, conn => {
            for chunk in ids.chunks(UPSERT_CHUNK) {
                let rows: Vec<(String, String, String)> = customers::table
                    .filter(customers::id.eq_any(chunk))
                    .select((customers::id, customers::external_id, customers::status))
                    .load(conn)?;
                found.extend(rows);
            }
            for chunk in external_ids.chunks(UPSERT_CHUNK) {
                let rows: Vec<(String, String, String)> = customers::table
                    .filter(customers::external_id.eq_any(chunk))
                    .select((customers::id, customers::external_id, customers::status))
                    .load(conn)?;
                found.extend(rows);
            }
        });
        found
            .into_iter()
            .map(|(id, ext, status)| {
                let status = CustomerStatus::parse(&status).ok_or_else(|| {
                    StoreError::Internal(format!("customer {id} has unknown status {status:?}"))
                })?;
                Ok((id, ext, status))
            })
            .collect()
    }
}

/// Who a customer is, for a person reading a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerName {
    pub external_id: String,
    pub display_name: Option<String>,
}
