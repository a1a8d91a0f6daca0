//! ①⑧ The `orderer.AtomicBroadcast` gRPC service: thin adapters from tonic
//! streams to [`Broadcaster`] and [`Deliverer`].
//!
//! A message that cannot be received (not an `Envelope`, over
//! `General.MaxRecvMsgSize`) ends the inbound stream for the handler as if
//! the client had closed it: the answers to what came before are still
//! sent, then the stream ends with the gRPC status grpc-go gives Fabric
//! ([`crate::status::receive_error_status`]) instead of OK.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use fabric_protos::common::Envelope;
use fabric_protos::orderer::atomic_broadcast_server::AtomicBroadcast;
use fabric_protos::orderer::{BroadcastResponse, DeliverResponse};
use futures::Stream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::broadcast::Broadcaster;
use crate::deliver::Deliverer;
use crate::limits::{BROADCAST_WINDOW, DELIVER_BUFFER};

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct AtomicBroadcastService {
    broadcaster: Broadcaster,
    deliverer: Deliverer,
}

impl AtomicBroadcastService {
    /// A service over the two handlers.
    pub fn new(broadcaster: Broadcaster, deliverer: Deliverer) -> Self {
        Self {
            broadcaster,
            deliverer,
        }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

static RECV_LOG: crate::net::ratelog::RateLog = crate::net::ratelog::RateLog::new();

/// The receive error that ended an inbound stream, if one did.
#[derive(Clone, Default)]
struct RecvError(Arc<Mutex<Option<Status>>>);

impl RecvError {
    /// `inbound`, ending at its first error, which is kept here.
    fn tap(
        &self,
        inbound: Streaming<Envelope>,
        rpc: &'static str,
    ) -> impl Stream<Item = Result<Envelope, Status>> + Unpin + Send {
        let slot = self.clone();
        Box::pin(inbound.scan(slot, move |slot, item| {
            futures::future::ready(match item {
                Ok(env) => Some(Ok(env)),
                Err(st) => {
                    let mapped = crate::status::receive_error_status(&st);
                    if matches!(mapped.code(), tonic::Code::Internal | tonic::Code::ResourceExhausted) {
                        if let Some(skipped) = RECV_LOG.allow() {
                            tracing::warn!(rpc, error = %st, status = ?mapped.code(), skipped, "Error reading from stream");
                        }
                    } else {
                        tracing::debug!(rpc, error = %st, "Error reading from stream");
                    }
                    *slot.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(mapped);
                    None
                }
            })
        }))
    }

    /// What the response stream ends with after the handler's last item.
    fn trailer<T: Send>(self) -> impl Stream<Item = Result<T, Status>> + Send {
        futures::stream::iter(
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .map(Err),
        )
    }
}

#[tonic::async_trait]
impl AtomicBroadcast for AtomicBroadcastService {
    type BroadcastStream = ResponseStream<BroadcastResponse>;
    type DeliverStream = ResponseStream<DeliverResponse>;

    async fn broadcast(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        let recv_error = RecvError::default();
        let inbound = recv_error.tap(request.into_inner(), "Broadcast");
        let (tx, rx) = mpsc::channel(BROADCAST_WINDOW);
        let broadcaster = self.broadcaster.clone();
        tokio::spawn(async move { broadcaster.handle(inbound, tx).await });
        let responses = ReceiverStream::new(rx).map(Ok);
        Ok(Response::new(Box::pin(responses.chain(
            futures::stream::once(async move { recv_error.trailer() }).flatten(),
        ))))
    }

    async fn deliver(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let client_cert_hash = crate::deliver::client_cert_hash(&request);
        // Set by `net::streams` (absent when the service runs without it).
        let flow = request
            .extensions()
            .get::<Arc<crate::net::streams::DeliverFlow>>()
            .cloned();
        let recv_error = RecvError::default();
        let inbound = recv_error.tap(request.into_inner(), "Deliver");
        let (tx, rx) = mpsc::channel(DELIVER_BUFFER);
        let deliverer = self.deliverer.clone();
        let handler = async move { deliverer.handle(inbound, tx, client_cert_hash).await };
        let responses = ReceiverStream::new(rx);
        match flow {
            Some(flow) => {
                tokio::spawn(crate::net::streams::scope(Arc::clone(&flow), handler));
                let guard = crate::net::streams::ResponseGuard::new(Arc::clone(&flow));
                let responses = responses.inspect(move |r| {
                    let _held_until_the_response_stream_is_dropped = &guard;
                    if let Ok(resp) = r {
                        flow.observe(resp);
                    }
                });
                Ok(Response::new(Box::pin(responses.chain(
                    futures::stream::once(async move { recv_error.trailer() }).flatten(),
                ))))
            }
            None => {
                tokio::spawn(handler);
                Ok(Response::new(Box::pin(responses.chain(
                    futures::stream::once(async move { recv_error.trailer() }).flatten(),
                ))))
            }
        }
    }
}
