//! `vitals.v1.FollowUpService`: follow-up tasks and their rules, retention actions,
//! campaigns with a control group, and the review of their effect.

use std::sync::Arc;

use rand::Rng;
use tonic::{Request, Response, Status};
use vitals_app::followups::RulesCache;
use vitals_app::histories::HistoryWriter;
use vitals_domain::campaign::{DEFAULT_HOLDOUT_SHARE, TargetRule, validate_holdout};
use vitals_domain::followup::Move;
use vitals_domain::time::now_micros;
use vitals_domain::validate::{check_event, check_id};
use vitals_domain::{CustomerRef, EventPayload, NewEvent, StoredEvent, Violations};
use vitals_proto::v1 as pb;
use vitals_proto::v1::follow_up_service_server::FollowUpService;
use vitals_store::{FollowUpFilter, NewCampaign, RecordMode, Store, StoreError, page};

use super::customers::shown_name;
use super::evaluation::actor_of;
use super::followups_proto::{
    campaign_to_proto, check_label, follow_up_to_proto, horizon, reason_from_proto,
    review_to_proto, rules_from_proto, rules_to_proto, status_from_proto,
};
use super::language_of;
use crate::audit::with_record;
use crate::auth::{Caller, Role};
use crate::convert::{event_to_proto, micros, retention_action_from_proto};
use crate::error::{ApiError, blocking, check, from_store, invalid_field};

#[derive(Debug, Clone)]
pub struct FollowUpApi {
    store: Store,
    /// Retention actions are events: recorded through the writer, so this server forgets
    /// the customer's history as it does for every other event.
    writer: HistoryWriter,
    rules: Arc<RulesCache>,
}

impl FollowUpApi {
    pub fn new(store: Store, writer: HistoryWriter, rules: Arc<RulesCache>) -> Self {
        Self {
            store,
            writer,
            rules,
        }
    }
}

#[tonic::async_trait]
impl FollowUpService for FollowUpApi {
    #[tracing::instrument(skip_all)]
    async fn list_follow_ups(
        &self,
        request: Request<pb::ListFollowUpsRequest>,
    ) -> Result<Response<pb::ListFollowUpsResponse>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        let r = request.into_inner();
        let mut v = Violations::new();
        let statuses = r
            .statuses
            .iter()
            .enumerate()
            .filter_map(|(i, s)| status_from_proto(&mut v, &format!("statuses[{i}]"), *s))
            .collect();
        let reason = reason_from_proto(&mut v, "reason", r.reason);
        if !r.customer_id.is_empty() {
            check_id(&mut v, "customer_id", &r.customer_id);
        }
        if !r.department.is_empty() {
            check_label(&mut v, "department", &r.department);
        }
        check(v)?;
        let size = page::page_size(r.page_size).map_err(from_store)?;
        let filter = FollowUpFilter {
            statuses,
            department: (!r.department.is_empty()).then_some(r.department),
            customer_id: (!r.customer_id.is_empty()).then_some(r.customer_id),
            reason,
            overdue_only: r.overdue_only,
        };
        let store = self.store.clone();
        let token = r.page_token;
        let now = now_micros();
        let (page, names) = blocking(move || {
            let page = store.list_follow_ups(&filter, size, &token, now)?;
            let ids: Vec<&str> = page.items.iter().map(|f| f.customer_id.as_str()).collect();
            let names = store.names_of(&ids)?;
            Ok::<_, StoreError>((page, names))
        })
        .await?;
        Ok(Response::new(pb::ListFollowUpsResponse {
            follow_ups: page
                .items
                .into_iter()
                .map(|f| follow_up_to_proto(f, now, &names, pii))
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_follow_up(
        &self,
        request: Request<pb::GetFollowUpRequest>,
    ) -> Result<Response<pb::FollowUp>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        let id = request.into_inner().id;
        crate::error::check_id("id", &id)?;
        let store = self.store.clone();
        let (found, names) = blocking(move || {
            let found = store
                .get_follow_up(&id)?
                .ok_or_else(|| StoreError::NotFound(format!("follow-up {id:?} not found")))?;
            let names = store.names_of(&[found.customer_id.as_str()])?;
            Ok::<_, StoreError>((found, names))
        })
        .await?;
        Ok(Response::new(follow_up_to_proto(
            found,
            now_micros(),
            &names,
            pii,
        )))
    }

    #[tracing::instrument(skip_all)]
    async fn update_follow_up(
        &self,
        request: Request<pb::UpdateFollowUpRequest>,
    ) -> Result<Response<pb::FollowUp>, Status> {
        use pb::update_follow_up_request::Action;
        let pii = Caller::of(&request).can(Role::PiiReader);
        let r = request.into_inner();
        crate::error::check_id("id", &r.id)?;
        let expected =
            r.etag.trim_matches('"').parse::<i64>().map_err(|_| {
                invalid_field("etag", "is required: the etag of the task as last read")
            })?;
        let mv = match r.action {
            Some(Action::Assign(a)) => Move::Assign {
                assignee: a.assignee,
            },
            Some(Action::Start(s)) => Move::Start {
                assignee: (!s.assignee.is_empty()).then_some(s.assignee),
            },
            Some(Action::Resolve(x)) => Move::Resolve { outcome: x.outcome },
            Some(Action::Dismiss(d)) => Move::Dismiss { reason: d.reason },
            None => {
                return Err(invalid_field(
                    "action",
                    "is required: one of assign, start, resolve, dismiss",
                ));
            }
        };
        let store = self.store.clone();
        let id = r.id;
        let now = now_micros();
        let (updated, names) = blocking(move || {
            let updated = store.update_follow_up(&id, expected, &mv, now)?;
            let names = store.names_of(&[updated.customer_id.as_str()])?;
            Ok::<_, StoreError>((updated, names))
        })
        .await?;
        let record = format!("follow-up {}", updated.id);
        Ok(with_record(
            Response::new(follow_up_to_proto(updated, now, &names, pii)),
            record,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn get_follow_up_rules(
        &self,
        request: Request<pb::GetFollowUpRulesRequest>,
    ) -> Result<Response<pb::FollowUpRules>, Status> {
        let version = request.into_inner().version;
        if version < 0 {
            return Err(invalid_field(
                "version",
                "must be 0 (in force) or a version",
            ));
        }
        let store = self.store.clone();
        let rules = blocking(move || {
            if version == 0 {
                store.rules_in_force()
            } else {
                store.get_follow_up_rules(version)?.ok_or_else(|| {
                    StoreError::NotFound(format!("follow-up rules version {version} do not exist"))
                })
            }
        })
        .await?;
        Ok(Response::new(rules_to_proto(&rules)))
    }

    #[tracing::instrument(skip_all)]
    async fn update_follow_up_rules(
        &self,
        request: Request<pb::UpdateFollowUpRulesRequest>,
    ) -> Result<Response<pb::FollowUpRules>, Status> {
        let actor = actor_of(&request);
        let Some(wire) = request.into_inner().rules else {
            return Err(invalid_field("rules", "is required"));
        };
        let (store, cache) = (self.store.clone(), self.rules.clone());
        let current = blocking(move || cache.in_force(&store)).await?;
        let current = &current.rules.negative_comment;
        let mut v = match rules_from_proto(&wire, current) {
            Ok(_) => Violations::new(),
            Err(v) => v,
        };
        if wire.version <= 0 {
            v.push(
                "rules.version",
                "is required: the version being replaced (GetFollowUpRules shows it)",
            );
        }
        check(v)?;
        let rules = rules_from_proto(&wire, current).map_err(ApiError::from)?;
        let (store, cache) = (self.store.clone(), self.rules.clone());
        let expected = wire.version;
        let stored = blocking(move || cache.update(&store, expected, &rules, &actor)).await?;
        tracing::info!(version = stored.version, actor = %stored.actor, "follow-up rules updated");
        let record = format!("follow-up rules v{}", stored.version);
        Ok(with_record(Response::new(rules_to_proto(&stored)), record))
    }

    #[tracing::instrument(skip_all)]
    async fn record_retention_action(
        &self,
        request: Request<pb::RecordRetentionActionRequest>,
    ) -> Result<Response<pb::RecordRetentionActionResponse>, Status> {
        use pb::record_retention_action_request::Customer as Who;
        let r = request.into_inner();
        let now = now_micros();
        let mut v = Violations::new();
        let time = match &r.time {
            Some(t) => micros(&mut v, "time", t),
            None => {
                v.push(
                    "time",
                    "is required: when the action was done (a retry must send the same time)",
                );
                None
            }
        };
        let Some(action) = r.action else {
            return Err(invalid_field(
                "action",
                "is required: kind, cost_minor, currency, ...",
            ));
        };
        let action = retention_action_from_proto(action);
        let customer = match r.customer {
            Some(Who::CustomerId(id)) => CustomerRef::Id(id),
            Some(Who::CustomerExternalId(ext)) => CustomerRef::ExternalId(ext),
            None => {
                return Err(invalid_field(
                    "customer_id",
                    "give customer_id or customer_external_id",
                ));
            }
        };
        let event = NewEvent {
            event_key: r.event_key,
            customer,
            time: time.unwrap_or(now),
            payload: EventPayload::RetentionAction(action),
        };
        // The event's own checks, with this request's field names.
        let mut checked = Violations::new();
        check_event(&mut checked, "", &event, now);
        for f in checked.0 {
            let field = f
                .field
                .trim_start_matches('.')
                .replacen("retention_action", "action", 1);
            v.push(field, f.description);
        }
        check(v)?;
        let (store, writer) = (self.store.clone(), self.writer.clone());
        let (stored, duplicate) = blocking(move || {
            let customer = match &event.customer {
                CustomerRef::Id(id) => store.get_customer(id)?,
                CustomerRef::ExternalId(ext) => store.get_customer_by_external_id(ext)?,
            };
            // A campaign's action must go to a treated member: one given to the control
            // group would spoil the comparison the review rests on.
            if let EventPayload::RetentionAction(a) = &event.payload
                && !a.campaign.is_empty()
            {
                let campaign = store.get_campaign(&a.campaign)?.ok_or_else(|| {
                    StoreError::FailedPrecondition(format!(
                        "no campaign named {:?}: create it first (CreateCampaign), or leave campaign empty",
                        a.campaign
                    ))
                })?;
                match store.campaign_arm(&campaign.id, &customer.id)? {
                    Some(false) => {}
                    Some(true) => {
                        return Err(StoreError::FailedPrecondition(format!(
                            "customer {:?} is in the control group of campaign {:?}: leave them untreated, or record the action without the campaign",
                            customer.id, a.campaign
                        )));
                    }
                    None => {
                        return Err(StoreError::FailedPrecondition(format!(
                            "customer {:?} was not drawn into campaign {:?}: record the action without the campaign",
                            customer.id, a.campaign
                        )));
                    }
                }
            }
            let event = NewEvent {
                customer: CustomerRef::Id(customer.id.clone()),
                ..event
            };
            let stored = StoredEvent {
                customer_id: customer.id,
                event_key: event.event_key.clone(),
                time: event.time,
                record_time: now,
                payload: event.payload.clone(),
            };
            let outcome = writer.record_events(vec![(0, event)], RecordMode::Live, None, now)?;
            if let Some(rejected) = outcome.rejected.into_iter().next() {
                return Err(if rejected.field == "event_key" {
                    StoreError::AlreadyExists(rejected.reason)
                } else {
                    StoreError::FailedPrecondition(rejected.reason)
                });
            }
            Ok((stored, outcome.duplicates > 0))
        })
        .await?;
        let record = stored.customer_id.clone();
        Ok(with_record(
            Response::new(pb::RecordRetentionActionResponse {
                event: Some(event_to_proto(stored)),
                duplicate,
            }),
            record,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn create_campaign(
        &self,
        request: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let actor = actor_of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        check_label(&mut v, "name", &r.name);
        check_label(&mut v, "action_kind", &r.action_kind);
        let target = r.target.unwrap_or_default();
        let target = TargetRule {
            risk_bands: target.risk_bands,
            segment_ids: target.segment_ids,
            tiers: target.tiers,
            min_churn_probability: target.min_churn_probability,
        };
        if let Err(more) = target.validate() {
            for f in more.0 {
                v.push(format!("target.{}", f.field), f.description);
            }
        }
        let holdout_share = r.holdout_share.unwrap_or(DEFAULT_HOLDOUT_SHARE);
        if let Err(more) = validate_holdout(holdout_share) {
            v.0.extend(more.0);
        }
        let horizon_days = horizon(&mut v, "horizon_days", r.horizon_days);
        check(v)?;
        let new = NewCampaign {
            name: r.name.trim().to_owned(),
            action_kind: r.action_kind.trim().to_owned(),
            target,
            holdout_share,
            seed: r.seed.unwrap_or_else(|| rand::rng().random()),
            horizon_days,
        };
        let store = self.store.clone();
        let created = blocking(move || store.create_campaign(&new, &actor, now_micros())).await?;
        tracing::info!(
            campaign = %created.name,
            treated = created.treated_count,
            control = created.control_count,
            "campaign drawn"
        );
        let record = format!("campaign {}", created.name);
        Ok(with_record(
            Response::new(campaign_to_proto(created)),
            record,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn get_campaign(
        &self,
        request: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let name = request.into_inner().name;
        let mut v = Violations::new();
        check_label(&mut v, "name", &name);
        check(v)?;
        let store = self.store.clone();
        let found = blocking(move || {
            store
                .get_campaign(&name)?
                .ok_or_else(|| StoreError::NotFound(format!("no campaign named {name:?}")))
        })
        .await?;
        Ok(Response::new(campaign_to_proto(found)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_campaigns(
        &self,
        request: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        let r = request.into_inner();
        let size = page::page_size(r.page_size).map_err(from_store)?;
        let store = self.store.clone();
        let token = r.page_token;
        let page = blocking(move || store.list_campaigns(size, &token)).await?;
        Ok(Response::new(pb::ListCampaignsResponse {
            campaigns: page.items.into_iter().map(campaign_to_proto).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_campaign_members(
        &self,
        request: Request<pb::ListCampaignMembersRequest>,
    ) -> Result<Response<pb::ListCampaignMembersResponse>, Status> {
        let pii = Caller::of(&request).can(Role::PiiReader);
        let r = request.into_inner();
        let mut v = Violations::new();
        check_label(&mut v, "campaign", &r.campaign);
        let control = match pb::CampaignArm::try_from(r.arm) {
            Ok(pb::CampaignArm::Unspecified) => None,
            Ok(pb::CampaignArm::Treated) => Some(false),
            Ok(pb::CampaignArm::Control) => Some(true),
            Err(_) => {
                v.push("arm", format!("unknown CampaignArm value {}", r.arm));
                None
            }
        };
        check(v)?;
        let size = page::page_size(r.page_size).map_err(from_store)?;
        let store = self.store.clone();
        let (name, token) = (r.campaign, r.page_token);
        let (page, names) = blocking(move || {
            let campaign = store
                .get_campaign(&name)?
                .ok_or_else(|| StoreError::NotFound(format!("no campaign named {name:?}")))?;
            let page = store.list_campaign_members(&campaign.id, control, size, &token)?;
            let ids: Vec<&str> = page.items.iter().map(|m| m.customer_id.as_str()).collect();
            let names = store.names_of(&ids)?;
            Ok::<_, StoreError>((page, names))
        })
        .await?;
        Ok(Response::new(pb::ListCampaignMembersResponse {
            members: page
                .items
                .into_iter()
                .map(|m| pb::CampaignMember {
                    external_id: names
                        .get(&m.customer_id)
                        .map(|n| n.external_id.clone())
                        .unwrap_or_default(),
                    display_name: match names.get(&m.customer_id) {
                        Some(n) => shown_name(n.display_name.as_deref(), &n.external_id, pii),
                        None => m.customer_id.clone(),
                    },
                    customer_id: m.customer_id,
                    arm: if m.control {
                        pb::CampaignArm::Control
                    } else {
                        pb::CampaignArm::Treated
                    } as i32,
                    churn_probability: m.churn_probability,
                })
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn review_campaign(
        &self,
        request: Request<pb::ReviewCampaignRequest>,
    ) -> Result<Response<pb::CampaignReview>, Status> {
        use pb::review_campaign_request::Subject;
        let lang = language_of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let now = now_micros();
        let as_of = r
            .as_of
            .as_ref()
            .and_then(|t| micros(&mut v, "as_of", t))
            .unwrap_or(now);
        let store = self.store.clone();
        let review = match r.subject {
            Some(Subject::Campaign(name)) => {
                check_label(&mut v, "campaign", &name);
                check(v)?;
                blocking(move || store.review_campaign(&name, as_of)).await?
            }
            Some(Subject::Actions(a)) => {
                let start = a
                    .start_time
                    .as_ref()
                    .and_then(|t| micros(&mut v, "actions.start_time", t));
                let end = a
                    .end_time
                    .as_ref()
                    .and_then(|t| micros(&mut v, "actions.end_time", t));
                let horizon_days = horizon(&mut v, "actions.horizon_days", a.horizon_days);
                if a.start_time.is_none() {
                    v.push("actions.start_time", "is required");
                }
                if a.end_time.is_none() {
                    v.push("actions.end_time", "is required");
                }
                if let (Some(s), Some(e)) = (start, end)
                    && e <= s
                {
                    v.push("actions.end_time", "must be after start_time");
                }
                if !a.kind.is_empty() {
                    check_label(&mut v, "actions.kind", &a.kind);
                }
                check(v)?;
                let (start, end) = (start.unwrap_or(0), end.unwrap_or(now));
                blocking(move || {
                    store.review_uncampaigned(&a.kind, start, end, horizon_days, as_of)
                })
                .await?
            }
            None => {
                return Err(invalid_field(
                    "campaign",
                    "give a campaign name, or actions to review actions recorded without one",
                ));
            }
        };
        Ok(Response::new(review_to_proto(review, lang)))
    }
}
