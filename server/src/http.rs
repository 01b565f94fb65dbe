//! Plain HTTP on the gRPC port: `GET /metrics` (Prometheus' text format) and the console's
//! page, script and style (`console.rs`). It sits in front of everything else because
//! tonic-web answers 400 to any HTTP/1.1 request that is not gRPC-Web, which is what a
//! Prometheus scrape or a browser opening the console is.
//!
//! The page is open like health and reflection: it holds counts and versions, no
//! customer data. Where even that must stay inside, keep the port off the public network
//! or scrape through the load balancer's internal side.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::Full;

use vitals_engine::registry::ModelRegistry;

use crate::console;
use crate::metrics::Metrics;

pub const METRICS_PATH: &str = "/metrics";

/// Training reports, `GET /reports/<kind>/<version>`: the `report.html` a version was
/// published with, read from the registry after verifying the version's files. Open like
/// the metrics: a report holds a model's validation and segment profiles, no customer.
pub const REPORTS_PREFIX: &str = "/reports/";

#[derive(Clone)]
pub struct PlainHttpLayer {
    metrics: Arc<Metrics>,
    /// The console and the training reports, on the API port; None on the metrics port.
    console: Option<Arc<dyn ModelRegistry>>,
}

impl std::fmt::Debug for PlainHttpLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainHttpLayer")
            .field("console", &self.console.is_some())
            .finish()
    }
}

impl PlainHttpLayer {
    /// `GET /metrics` only.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            console: None,
        }
    }

    /// Also the console's files and the training reports of `registry`'s versions.
    pub fn with_console(mut self, registry: Arc<dyn ModelRegistry>) -> Self {
        self.console = Some(registry);
        self
    }
}

impl<S> tower::Layer<S> for PlainHttpLayer {
    type Service = PlainHttp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PlainHttp {
            inner,
            metrics: self.metrics.clone(),
            console: self.console.clone(),
        }
    }
}

#[derive(Clone)]
pub struct PlainHttp<S> {
    inner: S,
    metrics: Arc<Metrics>,
    console: Option<Arc<dyn ModelRegistry>>,
}

impl<S> std::fmt::Debug for PlainHttp<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainHttp")
            .field("console", &self.console.is_some())
            .finish()
    }
}

/// A plain response with a body and a content type.
fn page(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<tonic::body::Body> {
    let mut response = Response::new(tonic::body::Body::new(Full::new(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// The report of `/reports/<kind>/<version>`, or why there is none.
fn report(registry: &dyn ModelRegistry, path: &str) -> Result<Bytes, (StatusCode, String)> {
    let not_found = |why: String| (StatusCode::NOT_FOUND, why);
    let (kind, version) = path
        .split_once('/')
        .ok_or_else(|| not_found("ask for /reports/<kind>/<version>".into()))?;
    let version: u64 = version
        .parse()
        .map_err(|_| not_found(format!("{version:?} is not a version number")))?;
    let (_, dir) = registry
        .verified(kind, version)
        .map_err(|e| not_found(format!("no {kind} version {version}: {e}")))?;
    std::fs::read(dir.join("report.html"))
        .map(Bytes::from)
        .map_err(|_| not_found(format!("{kind} version {version} has no report")))
}

impl<S, B, R> tower::Service<Request<B>> for PlainHttp<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: Body<Data = Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let is_get = matches!(*request.method(), Method::GET | Method::HEAD);
        if let (true, Some(registry), Some(rest)) = (
            is_get,
            self.console.clone(),
            request.uri().path().strip_prefix(REPORTS_PREFIX),
        ) {
            let rest = rest.to_owned();
            return Box::pin(async move {
                // Verifying a version hashes its files: off the async threads.
                let found = tokio::task::spawn_blocking(move || report(registry.as_ref(), &rest))
                    .await
                    .unwrap_or_else(|e| Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())));
                Ok(match found {
                    Ok(html) => page(StatusCode::OK, "text/html; charset=utf-8", html),
                    Err((status, why)) => {
                        page(status, "text/plain; charset=utf-8", Bytes::from(why + "\n"))
                    }
                })
            });
        }
        let asset = (is_get && self.console.is_some())
            .then(|| console::asset(request.uri().path()))
            .flatten();
        if let Some(asset) = asset {
            return Box::pin(async move {
                let mut response = Response::new(tonic::body::Body::new(Full::new(
                    Bytes::from_static(asset.body),
                )));
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(asset.content_type),
                );
                // The files change with the binary: revalidate rather than keep a stale one.
                headers.insert(
                    header::CACHE_CONTROL,
                    header::HeaderValue::from_static("no-cache"),
                );
                headers.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    header::HeaderValue::from_static("nosniff"),
                );
                if asset.cross_origin {
                    headers.insert(
                        header::ACCESS_CONTROL_ALLOW_ORIGIN,
                        header::HeaderValue::from_static("*"),
                    );
                }
                Ok(response)
            });
        }
        let is_page = is_get && request.uri().path() == METRICS_PATH;
        if is_page {
            let metrics = self.metrics.clone();
            return Box::pin(async move {
                // Rendering reads a few atomics and formats text: no blocking.
                let page = metrics.render();
                let mut response =
                    Response::new(tonic::body::Body::new(Full::new(Bytes::from(page))));
                *response.status_mut() = StatusCode::OK;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                Ok(response)
            });
        }
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(tonic::body::Body::new))
        })
    }
}
