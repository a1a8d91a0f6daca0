//! ④–⑥ The Kafka chain task: start-up (topic, producer, CONNECT,
//! consumer), consumption through the pure [`super::decide::Decider`], the
//! batch timer, consumer-error handling (Fabric's `errorChan`), writing
//! blocks, and catch-up from other OSNs when the partition was pruned past
//! the chain's position ([`super::catchup`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::client::{ChainConsumer, ChainProducer};
use fabric_ledger::Ledger;
use fabric_protos::orderer::{KafkaMessage, KafkaMetadata};
use prost::Message as _;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::catchup::{self, config_sources, Verifier, CATCH_UP_BACKOFF_MIN, CATCH_UP_LOG_EVERY};
use super::decide::{
    position_check, pull_first, resume_position, Action, Decider, Offsets, Resume,
};
use super::health::health_probe;
use super::{connect_message, produce, retry, ChainHooks, KafkaSettings, PARTITION};
use crate::blockcutter::BatchSize;
use crate::blockwriter::BlockWriter;
use crate::consensus::{config_effect, ChainState, ConfigEffect};
use crate::limits::{KAFKA_BACKLOG_STALL, KAFKA_MAX_BACKLOG};

pub(super) struct KafkaChain {
    pub(super) health_tx: watch::Sender<Option<String>>,
    /// `Some(reason)` while consumption is errored (Fabric's closed `errorChan`).
    pub(super) errored_tx: watch::Sender<Option<String>>,
    /// The decider's [`Decider::reprocessing_pending`], for Broadcast.
    pub(super) reprocessing_tx: watch::Sender<bool>,
    pub(super) channel_id: String,
    pub(super) settings: Arc<KafkaSettings>,
    pub(super) batch_size: BatchSize,
    pub(super) batch_timeout: Duration,
    pub(super) offsets: Offsets,
    pub(super) decider: Option<Decider>,
    pub(super) writer: BlockWriter,
    pub(super) ledger: Ledger,
    pub(super) state_tx: watch::Sender<ChainState>,
    /// The last offset the chain processed, for the produce side's
    /// back-pressure ([`produce::Backlog`]); published every
    /// [`CONSUMED_EVERY`] messages and at each block.
    pub(super) consumed_tx: watch::Sender<i64>,
    pub(super) hooks: ChainHooks,
    /// The runtime that started the chain (the gRPC one): the produce task
    /// runs there, next to the Broadcast streams that feed it.
    pub(super) io: tokio::runtime::Handle,
}

/// Fabric's consumer-error rule (`processMessagesToBlocks`): the first
/// consumption error starts a timer of `Kafka.Retry.NetworkTimeouts.ReadTimeout`;
/// a message consumed before it fires cancels it; when it fires the chain is
/// errored (Deliver refuses) until a message is consumed again.
#[derive(Debug, Default)]
struct ConsumeErrors {
    /// The first error of the current run and when the timer fires.
    pending: Option<(Instant, String)>,
    /// Errored (the timer fired) and not yet resumed.
    errored: bool,
}

impl ConsumeErrors {
    /// An error; `true` when it started the timer.
    fn failed(&mut self, e: &KafkaError, read_timeout: Duration) -> bool {
        if self.pending.is_some() || self.errored {
            return false;
        }
        self.pending = Some((Instant::now() + read_timeout, e.to_string()));
        true
    }

    /// Resolves when the timer fires (never while none runs).
    fn timeout(&self) -> impl Future<Output = ()> + 'static {
        let at = self.pending.as_ref().map(|(at, _)| *at);
        async move {
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        }
    }

    /// The timer fired: errored, with the reason.
    fn expire(&mut self) -> String {
        self.errored = true;
        let first = self.pending.take().map(|(_, e)| e).unwrap_or_default();
        format!("Kafka consumption has been failing (first error: {first}); consenter error")
    }

    /// A message was consumed; `true` when that ends an errored period.
    fn resumed(&mut self) -> bool {
        self.pending = None;
        std::mem::take(&mut self.errored)
    }
}

/// Why [`KafkaChain::consume`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConsumeEnd {
    /// Shutdown, or the chain stopped (its state says why).
    Stop,
    /// The partition was pruned past the chain's position: catch up.
    Pruned { needed: i64, log_start: i64 },
}

/// How one catch-up source ended.
#[derive(Debug)]
enum PullEnd {
    /// The chain reached a block after which the partition holds what
    /// follows: consume Kafka again.
    Caught,
    /// Shutdown, or appending failed for good (the chain is halted).
    Stop,
    /// The source failed or served a block that failed verification: try
    /// the next one.
    Failed(String),
}

/// What [`KafkaChain::open_consumer`] found in the partition.
enum Opened {
    /// Assigned at the resume offset.
    Consumer(ChainConsumer),
    /// The resume offset was pruned.
    Pruned { needed: i64, log_start: i64 },
    /// Far behind the partition's end: pull from other OSNs first.
    Behind { start: i64, high: i64 },
}

/// Where pulling from one source stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PullUntil {
    /// At the first block whose offsets reach the partition's log start
    /// (catch-up after pruning); a source that ends before fails.
    LogStart(i64),
    /// At the source's newest block (pulling ahead at start-up).
    SourceEnd,
}

/// How often (in messages) the chain publishes its consumed offset.
const CONSUMED_EVERY: i64 = 64;

impl KafkaChain {
    async fn setup(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Option<Result<(ChainProducer, ChainConsumer), String>> {
        let s = &*self.settings;
        let topic = self.channel_id.clone();
        // 0. Reach the brokers (a refused login or certificate is named here).
        let reach = retry("connect to the Kafka brokers", s, shutdown, || async {
            let s2 = Arc::clone(&self.settings);
            let timeout = s
                .dial_timeout
                .clamp(Duration::from_secs(1), Duration::from_secs(10));
            tokio::task::spawn_blocking(move || s2.metadata_diagnosed(None, timeout).map(|_| ()))
                .await
                .map_err(|e| e.to_string())?
        })
        .await?;
        if let Err(e) = reach {
            return Some(Err(e));
        }
        // 1. The topic (a failure only logs: auto-creation may still work, as in Fabric).
        let created = retry("create topic", s, shutdown, || async {
            let admin = s.admin().map_err(|e| e.to_string())?;
            let t = NewTopic::new(&topic, 1, TopicReplication::Fixed(s.replication_factor));
            let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(3)));
            let res = admin
                .create_topics([&t], &opts)
                .await
                .map_err(|e| e.to_string())?;
            for r in res {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((t, code)) => return Err(format!("creating topic {t}: {code}")),
                }
            }
            Ok::<_, String>(())
        })
        .await?;
        if let Err(e) = created {
            warn!(channel_id = %self.channel_id, error = %e, "failed to create Kafka topic; relying on auto-creation");
        }
        // 2. Producer and 3. CONNECT (which also proves the partition is writable).
        let producer = retry("post CONNECT", s, shutdown, || async {
            let p = s.producer().map_err(|e| e.to_string())?;
            let payload = connect_message();
            let rec = super::record(&topic, &payload);
            let sent = tokio::time::timeout(s.ack_timeout(), p.send(rec, Duration::from_secs(10)))
                .await
                .map_err(|_| format!("not acknowledged within {:?}", s.ack_timeout()))?;
            match sent {
                Ok(d) => {
                    debug!(channel_id = %topic, offset = d.offset, "posted CONNECT");
                    Ok(p)
                }
                Err((e, _)) => Err(format!(
                    "posting CONNECT to topic {topic} partition {PARTITION}: {e}"
                )),
            }
        })
        .await?;
        let producer = match producer {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        // 4. Consumer at the resume offset, if the partition still holds it
        //    (else catch-up from other OSNs first).
        let consumer = self.open_consumer(shutdown).await?;
        Some(consumer.map(|c| (producer, c)))
    }

    /// A consumer assigned at the chain's resume offset. When the partition
    /// no longer holds it, the chain catches up from other OSNs
    /// ([`Self::catch_up`]) and tries again; without catch-up it halts
    /// (`Err`). When it does hold it but more than
    /// `Kafka.CatchUp.PullThreshold` records lie between it and the
    /// partition's end, the chain first pulls what other OSNs already have
    /// ([`Self::pull_ahead`], once) and then consumes from the last pulled
    /// block's offsets. `None`: shutdown, or the chain stopped (its state
    /// says why).
    async fn open_consumer(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Option<Result<ChainConsumer, String>> {
        let mut threshold = self.hooks.catch_up.as_ref().map(|h| h.pull_threshold);
        loop {
            let offsets = self.offsets;
            let topic = self.channel_id.clone();
            let s = Arc::clone(&self.settings);
            let opened = retry("set up consumer", &s, shutdown, || async {
                let c = s.consumer().map_err(|e| e.to_string())?;
                let (log_start, high) = c
                    .fetch_watermarks(&topic, PARTITION, Duration::from_secs(5))
                    .map_err(|e| e.to_string())?;
                let start = match resume_position(&offsets, log_start) {
                    Resume::From(o) => o,
                    Resume::Pruned { needed, log_start } => {
                        return Ok::<_, String>(Opened::Pruned { needed, log_start });
                    }
                };
                if threshold.is_some_and(|t| pull_first(start, high, t)) {
                    return Ok(Opened::Behind { start, high });
                }
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&topic, PARTITION, Offset::Offset(start))
                    .map_err(|e| e.to_string())?;
                c.assign(&tpl).map_err(|e| e.to_string())?;
                // Metadata round trip proves the brokers are reachable.
                c.fetch_metadata(Some(&topic), Duration::from_secs(5))
                    .map_err(|e| e.to_string())?;
                Ok(Opened::Consumer(c))
            })
            .await?;
            match opened {
                Ok(Opened::Consumer(c)) => return Some(Ok(c)),
                Ok(Opened::Behind { start, high }) => {
                    threshold = None;
                    if !self.pull_ahead(start, high, shutdown).await {
                        return None;
                    }
                }
                Ok(Opened::Pruned { needed, log_start }) => {
                    threshold = None;
                    let why = self.pruned(needed, log_start);
                    if self.hooks.catch_up.is_none() {
                        return Some(Err(why));
                    }
                    if !self.catch_up(needed, log_start, shutdown).await {
                        return None;
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The start-up shortcut (issue #15, part 2): the partition still holds
    /// the chain's resume offset `start`, but `high - start` records are
    /// more than `Kafka.CatchUp.PullThreshold`, so the chain pulls, verifies
    /// and appends the blocks the sources have (each source once, from the
    /// height reached; no waiting), and then consumes Kafka from the last
    /// pulled block's `last_offset_persisted + 1` — the rest, if a source is
    /// itself behind, comes from Kafka. A source failing or serving a bad
    /// block is logged and the next one is tried; none answering only means
    /// replaying the partition, as without the shortcut. `false`: shutdown,
    /// or the chain halted.
    async fn pull_ahead(&mut self, start: i64, high: i64, shutdown: &CancellationToken) -> bool {
        let Some(hooks) = self.hooks.catch_up.clone() else {
            return true;
        };
        let ch = self.channel_id.clone();
        let from = self.ledger.height();
        let mut verifier = match self.tip_verifier() {
            Ok(v) => v,
            Err(e) => {
                warn!(channel_id = %ch, error = %e, "cannot verify blocks from other OSNs; replaying the partition instead");
                return true;
            }
        };
        let sources = if hooks.sources.is_empty() {
            config_sources(verifier.config())
        } else {
            hooks.sources.clone()
        };
        if sources.is_empty() {
            info!(channel_id = %ch, start, high, "far behind the partition's end but no catch-up source; replaying it");
            return true;
        }
        let reason = format!(
            "starting: {} records between offset {start} and the end of the Kafka partition {ch}/{PARTITION} \
             (more than Kafka.CatchUp.PullThreshold {}); pulling blocks from {from} on from other OSNs first",
            high - start,
            hooks.pull_threshold
        );
        info!(channel_id = %ch, height = from, start, high, threshold = hooks.pull_threshold, sources = ?sources,
              "far behind the partition's end: pulling blocks from other OSNs before consuming Kafka");
        self.state_tx
            .send_replace(ChainState::CatchingUp(reason.clone()));
        crate::metrics::kafka_catchup_height(&ch, from);
        let began = std::time::Instant::now();
        for addr in &sources {
            let end = self
                .pull_from(
                    &*hooks.source,
                    addr,
                    &mut verifier,
                    PullUntil::SourceEnd,
                    &reason,
                    shutdown,
                )
                .await;
            match end {
                PullEnd::Caught => break,
                PullEnd::Stop => return false,
                PullEnd::Failed(why) => {
                    warn!(channel_id = %ch, source = %addr, height = self.ledger.height(), error = %why,
                          "pulling ahead: source failed; trying the next one");
                }
            }
        }
        crate::metrics::kafka_catchup_height(&ch, 0);
        let pulled = self.ledger.height() - from;
        let secs = began.elapsed().as_secs_f64();
        info!(channel_id = %ch, pulled, height = self.ledger.height(), seconds = secs,
              blocks_per_second = pulled as f64 / secs.max(1e-9),
              start_offset = self.offsets.start_offset(), high,
              "pulled ahead from other OSNs; consuming Kafka from the last pulled block's offsets");
        true
    }

    /// A verifier after the ledger's last block, under the config in force.
    fn tip_verifier(&self) -> Result<Verifier, String> {
        let reader = self.ledger.reader();
        tokio::task::block_in_place(|| -> Result<_, String> {
            let last = reader
                .last_block()
                .map_err(|e| e.to_string())?
                .ok_or("the ledger is empty")?;
            let lc = fabric_common::block::last_config_index(&last).unwrap_or(0);
            let config_block = reader.get(lc).map_err(|e| e.to_string())?;
            let config = crate::channelconfig::ChannelConfig::from_block(&config_block)
                .map_err(|e| format!("config block {lc}: {e}"))?;
            Verifier::new(&last, config)
        })
    }

    /// The partition no longer holds the record this chain needs next: say
    /// so. Nothing is consumed: blocks cut from what remains could not be
    /// tied to this chain (a fork). With catch-up the chain then pulls the
    /// missing blocks from other OSNs; without, it halts. Either way
    /// Broadcast and Deliver answer SERVICE_UNAVAILABLE meanwhile.
    fn pruned(&self, needed: i64, log_start: i64) -> String {
        let next = if self.hooks.catch_up.is_some() {
            "catching up: pulling the missing blocks from other OSNs of the channel (Kafka.CatchUp.Sources, \
             else the channel's orderer addresses)"
        } else {
            "restore this OSN's ledger from another OSN of the channel or keep retention off"
        };
        let why = format!(
            "the Kafka partition {}/{PARTITION} starts at offset {log_start}, but this chain needs offset {needed} \
             (the records after its last block were pruned by retention or DeleteRecords): \
             blocks cut from a later offset would fork the channel; {next}",
            self.channel_id
        );
        error!(channel_id = %self.channel_id, needed, log_start, height = self.ledger.height(),
               "cannot resume the Kafka chain: {why}");
        why
    }

    /// Catch-up ([`super::catchup`]): pulls blocks from the chain's height
    /// on from the sources in turn, verifies each and appends it, until a
    /// block whose `KafkaMetadata` reaches the partition's log start
    /// (`true`: consume Kafka again). A failing source, or one serving a
    /// block that fails verification, is logged and the next one is tried;
    /// when none could help the chain waits (1 s doubling to 30 s) and tries
    /// all again. Meanwhile the chain is `CatchingUp`: Broadcast and Deliver
    /// answer SERVICE_UNAVAILABLE. `false`: shutdown, or the chain halted.
    async fn catch_up(
        &mut self,
        needed: i64,
        log_start: i64,
        shutdown: &CancellationToken,
    ) -> bool {
        let Some(hooks) = self.hooks.catch_up.clone() else {
            return false;
        };
        let ch = self.channel_id.clone();
        let from = self.ledger.height();
        let reason = format!(
            "catching up: the Kafka partition {ch}/{PARTITION} starts at offset {log_start} and this chain needs \
             offset {needed}; pulling blocks from {from} on from other OSNs"
        );
        self.state_tx
            .send_replace(ChainState::CatchingUp(reason.clone()));
        crate::metrics::kafka_catchup_height(&ch, from);
        let mut verifier = match self.tip_verifier() {
            Ok(v) => v,
            Err(e) => {
                let why = format!("cannot start catching up from this OSN's ledger: {e}");
                error!(channel_id = %ch, error = %e, "cannot start catching up; chain halted");
                self.state_tx.send_replace(ChainState::Halted(why));
                return false;
            }
        };
        info!(channel_id = %ch, height = from, needed, log_start, "catching up from other OSNs");
        let mut wait = CATCH_UP_BACKOFF_MIN;
        loop {
            let sources = if hooks.sources.is_empty() {
                config_sources(verifier.config())
            } else {
                hooks.sources.clone()
            };
            for addr in &sources {
                match self
                    .pull_from(
                        &*hooks.source,
                        addr,
                        &mut verifier,
                        PullUntil::LogStart(log_start),
                        &reason,
                        shutdown,
                    )
                    .await
                {
                    PullEnd::Caught => {
                        crate::metrics::kafka_catchup_height(&ch, 0);
                        info!(channel_id = %ch, source = %addr, height = self.ledger.height(),
                              pulled = self.ledger.height() - from,
                              start_offset = self.offsets.start_offset(), log_start,
                              "caught up from another OSN; consuming Kafka again");
                        return true;
                    }
                    PullEnd::Stop => return false,
                    PullEnd::Failed(why) => {
                        warn!(channel_id = %ch, source = %addr, height = self.ledger.height(), error = %why,
                              "catch-up source failed; trying the next one");
                    }
                }
            }
            let missing = format!(
                "blocks {} and after (Kafka offset {} on was pruned; the partition starts at {log_start})",
                verifier.next_number(),
                self.offsets.start_offset().max(0)
            );
            if sources.is_empty() {
                warn!(channel_id = %ch, %missing, retry_in_s = wait.as_secs(),
                      "no catch-up source: set Kafka.CatchUp.Sources (ORDERER_KAFKA_CATCHUP_SOURCES) or the channel's OrdererAddresses; waiting");
            } else {
                warn!(channel_id = %ch, %missing, sources = ?sources, retry_in_s = wait.as_secs(),
                      "no catch-up source could provide the missing blocks; waiting");
            }
            let tried = if sources.is_empty() {
                "no catch-up source is configured (Kafka.CatchUp.Sources) and the channel config lists no orderer address".to_string()
            } else {
                format!(
                    "no source could provide them yet (tried {})",
                    sources.join(", ")
                )
            };
            self.state_tx
                .send_replace(ChainState::CatchingUp(format!("{reason}; {tried}")));
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = catchup::backoff(wait);
        }
    }

    /// Pulls from one source (see [`Self::catch_up`]).
    async fn pull_from(
        &mut self,
        source: &dyn catchup::BlockSource,
        addr: &str,
        verifier: &mut Verifier,
        until: PullUntil,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> PullEnd {
        let ch = self.channel_id.clone();
        let start = verifier.next_number();
        let mut stream = tokio::select! {
            _ = shutdown.cancelled() => return PullEnd::Stop,
            r = source.open(addr, &ch, start) => match r {
                Ok(s) => s,
                Err(e) => return PullEnd::Failed(e),
            },
        };
        let mut pulled: u64 = 0;
        loop {
            let item = tokio::select! {
                _ = shutdown.cancelled() => return PullEnd::Stop,
                i = stream.next() => i,
            };
            let block = match item {
                None if until == PullUntil::SourceEnd => return PullEnd::Caught,
                None => break,
                Some(Err(e)) => {
                    return PullEnd::Failed(format!("after {pulled} verified blocks: {e}"))
                }
                Some(Ok(b)) => b,
            };
            let number = block.header.as_ref().map_or(0, |h| h.number);
            let verified = match verifier.verify(&block) {
                Ok(v) => v,
                Err(r) => {
                    error!(channel_id = %ch, source = %addr, number, reason = %r,
                           "rejected a block pulled for catch-up: not appended; trying another source");
                    return PullEnd::Failed(format!("block {number} rejected: {r}"));
                }
            };
            match crate::consensus::append_durably(
                &mut self.ledger,
                &block,
                &ch,
                &self.state_tx,
                shutdown,
            )
            .await
            {
                Ok(()) => {}
                Err(_) => return PullEnd::Stop,
            }
            // A retried append sets Ready: the chain is still catching up.
            if *self.state_tx.borrow() == ChainState::Ready {
                self.state_tx
                    .send_replace(ChainState::CatchingUp(reason.to_string()));
            }
            pulled += 1;
            let lop = verified.kafka.last_offset_persisted;
            self.committed_pulled(&block, verified);
            if number % CATCH_UP_LOG_EVERY == 0 {
                info!(channel_id = %ch, source = %addr, number, last_offset_persisted = lop, ?until,
                      "catching up: verified and appended");
            }
            if let PullUntil::LogStart(log_start) = until {
                if lop + 1 >= log_start {
                    return PullEnd::Caught;
                }
            }
        }
        PullEnd::Failed(format!(
            "served {pulled} blocks up to {} and ended, before a block whose Kafka offsets reach the partition's start ({until:?})",
            verifier.next_number() - 1
        ))
    }

    /// The chain's state after a pulled block was appended, as after a
    /// block it cut: writer, offsets, metrics, a config block applied.
    fn committed_pulled(&mut self, block: &fabric_protos::common::Block, v: catchup::Verified) {
        self.writer.restart_after(block);
        self.offsets = Offsets::from_metadata(Some(&v.kafka));
        self.consumed_tx.send_replace(v.kafka.last_offset_persisted);
        crate::metrics::kafka_last_offset_persisted(
            &self.channel_id,
            v.kafka.last_offset_persisted,
        );
        crate::metrics::kafka_catchup_height(&self.channel_id, v.number + 1);
        if let Some(cfg) = v.new_config {
            info!(channel_id = %self.channel_id, number = v.number, sequence = cfg.sequence, "pulled a config block");
            self.batch_size = cfg.batch_size;
            self.batch_timeout = cfg.batch_timeout;
            self.hooks.config_seq = cfg.sequence;
            self.hooks.legacy_orderer_metadata = cfg.legacy_orderer_metadata();
            self.hooks.exactly_once = cfg.exactly_once();
            self.hooks.resubmission = cfg.resubmission();
        }
        if let Some(env) = v.config_envelope {
            self.hooks.sink.config_committed(&self.channel_id, &env);
        }
    }

    /// librdkafka reported the consumer's position out of range. If the
    /// records from `next` on were pruned, the chain halts (`Err`); if they
    /// are still there (a broker came back behind its peers), consumption is
    /// pointed at `next` again and goes on.
    fn out_of_range(&self, consumer: &ChainConsumer, next: i64) -> Result<(), ConsumeEnd> {
        let watermarks = tokio::task::block_in_place(|| {
            consumer.fetch_watermarks(&self.channel_id, PARTITION, Duration::from_secs(5))
        });
        let log_start = match watermarks {
            Ok((low, _)) => low,
            Err(e) => {
                warn!(channel_id = %self.channel_id, next, error = %e, "position out of range and the partition's offsets are unknown; retrying");
                return Ok(());
            }
        };
        match position_check(next, log_start) {
            Resume::Pruned { needed, log_start } => {
                let why = self.pruned(needed, log_start);
                if self.hooks.catch_up.is_some() {
                    return Err(ConsumeEnd::Pruned { needed, log_start });
                }
                self.state_tx.send_replace(ChainState::Halted(why));
                Err(ConsumeEnd::Stop)
            }
            Resume::From(at) => {
                warn!(channel_id = %self.channel_id, offset = at, log_start, "consumer position reported out of range while the partition still holds it; consuming from it again");
                let mut tpl = TopicPartitionList::new();
                let seek = tpl
                    .add_partition_offset(&self.channel_id, PARTITION, Offset::Offset(at))
                    .and_then(|_| consumer.assign(&tpl));
                if let Err(e) = seek {
                    warn!(channel_id = %self.channel_id, error = %e, "re-assigning the partition failed; librdkafka retries");
                }
                Ok(())
            }
        }
    }

    pub(super) async fn run(
        mut self,
        submit_rx: mpsc::Receiver<crate::consensus::Submission>,
        shutdown: CancellationToken,
    ) {
        info!(channel_id = %self.channel_id, last_offset_persisted = self.offsets.last_offset_persisted,
              height = self.ledger.height(), brokers = ?self.settings.brokers, "starting Kafka chain");
        let (producer, mut consumer) = match self.setup(&shutdown).await {
            None => return,
            Some(Ok(pc)) => pc,
            Some(Err(e)) => {
                error!(channel_id = %self.channel_id, error = %e, "Kafka start-up failed after all retries; chain halted");
                self.state_tx.send_replace(ChainState::Halted(e));
                return;
            }
        };
        let producer = Arc::new(producer);
        let probe_stop = shutdown.child_token();
        tokio::spawn(health_probe(
            self.channel_id.clone(),
            Arc::clone(&producer),
            self.health_tx.clone(),
            probe_stop.clone(),
        ));
        let _probe_guard = probe_stop.drop_guard();
        let backlog = produce::Backlog::new(
            self.consumed_tx.subscribe(),
            KAFKA_MAX_BACKLOG,
            KAFKA_BACKLOG_STALL,
        );
        let produce_task = self.io.spawn(produce::run(
            self.channel_id.clone(),
            Arc::clone(&producer),
            submit_rx,
            self.state_tx.subscribe(),
            backlog,
            self.settings.ack_timeout(),
            shutdown.clone(),
        ));
        loop {
            self.start_consuming();
            match self.consume(consumer, &producer, shutdown.clone()).await {
                ConsumeEnd::Stop => break,
                // The partition was pruned under the running chain: pull
                // what is missing, then consume again from the last pulled
                // block's offsets (a pending batch is dropped: the pulled
                // blocks hold it).
                ConsumeEnd::Pruned { needed, log_start } => {
                    self.decider = None;
                    if !self.catch_up(needed, log_start, &shutdown).await {
                        break;
                    }
                    consumer = match self.open_consumer(&shutdown).await {
                        None => break,
                        Some(Ok(c)) => c,
                        Some(Err(e)) => {
                            error!(channel_id = %self.channel_id, error = %e, "cannot consume Kafka again after catching up; chain halted");
                            self.state_tx.send_replace(ChainState::Halted(e));
                            break;
                        }
                    };
                }
            }
        }
        let _ = produce_task.await;
        info!(channel_id = %self.channel_id, "Kafka chain stopped");
    }

    /// A new decider from the chain's last block, and the chain ready.
    fn start_consuming(&mut self) {
        let reader = self.ledger.reader();
        let window = tokio::task::block_in_place(|| {
            crate::dedupe::EnvelopeWindow::seed_from_ledger(
                crate::dedupe::WindowLimits::DEFAULT,
                self.hooks.exactly_once,
                &reader,
            )
        });
        let mut decider =
            Decider::new(self.offsets, self.ledger.height().saturating_sub(1)).with_window(window);
        decider.set_resubmission(self.hooks.resubmission);
        if !self.hooks.resubmission {
            warn!(channel_id = %self.channel_id, "This orderer is running in compatibility mode (the channel has no V1_1 orderer capability: every message is re-validated when consumed, nothing is re-ordered)");
        }
        self.reprocessing_tx
            .send_replace(decider.reprocessing_pending());
        self.decider = Some(decider);
        self.errored_tx.send_replace(None);
        self.state_tx.send_replace(ChainState::Ready);
        crate::metrics::kafka_last_offset_persisted(
            &self.channel_id,
            self.offsets.last_offset_persisted,
        );
        info!(channel_id = %self.channel_id, start_offset = self.offsets.start_offset(), "Start phase completed successfully");
    }

    async fn consume(
        &mut self,
        consumer: ChainConsumer,
        producer: &ChainProducer,
        shutdown: CancellationToken,
    ) -> ConsumeEnd {
        let mut stream = consumer.stream();
        // The next offset to consume (after the last message consumed).
        let mut next = self
            .decider
            .as_ref()
            .map_or(0, |d| d.offsets().start_offset().max(0));
        let mut deadline: Option<Instant> = None;
        let mut errors = ConsumeErrors::default();
        loop {
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let errors_timeout = errors.timeout();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return ConsumeEnd::Stop,
                _ = errors_timeout => {
                    let why = errors.expire();
                    warn!(channel_id = %self.channel_id, reason = %why, "Closed the errorChan: consumption errors lasted Kafka.Retry.NetworkTimeouts.ReadTimeout; Deliver answers SERVICE_UNAVAILABLE until consumption resumes");
                    self.errored_tx.send_replace(Some(why));
                    // Nothing else may come through the partition to show that
                    // consumption resumed: a CONNECT will (Fabric does the same).
                    self.post_connect(producer, &shutdown);
                }
                _ = timer => {
                    deadline = None;
                    let Some(d) = self.decider.as_mut() else { return ConsumeEnd::Stop };
                    if let Action::Produce(m) = d.on_timer() {
                        self.produce_side(producer, m);
                    }
                }
                item = stream.next() => {
                    let Some(item) = item else { return ConsumeEnd::Stop };
                    let msg = match item {
                        Ok(m) => m,
                        Err(e) => {
                            warn!(channel_id = %self.channel_id, topic = %self.channel_id, partition = PARTITION, error = %e, "error during consumption");
                            if matches!(e, KafkaError::MessageConsumption(
                                RDKafkaErrorCode::OffsetOutOfRange | RDKafkaErrorCode::AutoOffsetReset
                            )) {
                                if let Err(end) = self.out_of_range(&consumer, next) {
                                    return end;
                                }
                            }
                            if errors.failed(&e, self.settings.read_timeout) {
                                warn!(channel_id = %self.channel_id, "Deliver sessions will be dropped if consumption errors continue");
                            }
                            continue;
                        }
                    };
                    if errors.resumed() {
                        self.errored_tx.send_replace(None);
                        info!(channel_id = %self.channel_id, offset = msg.offset(), "Marked consenter as available again");
                    }
                    let offset = msg.offset();
                    next = offset + 1;
                    let Some(payload) = msg.payload() else { continue };
                    let km = match KafkaMessage::decode(payload) {
                        Ok(km) => km,
                        Err(e) => {
                            error!(channel_id = %self.channel_id, offset, error = %e, "unable to unmarshal consumed message; skipping");
                            continue;
                        }
                    };
                    let Some(d) = self.decider.as_mut() else { return ConsumeEnd::Stop };
                    let seq = self.hooks.config_seq;
                    let actions = match d.on_message(offset, &km, seq, &self.batch_size, &*self.hooks.revalidate) {
                        Ok(a) => a,
                        Err(e) => {
                            error!(channel_id = %self.channel_id, offset, error = %e, "consenter stopped");
                            self.state_tx.send_replace(ChainState::Halted(e.to_string()));
                            return ConsumeEnd::Stop;
                        }
                    };
                    let mut wrote = false;
                    for a in actions {
                        match a {
                            Action::StartTimer => {
                                crate::metrics::block_fill_pending(&self.channel_id);
                                if deadline.is_none() {
                                    deadline = Some(Instant::now() + self.batch_timeout);
                                }
                            }
                            Action::StopTimer => deadline = None,
                            Action::Produce(m) => self.produce_side(producer, m),
                            Action::WriteBlock { data, metadata, is_config } => {
                                if !self.write(data, &metadata, is_config, &shutdown).await {
                                    return ConsumeEnd::Stop;
                                }
                                wrote = true;
                            }
                        }
                    }
                    if wrote || offset % CONSUMED_EVERY == 0 {
                        self.consumed_tx.send_replace(offset);
                    }
                    if let Some(d) = self.decider.as_ref() {
                        let pending = d.reprocessing_pending();
                        if *self.reprocessing_tx.borrow() != pending {
                            info!(channel_id = %self.channel_id, offset, pending, "Broadcast {} for a re-ordered config message (FAB-5969)", if pending { "waits" } else { "resumes" });
                            self.reprocessing_tx.send_replace(pending);
                        }
                    }
                }
            }
        }
    }

    /// Posts a CONNECT under Fabric's retry schedule, in the background.
    fn post_connect(&self, producer: &ChainProducer, shutdown: &CancellationToken) {
        let producer = producer.clone();
        let settings = Arc::clone(&self.settings);
        let topic = self.channel_id.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let posted = retry("post CONNECT", &settings, &shutdown, || async {
                let payload = connect_message();
                let rec = super::record(&topic, &payload);
                match tokio::time::timeout(
                    settings.ack_timeout(),
                    producer.send(rec, Duration::from_secs(10)),
                )
                .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e.to_string()),
                    Err(_) => Err(format!(
                        "not acknowledged within {:?}",
                        settings.ack_timeout()
                    )),
                }
            })
            .await;
            match posted {
                Some(Ok(())) => info!(channel_id = %topic, "CONNECT message posted successfully"),
                Some(Err(e)) => {
                    warn!(channel_id = %topic, error = %e, "cannot post CONNECT message")
                }
                None => {}
            }
        });
    }

    /// Produces a time-to-cut or resubmission; failures are only logged (as Fabric).
    fn produce_side(&self, producer: &ChainProducer, msg: KafkaMessage) {
        let bytes = msg.encode_to_vec();
        let topic = self.channel_id.clone();
        let rec = super::record(&topic, &bytes);
        match producer.send_result(rec) {
            Ok(fut) => {
                let channel_id = self.channel_id.clone();
                tokio::spawn(async move {
                    match fut.await {
                        Ok(Ok(_)) => {}
                        Ok(Err((e, _))) => {
                            warn!(%channel_id, error = %e, "producing to Kafka failed")
                        }
                        Err(_) => warn!(%channel_id, "producer dropped"),
                    }
                });
            }
            Err((e, _)) => {
                warn!(channel_id = %self.channel_id, error = %e, "cannot enqueue message to Kafka")
            }
        }
    }

    /// Writes the next block. While the ledger cannot be written (disk full)
    /// the chain is `Stalled` and retries the same block with backoff
    /// (consumption pauses; nothing is lost: the envelopes are in the
    /// partition, and after a restart the block is rebuilt from the offsets
    /// in the previous block). `false` when the chain must stop.
    async fn write(
        &mut self,
        data: Vec<Vec<u8>>,
        md: &KafkaMetadata,
        config_class: bool,
        shutdown: &CancellationToken,
    ) -> bool {
        // A config-class message is a block of its own; only a CONFIG moves LAST_CONFIG.
        let effect = if config_class {
            match data.first().map(|d| config_effect(d)) {
                Some(Ok((env, effect))) => Some((env, effect)),
                Some(Err(e)) => {
                    warn!(channel_id = %self.channel_id, error = %e, "config message does not parse; writing it as a plain block");
                    None
                }
                None => None,
            }
        } else {
            None
        };
        let is_config = matches!(effect, Some((_, ConfigEffect::NewConfig(_))));
        let md_bytes = md.encode_to_vec();
        let next = crate::consensus::BlockToCommit {
            data,
            is_config,
            consenter_metadata: &md_bytes,
            legacy_orderer_slot: self.hooks.legacy_orderer_metadata,
        };
        match crate::consensus::commit_block(
            &mut self.writer,
            &mut self.ledger,
            next,
            &self.channel_id,
            &self.state_tx,
            shutdown,
        )
        .await
        {
            Ok(number) => {
                debug!(channel_id = %self.channel_id, number, last_offset_persisted = md.last_offset_persisted, "wrote block");
                crate::metrics::kafka_last_offset_persisted(
                    &self.channel_id,
                    md.last_offset_persisted,
                );
                if let Some((env, effect)) = effect {
                    if let ConfigEffect::NewConfig(cfg) = effect {
                        info!(channel_id = %self.channel_id, number, sequence = cfg.sequence, "wrote config block");
                        self.batch_size = cfg.batch_size;
                        self.batch_timeout = cfg.batch_timeout;
                        self.hooks.config_seq = cfg.sequence;
                        self.hooks.legacy_orderer_metadata = cfg.legacy_orderer_metadata();
                        self.hooks.exactly_once = cfg.exactly_once();
                        self.hooks.resubmission = cfg.resubmission();
                        if let Some(d) = self.decider.as_mut() {
                            d.set_exactly_once(cfg.exactly_once());
                            d.set_resubmission(cfg.resubmission());
                        }
                    }
                    self.hooks.sink.config_committed(&self.channel_id, &env);
                }
                true
            }
            Err(_) => false,
        }
    }
}
