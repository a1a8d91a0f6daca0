//! The `solo` backend: one node, no Kafka. One task owns the chain: it
//! takes submissions in arrival order, runs the block cutter, arms the
//! batch timer, and writes each block (signed, fsynced) before
//! acknowledging the envelopes in it. An acknowledged envelope is on disk.
//!
//! An envelope validated against a config that a config block has since
//! replaced is validated again before it is ordered, as Fabric's solo does
//! (`orderer/consensus/solo/consensus.go`): a normal envelope with the
//! channel's message processor (`ProcessNormalMsg`), a config message
//! re-derived from its `last_update` (`ProcessConfigMsg`). Fabric's solo has
//! already answered SUCCESS then and drops it silently; ours answers after
//! the block is written, so the client learns that it was refused
//! (BAD_REQUEST).
//!
//! When the ledger cannot be written (disk full, I/O error) the task retries
//! the same block with bounded backoff ([`super::append_durably`]); the
//! chain is `Stalled` meanwhile, so new Broadcasts get SERVICE_UNAVAILABLE,
//! and the envelopes of that block are answered once it is durable.

pub mod decide;

use std::time::Duration;

use fabric_ledger::Ledger;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use std::sync::Arc;

use self::decide::{Action, Decider};
use super::kafka::decide::{AlwaysValid, Revalidate};
use super::{
    commit_block, config_effect, AppendStop, BlockToCommit, ChainError, ChainHandle, ChainState,
    ConfigEffect, ConfigSink, NoConfigSink, Submission, SubmitKind,
};
use crate::blockcutter::BatchSize;
use crate::blockwriter::BlockWriter;
use crate::dedupe::{EnvelopeWindow, WindowLimits};
use crate::limits::SUBMIT_QUEUE_LEN;

/// An envelope waiting in the cutter, with its acknowledgement.
#[derive(Debug)]
struct Pending {
    envelope: Vec<u8>,
    ack: tokio::sync::oneshot::Sender<Result<(), ChainError>>,
}

impl AsRef<[u8]> for Pending {
    fn as_ref(&self) -> &[u8] {
        &self.envelope
    }
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
    /// The config has the exactly-once capability ([`crate::dedupe`]).
    pub exactly_once: bool,
}

struct SoloChain {
    channel_id: String,
    settings: SoloSettings,
    decider: Decider<Pending>,
    writer: BlockWriter,
    ledger: Ledger,
    state_tx: watch::Sender<ChainState>,
    sink: Arc<dyn ConfigSink>,
    revalidate: Arc<dyn Revalidate + Send + Sync>,
    /// Acks of duplicates whose original is in the pending batch: answered
    /// when that batch is durable.
    dup_acks: Vec<tokio::sync::oneshot::Sender<Result<(), ChainError>>>,
}

/// Starts a solo chain over `ledger` and returns its handle (no config sink, no re-validation: for tests and tools).
pub fn start(
    channel_id: String,
    settings: SoloSettings,
    writer: BlockWriter,
    ledger: Ledger,
    shutdown: CancellationToken,
) -> (ChainHandle, tokio::task::JoinHandle<()>) {
    let hooks = SoloHooks {
        sink: Arc::new(NoConfigSink),
        revalidate: Arc::new(AlwaysValid),
    };
    start_with_hooks(channel_id, settings, writer, ledger, hooks, shutdown)
}

/// How a solo chain meets the rest of the node.
#[derive(Debug)]
pub struct SoloHooks {
    /// Told about committed config blocks.
    pub sink: Arc<dyn ConfigSink>,
    /// Re-validates envelopes validated against an older config (the
    /// channel's message processor).
    pub revalidate: Arc<dyn Revalidate + Send + Sync>,
}

/// As [`start`], with the node's hooks.
pub fn start_with_hooks(
    channel_id: String,
    settings: SoloSettings,
    writer: BlockWriter,
    ledger: Ledger,
    hooks: SoloHooks,
    shutdown: CancellationToken,
) -> (ChainHandle, tokio::task::JoinHandle<()>) {
    let SoloHooks { sink, revalidate } = hooks;
    let (submit_tx, submit_rx) = mpsc::channel(SUBMIT_QUEUE_LEN);
    let (state_tx, state_rx) = watch::channel(ChainState::Ready);
    let chain = SoloChain {
        channel_id,
        settings,
        decider: Decider::new(EnvelopeWindow::seed_from_ledger(
            WindowLimits::DEFAULT,
            settings.exactly_once,
            &ledger.reader(),
        )),
        writer,
        ledger,
        state_tx,
        sink,
        revalidate,
        dup_acks: Vec::new(),
    };
    let task = super::spawn_chain(chain.run(submit_rx, shutdown));
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
                    let actions = match sub.kind {
                        SubmitKind::Config => {
                            if !self.cut_for_config(&mut deadline, &shutdown).await {
                                let _ = sub.ack.send(Err(self.halt_error()));
                                continue;
                            }
                            match self.revalidated(sub.envelope, sub.config_seq, true) {
                                Ok(envelope) => self.write_config(envelope, sub.ack, &shutdown).await,
                                Err(e) => { let _ = sub.ack.send(Err(e)); }
                            }
                            continue;
                        }
                        SubmitKind::Normal => match self.revalidated(sub.envelope, sub.config_seq, false) {
                            Ok(envelope) => {
                                let item = Pending { envelope, ack: sub.ack };
                                self.decider.on_normal(item, sub.size, &self.settings.batch_size)
                            }
                            Err(e) => {
                                let _ = sub.ack.send(Err(e));
                                continue;
                            }
                        },
                    };
                    self.apply(actions, &mut deadline, &shutdown).await;
                }
                _ = timer => {
                    deadline = None;
                    let actions = self.decider.on_timer();
                    if !actions.is_empty() {
                        debug!(channel_id = %self.channel_id, "batch timer expired");
                    }
                    self.apply(actions, &mut deadline, &shutdown).await;
                }
            }
        }
        // Envelopes still pending were never acknowledged; say so.
        for p in self.decider.drain() {
            let _ = p
                .ack
                .send(Err(ChainError::Enqueue("orderer shutting down".into())));
        }
        info!(channel_id = %self.channel_id, "solo chain stopped");
    }

    /// The envelope to order: as received, or — validated against a config
    /// since replaced — validated again (Fabric's solo: `ProcessNormalMsg`,
    /// `ProcessConfigMsg`), else why not.
    fn revalidated(
        &self,
        envelope: Vec<u8>,
        seq: u64,
        config: bool,
    ) -> Result<Vec<u8>, ChainError> {
        if seq >= self.settings.sequence {
            return Ok(envelope);
        }
        let checked = if config {
            self.revalidate.config(&envelope)
        } else {
            self.revalidate.normal(&envelope).map(|()| envelope)
        };
        checked.map_err(|e| {
            let what = if config { "config" } else { "normal" };
            warn!(channel_id = %self.channel_id, error = %e, "Discarding bad {what} message");
            ChainError::Invalid(format!("{what} message no longer valid: {e}"))
        })
    }

    /// Cuts what is pending before a config message; `false` when that
    /// block could not be written (the chain halted or the node stops).
    async fn cut_for_config(
        &mut self,
        deadline: &mut Option<Instant>,
        shutdown: &CancellationToken,
    ) -> bool {
        let actions = self.decider.on_config();
        self.apply(actions, deadline, shutdown).await
    }

    /// Carries out the decider's actions; `false` if a block failed.
    async fn apply(
        &mut self,
        actions: Vec<Action<Pending>>,
        deadline: &mut Option<Instant>,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut ok = true;
        for a in actions {
            match a {
                Action::WriteBlock(batch) => ok &= self.write(batch, shutdown).await.is_ok(),
                Action::StartTimer => {
                    crate::metrics::block_fill_pending(&self.channel_id);
                    *deadline = Some(Instant::now() + self.settings.batch_timeout);
                }
                Action::StopTimer => *deadline = None,
                // A byte-identical copy is in the window: not ordered again.
                Action::Duplicate { item, now: true } => {
                    let _ = item.ack.send(Ok(()));
                }
                Action::Duplicate { item, now: false } => self.dup_acks.push(item.ack),
            }
        }
        ok
    }

    fn halted(&self) -> bool {
        // A stalled chain is inside `append_durably` and answers nothing
        // until it is done, so only `Halted` is seen here.
        matches!(*self.state_tx.borrow(), ChainState::Halted(_))
    }

    fn halt_error(&self) -> ChainError {
        match &*self.state_tx.borrow() {
            ChainState::Halted(why) => ChainError::NotReady(format!("consenter halted: {why}")),
            _ => ChainError::NotReady("consenter not ready".into()),
        }
    }

    async fn commit(
        &mut self,
        next: BlockToCommit<'_>,
        shutdown: &CancellationToken,
    ) -> Result<u64, AppendStop> {
        commit_block(
            &mut self.writer,
            &mut self.ledger,
            next,
            &self.channel_id,
            &self.state_tx,
            shutdown,
        )
        .await
    }

    /// Writes a config envelope as a block of its own, then applies it.
    async fn write_config(
        &mut self,
        envelope: Vec<u8>,
        ack: tokio::sync::oneshot::Sender<Result<(), ChainError>>,
        shutdown: &CancellationToken,
    ) {
        let (env, effect) = match config_effect(&envelope) {
            Ok(x) => x,
            Err(e) => {
                let _ = ack.send(Err(ChainError::Enqueue(format!("bad config message: {e}"))));
                return;
            }
        };
        let next = BlockToCommit {
            data: vec![envelope],
            is_config: matches!(effect, ConfigEffect::NewConfig(_)),
            consenter_metadata: &[],
            legacy_orderer_slot: false,
        };
        match self.commit(next, shutdown).await {
            Ok(number) => {
                if let ConfigEffect::NewConfig(cfg) = effect {
                    info!(channel_id = %self.channel_id, number, sequence = cfg.sequence, "wrote config block");
                    self.settings = SoloSettings {
                        batch_size: cfg.batch_size,
                        batch_timeout: cfg.batch_timeout,
                        sequence: cfg.sequence,
                        exactly_once: cfg.exactly_once(),
                    };
                    self.decider.set_exactly_once(cfg.exactly_once());
                } else {
                    info!(channel_id = %self.channel_id, number, "wrote orderer transaction block");
                }
                self.sink.config_committed(&self.channel_id, &env);
                let _ = ack.send(Ok(()));
            }
            Err(stop) => {
                let _ = ack.send(Err(stop_error(stop)));
            }
        }
    }

    /// Writes a batch as the next block and answers its envelopes: SUCCESS
    /// once the block is durable, SERVICE_UNAVAILABLE if the node shuts down
    /// first or the chain halts. `Err` in those two cases.
    async fn write(
        &mut self,
        batch: Vec<Pending>,
        shutdown: &CancellationToken,
    ) -> Result<(), AppendStop> {
        let (data, acks): (Vec<Vec<u8>>, Vec<_>) =
            batch.into_iter().map(|p| (p.envelope, p.ack)).unzip();
        let next = BlockToCommit {
            data,
            is_config: false,
            consenter_metadata: &[],
            legacy_orderer_slot: false,
        };
        let res = self.commit(next, shutdown).await;
        match &res {
            Ok(number) => {
                debug!(channel_id = %self.channel_id, number, txs = acks.len(), "wrote block");
                for ack in acks.into_iter().chain(self.dup_acks.drain(..)) {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(stop) => {
                for ack in acks.into_iter().chain(self.dup_acks.drain(..)) {
                    let _ = ack.send(Err(stop_error(stop.clone())));
                }
            }
        }
        res.map(|_| ())
    }
}

/// What the envelopes of a block that did not become durable are told.
fn stop_error(stop: AppendStop) -> ChainError {
    match stop {
        AppendStop::Shutdown => ChainError::Enqueue("orderer shutting down".into()),
        AppendStop::Fatal(why) => ChainError::NotReady(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::devcrypto::{DevOrg, NodeOu};
    use fabric_common::msp::LocalSigner;
    use fabric_ledger::{Fault, FaultyIo, EIO_ERRNO, ENOSPC_ERRNO};

    struct Fixture {
        _dir: tempfile::TempDir,
        handle: ChainHandle,
        reader: fabric_ledger::LedgerReader,
        faulty: Arc<FaultyIo>,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    /// A solo chain (one envelope per block) over a ledger whose appends go
    /// through a [`FaultyIo`].
    fn fixture() -> Fixture {
        fixture_with(0, Arc::new(AlwaysValid))
    }

    /// As [`fixture`], at config `sequence`, re-validating with `revalidate`.
    fn fixture_with(sequence: u64, revalidate: Arc<dyn Revalidate + Send + Sync>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let org = DevOrg::create(&dir.path().join("org"), "SampleOrg", "example.com").unwrap();
        let msp = org.issue("orderer.example.com", NodeOu::Orderer).unwrap();
        let signer = Arc::new(LocalSigner::load(&msp, "SampleOrg").unwrap());
        let mut ledger = Ledger::open(dir.path().join("ledger"), "testchannel").unwrap();
        let genesis = fabric_common::block::new_block(0, vec![], vec![b"genesis".to_vec()]);
        ledger.append(&genesis).unwrap();
        let faulty = Arc::new(FaultyIo::new());
        ledger.set_append_io(faulty.clone());
        let reader = ledger.reader();
        let settings = SoloSettings {
            batch_size: BatchSize {
                max_message_count: 1,
                absolute_max_bytes: 1 << 20,
                preferred_max_bytes: 1 << 20,
            },
            batch_timeout: Duration::from_millis(20),
            sequence,
            exactly_once: false,
        };
        let shutdown = CancellationToken::new();
        let hooks = SoloHooks {
            sink: Arc::new(NoConfigSink),
            revalidate,
        };
        let (handle, task) = start_with_hooks(
            "testchannel".into(),
            settings,
            BlockWriter::new(signer, Some(&genesis)),
            ledger,
            hooks,
            shutdown.clone(),
        );
        Fixture {
            _dir: dir,
            handle,
            reader,
            faulty,
            shutdown,
            task,
        }
    }

    /// Refuses envelopes that start with `bad`.
    #[derive(Debug)]
    struct RefusesBad;

    impl Revalidate for RefusesBad {
        fn normal(&self, env: &[u8]) -> Result<(), String> {
            if env.starts_with(b"bad") {
                Err("writer removed".into())
            } else {
                Ok(())
            }
        }
        fn config(&self, env: &[u8]) -> Result<Vec<u8>, String> {
            self.normal(env).map(|_| env.to_vec())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_envelope_validated_at_an_older_config_is_validated_again_as_fabric_solo_does() {
        let f = fixture_with(1, Arc::new(RefusesBad));
        let ack = |h: &ChainHandle, env: &'static [u8], seq: u64| {
            let h = h.clone();
            async move {
                h.submit(env.to_vec(), env.len() as u64, seq)
                    .await
                    .unwrap()
                    .await
                    .unwrap()
            }
        };
        // Validated at sequence 0, the config is at 1: checked again.
        assert_eq!(ack(&f.handle, b"good-old", 0).await, Ok(()));
        let refused = ack(&f.handle, b"bad-old", 0).await.unwrap_err();
        assert!(matches!(refused, ChainError::Invalid(_)), "{refused:?}");
        // Validated at the current sequence: ordered as is.
        assert_eq!(ack(&f.handle, b"bad-current", 1).await, Ok(()));
        let blocks: Vec<Vec<u8>> = (1..f.reader.height())
            .map(|n| f.reader.get(n).unwrap().data.unwrap().data.concat())
            .collect();
        assert_eq!(blocks, vec![b"good-old".to_vec(), b"bad-current".to_vec()]);
        f.shutdown.cancel();
        f.task.await.unwrap();
    }

    async fn wait_state(handle: &ChainHandle, want: impl Fn(&ChainState) -> bool) -> ChainState {
        let mut rx = handle.subscribe_state();
        let state = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| want(s)))
            .await
            .expect("state not reached in time")
            .unwrap()
            .clone();
        state
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_stalls_the_chain_and_it_resumes_without_losing_the_block() {
        let f = fixture();
        let ack = f.handle.submit(b"tx-1".to_vec(), 4, 0).await.unwrap();
        assert_eq!(ack.await.unwrap(), Ok(()));
        assert_eq!(f.reader.height(), 2);

        for fault in [
            Fault::Write {
                after_bytes: 17,
                errno: ENOSPC_ERRNO,
            },
            Fault::Sync { errno: EIO_ERRNO },
        ] {
            let height = f.reader.height();
            f.faulty.set(Some(fault));
            let mut ack = f.handle.submit(b"tx-stuck".to_vec(), 8, 0).await.unwrap();
            let ChainState::Stalled(why) =
                wait_state(&f.handle, |s| matches!(s, ChainState::Stalled(_))).await
            else {
                unreachable!()
            };
            assert!(why.contains("blockfile_000000"), "{why}");
            let errno = match fault {
                Fault::Write { errno, .. } | Fault::Sync { errno } => errno,
            };
            assert!(why.contains(&format!("os error {errno}")), "{why}");
            // Broadcast is refused (SERVICE_UNAVAILABLE) while stalled ...
            let refused = f.handle.wait_ready().await.unwrap_err();
            assert!(matches!(refused, ChainError::NotReady(_)), "{refused:?}");
            // ... the stuck envelope is not acknowledged, nothing partial is
            // visible, and the chain keeps retrying.
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert!(ack.try_recv().is_err(), "acknowledged before durable");
            assert_eq!(f.reader.height(), height);
            assert!(f.faulty.failures() >= 2, "not retried");

            f.faulty.set(None);
            let res = tokio::time::timeout(Duration::from_secs(10), ack).await;
            assert_eq!(res.unwrap().unwrap(), Ok(()));
            assert_eq!(f.handle.state(), ChainState::Ready);
            assert_eq!(f.reader.height(), height + 1);
            let block = f.reader.get(height).unwrap();
            assert_eq!(block.data.unwrap().data, vec![b"tx-stuck".to_vec()]);
        }

        // The chain goes on normally afterwards.
        let ack = f.handle.submit(b"tx-2".to_vec(), 4, 0).await.unwrap();
        assert_eq!(ack.await.unwrap(), Ok(()));
        f.shutdown.cancel();
        f.task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_while_stalled_answers_the_stuck_envelope_unavailable() {
        let f = fixture();
        f.faulty.set(Some(Fault::Write {
            after_bytes: 0,
            errno: ENOSPC_ERRNO,
        }));
        let ack = f.handle.submit(b"tx".to_vec(), 2, 0).await.unwrap();
        wait_state(&f.handle, |s| matches!(s, ChainState::Stalled(_))).await;
        f.shutdown.cancel();
        let res = tokio::time::timeout(Duration::from_secs(10), ack).await;
        assert!(matches!(res.unwrap().unwrap(), Err(ChainError::Enqueue(_))));
        f.task.await.unwrap();
        assert_eq!(f.reader.height(), 1);
    }
}
