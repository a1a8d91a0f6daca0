//! ③–⑥ Per-channel ordering backends. Broadcast reaches a chain only through
//! a [`ChainHandle`]: submit an envelope, learn when it is durable, read the
//! chain's state. The backend (solo now, Kafka next) owns everything else.

pub mod kafka;
pub mod solo;

use tokio::sync::{mpsc, oneshot, watch};

/// Whether a chain accepts work (Fabric `WaitReady` / `Errored`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainState {
    /// Starting up (Kafka: producer/consumer not yet connected).
    Starting,
    /// Accepting and ordering.
    Ready,
    /// Stopped with an error; Deliver answers SERVICE_UNAVAILABLE.
    Halted(String),
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
    /// Resolved once the envelope is durable (solo: its block is on disk).
    pub ack: oneshot::Sender<Result<(), ChainError>>,
}

/// The handle Broadcast and Deliver hold on a chain.
#[derive(Debug, Clone)]
pub struct ChainHandle {
    submit_tx: mpsc::Sender<Submission>,
    state_rx: watch::Receiver<ChainState>,
}

impl ChainHandle {
    /// A handle over a backend's submission queue and state.
    pub fn new(submit_tx: mpsc::Sender<Submission>, state_rx: watch::Receiver<ChainState>) -> Self {
        Self {
            submit_tx,
            state_rx,
        }
    }

    /// The current state.
    pub fn state(&self) -> ChainState {
        self.state_rx.borrow().clone()
    }

    /// A receiver of state changes.
    pub fn subscribe_state(&self) -> watch::Receiver<ChainState> {
        self.state_rx.clone()
    }

    /// Fabric's `WaitReady`: an error unless the chain is ready.
    pub fn wait_ready(&self) -> Result<(), ChainError> {
        match self.state() {
            ChainState::Ready => Ok(()),
            ChainState::Starting => Err(ChainError::NotReady(
                "backing consenter has not completed booting; try again later".into(),
            )),
            ChainState::Halted(why) => Err(ChainError::NotReady(format!(
                "consenter for this channel has been halted: {why}"
            ))),
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
        let (ack, ack_rx) = oneshot::channel();
        self.submit_tx
            .send(Submission {
                envelope,
                size,
                config_seq,
                ack,
            })
            .await
            .map_err(|_| ChainError::Enqueue("chain stopped".into()))?;
        Ok(ack_rx)
    }
}
