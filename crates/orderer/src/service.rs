//! ①⑧ The `orderer.AtomicBroadcast` gRPC service: thin adapters from tonic
//! streams to [`Broadcaster`] and [`Deliverer`].
//!
//! A message that cannot be received (not an `Envelope`, over
//! `General.MaxRecvMsgSize`) ends the inbound stream for the handler as if
//! the client had closed it: the answers to what came before are still
//! sent, then the stream ends with the gRPC status grpc-go gives Fabric
//! ([`crate::status::receive_error_status`]) instead of OK.
//!
//! Broadcast is served by [`OrdererGrpc`] with its own codec: each received
//! envelope keeps the bytes the client sent ([`WireEnvelope`]), so the block
//! can hold them as Fabric's orderer does (its re-encoding keeps fields
//! `Envelope` does not define; `fabric_common::envelope_wire`). Deliver goes
//! to the generated server.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use fabric_protos::common::Envelope;
use fabric_protos::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use fabric_protos::orderer::{BroadcastResponse, DeliverResponse};
use futures::Stream;
use futures::StreamExt;
use prost::bytes::Bytes;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic::codegen::{http, BoxFuture, Service};
use tonic::{Request, Response, Status, Streaming};

use crate::broadcast::Broadcaster;
use crate::deliver::Deliverer;
use crate::limits::{BROADCAST_WINDOW, DELIVER_BUFFER};
use crate::net::ingress::Received;

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
    fn tap<T: Send + 'static>(
        &self,
        inbound: Streaming<T>,
        rpc: &'static str,
    ) -> impl Stream<Item = Result<T, Status>> + Unpin + Send {
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

    /// Not reached through [`OrdererGrpc`] (which serves Broadcast with the
    /// bytes as received); here the envelope is encoded again.
    async fn broadcast(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        let recv_error = RecvError::default();
        let received = Received::of(&request);
        let inbound = recv_error.tap(request.into_inner(), "Broadcast").map(|r| {
            r.map(|env| WireEnvelope {
                bytes: Bytes::from(env.encode_to_vec()),
                env,
            })
        });
        Ok(self.broadcaster_response(inbound, recv_error, received))
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
        let received = Received::of(&request);
        // A request's receive budget is given back once it is decoded.
        let inbound = recv_error
            .tap(request.into_inner(), "Deliver")
            .inspect(move |_| drop(received.take()));
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

impl AtomicBroadcastService {
    /// Serves one Broadcast stream: the answers, then the receive error
    /// that ended `inbound`, if any.
    fn broadcaster_response<S>(
        &self,
        inbound: S,
        recv_error: RecvError,
        received: Received,
    ) -> Response<ResponseStream<BroadcastResponse>>
    where
        S: Stream<Item = Result<WireEnvelope, Status>> + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(BROADCAST_WINDOW);
        let broadcaster = self.broadcaster.clone();
        tokio::spawn(async move { broadcaster.handle(inbound, tx, received).await });
        let responses = ReceiverStream::new(rx).map(Ok);
        Response::new(Box::pin(responses.chain(
            futures::stream::once(async move { recv_error.trailer() }).flatten(),
        )))
    }
}

/// A received envelope: the bytes as the client sent them and their decoding.
#[derive(Debug, Clone)]
pub struct WireEnvelope {
    /// The message bytes as received.
    pub bytes: Bytes,
    /// Their decoding.
    pub env: Envelope,
}

/// Broadcast's codec: responses as prost encodes them, requests as
/// [`WireEnvelope`]s. A message that does not decode is answered as grpc-go
/// answers it (INTERNAL), as tonic's own decoder does.
#[derive(Debug, Default, Clone)]
struct WireEnvelopeCodec;

impl Codec for WireEnvelopeCodec {
    type Encode = BroadcastResponse;
    type Decode = WireEnvelope;
    type Encoder = <tonic_prost::ProstCodec<BroadcastResponse, Envelope> as Codec>::Encoder;
    type Decoder = WireEnvelopeCodec;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstCodec::<BroadcastResponse, Envelope>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        WireEnvelopeCodec
    }
}

impl Decoder for WireEnvelopeCodec {
    type Item = WireEnvelope;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<WireEnvelope>, Status> {
        use prost::bytes::Buf as _;
        let bytes = buf.copy_to_bytes(buf.remaining());
        let env = Envelope::decode(bytes.clone()).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Some(WireEnvelope { bytes, env }))
    }
}

/// The `orderer.AtomicBroadcast` service as served: Broadcast with
/// [`WireEnvelopeCodec`], everything else by the generated server.
#[derive(Clone)]
pub struct OrdererGrpc {
    service: AtomicBroadcastService,
    generated: AtomicBroadcastServer<AtomicBroadcastService>,
    limits: MessageLimits,
}

/// gRPC message size limits (`General.MaxRecvMsgSize`, `General.MaxSendMsgSize`).
#[derive(Debug, Clone, Copy)]
pub struct MessageLimits {
    /// Largest message received.
    pub max_recv: usize,
    /// Largest message sent.
    pub max_send: usize,
}

impl OrdererGrpc {
    /// Serves `service` within `limits`.
    pub fn new(service: AtomicBroadcastService, limits: MessageLimits) -> Self {
        let generated = AtomicBroadcastServer::new(service.clone())
            .max_decoding_message_size(limits.max_recv)
            .max_encoding_message_size(limits.max_send);
        Self {
            service,
            generated,
            limits,
        }
    }
}

impl tonic::server::NamedService for OrdererGrpc {
    const NAME: &'static str = "orderer.AtomicBroadcast";
}

/// Broadcast's handler for `tonic::server::Grpc::streaming`.
struct BroadcastRpc(AtomicBroadcastService);

impl tonic::server::StreamingService<WireEnvelope> for BroadcastRpc {
    type Response = BroadcastResponse;
    type ResponseStream = ResponseStream<BroadcastResponse>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<WireEnvelope>>) -> Self::Future {
        let recv_error = RecvError::default();
        let received = Received::of(&request);
        let inbound = recv_error.tap(request.into_inner(), "Broadcast");
        let response = self.0.broadcaster_response(inbound, recv_error, received);
        Box::pin(async move { Ok(response) })
    }
}

impl<B> Service<http::Request<B>> for OrdererGrpc
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != "/orderer.AtomicBroadcast/Broadcast" {
            return self.generated.call(req);
        }
        let rpc = BroadcastRpc(self.service.clone());
        let limits = self.limits;
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(WireEnvelopeCodec)
                .apply_max_message_size_config(Some(limits.max_recv), Some(limits.max_send));
            Ok(grpc.streaming(rpc, req).await)
        })
    }
}
