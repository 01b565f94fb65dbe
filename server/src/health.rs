//! gRPC health that means something: every service that needs the database, and the
//! server as a whole (the empty service name), reports NOT_SERVING while the database
//! does not answer, so load balancers and Kubernetes' gRPC readiness probes send traffic
//! elsewhere. `vitals.v1.ModelService` answers from the model registry and stays
//! SERVING: probe it for liveness, so a database outage does not restart every server.
//!
//! EvaluationService needs no model to answer (a part whose model is not trained yet is
//! absent with the reason), so its health follows the database only.

use std::sync::Arc;
use std::time::Duration;

use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use vitals_proto::v1::customer_service_server::CustomerServiceServer;
use vitals_proto::v1::evaluation_service_server::EvaluationServiceServer;
use vitals_proto::v1::event_service_server::EventServiceServer;
use vitals_proto::v1::follow_up_service_server::FollowUpServiceServer;
use vitals_proto::v1::portfolio_service_server::PortfolioServiceServer;
use vitals_store::Store;

use crate::api::customers::CustomerApi;
use crate::api::evaluation::EvaluationApi;
use crate::api::events::EventApi;
use crate::api::followups::FollowUpApi;
use crate::api::portfolio::PortfolioApi;
use crate::metrics::Metrics;

/// The services that answer from the database, and "" for the server as a whole.
pub const DATABASE_SERVICES: [&str; 6] = [
    "",
    <CustomerServiceServer<CustomerApi> as NamedService>::NAME,
    <EventServiceServer<EventApi> as NamedService>::NAME,
    <EvaluationServiceServer<EvaluationApi> as NamedService>::NAME,
    <FollowUpServiceServer<FollowUpApi> as NamedService>::NAME,
    <PortfolioServiceServer<PortfolioApi> as NamedService>::NAME,
];

/// Probes the database once and sets every database service's status; returns whether
/// it answered.
pub async fn probe_once(store: &Store, health: &HealthReporter, metrics: &Metrics) -> bool {
    let probe = store.clone();
    let answered = match tokio::task::spawn_blocking(move || probe.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "database probe failed");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "database probe task failed");
            false
        }
    };
    let status = if answered {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for service in DATABASE_SERVICES {
        health.set_service_status(service, status).await;
    }
    metrics.database_up.set(i64::from(answered));
    answered
}

/// Probes the database every `interval` for the server's life, after a first probe that
/// found it `up` (or not); logs the first state and each change.
pub async fn probe_database(
    store: Store,
    health: HealthReporter,
    metrics: Arc<Metrics>,
    interval: Duration,
    mut up: bool,
) {
    let log = |up: bool| {
        if up {
            tracing::info!("database answers: serving");
        } else {
            tracing::error!("database does not answer: health is NOT_SERVING until it does");
        }
    };
    log(up);
    loop {
        tokio::time::sleep(interval).await;
        let now = probe_once(&store, &health, &metrics).await;
        if now != up {
            log(now);
            up = now;
        }
    }
}
