//! `vitals.v1.CustomerService`.

use tonic::{Request, Response, Status, Streaming};
use vitals_app::histories::HistoryWriter;
use vitals_domain::Violations;
use vitals_domain::time::now_micros;
use vitals_domain::validate::check_customer;
use vitals_proto::v1 as pb;
use vitals_proto::v1::customer_service_server::CustomerService;
use vitals_store::{CustomerFilter, Store, page};

use crate::audit::with_record;
use crate::auth::{Caller, Role};
use crate::convert::{
    self, UPDATABLE_PATHS, apply_mask, customer_data_from_proto, customer_to_proto,
};
use crate::error::{blocking, check, check_id, invalid_field};

#[derive(Debug, Clone)]
pub struct CustomerApi {
    store: Store,
    /// Histories this server holds: a changed customer is forgotten before the call answers.
    /// Every write of a history goes through it, so this server forgets what it held.
    writer: HistoryWriter,
}

impl CustomerApi {
    pub fn new(store: Store, writer: HistoryWriter) -> Self {
        Self { store, writer }
    }
}

/// Marks PII withheld from a caller without the `pii-reader` role: the field says it
/// exists without showing it, so a CRM screen cannot become an export of contact data.
pub const MASKED: &str = "***";

/// The name a caller sees for a customer in lists and evaluations: the display name
/// (masked without the `pii-reader` role), or the external id when there is none, so a
/// row always names someone a person can look up.
pub fn shown_name(display_name: Option<&str>, external_id: &str, pii: bool) -> String {
    match display_name {
        Some(name) if !name.is_empty() => {
            if pii {
                name.to_owned()
            } else {
                MASKED.to_owned()
            }
        }
        _ => external_id.to_owned(),
    }
}

fn visible(mut c: pb::Customer, pii: bool) -> pb::Customer {
    if !pii {
        for field in [&mut c.display_name, &mut c.email, &mut c.phone] {
            if !field.is_empty() {
                *field = MASKED.to_owned();
            }
        }
    }
    c
}

/// Parses an etag as issued by `Customer::etag`.
fn parse_etag(field: &str, etag: &str) -> Result<i64, Status> {
    etag.trim_matches('"')
        .parse::<i64>()
        .map_err(|_| invalid_field(field, "is not an etag this server issued"))
}

#[tonic::async_trait]
impl CustomerService for CustomerApi {
    #[tracing::instrument(skip_all)]
    async fn create_customer(
        &self,
        request: Request<pb::CreateCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        let Some(customer) = request.into_inner().customer else {
            return Err(invalid_field("customer", "is required"));
        };
        let now = now_micros();
        let mut v = Violations::new();
        let data = customer_data_from_proto(&mut v, "customer", &customer);
        check_customer(&mut v, "customer", &data, now);
        check(v)?;
        let store = self.store.clone();
        let created = blocking(move || store.create_customer(data, now)).await?;
        Ok(with_record(
            Response::new(visible(customer_to_proto(&created), pii)),
            &created.id,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        use pb::get_customer_request::Lookup;
        let store = self.store.clone();
        let customer = match request.into_inner().lookup {
            Some(Lookup::Id(id)) => {
                check_id("id", &id)?;
                blocking(move || store.get_customer(&id)).await?
            }
            Some(Lookup::ExternalId(ext)) => {
                check_id("external_id", &ext)?;
                blocking(move || store.get_customer_by_external_id(&ext)).await?
            }
            None => return Err(invalid_field("id", "give id or external_id")),
        };
        Ok(with_record(
            Response::new(visible(customer_to_proto(&customer), pii)),
            &customer.id,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn update_customer(
        &self,
        request: Request<pb::UpdateCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        let pb::UpdateCustomerRequest {
            customer,
            update_mask,
        } = request.into_inner();
        let Some(customer) = customer else {
            return Err(invalid_field("customer", "is required"));
        };
        let mut v = Violations::new();
        vitals_domain::validate::check_id(&mut v, "customer.id", &customer.id);
        if customer.etag.is_empty() {
            v.push(
                "customer.etag",
                "is required: send the etag of the customer you read",
            );
        }
        let paths = update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.push(
                "update_mask",
                "must name at least one field (or \"*\" for all)",
            );
        }
        for p in &paths {
            if p != "*" && !UPDATABLE_PATHS.contains(&p.as_str()) {
                v.push(
                    "update_mask",
                    format!("{p:?} is not updatable; use {}", UPDATABLE_PATHS.join(", ")),
                );
            }
        }
        let patch = customer_data_from_proto(&mut v, "customer", &customer);
        check(v)?;
        let expected = parse_etag("customer.etag", &customer.etag)?;
        let now = now_micros();
        let writer = self.writer.clone();
        let id = customer.id;
        let updated = blocking(move || {
            writer.update_customer(&id, expected, now, |current| {
                let next = apply_mask(current, &patch, &paths);
                let mut v = Violations::new();
                check_customer(&mut v, "customer", &next, now);
                v.into_result().map(|()| next)
            })
        })
        .await?;
        Ok(with_record(
            Response::new(visible(customer_to_proto(&updated), pii)),
            &updated.id,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_customer(
        &self,
        request: Request<pb::DeleteCustomerRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        let pb::DeleteCustomerRequest { id, etag } = request.into_inner();
        check_id("id", &id)?;
        let expected = if etag.is_empty() {
            None
        } else {
            Some(parse_etag("etag", &etag)?)
        };
        let now = now_micros();
        let writer = self.writer.clone();
        let erased = blocking(move || writer.erase_customer(&id, expected, now)).await?;
        tracing::info!(customer_id = %erased.id, "customer erased");
        Ok(with_record(
            Response::new(visible(customer_to_proto(&erased), pii)),
            &erased.id,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn list_customers(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> Result<Response<pb::ListCustomersResponse>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        let r = request.into_inner();
        let mut v = Violations::new();
        let filter = CustomerFilter {
            status: convert::status_filter(&mut v, "status", r.status),
            region: (!r.region.is_empty()).then_some(r.region),
            updated_after: r
                .updated_after
                .and_then(|t| convert::micros(&mut v, "updated_after", &t)),
            updated_before: r
                .updated_before
                .and_then(|t| convert::micros(&mut v, "updated_before", &t)),
        };
        check(v)?;
        let size = page::page_size(r.page_size).map_err(crate::error::from_store)?;
        let store = self.store.clone();
        let token = r.page_token;
        let page = blocking(move || store.list_customers(&filter, size, &token)).await?;
        Ok(Response::new(pb::ListCustomersResponse {
            customers: page
                .items
                .iter()
                .map(|c| visible(customer_to_proto(c), pii))
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn import_customers(
        &self,
        request: Request<Streaming<pb::ImportCustomersRequest>>,
    ) -> Result<Response<pb::ImportCustomersResponse>, Status> {
        let mut stream = request.into_inner();
        let mut position: u64 = 0;
        let mut outcome = vitals_store::UpsertOutcome::default();
        while let Some(message) = stream.message().await? {
            let now = now_micros();
            let mut valid = Vec::with_capacity(message.customers.len());
            for customer in &message.customers {
                let mut v = Violations::new();
                let data = customer_data_from_proto(&mut v, "", customer);
                check_customer(&mut v, "", &data, now);
                match v.first() {
                    None => valid.push((position, data)),
                    Some(first) => outcome.rejected.push(vitals_store::RejectedRow {
                        position,
                        external_id: customer.external_id.clone(),
                        field: first.field.clone(),
                        reason: v.summary(),
                    }),
                }
                position += 1;
            }
            let writer = self.writer.clone();
            let batch = blocking(move || writer.upsert_customers(valid, now)).await?;
            outcome.absorb(batch);
        }
        outcome.rejected.sort_by_key(|r| r.position);
        Ok(Response::new(pb::ImportCustomersResponse {
            created: outcome.created as i64,
            updated: outcome.updated as i64,
            unchanged: outcome.unchanged as i64,
            rejected: outcome.rejected.len() as i64,
            rejected_rows: outcome
                .rejected
                .into_iter()
                .map(|r| pb::RejectedRow {
                    position: r.position as i64,
                    external_id: r.external_id,
                    field: r.field,
                    reason: r.reason,
                })
                .collect(),
        }))
    }
}
