//! ①⑧ The `orderer.AtomicBroadcast` gRPC service: thin adapters from tonic
//! streams to [`Broadcaster`] and [`Deliverer`].
//!
//! Broadcast is served by [`OrdererGrpc`] with its own codec: each received
//! envelope keeps the bytes the client sent ([`WireEnvelope`]), so the block
//! can hold them as Fabric's orderer does (its re-encoding keeps fields
//! `Envelope` does not define; `fabric_common::envelope_wire`). Deliver goes
//! to the generated server.

use std::pin::Pin;
use std::task::{Context, Poll};

use fabric_protos::common::Envelope;
use fabric_protos::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use fabric_protos::orderer::{BroadcastResponse, DeliverResponse};
use futures::Stream;
use prost::bytes::Bytes;
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic::codegen::{http, BoxFuture, Service};
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

impl AtomicBroadcastService {
    fn broadcaster_response<S>(&self, inbound: S) -> Response<ResponseStream<BroadcastResponse>>
    where
        S: Stream<Item = Result<WireEnvelope, Status>> + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(BROADCAST_WINDOW);
        let broadcaster = self.broadcaster.clone();
        tokio::spawn(async move { broadcaster.handle(inbound, tx).await });
        Response::new(Box::pin(ReceiverStream::new(rx).map(Ok)))
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
        let response = self.0.broadcaster_response(request.into_inner());
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
        let inbound = request.into_inner().map(|r| {
            r.map(|env| WireEnvelope {
                bytes: Bytes::from(env.encode_to_vec()),
                env,
            })
        });
        Ok(self.broadcaster_response(inbound))
    }

    async fn deliver(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let client_cert_hash = crate::deliver::client_cert_hash(&request);
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(DELIVER_BUFFER);
        let deliverer = self.deliverer.clone();
        tokio::spawn(async move { deliverer.handle(inbound, tx, client_cert_hash).await });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
