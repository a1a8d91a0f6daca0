//! Fabric's gRPC server interceptor metrics (`common/grpcmetrics`) as a
//! tower layer around the gRPC service: per call, `requests_received`;
//! at its end, `request_duration` and `requests_completed` with the gRPC
//! status code as Go names it (`OK`, `Unavailable`, …); per message,
//! `stream_messages_received` / `_sent`, counted from the gRPC framing of
//! the request and response bodies (5-byte prefix: flag, big-endian length).
//! A call whose response ends without a status (the client went away) is
//! completed as `Canceled`, as Go's interceptor sees the context error.
//! Only the orderer's own methods are counted: grpc-go answers unknown ones
//! before any interceptor runs. Nothing is done while metrics are off.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use http_body::{Body as HttpBody, Frame};
use prometheus::core::{AtomicF64, GenericCounter};
use tonic::body::Body;
use tonic::codegen::Service;

use crate::metrics::ops::{ops, CallMetrics};

/// gRPC methods of this server that stream (all of them).
const STREAMING: &[&str] = &[
    "/orderer.AtomicBroadcast/Broadcast",
    "/orderer.AtomicBroadcast/Deliver",
];

/// Fabric's label values for a gRPC path: dots become underscores
/// (`/orderer.AtomicBroadcast/Deliver` → `orderer_AtomicBroadcast`,
/// `Deliver`); anything else is `unknown`, `unknown`.
pub fn service_method(path: &str) -> (String, String) {
    let normalized = path.replace('.', "_");
    let parts: Vec<&str> = normalized.split('/').collect();
    match parts.as_slice() {
        ["", service, method] => (service.to_string(), method.to_string()),
        _ => ("unknown".into(), "unknown".into()),
    }
}

/// Go's name of a gRPC status code (`codes.Code.String()`).
pub fn code_name(code: i32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("Code({code})"), |n| n.to_string())
}

/// Counts whole gRPC messages in a byte stream cut anywhere.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FrameCounter {
    header: [u8; 5],
    have: usize,
    payload_left: u64,
}

impl FrameCounter {
    /// Feeds `data`; returns how many messages it completed.
    pub fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut done = 0;
        while !data.is_empty() {
            if self.have < 5 {
                let take = (5 - self.have).min(data.len());
                self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
                self.have += take;
                data = &data[take..];
                if self.have < 5 {
                    break;
                }
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]);
                self.payload_left = u64::from(len);
            }
            let take = (self.payload_left.min(data.len() as u64)) as usize;
            self.payload_left -= take as u64;
            data = &data[take..];
            if self.payload_left == 0 {
                done += 1;
                self.have = 0;
            }
        }
        done
    }
}

type Counter = GenericCounter<AtomicF64>;

/// The tower layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower_layer::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics { inner }
    }
}

/// The service [`GrpcMetricsLayer`] makes.
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

/// One call's completion: observed once, when its status is known or its
/// response is dropped.
struct Completion {
    kind: &'static CallMetrics,
    service: String,
    method: String,
    start: Instant,
    done: bool,
}

impl Completion {
    fn complete(&mut self, code: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let labels = [self.service.as_str(), self.method.as_str(), code];
        crate::metrics::observe(
            &self.kind.duration,
            &self.kind.duration_name,
            &labels,
            self.start.elapsed().as_secs_f64(),
        );
        self.kind.completed.with_label_values(&labels).inc();
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.complete("Canceled");
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Service<http::Request<Body>> for GrpcMetrics<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let Some(m) = ops().filter(|_| STREAMING.contains(&req.uri().path())) else {
            return Box::pin(self.inner.call(req));
        };
        let (service, method) = service_method(req.uri().path());
        let labels = [service.as_str(), method.as_str()];
        m.stream.received.with_label_values(&labels).inc();
        let received = m.messages_received.with_label_values(&labels);
        let sent = m.messages_sent.with_label_values(&labels);
        let mut completion = Completion {
            kind: &m.stream,
            service,
            method,
            start: Instant::now(),
            done: false,
        };
        let req = req.map(|b| Body::new(Counted::new(b, received, None)));
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            if let Some(code) = grpc_status(resp.headers()) {
                completion.complete(&code_name(code)); // trailers-only response
            }
            Ok(resp.map(|b| Body::new(Counted::new(b, sent, Some(completion)))))
        })
    }
}

/// A body whose gRPC messages are counted; the response's also completes
/// the call when its trailers pass.
struct Counted {
    inner: Body,
    frames: FrameCounter,
    counter: Counter,
    completion: Option<Completion>,
}

impl Counted {
    fn new(inner: Body, counter: Counter, completion: Option<Completion>) -> Self {
        Self {
            inner,
            frames: FrameCounter::default(),
            counter,
            completion,
        }
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let n = this.frames.feed(data.chunk());
                if n > 0 {
                    this.counter.inc_by(n as f64);
                }
            } else if let Some(trailers) = frame.trailers_ref() {
                if let (Some(c), Some(code)) = (this.completion.as_mut(), grpc_status(trailers)) {
                    c.complete(&code_name(code));
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_as_fabric_writes_them() {
        assert_eq!(
            service_method("/orderer.AtomicBroadcast/Deliver"),
            ("orderer_AtomicBroadcast".into(), "Deliver".into())
        );
        assert_eq!(
            service_method("nonsense"),
            ("unknown".into(), "unknown".into())
        );
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(14), "Unavailable");
        assert_eq!(code_name(8), "ResourceExhausted");
        assert_eq!(code_name(99), "Code(99)");
    }

    #[test]
    fn messages_are_counted_across_any_cut() {
        let msg = |len: usize| {
            let mut v = vec![0u8];
            v.extend_from_slice(&(len as u32).to_be_bytes());
            v.extend(std::iter::repeat_n(7u8, len));
            v
        };
        let mut stream = Vec::new();
        for len in [0, 1, 300, 5, 70_000] {
            stream.extend(msg(len));
        }
        for cut in [1, 2, 4, 5, 6, 7, 64, 1000, stream.len()] {
            let mut c = FrameCounter::default();
            let total: u64 = stream.chunks(cut).map(|ch| c.feed(ch)).sum();
            assert_eq!(total, 5, "chunks of {cut}");
            assert!(c.have == 0 && c.payload_left == 0, "ends between messages");
        }
        let mut c = FrameCounter::default();
        assert_eq!(
            c.feed(&msg(10)[..12]),
            0,
            "a partial message is not counted"
        );
    }
}
