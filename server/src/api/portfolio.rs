//! `vitals.v1.PortfolioService`: the whole portfolio's metrics by bucket and group.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vitals_app::histories::HistoryCache;
use vitals_domain::Violations;
use vitals_domain::time::now_micros;
use vitals_domain::words::Language;
use vitals_proto::v1 as pb;
use vitals_proto::v1::portfolio_service_server::PortfolioService;
use vitals_store::Store;
use vitals_store::portfolio::{BucketMetrics, Granularity, GroupBy, HeldHistories};

use vitals_engine::evaluation::LoadedSegments;

use crate::convert::{micros, timestamp};
use crate::error::{blocking, check, invalid};
use crate::models::ModelHub;

#[derive(Debug, Clone)]
pub struct PortfolioApi {
    store: Store,
    /// For the names of segments (groups by segment are their ids in the snapshots).
    hub: Arc<ModelHub>,
    /// Purchases, answers and contacts are counted from here when it holds (nearly)
    /// every customer's history.
    histories: Arc<HistoryCache>,
}

impl PortfolioApi {
    pub fn new(store: Store, hub: Arc<ModelHub>, histories: Arc<HistoryCache>) -> Self {
        Self {
            store,
            hub,
            histories,
        }
    }
}

/// The share of customers the history cache must hold for the portfolio to count from
/// it: the histories it lacks are read one chunk of customers at a time, which beats
/// streaming the event tables only while they are few.
const HELD_SHARE: f64 = 0.9;

/// The metrics, counted from the history cache when it holds at least [`HELD_SHARE`] of
/// the customers, otherwise from the database's streams alone. Blocking.
fn metrics(
    store: &Store,
    histories: &HistoryCache,
    (start, end): (i64, i64),
    group_by: GroupBy,
    granularity: Granularity,
) -> Result<Vec<BucketMetrics>, vitals_store::StoreError> {
    let reader = store.reader();
    let held = histories.is_live()
        && histories.stats().entries as f64 >= HELD_SHARE * reader.count_customers()? as f64;
    let held: Option<&dyn HeldHistories> = if held { Some(histories) } else { None };
    reader.portfolio_metrics_held(start, end, group_by, granularity, held)
}

/// A group as a person reads it: a segment's name from the segments model in service
/// ("segment 3" when it has no profile for that id), "no segment" or "no tier" for
/// customers without one, "no region" for an empty region, the group itself otherwise.
fn group_name(
    group_by: GroupBy,
    group: &str,
    segments: Option<&LoadedSegments>,
    lang: Language,
) -> String {
    match (group_by, group) {
        (GroupBy::Segment, "none") => lang.pick("no segment", "未分群").into(),
        (GroupBy::Tier, "none") => lang.pick("no tier", "无等级").into(),
        (GroupBy::Region, "none" | "") => lang.pick("no region", "无地区").into(),
        (GroupBy::All, _) => lang.pick("all customers", "全部客户").into(),
        (GroupBy::Segment, id) => id
            .parse::<usize>()
            .ok()
            .and_then(|id| segments.and_then(|s| s.profile(id)))
            .map_or_else(
                || match lang {
                    Language::English => format!("segment {group}"),
                    Language::Chinese => format!("第 {group} 群"),
                },
                |p| p.words(lang).name,
            ),
        _ => group.to_owned(),
    }
}

fn bucket_to_proto(m: BucketMetrics, group_name: String) -> pb::MetricsBucket {
    pb::MetricsBucket {
        group_name,
        start_time: Some(timestamp(m.start)),
        end_time: Some(timestamp(m.end)),
        nps: m.nps(),
        mean_csat: m.mean_csat(),
        churn_rate: m.churn_rate(),
        retention_rate: m.retention_rate(),
        repeat_purchase_rate: m.repeat_purchase_rate(),
        complaint_rate: m.complaint_rate(),
        mean_resolution_hours: m.mean_resolution_hours(),
        negative_comment_share: m.negative_share(),
        mean_sentiment: m.mean_sentiment(),
        comments: m.comments,
        negative_comments: m.negative_comments,
        rising_topics: m
            .rising_topics
            .into_iter()
            .map(|t| pb::TopicTrend {
                topic: t.topic,
                comments: t.comments,
                previous_comments: t.previous,
                mean_sentiment: t.mean_sentiment,
            })
            .collect(),
        group: m.group,
        nps_answers: m.nps_answers,
        csat_answers: m.csat_answers,
        customers_at_start: m.customers_at_start,
        churned: m.churned,
        buyers: m.buyers,
        repeat_buyers: m.repeat_buyers,
        complaints: m.complaints,
        complaining_customers: m.complaining_customers,
        customers_on_books: m.customers_on_books,
        resolved_interactions: m.resolved_interactions,
        revenue_minor: m.revenue_minor.into_iter().collect(),
    }
}

#[tonic::async_trait]
impl PortfolioService for PortfolioApi {
    #[tracing::instrument(skip_all)]
    async fn get_portfolio_metrics(
        &self,
        request: Request<pb::GetPortfolioMetricsRequest>,
    ) -> Result<Response<pb::PortfolioMetrics>, Status> {
        let lang = super::language_of(&request);
        let r = request.into_inner();
        let mut v = Violations::new();
        let start = match &r.start_time {
            Some(t) => micros(&mut v, "start_time", t),
            None => {
                v.push("start_time", "is required");
                None
            }
        };
        let end = match &r.end_time {
            Some(t) => micros(&mut v, "end_time", t),
            None => {
                v.push("end_time", "is required");
                None
            }
        };
        let group_by = match pb::Grouping::try_from(r.group_by) {
            Ok(pb::Grouping::Unspecified) => GroupBy::All,
            Ok(pb::Grouping::Segment) => GroupBy::Segment,
            Ok(pb::Grouping::Region) => GroupBy::Region,
            Ok(pb::Grouping::Tier) => GroupBy::Tier,
            Err(_) => {
                v.push("group_by", format!("unknown Grouping value {}", r.group_by));
                GroupBy::All
            }
        };
        let granularity = match pb::Granularity::try_from(r.granularity) {
            Ok(pb::Granularity::Unspecified) => Granularity::Period,
            Ok(pb::Granularity::Week) => Granularity::Week,
            Ok(pb::Granularity::Month) => Granularity::Month,
            Err(_) => {
                v.push(
                    "granularity",
                    format!("unknown Granularity value {}", r.granularity),
                );
                Granularity::Period
            }
        };
        check(v)?;
        let (Some(start), Some(end)) = (start, end) else {
            let mut missing = Violations::new();
            for (field, value) in [("start_time", start), ("end_time", end)] {
                if value.is_none() {
                    missing.push(field, "is required");
                }
            }
            return Err(invalid(&missing));
        };
        let (store, histories) = (self.store.clone(), self.histories.clone());
        let buckets =
            blocking(move || metrics(&store, &histories, (start, end), group_by, granularity))
                .await?;
        let models = self.hub.models();
        let segments = models.segments.as_deref();
        Ok(Response::new(pb::PortfolioMetrics {
            buckets: buckets
                .into_iter()
                .map(|m| {
                    let name = group_name(group_by, &m.group, segments, lang);
                    bucket_to_proto(m, name)
                })
                .collect(),
            compute_time: Some(timestamp(now_micros())),
        }))
    }
}
