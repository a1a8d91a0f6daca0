//! ③–⑥ Per-channel ordering backends. Broadcast reaches a chain only through
//! a [`ChainHandle`]: submit an envelope, learn when it is durable, read the
//! chain's state. The backend (solo now, Kafka next) owns everything else.

pub mod kafka;
pub mod solo;

use std::time::Duration;

use fabric_ledger::Ledger;
use fabric_protos::common::Block;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::limits::{LEDGER_RETRY_BACKOFF_MAX, LEDGER_RETRY_BACKOFF_MIN};

/// Whether a chain accepts work (Fabric `WaitReady` / `Errored`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainState {
    /// Starting up (Kafka: producer/consumer not yet connected).
    Starting,
    /// Accepting and ordering.
    Ready,
    /// Stopped with an error; Deliver answers SERVICE_UNAVAILABLE.
    Halted(String),
    /// Writing the ledger fails (disk full, I/O error) and the chain is
    /// retrying the same block with backoff. Broadcast answers
    /// SERVICE_UNAVAILABLE; Deliver keeps serving the persisted blocks.
    /// Back to `Ready` once the block is durable.
    Stalled(String),
    /// Kafka: the partition no longer holds the offset the chain needs
    /// next; the chain is pulling and verifying the missing blocks from
    /// other OSNs (or waiting for one to answer). Broadcast and Deliver
    /// answer SERVICE_UNAVAILABLE: the chain is not current.
    CatchingUp(String),
}

/// Why a submission failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    /// The chain is not ready (starting or halted).
    #[error("{0}")]
    NotReady(String),
    /// The chain stopped before the envelope became durable.
    #[error("cannot enqueue: {0}")]
    Enqueue(String),
    /// Validated against a config that was replaced before it was ordered,
    /// and no longer valid (solo's re-validation, as Fabric's solo).
    #[error("{0}")]
    Invalid(String),
}

/// How the chain orders a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitKind {
    /// A normal envelope, batched by the block cutter.
    Normal,
    /// An orderer-made CONFIG or ORDERER_TRANSACTION envelope: a block of its own.
    Config,
}

/// Told about every config block a chain commits (after it is durable).
/// The registrar implements it: it swaps the channel's config and policies,
/// and creates the channel an ORDERER_TRANSACTION announces.
pub trait ConfigSink: Send + Sync + std::fmt::Debug {
    /// `env` is the block's only envelope (CONFIG or ORDERER_TRANSACTION).
    fn config_committed(&self, channel_id: &str, env: &fabric_protos::common::Envelope);
}

/// A sink that ignores config blocks (tests).
#[derive(Debug, Default)]
pub struct NoConfigSink;

impl ConfigSink for NoConfigSink {
    fn config_committed(&self, _channel_id: &str, _env: &fabric_protos::common::Envelope) {}
}

/// What a config envelope means for the chain that commits it.
#[derive(Debug, Clone)]
pub enum ConfigEffect {
    /// A CONFIG envelope: the channel's new config (LAST_CONFIG moves to this block).
    NewConfig(Box<crate::channelconfig::ChannelConfig>),
    /// An ORDERER_TRANSACTION (channel creation on the system channel).
    OrdererTransaction,
}

/// Classifies a config envelope for the chain.
/// Spawns a chain task (consume → cut → write, one per channel) on the
/// chains' own runtime: one OS thread next to the gRPC runtime's workers.
/// Under load the gRPC runtime holds hundreds of Broadcast tasks, each
/// verifying signatures; sharing its workers, a channel's single chain task
/// got one turn in hundreds and blocks fell seconds behind the Kafka
/// acknowledgements (p50 broadcast→delivered 9.5 s at 3 KB). On its own
/// thread the OS gives it a fair share of the cores whatever the number of
/// streams.
pub fn spawn_chain<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    // The first chain is started from the gRPC runtime (the server's start).
    let _ = io_runtime();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(CHAINS_THREAD)
                .enable_all()
                .build()
                .expect("building the chains' runtime")
        })
        .spawn(fut)
}

/// The runtime that per-envelope work such as Kafka produce and
/// acknowledgement runs on: the caller's, unless the caller is a chain task
/// (a channel created by the system channel's chain), then the runtime that
/// last started a chain from outside the chains' runtime (the gRPC one).
pub fn io_runtime() -> tokio::runtime::Handle {
    static IO: std::sync::Mutex<Option<tokio::runtime::Handle>> = std::sync::Mutex::new(None);
    let mut io = IO.lock().unwrap_or_else(|e| e.into_inner());
    if std::thread::current().name() != Some(CHAINS_THREAD) {
        let h = tokio::runtime::Handle::current();
        *io = Some(h.clone());
        return h;
    }
    io.clone().unwrap_or_else(tokio::runtime::Handle::current)
}

const CHAINS_THREAD: &str = "chains";

pub fn config_effect(
    env_bytes: &[u8],
) -> Result<(fabric_protos::common::Envelope, ConfigEffect), String> {
    use prost::Message;
    let env = fabric_protos::common::Envelope::decode(env_bytes).map_err(|e| e.to_string())?;
    let parsed = fabric_common::envelope::parse_envelope(&env).map_err(|e| e.to_string())?;
    let t = parsed.channel_header.r#type;
    if t == fabric_protos::common::HeaderType::OrdererTransaction as i32 {
        return Ok((env, ConfigEffect::OrdererTransaction));
    }
    let cfg =
        crate::channelconfig::ChannelConfig::from_envelope(&env).map_err(|e| e.to_string())?;
    Ok((env, ConfigEffect::NewConfig(Box::new(cfg))))
}

/// What a chain commits next ([`commit_block`]).
#[derive(Debug)]
pub struct BlockToCommit<'a> {
    /// The envelopes.
    pub data: Vec<Vec<u8>>,
    /// A CONFIG block (LAST_CONFIG points to it).
    pub is_config: bool,
    /// Consenter metadata (Kafka: the `KafkaMetadata`; solo: none).
    pub consenter_metadata: &'a [u8],
    /// Also write the consenter metadata into the deprecated ORDERER slot,
    /// as Fabric v1.4's Kafka chain does
    /// ([`crate::channelconfig::ChannelConfig::legacy_orderer_metadata`]).
    pub legacy_orderer_slot: bool,
}

/// ⑥ The commit path both consenters share: the next block built and signed
/// by `writer`, then appended durably ([`append_durably`]). Returns its
/// number. Applying a config block is the caller's (after this returns).
pub async fn commit_block(
    writer: &mut crate::blockwriter::BlockWriter,
    ledger: &mut Ledger,
    next: BlockToCommit<'_>,
    channel_id: &str,
    state_tx: &watch::Sender<ChainState>,
    shutdown: &CancellationToken,
) -> Result<u64, AppendStop> {
    use prost::Message as _;
    crate::metrics::block_fill_cut(channel_id);
    let mut block = writer.next_block(next.data, next.is_config, next.consenter_metadata);
    if next.legacy_orderer_slot {
        // Outside the signed bytes, as in Fabric v1.4 (its signature covers
        // the same OrdererBlockMetadata value as ours).
        if let Some(m) = block.metadata.as_mut() {
            m.metadata[fabric_common::block::ORDERER] = fabric_protos::common::Metadata {
                value: next.consenter_metadata.to_vec(),
                signatures: vec![],
            }
            .encode_to_vec();
        }
    }
    let number = writer.next_number() - 1;
    append_durably(ledger, &block, channel_id, state_tx, shutdown).await?;
    Ok(number)
}

/// Why [`append_durably`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendStop {
    /// The node is shutting down; the block is not durable.
    Shutdown,
    /// A non-transient ledger error (a bug or corruption): the chain is now
    /// `Halted` with this reason.
    Fatal(String),
}

/// Appends `block` to the chain's ledger, retrying while the failure is
/// transient (disk full, I/O error: the ledger rolled the files back, so
/// nothing partial is left or served). While retrying, the chain is
/// `Stalled` (Broadcast answers SERVICE_UNAVAILABLE, Deliver serves what is
/// persisted) and every failed attempt is logged at error level with the
/// file and OS error; the wait doubles from [`LEDGER_RETRY_BACKOFF_MIN`] to
/// [`LEDGER_RETRY_BACKOFF_MAX`]. Back to `Ready` when the block is durable.
/// Any other error halts the chain. Blocking file I/O runs in
/// `block_in_place` (multi-threaded runtime).
pub async fn append_durably(
    ledger: &mut Ledger,
    block: &Block,
    channel_id: &str,
    state_tx: &watch::Sender<ChainState>,
    shutdown: &CancellationToken,
) -> Result<(), AppendStop> {
    let number = block.header.as_ref().map_or(0, |h| h.number);
    let mut backoff = LEDGER_RETRY_BACKOFF_MIN;
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        let started = std::time::Instant::now();
        let err = match tokio::task::block_in_place(|| ledger.append(block)) {
            Ok(_) => {
                crate::metrics::ops::ledger_commit_time(channel_id, started.elapsed());
                if attempt > 1 {
                    info!(
                        channel_id,
                        number,
                        attempts = attempt,
                        "ledger append succeeded after failures; chain resumed"
                    );
                    state_tx.send_replace(ChainState::Ready);
                }
                return Ok(());
            }
            Err(e) => e,
        };
        if !err.is_transient() {
            error!(channel_id, number, error = %err, "ledger append failed; halting chain");
            let why = format!("ledger append of block {number} failed: {err}");
            state_tx.send_replace(ChainState::Halted(why.clone()));
            return Err(AppendStop::Fatal(why));
        }
        error!(channel_id, number, attempt, retry_in_ms = backoff.as_millis() as u64, error = %err,
            "ledger append failed; chain stalled (Broadcast refused) until it succeeds");
        if attempt == 1 {
            state_tx.send_replace(ChainState::Stalled(format!(
                "ledger append of block {number} failed: {err}"
            )));
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(AppendStop::Shutdown),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = next_backoff(backoff);
    }
}

/// The retry wait after `current`: doubled, at most the maximum.
fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(LEDGER_RETRY_BACKOFF_MAX)
}

/// One envelope on its way to a block.
#[derive(Debug)]
pub struct Submission {
    /// The envelope bytes exactly as received (they go into the block unchanged).
    pub envelope: Vec<u8>,
    /// `len(payload) + len(signature)`, the size the block cutter counts.
    pub size: u64,
    /// The config sequence the envelope was validated against.
    pub config_seq: u64,
    /// Normal or config.
    pub kind: SubmitKind,
    /// Resolved once the envelope is durable (solo: its block is on disk).
    pub ack: oneshot::Sender<Result<(), ChainError>>,
}

/// The handle Broadcast and Deliver hold on a chain.
#[derive(Debug, Clone)]
pub struct ChainHandle {
    submit_tx: mpsc::Sender<Submission>,
    state_rx: watch::Receiver<ChainState>,
    /// The backend's own health probe (Kafka: is the partition reachable):
    /// `Some(reason)` while unhealthy.
    health_rx: Option<watch::Receiver<Option<String>>>,
    /// Kafka: `Some(reason)` while consumption has failed for longer than
    /// `Kafka.Retry.NetworkTimeouts.ReadTimeout` (Fabric's closed
    /// `errorChan`): Deliver answers SERVICE_UNAVAILABLE, Broadcast goes on.
    errored_rx: Option<watch::Receiver<Option<String>>>,
    /// Kafka: `true` while a config message this OSN re-ordered is in flight
    /// (FAB-5969): Broadcast waits in [`ChainHandle::wait_ready`].
    reprocessing_rx: Option<watch::Receiver<bool>>,
    /// Run by `/healthz` (see [`ChainHandle::check_health`]).
    health_check: Option<std::sync::Arc<dyn HealthCheck>>,
}

/// The Kafka chain's signals beyond its state (see [`ChainHandle`]).
#[derive(Debug)]
pub struct ChainSignals {
    /// Health probe results.
    pub health_rx: watch::Receiver<Option<String>>,
    /// Consumption errored (Fabric `Errored()`).
    pub errored_rx: watch::Receiver<Option<String>>,
    /// A re-ordered config message is in flight.
    pub reprocessing_rx: watch::Receiver<bool>,
    /// The check `/healthz` runs.
    pub health_check: std::sync::Arc<dyn HealthCheck>,
}

/// A backend's on-demand health check (Kafka: Fabric's `HealthCheck`, a
/// CONNECT posted to the partition). `Some(reason)` when unhealthy.
pub trait HealthCheck: Send + Sync + std::fmt::Debug {
    /// Runs the check.
    fn check(&self) -> futures::future::BoxFuture<'static, Option<String>>;
}

impl ChainHandle {
    /// A handle over a backend's submission queue and state.
    pub fn new(submit_tx: mpsc::Sender<Submission>, state_rx: watch::Receiver<ChainState>) -> Self {
        Self {
            submit_tx,
            state_rx,
            health_rx: None,
            errored_rx: None,
            reprocessing_rx: None,
            health_check: None,
        }
    }

    /// With a health probe's results (see [`ChainHandle::health`]).
    pub fn with_health(mut self, health_rx: watch::Receiver<Option<String>>) -> Self {
        self.health_rx = Some(health_rx);
        self
    }

    /// With all of a Kafka chain's signals.
    pub fn with_signals(mut self, s: ChainSignals) -> Self {
        self.health_rx = Some(s.health_rx);
        self.errored_rx = Some(s.errored_rx);
        self.reprocessing_rx = Some(s.reprocessing_rx);
        self.health_check = Some(s.health_check);
        self
    }

    /// `/healthz`'s check of a ready chain: the background probe's verdict,
    /// else the backend's on-demand check.
    pub async fn check_health(&self) -> Option<String> {
        if let Some(why) = self.health() {
            return Some(why);
        }
        match &self.health_check {
            Some(c) => c.check().await,
            None => None,
        }
    }

    /// Why Deliver must refuse now (Fabric's closed `Errored()` channel:
    /// consumption has been failing for longer than the read timeout), or
    /// `None`.
    pub fn errored(&self) -> Option<String> {
        self.errored_rx.as_ref().and_then(|rx| rx.borrow().clone())
    }

    /// A receiver of [`ChainHandle::errored`] changes (`None` for chains
    /// that never error this way).
    pub fn subscribe_errored(&self) -> Option<watch::Receiver<Option<String>>> {
        self.errored_rx.clone()
    }

    /// Why the backend is unhealthy right now (a Ready chain whose Kafka
    /// partition cannot be reached), or `None`.
    pub fn health(&self) -> Option<String> {
        self.health_rx.as_ref().and_then(|rx| rx.borrow().clone())
    }

    /// The current state.
    pub fn state(&self) -> ChainState {
        self.state_rx.borrow().clone()
    }

    /// A receiver of state changes.
    pub fn subscribe_state(&self) -> watch::Receiver<ChainState> {
        self.state_rx.clone()
    }

    /// Fabric's `WaitReady`: an error unless the chain is ready; while a
    /// config message this OSN re-ordered is in flight (FAB-5969), waits
    /// until it is back (or the chain stops being ready).
    pub async fn wait_ready(&self) -> Result<(), ChainError> {
        self.ready_now()?;
        let Some(mut gate) = self.reprocessing_rx.clone() else {
            return Ok(());
        };
        if !*gate.borrow_and_update() {
            return Ok(());
        }
        let mut state = self.state_rx.clone();
        loop {
            tokio::select! {
                r = gate.changed() => {
                    if r.is_err() {
                        return Err(ChainError::NotReady("consenter for this channel has stopped".into()));
                    }
                    if !*gate.borrow_and_update() {
                        return self.ready_now();
                    }
                }
                r = state.changed() => {
                    if r.is_err() {
                        return Err(ChainError::NotReady("consenter for this channel has stopped".into()));
                    }
                    self.ready_now()?;
                }
            }
        }
    }

    fn ready_now(&self) -> Result<(), ChainError> {
        match self.state() {
            ChainState::Ready => Ok(()),
            ChainState::Starting => Err(ChainError::NotReady(
                "backing consenter has not completed booting; try again later".into(),
            )),
            ChainState::Halted(why) => Err(ChainError::NotReady(format!(
                "consenter for this channel has been halted: {why}"
            ))),
            ChainState::Stalled(why) => Err(ChainError::NotReady(format!(
                "cannot write the ledger, retrying: {why}"
            ))),
            ChainState::CatchingUp(why) => Err(ChainError::NotReady(why)),
        }
    }

    /// Queues an envelope (waits while the bounded queue is full) and returns
    /// the receiver that resolves when it is durable.
    pub async fn submit(
        &self,
        envelope: Vec<u8>,
        size: u64,
        config_seq: u64,
    ) -> Result<oneshot::Receiver<Result<(), ChainError>>, ChainError> {
        self.submit_kind(envelope, size, config_seq, SubmitKind::Normal)
            .await
    }

    /// Queues an orderer-made config envelope (a block of its own).
    pub async fn submit_config(
        &self,
        envelope: Vec<u8>,
        config_seq: u64,
    ) -> Result<oneshot::Receiver<Result<(), ChainError>>, ChainError> {
        let size = envelope.len() as u64;
        self.submit_kind(envelope, size, config_seq, SubmitKind::Config)
            .await
    }

    async fn submit_kind(
        &self,
        envelope: Vec<u8>,
        size: u64,
        config_seq: u64,
        kind: SubmitKind,
    ) -> Result<oneshot::Receiver<Result<(), ChainError>>, ChainError> {
        let (ack, ack_rx) = oneshot::channel();
        self.submit_tx
            .send(Submission {
                envelope,
                size,
                config_seq,
                kind,
                ack,
            })
            .await
            .map_err(|_| ChainError::Enqueue("chain stopped".into()))?;
        Ok(ack_rx)
    }
}
