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

use crate::console;
use crate::metrics::Metrics;

pub const METRICS_PATH: &str = "/metrics";

#[derive(Debug, Clone)]
pub struct PlainHttpLayer {
    metrics: Arc<Metrics>,
}

impl PlainHttpLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for PlainHttpLayer {
    type Service = PlainHttp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PlainHttp {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlainHttp<S> {
    inner: S,
    metrics: Arc<Metrics>,
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
        if let Some(asset) = is_get
            .then(|| console::asset(request.uri().path()))
            .flatten()
        {
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
