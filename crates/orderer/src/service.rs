//! ①⑧ The `orderer.AtomicBroadcast` gRPC service: thin adapters from tonic
//! streams to [`Broadcaster`] and [`Deliverer`].

use std::pin::Pin;

use fabric_protos::common::Envelope;
use fabric_protos::orderer::atomic_broadcast_server::AtomicBroadcast;
use fabric_protos::orderer::{BroadcastResponse, DeliverResponse};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
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

#[tonic::async_trait]
impl AtomicBroadcast for AtomicBroadcastService {
    type BroadcastStream = ResponseStream<BroadcastResponse>;
    type DeliverStream = ResponseStream<DeliverResponse>;

    async fn broadcast(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(BROADCAST_WINDOW);
        let broadcaster = self.broadcaster.clone();
        tokio::spawn(async move { broadcaster.handle(inbound, tx).await });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
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
