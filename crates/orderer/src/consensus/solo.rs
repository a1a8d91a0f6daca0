//! The `solo` backend: one node, no Kafka. One task owns the chain: it
//! takes submissions in arrival order, runs the block cutter, arms the
//! batch timer, and writes each block (signed, fsynced) before
//! acknowledging the envelopes in it. An acknowledged envelope is on disk.

use std::time::Duration;

use fabric_ledger::Ledger;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use std::sync::Arc;

use super::{
    config_effect, ChainError, ChainHandle, ChainState, ConfigEffect, ConfigSink, NoConfigSink,
    Submission, SubmitKind,
};
use crate::blockcutter::{BatchSize, BlockCutter};
use crate::blockwriter::BlockWriter;
use crate::dedupe::{newest_first, TxWindow, WINDOW_TXIDS};
use crate::limits::SUBMIT_QUEUE_LEN;

/// An envelope waiting in the cutter, with its acknowledgement.
#[derive(Debug)]
struct Pending {
    envelope: Vec<u8>,
    ack: tokio::sync::oneshot::Sender<Result<(), ChainError>>,
}

/// Settings read from the channel config.
#[derive(Debug, Clone, Copy)]
pub struct SoloSettings {
    /// `Orderer/BatchSize`.
    pub batch_size: BatchSize,
    /// `Orderer/BatchTimeout`.
    pub batch_timeout: Duration,
    /// The config sequence in force.
    pub sequence: u64,
}

struct SoloChain {
    channel_id: String,
    settings: SoloSettings,
    cutter: BlockCutter<Pending>,
    writer: BlockWriter,
    ledger: Ledger,
    state_tx: watch::Sender<ChainState>,
    sink: Arc<dyn ConfigSink>,
    window: TxWindow,
    /// Acks of duplicates whose original is in the pending batch: answered
    /// when that batch is durable.
    dup_acks: Vec<tokio::sync::oneshot::Sender<Result<(), ChainError>>>,
}

/// Starts a solo chain over `ledger` and returns its handle.
pub fn start(
    channel_id: String,
    settings: SoloSettings,
    writer: BlockWriter,
    ledger: Ledger,
    shutdown: CancellationToken,
) -> (ChainHandle, tokio::task::JoinHandle<()>) {
    start_with_sink(
        channel_id,
        settings,
        writer,
        ledger,
        Arc::new(NoConfigSink),
        shutdown,
    )
}

/// As [`start`], telling `sink` about every committed config block.
pub fn start_with_sink(
    channel_id: String,
    settings: SoloSettings,
    writer: BlockWriter,
    ledger: Ledger,
    sink: Arc<dyn ConfigSink>,
    shutdown: CancellationToken,
) -> (ChainHandle, tokio::task::JoinHandle<()>) {
    let (submit_tx, submit_rx) = mpsc::channel(SUBMIT_QUEUE_LEN);
    let (state_tx, state_rx) = watch::channel(ChainState::Ready);
    let chain = SoloChain {
        channel_id,
        settings,
        cutter: BlockCutter::new(),
        writer,
        window: TxWindow::seed(WINDOW_TXIDS, newest_first(&ledger.reader())),
        ledger,
        state_tx,
        sink,
        dup_acks: Vec::new(),
    };
    let task = tokio::spawn(chain.run(submit_rx, shutdown));
    (ChainHandle::new(submit_tx, state_rx), task)
}

impl SoloChain {
    async fn run(mut self, mut submit_rx: mpsc::Receiver<Submission>, shutdown: CancellationToken) {
        info!(channel_id = %self.channel_id, height = self.ledger.height(), "solo chain started");
        let mut deadline: Option<Instant> = None;
        loop {
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                sub = submit_rx.recv() => {
                    let Some(sub) = sub else { break };
                    if self.halted() {
                        let _ = sub.ack.send(Err(self.halt_error()));
                        continue;
                    }
                    if sub.kind == SubmitKind::Config {
                        let pending = self.cutter.cut();
                        if !pending.is_empty() {
                            self.write(pending);
                        }
                        deadline = None;
                        if sub.config_seq != self.settings.sequence {
                            // Validated against a config that is no longer current.
                            let _ = sub.ack.send(Err(ChainError::Enqueue(format!(
                                "config sequence moved from {} to {} while the update was validated; resubmit",
                                sub.config_seq, self.settings.sequence
                            ))));
                            continue;
                        }
                        self.write_config(sub.envelope, sub.ack);
                        continue;
                    }
                    if !self.window.admit(&sub.envelope) {
                        // Already ordered within the window: not ordered again.
                        if self.cutter.pending_len() > 0 {
                            self.dup_acks.push(sub.ack);
                        } else {
                            let _ = sub.ack.send(Ok(()));
                        }
                        continue;
                    }
                    let o = self.cutter.ordered(
                        Pending { envelope: sub.envelope, ack: sub.ack },
                        sub.size,
                        &self.settings.batch_size,
                    );
                    for batch in o.batches {
                        self.write(batch);
                    }
                    if o.pending {
                        crate::metrics::block_fill_pending(&self.channel_id);
                    }
                    if o.pending && deadline.is_none() {
                        deadline = Some(Instant::now() + self.settings.batch_timeout);
                    } else if !o.pending {
                        deadline = None;
                    }
                }
                _ = timer => {
                    deadline = None;
                    let batch = self.cutter.cut();
                    if !batch.is_empty() {
                        debug!(channel_id = %self.channel_id, n = batch.len(), "batch timer expired");
                        self.write(batch);
                    }
                }
            }
        }
        // Envelopes still pending were never acknowledged; say so.
        for p in self.cutter.cut() {
            let _ = p
                .ack
                .send(Err(ChainError::Enqueue("orderer shutting down".into())));
        }
        info!(channel_id = %self.channel_id, "solo chain stopped");
    }

    fn halted(&self) -> bool {
        matches!(*self.state_tx.borrow(), ChainState::Halted(_))
    }

    fn halt_error(&self) -> ChainError {
        match &*self.state_tx.borrow() {
            ChainState::Halted(why) => ChainError::NotReady(format!("consenter halted: {why}")),
            _ => ChainError::NotReady("consenter not ready".into()),
        }
    }

    /// Writes a config envelope as a block of its own, then applies it.
    fn write_config(
        &mut self,
        envelope: Vec<u8>,
        ack: tokio::sync::oneshot::Sender<Result<(), ChainError>>,
    ) {
        let (env, effect) = match config_effect(&envelope) {
            Ok(x) => x,
            Err(e) => {
                let _ = ack.send(Err(ChainError::Enqueue(format!("bad config message: {e}"))));
                return;
            }
        };
        let is_config = matches!(effect, ConfigEffect::NewConfig(_));
        let block = self.writer.next_block(vec![envelope], is_config, &[]);
        let number = self.writer.next_number() - 1;
        match tokio::task::block_in_place(|| self.ledger.append(&block)) {
            Ok(_) => {
                if let ConfigEffect::NewConfig(cfg) = effect {
                    info!(channel_id = %self.channel_id, number, sequence = cfg.sequence, "wrote config block");
                    self.settings = SoloSettings {
                        batch_size: cfg.batch_size,
                        batch_timeout: cfg.batch_timeout,
                        sequence: cfg.sequence,
                    };
                } else {
                    info!(channel_id = %self.channel_id, number, "wrote orderer transaction block");
                }
                self.sink.config_committed(&self.channel_id, &env);
                let _ = ack.send(Ok(()));
            }
            Err(e) => {
                error!(channel_id = %self.channel_id, number, error = %e, "ledger append failed; halting chain");
                let why = format!("ledger append of block {number} failed: {e}");
                self.state_tx.send_replace(ChainState::Halted(why.clone()));
                let _ = ack.send(Err(ChainError::NotReady(why)));
            }
        }
    }

    fn write(&mut self, batch: Vec<Pending>) {
        crate::metrics::block_fill_cut(&self.channel_id);
        let (data, acks): (Vec<Vec<u8>>, Vec<_>) =
            batch.into_iter().map(|p| (p.envelope, p.ack)).unzip();
        let block = self.writer.next_block(data, false, &[]);
        let number = self.writer.next_number() - 1;
        let res = tokio::task::block_in_place(|| self.ledger.append(&block));
        match res {
            Ok(_) => {
                debug!(channel_id = %self.channel_id, number, txs = acks.len(), "wrote block");
                for ack in acks.into_iter().chain(self.dup_acks.drain(..)) {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                error!(channel_id = %self.channel_id, number, error = %e, "ledger append failed; halting chain");
                let why = format!("ledger append of block {number} failed: {e}");
                self.state_tx.send_replace(ChainState::Halted(why.clone()));
                for ack in acks.into_iter().chain(self.dup_acks.drain(..)) {
                    let _ = ack.send(Err(ChainError::NotReady(why.clone())));
                }
            }
        }
    }
}
