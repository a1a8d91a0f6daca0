//! ① client → Broadcast. One `BroadcastResponse` per envelope, in order;
//! the stream ends after the first non-SUCCESS status, as in Fabric
//! (`orderer/common/broadcast/broadcast.go`).
//!
//! Envelopes of one stream are pipelined: each is validated and queued on
//! its chain in arrival order, and the responses are sent in that same
//! order as the envelopes become durable, with at most
//! [`BROADCAST_WINDOW`](crate::limits::BROADCAST_WINDOW) in flight.

use std::sync::Arc;

use fabric_common::envelope::{parse_envelope, EnvelopeError};
use fabric_common::envelope_wire::EnvelopeWire;
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{Envelope, Status};
use fabric_protos::orderer::BroadcastResponse;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::channels::{ChannelBundle, ChannelSupport, Registrar};
use crate::configupdate::{self, ConfigUpdateError};
use crate::consensus::ChainError;
use crate::limits::{BROADCAST_TURN, BROADCAST_WINDOW};
use crate::msgprocessor::{MsgProcessor, ProcessError};
use crate::net::ingress::{Held, Received};
use crate::policy::{self, FilterError, MsgClass};
use crate::service::WireEnvelope;
use crate::status::broadcast_status;

/// Why an envelope was refused.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    /// Payload, header or channel header does not decode.
    #[error("could not determine channel ID: {0}")]
    Header(#[from] EnvelopeError),
    /// No such channel.
    #[error("channel {0} does not exist")]
    ChannelNotFound(String),
    /// A CONFIG_UPDATE for an unknown channel, without a system channel.
    #[error(
        "channel creation request not allowed because the orderer system channel is not defined"
    )]
    NoSystemChannel,
    /// CONFIG or ORDERER_TRANSACTION sent by a client.
    #[error("message is of type that cannot be processed directly: {0}")]
    NotDirect(i32),
    /// A channel creation request that cannot be applied.
    #[error("error validating channel creation transaction for new channel: {0}")]
    ChannelCreation(String),
    /// The channel is in maintenance mode.
    #[error("{0}")]
    Maintenance(String),
    /// A filter rule refused it.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The channel's message processor refused it.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The chain did not take it.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// What Broadcast needs: the channels (each with its policies) and whether
/// the identity-expiry rule is on.
#[derive(Debug, Clone)]
pub struct Broadcaster {
    registrar: Arc<Registrar>,
    expiration_checks: bool,
    signer: Arc<LocalSigner>,
}

enum Slot {
    /// Validated and queued; its receive budget is held until it is answered.
    Pending(oneshot::Receiver<Result<(), ChainError>>, Option<Held>),
    Done(BroadcastResponse),
}

fn response(err: &BroadcastError) -> BroadcastResponse {
    BroadcastResponse {
        status: broadcast_status(err) as i32,
        info: err.to_string(),
    }
}

impl Broadcaster {
    /// A broadcaster over `registrar`; `expiration_checks` is false when
    /// `General.Authentication.NoExpirationChecks` is set.
    pub fn new(
        registrar: Arc<Registrar>,
        expiration_checks: bool,
        signer: Arc<LocalSigner>,
    ) -> Self {
        Self {
            registrar,
            expiration_checks,
            signer,
        }
    }

    fn processor<'a>(&'a self, channel_id: &'a str, bundle: &'a ChannelBundle) -> MsgProcessor<'a> {
        MsgProcessor::new(channel_id, bundle, self.expiration_checks, &self.signer)
    }

    /// Validates one envelope and queues it on its chain; returns the
    /// receiver that resolves when it is durable.
    pub async fn process(
        &self,
        wire: WireEnvelope,
    ) -> Result<oneshot::Receiver<Result<(), ChainError>>, BroadcastError> {
        let env = &wire.env;
        let parsed = parse_envelope(env)?;
        let channel_id = &parsed.channel_header.channel_id;
        let class = policy::classify(parsed.channel_header.r#type);
        let Some(support) = self.registrar.get(channel_id) else {
            return match (class, self.registrar.system_channel()) {
                (MsgClass::ConfigUpdate, None) => Err(BroadcastError::NoSystemChannel),
                (MsgClass::ConfigUpdate, Some(sys)) => self.create_channel(env, &sys).await,
                _ => Err(BroadcastError::ChannelNotFound(channel_id.clone())),
            };
        };
        match class {
            MsgClass::Config => {
                return Err(BroadcastError::NotDirect(parsed.channel_header.r#type))
            }
            MsgClass::ConfigUpdate => return self.config_update(env, &parsed, &support).await,
            MsgClass::Normal => {}
        }
        let bundle = support.bundle();
        let seq = self
            .processor(&support.channel_id, &bundle)
            .process_normal(env, &parsed)?;
        drop(bundle);
        crate::metrics::broadcast_begin_enqueue();
        support.chain.wait_ready().await?;
        let size = policy::message_size(env);
        // The bytes Fabric's orderer would order: the received ones, unless
        // they are not in the form Go's re-encoding writes.
        let bytes = match EnvelopeWire::parse(&wire.bytes) {
            Ok(w) => w.go_marshal().into_owned(),
            Err(_) => prost::Message::encode_to_vec(env),
        };
        Ok(support.chain.submit(bytes, size, seq).await?)
    }

    /// A CONFIG_UPDATE on an existing channel (Fabric `ProcessConfigUpdateMsg`):
    /// filters, propose the update, wrap it in a CONFIG envelope signed by
    /// this orderer, filter that, and order it as a block of its own.
    async fn config_update(
        &self,
        env: &Envelope,
        parsed: &fabric_common::envelope::ParsedEnvelope,
        support: &ChannelSupport,
    ) -> Result<oneshot::Receiver<Result<(), ChainError>>, BroadcastError> {
        let bundle = support.bundle();
        let (tx, seq) = self
            .processor(&support.channel_id, &bundle)
            .process_config_update(env, parsed)?;
        drop(bundle);
        crate::metrics::broadcast_begin_enqueue();
        support.chain.wait_ready().await?;
        Ok(support
            .chain
            .submit_config(prost::Message::encode_to_vec(&tx), seq)
            .await?)
    }

    /// A CONFIG_UPDATE for an unknown channel: channel creation through the
    /// system channel (Fabric `SystemChannel.ProcessConfigUpdateMsg`).
    async fn create_channel(
        &self,
        env: &Envelope,
        system_channel_id: &str,
    ) -> Result<oneshot::Receiver<Result<(), ChainError>>, BroadcastError> {
        let sys = self
            .registrar
            .get(system_channel_id)
            .ok_or_else(|| BroadcastError::ChannelNotFound(system_channel_id.to_string()))?;
        let bundle = sys.bundle();
        let count = self.registrar.channel_ids().len();
        let (new_id, new_config) =
            configupdate::new_channel_config(&bundle.config.config, env, count).map_err(
                |e| match e {
                    ConfigUpdateError::MaintenanceMode(m) => BroadcastError::Maintenance(m),
                    other => BroadcastError::ChannelCreation(other.to_string()),
                },
            )?;
        let (_inner, outer) = configupdate::channel_creation_txs(
            system_channel_id,
            &new_id,
            new_config,
            env.clone(),
            &self.signer,
        );
        let outer_parsed = parse_envelope(&outer)?;
        let max = bundle.config.batch_size.absolute_max_bytes;
        policy::apply_filters(
            &outer,
            &outer_parsed,
            max,
            self.expiration_checks,
            &bundle.policies,
        )?;
        crate::metrics::broadcast_begin_enqueue();
        sys.chain.wait_ready().await?;
        Ok(sys
            .chain
            .submit_config(prost::Message::encode_to_vec(&outer), bundle.sequence())
            .await?)
    }

    /// Serves one Broadcast stream: reads envelopes from `inbound` and
    /// writes one response per envelope to `out`, in order. Each
    /// envelope's receive budget (`received`, in the same order) is held
    /// until its response is sent.
    pub async fn handle<S>(
        &self,
        mut inbound: S,
        out: mpsc::Sender<BroadcastResponse>,
        received: Received,
    ) where
        S: futures::Stream<Item = Result<WireEnvelope, tonic::Status>> + Unpin + Send,
    {
        use futures::StreamExt;
        let (slot_tx, mut slot_rx) = mpsc::channel::<Slot>(BROADCAST_WINDOW);
        let this = self.clone();
        let reader = async move {
            let mut turn = std::time::Instant::now();
            while let Some(item) = inbound.next().await {
                let env = match item {
                    Ok(env) => env,
                    Err(status) => {
                        debug!(%status, "broadcast stream receive error");
                        break;
                    }
                };
                let held = received.take();
                let tracker = crate::metrics::BroadcastTracker::begin(&env.env);
                match tracker.scope(this.process(env)).await {
                    Ok(rx) => {
                        tracker.record(Status::Success);
                        if slot_tx.send(Slot::Pending(rx, held)).await.is_err() {
                            break;
                        }
                    }
                    Err(err) => {
                        tracker.record(broadcast_status(&err));
                        warn!(error = %err, "rejecting broadcast");
                        let _ = slot_tx.send(Slot::Done(response(&err))).await;
                        break;
                    }
                }
                // While a Deliver stream has a block to send, at most
                // BROADCAST_TURN of validation (signature checks, ~50–100 µs
                // each) per turn: with envelopes buffered, this loop would
                // otherwise run for tokio's whole budget (dozens of envelopes,
                // several ms) before the Deliver task gets the worker; under
                // load, followers fell seconds behind the ledger. Yielding
                // costs batching (~10 µs/tx when done all the time), so only
                // then.
                if crate::deliver::streams_sending() > 0 && turn.elapsed() >= BROADCAST_TURN {
                    tokio::task::yield_now().await;
                    turn = std::time::Instant::now();
                }
            }
        };
        let writer = async move {
            while let Some(slot) = slot_rx.recv().await {
                let resp = match slot {
                    Slot::Done(r) => r,
                    Slot::Pending(rx, _held_until_answered) => match rx.await {
                        Ok(Ok(())) => BroadcastResponse {
                            status: Status::Success as i32,
                            info: String::new(),
                        },
                        Ok(Err(e)) => response(&BroadcastError::Chain(e)),
                        Err(_) => response(&BroadcastError::Chain(ChainError::Enqueue(
                            "chain stopped".into(),
                        ))),
                    },
                };
                let ok = resp.status == Status::Success as i32;
                if out.send(resp).await.is_err() || !ok {
                    break;
                }
            }
        };
        // The writer ending (client gone or a failure sent) ends the reader too.
        tokio::select! {
            _ = writer => {}
            _ = async { reader.await; std::future::pending::<()>().await } => {}
        }
    }
}
