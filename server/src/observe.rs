//! One tower layer in front of every gRPC service that sees each call end: it records the
//! call's method, status and duration in the metrics, and answers a request over the
//! size limit with RESOURCE_EXHAUSTED, as the gRPC status-code spec asks (tonic's decoder
//! says OUT_OF_RANGE).
//!
//! A call's status travels in the response headers when it fails before any message
//! (trailers-only) and in the trailers otherwise, so the layer looks at both: the body is
//! wrapped to see its trailers, and a body dropped before them (the client went away)
//! counts as CANCELLED.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tonic::Code;

use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
}

impl ObserveLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, R> tower::Service<Request<B>> for Observe<S>
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
        let pending = Pending {
            metrics: Some(self.metrics.clone()),
            method: self.metrics.method_label(request.uri().path()).to_owned(),
            started: Instant::now(),
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            let (mut parts, body) = response.into_parts();
            let pending = match status_of(&mut parts.headers) {
                // Trailers-only: the call is over.
                Some(code) => {
                    pending.finish(code);
                    None
                }
                None => Some(pending),
            };
            Ok(Response::from_parts(
                parts,
                tonic::body::Body::new(ObservedBody {
                    inner: body,
                    pending,
                }),
            ))
        })
    }
}

/// A call not yet counted.
struct Pending {
    /// Taken when counted, so a drop after that counts nothing.
    metrics: Option<Arc<Metrics>>,
    method: String,
    started: Instant,
}

impl Pending {
    fn finish(mut self, code: Code) {
        if let Some(metrics) = self.metrics.take() {
            metrics.observe_request(&self.method, code, self.started.elapsed().as_secs_f64());
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(metrics) = self.metrics.take() {
            metrics.observe_request(
                &self.method,
                Code::Cancelled,
                self.started.elapsed().as_secs_f64(),
            );
        }
    }
}

/// Reads (and, for a message over the size limit, corrects) the status in `headers`.
fn status_of(headers: &mut HeaderMap) -> Option<Code> {
    let code = Code::from_bytes(headers.get("grpc-status")?.as_bytes());
    if code == Code::OutOfRange && is_message_too_large(headers) {
        headers.insert(
            "grpc-status",
            HeaderValue::from(Code::ResourceExhausted as i32),
        );
        return Some(Code::ResourceExhausted);
    }
    Some(code)
}

/// tonic's decoder refuses a message over `max_decoding_message_size` with OUT_OF_RANGE
/// and "Error, decoded message length too large: ..." (percent-encoded in `grpc-message`,
/// where spaces are `%20`); Vitals' own handlers never answer OUT_OF_RANGE, so nothing
/// else is rewritten.
fn is_message_too_large(headers: &HeaderMap) -> bool {
    headers.get("grpc-message").is_some_and(|m| {
        String::from_utf8_lossy(m.as_bytes())
            .replace("%20", " ")
            .contains("message length too large")
    })
}

pin_project_lite::pin_project! {
    struct ObservedBody<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
    }
}

impl<B> Body for ObservedBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(_)) | None => {}
            Some(Err(_)) => {
                if let Some(p) = this.pending.take() {
                    p.finish(Code::Internal);
                }
            }
        }
        let frame = frame.map(|f| {
            f.map(|mut f| {
                if let Some(trailers) = f.trailers_mut() {
                    let code = status_of(trailers).unwrap_or(Code::Ok);
                    if let Some(p) = this.pending.take() {
                        p.finish(code);
                    }
                }
                f
            })
        });
        if frame.is_none()
            && let Some(p) = this.pending.take()
        {
            // Ended without trailers: not a gRPC answer (a plain HTTP error).
            p.finish(Code::Unknown);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_over_the_limit_is_resource_exhausted_and_nothing_else_changes() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("11"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static(
                "Error,%20decoded%20message%20length%20too%20large:%20found%202000000%20bytes",
            ),
        );
        assert_eq!(status_of(&mut headers), Some(Code::ResourceExhausted));
        assert_eq!(headers["grpc-status"], "8");

        let mut other = HeaderMap::new();
        other.insert("grpc-status", HeaderValue::from_static("11"));
        other.insert(
            "grpc-message",
            HeaderValue::from_static("page%20out%20of%20range"),
        );
        assert_eq!(status_of(&mut other), Some(Code::OutOfRange));
        assert_eq!(other["grpc-status"], "11");

        assert_eq!(status_of(&mut HeaderMap::new()), None);
    }
}
