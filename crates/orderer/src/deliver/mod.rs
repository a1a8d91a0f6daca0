//! ⑦–⑧ ledger → Deliver → client. For each `SeekInfo` envelope on the
//! stream: check it (Fabric's order of checks, `common/deliver/deliver.go`),
//! send the requested blocks exactly as stored, then one status. After
//! SUCCESS the stream waits for the next `SeekInfo`; after any other status
//! it ends.

pub mod acl;
pub mod seek;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fabric_common::envelope::{parse_envelope, EnvelopeError};
use fabric_protos::common::{Block, Envelope, Status};
use fabric_protos::orderer::{deliver_response, seek_info, DeliverResponse, SeekInfo};
use prost::Message;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::channels::{ChannelSupport, Registrar};
use crate::consensus::ChainState;
use crate::status::deliver_status;
use acl::SessionAccessControl;

/// Deliver streams that have a block to send (not waiting for the ledger).
static SENDING: AtomicUsize = AtomicUsize::new(0);

/// How many Deliver streams have a block to send right now: Broadcast
/// streams yield their worker more often while this is not zero.
pub fn streams_sending() -> usize {
    SENDING.load(Ordering::Relaxed)
}

/// This stream's membership in [`SENDING`], undone on drop.
#[derive(Default)]
struct Sending(bool);

impl Sending {
    fn set(&mut self, on: bool) {
        if on != self.0 {
            if on {
                SENDING.fetch_add(1, Ordering::Relaxed);
            } else {
                SENDING.fetch_sub(1, Ordering::Relaxed);
            }
            self.0 = on;
        }
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// Why a Deliver request ended without SUCCESS.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// The envelope's payload or headers do not decode.
    #[error("bad envelope: {0}")]
    Header(#[from] EnvelopeError),
    /// Channel header timestamp missing or outside the time window.
    #[error("{0}")]
    Timestamp(String),
    /// Mutual TLS: `tls_cert_hash` missing or not the client's certificate
    /// (Fabric `common/deliver/binding.go`).
    #[error("{0}")]
    Binding(String),
    /// No such channel.
    #[error("channel {0} not found")]
    ChannelNotFound(String),
    /// The envelope cannot be turned into a signature set (`AsSignedData`).
    #[error("failed to create access control object: {0}")]
    SignedData(String),
    /// `Payload.data` is not a `SeekInfo`.
    #[error("malformed seekInfo payload: {0}")]
    SeekInfo(String),
    /// The consenter is not serving and the client did not ask for BEST_EFFORT.
    #[error("{0}")]
    Unavailable(String),
    /// Access refused: identity expired or the readers policy not satisfied.
    #[error("client authorization revoked: {0}")]
    Forbidden(String),
    /// Start or stop missing.
    #[error("seekInfo missing start or stop")]
    MissingPosition,
    /// Unknown or unsupported position type.
    #[error("unsupported seek position for {0}")]
    UnsupportedPosition(&'static str),
    /// Stop before start.
    #[error("ignoring out of order seek range: start {start} is after stop {stop}")]
    StopBeforeStart {
        /// Start block.
        start: u64,
        /// Stop block.
        stop: u64,
    },
    /// The block is not there (FAIL_IF_NOT_READY, or start beyond height).
    #[error("{0}")]
    NotFound(String),
    /// Reading or sending failed.
    #[error("{0}")]
    Internal(String),
}

/// What Deliver needs: the channels, the time window, and whether client
/// identities are checked for expiry.
#[derive(Debug, Clone)]
pub struct Deliverer {
    registrar: Arc<Registrar>,
    time_window: Duration,
    expiration_checks: bool,
    mutual_tls: bool,
}

/// SHA-256 of the client's TLS certificate (DER) of a gRPC request, when
/// the connection is TLS and the client sent one.
pub fn client_cert_hash<T>(request: &tonic::Request<T>) -> Option<Vec<u8>> {
    use sha2::Digest;
    let certs = request.peer_certs()?;
    let leaf = certs.first()?;
    Some(sha2::Sha256::digest(leaf.as_ref()).to_vec())
}

/// Fabric's `mutualTLSBinding`: the seek's channel header must carry the
/// hash of the certificate the client presented on this connection.
fn check_binding(claimed: &[u8], actual: Option<&[u8]>) -> Result<(), DeliverError> {
    if claimed.is_empty() {
        return Err(DeliverError::Binding(
            "client didn't include its TLS cert hash".into(),
        ));
    }
    let Some(actual) = actual.filter(|a| !a.is_empty()) else {
        return Err(DeliverError::Binding(
            "client didn't send a TLS certificate".into(),
        ));
    };
    if claimed != actual {
        return Err(DeliverError::Binding(format!(
            "claimed TLS cert hash is {} but actual TLS cert hash is {}",
            hex::encode(claimed),
            hex::encode(actual)
        )));
    }
    Ok(())
}

fn status_response(status: Status) -> DeliverResponse {
    DeliverResponse {
        r#type: Some(deliver_response::Type::Status(status as i32)),
    }
}

impl Deliverer {
    /// A deliverer over `registrar`; seek envelopes must be stamped within
    /// `time_window` of now; `expiration_checks` is false when
    /// `General.Authentication.NoExpirationChecks` is set.
    pub fn new(registrar: Arc<Registrar>, time_window: Duration, expiration_checks: bool) -> Self {
        Self {
            registrar,
            time_window,
            expiration_checks,
            mutual_tls: false,
        }
    }

    /// With `mutual_tls` (TLS with `ClientAuthRequired`), every seek must be
    /// bound to the client's TLS certificate through `tls_cert_hash`.
    pub fn with_mutual_tls(mut self, mutual_tls: bool) -> Self {
        self.mutual_tls = mutual_tls;
        self
    }

    /// Serves one Deliver stream; `client_cert_hash` is the SHA-256 of the
    /// client's TLS certificate on this connection, if any ([`client_cert_hash`]).
    pub async fn handle<S>(
        &self,
        mut inbound: S,
        out: mpsc::Sender<Result<DeliverResponse, tonic::Status>>,
        client_cert_hash: Option<Vec<u8>>,
    ) where
        S: futures::Stream<Item = Result<Envelope, tonic::Status>> + Unpin + Send,
    {
        use futures::StreamExt;
        let _stream_metric = crate::metrics::deliver_stream_opened();
        while let Some(item) = inbound.next().await {
            let env = match item {
                Ok(env) => env,
                Err(status) => {
                    debug!(%status, "deliver stream receive error");
                    return;
                }
            };
            let status = match self
                .deliver_blocks(&env, &out, client_cert_hash.as_deref())
                .await
            {
                Ok(()) => Status::Success,
                Err(err) => {
                    let st = deliver_status(&err);
                    if matches!(err, DeliverError::Internal(_)) {
                        debug!(error = %err, status = ?st, "deliver request ended");
                    } else {
                        warn!(error = %err, status = ?st, "deliver request ended");
                    }
                    st
                }
            };
            if out.send(Ok(status_response(status))).await.is_err() || status != Status::Success {
                return;
            }
        }
    }

    fn check_timestamp(&self, ts: Option<&fabric_protos::Timestamp>) -> Result<(), DeliverError> {
        let ts = ts.ok_or_else(|| {
            DeliverError::Timestamp("timestamp not found in channel header".into())
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let then = Duration::new(
            ts.seconds.max(0) as u64,
            ts.nanos.clamp(0, 999_999_999) as u32,
        );
        let skew = now.abs_diff(then);
        if ts.seconds < 0 || skew > self.time_window {
            return Err(DeliverError::Timestamp(format!(
                "envelope timestamp {}s is more than {:?} apart from the current server time",
                ts.seconds, self.time_window
            )));
        }
        Ok(())
    }

    async fn deliver_blocks(
        &self,
        env: &Envelope,
        out: &mpsc::Sender<Result<DeliverResponse, tonic::Status>>,
        client_cert_hash: Option<&[u8]>,
    ) -> Result<(), DeliverError> {
        let parsed = parse_envelope(env)?;
        self.check_timestamp(parsed.channel_header.timestamp.as_ref())?;
        if self.mutual_tls {
            check_binding(&parsed.channel_header.tls_cert_hash, client_cert_hash)?;
        }
        let channel_id = &parsed.channel_header.channel_id;
        let support = self
            .registrar
            .get(channel_id)
            .ok_or_else(|| DeliverError::ChannelNotFound(channel_id.clone()))?;
        let mut request_metric = crate::metrics::DeliverRequest::received(channel_id);
        let seek = SeekInfo::decode(parsed.payload.data.as_slice())
            .map_err(|e| DeliverError::SeekInfo(e.to_string()))?;
        let best_effort = seek.error_response == seek_info::SeekErrorResponse::BestEffort as i32;
        if !best_effort {
            if let ChainStateView::Halted(why) | ChainStateView::Starting(why) =
                state_reason(&support)
            {
                return Err(DeliverError::Unavailable(why));
            }
            // Fabric: "Rejecting deliver request ... because of consenter error".
            if let Some(why) = support.chain.errored() {
                return Err(DeliverError::Unavailable(why));
            }
        }
        // Access control: the signature set, expiry, /Channel/Readers.
        let bundle = support.bundle();
        let mut acl = SessionAccessControl::new(&bundle, env, self.expiration_checks)?;
        acl.evaluate(&bundle)?;
        drop(bundle);
        let height = support.ledger.height();
        let range = seek::resolve(&seek, height)?;
        let fail_if_not_ready = seek.behavior == seek_info::SeekBehavior::FailIfNotReady as i32;
        debug!(channel_id = %channel_id, start = range.start, stop = range.stop, "deliver");
        let r = self
            .stream(
                &support,
                &mut acl,
                range,
                fail_if_not_ready,
                best_effort,
                out,
            )
            .await;
        request_metric.complete(r.is_ok());
        r
    }

    async fn stream(
        &self,
        support: &ChannelSupport,
        acl: &mut SessionAccessControl,
        range: seek::SeekRange,
        fail_if_not_ready: bool,
        best_effort: bool,
        out: &mpsc::Sender<Result<DeliverResponse, tonic::Status>>,
    ) -> Result<(), DeliverError> {
        let mut height_rx = support.ledger.subscribe();
        let mut state_rx = support.chain.subscribe_state();
        // Consenter errors end the stream (Fabric's `Errored()`), unless best effort.
        let mut errored_rx = support.chain.subscribe_errored().filter(|_| !best_effort);
        let mut number = range.start;
        let mut sending = Sending::default();
        loop {
            if support.ledger.height() <= number {
                sending.set(false);
                if fail_if_not_ready {
                    return Err(DeliverError::NotFound(format!(
                        "block {number} not found (height {})",
                        support.ledger.height()
                    )));
                }
                // Wait for the block, the chain halting, or the client leaving.
                loop {
                    if *height_rx.borrow_and_update() > number {
                        break;
                    }
                    tokio::select! {
                        r = height_rx.changed() => {
                            if r.is_err() {
                                return Err(DeliverError::Unavailable("ledger closed".into()));
                            }
                        }
                        r = state_rx.changed(), if !best_effort => {
                            if r.is_err() {
                                return Err(DeliverError::Unavailable("chain stopped".into()));
                            }
                            if let ChainState::Halted(why) | ChainState::CatchingUp(why) =
                                state_rx.borrow_and_update().clone()
                            {
                                return Err(DeliverError::Unavailable(why));
                            }
                        }
                        why = errored(&mut errored_rx) => {
                            return Err(DeliverError::Unavailable(why));
                        }
                        _ = out.closed() => {
                            return Err(DeliverError::Internal("client went away".into()));
                        }
                    }
                }
            }
            if let Some(why) = errored_rx.as_ref().and_then(|rx| rx.borrow().clone()) {
                return Err(DeliverError::Unavailable(why));
            }
            sending.set(true);
            // At most DELIVER_BUFFER blocks between the ledger and the socket.
            crate::net::streams::reserve_block().await;
            let block: Block = support
                .ledger
                .get(number)
                .map_err(|e| DeliverError::Unavailable(format!("reading block {number}: {e}")))?;
            crate::net::streams::block_read(block.encoded_len() as u64);
            // Re-checked before each block: expiry, and the readers policy
            // when the config changed since the last evaluation.
            acl.evaluate(&support.bundle())?;
            let resp = DeliverResponse {
                r#type: Some(deliver_response::Type::Block(block)),
            };
            if out.send(Ok(resp)).await.is_err() {
                return Err(DeliverError::Internal("client went away".into()));
            }
            crate::metrics::deliver_block_sent(&support.channel_id);
            if number == range.stop {
                return Ok(());
            }
            number += 1;
        }
    }
}

/// Resolves with the reason when the chain becomes errored (never for a
/// chain without that signal, or when the signal's sender is gone).
async fn errored(rx: &mut Option<watch::Receiver<Option<String>>>) -> String {
    let Some(rx) = rx.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        if let Some(why) = rx.borrow_and_update().clone() {
            return why;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// The chain state, with the reason to refuse Deliver if any.
enum ChainStateView {
    Ready,
    Starting(String),
    Halted(String),
}

fn state_reason(support: &ChannelSupport) -> ChainStateView {
    match support.chain.state() {
        // Stalled (the ledger cannot be written): what is persisted is
        // still served, and followers wait for the next block.
        ChainState::Ready | ChainState::Stalled(_) => ChainStateView::Ready,
        ChainState::Starting => {
            ChainStateView::Starting("consenter has not completed booting".into())
        }
        // Catching up from other OSNs: what is persisted is not current.
        ChainState::Halted(why) | ChainState::CatchingUp(why) => ChainStateView::Halted(why),
    }
}
