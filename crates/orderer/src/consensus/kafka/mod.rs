//! The Kafka consenter (`OrdererType: kafka`), wire-compatible with Fabric's:
//! one topic per channel named as the channel ID, partition 0, record key
//! `"0"`, value a marshaled `orderer.KafkaMessage`; offsets kept in each
//! block's `KafkaMetadata`, never in consumer groups.
//!
//! * ③ produce ([`produce`]): Broadcast submissions become `Regular`
//!   messages, produced pipelined and batched by librdkafka with
//!   `acks=all` (idempotent); SUCCESS goes back only once Kafka acknowledged.
//! * ④ consume: from `last_offset_persisted + 1`, in the chain task; when
//!   the partition no longer holds it, the chain first pulls and verifies
//!   the missing blocks from other OSNs ([`catchup`]).
//! * ⑤ decide ([`decide`]): pure per-message decisions (cutter, time-to-cut).
//! * ⑥ blocks are written by the chain task, which owns the ledger writer.
//!
//! Start-up follows Fabric's guide: create the topic, a producer, post a
//! `CONNECT`, a consumer at the resume offset — each step retried every
//! `Kafka.Retry.ShortInterval` for `ShortTotal`, then every `LongInterval`
//! for `LongTotal`. Until then the chain is `Starting` (Broadcast and
//! Deliver answer SERVICE_UNAVAILABLE).

pub mod catchup;
pub mod chain;
pub mod check;
pub mod client;
pub mod decide;
pub mod health;
pub mod inspect;
pub mod produce;
pub mod stats;

pub use client::{retry, transport_hint, KafkaSettings};
pub use health::{HEALTH_PROBE_INTERVAL, HEALTH_PROBE_TIMEOUT};

use std::sync::Arc;
use std::time::Duration;

use fabric_ledger::Ledger;
use fabric_protos::orderer::{kafka_message, KafkaMessage, KafkaMetadata};
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use self::decide::{AlwaysValid, Offsets};
use super::{ChainHandle, ChainState, ConfigSink, NoConfigSink};
use crate::blockcutter::BatchSize;
use crate::blockwriter::BlockWriter;
use crate::limits::SUBMIT_QUEUE_LEN;

/// The partition every channel uses.
pub const PARTITION: i32 = 0;
/// The record key Fabric writes.
pub const RECORD_KEY: &str = "0";
/// Fabric's producer message limit (sarama MaxRequestSize − 1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 103_809_024;

/// A record for `topic`'s partition 0 with Fabric's key, as every OSN writes them.
pub(crate) fn record<'a>(
    topic: &'a str,
    payload: &'a [u8],
) -> rdkafka::producer::FutureRecord<'a, str, [u8]> {
    rdkafka::producer::FutureRecord::to(topic)
        .partition(PARTITION)
        .key(RECORD_KEY)
        .payload(payload)
}

/// A CONNECT message (posted at start-up, after consumption errors, and by the health check).
pub(crate) fn connect_message() -> Vec<u8> {
    KafkaMessage {
        r#type: Some(kafka_message::Type::Connect(Default::default())),
    }
    .encode_to_vec()
}

/// Starts a Kafka chain over `ledger` and returns its handle.
#[allow(clippy::too_many_arguments)]
pub fn start(
    channel_id: String,
    settings: KafkaSettings,
    batch_size: BatchSize,
    batch_timeout: Duration,
    writer: BlockWriter,
    ledger: Ledger,
    last_metadata: Option<KafkaMetadata>,
    shutdown: CancellationToken,
) -> (ChainHandle, tokio::task::JoinHandle<()>) {
    let hooks = ChainHooks {
        config_seq: 0,
        legacy_orderer_metadata: false,
        exactly_once: false,
        resubmission: true,
        sink: Arc::new(NoConfigSink),
        revalidate: Arc::new(AlwaysValid),
        catch_up: None,
    };
    start_with_hooks(
        channel_id,
        settings,
        batch_size,
        batch_timeout,
        writer,
        ledger,
        last_metadata,
        hooks,
        shutdown,
    )
}

/// How a Kafka chain meets the rest of the node.
#[derive(Debug)]
pub struct ChainHooks {
    /// The channel's config sequence at start.
    pub config_seq: u64,
    /// Also write `KafkaMetadata` into the ORDERER metadata slot, as Fabric
    /// v1.4 does ([`crate::channelconfig::ChannelConfig::legacy_orderer_metadata`]).
    pub legacy_orderer_metadata: bool,
    /// The channel's config has the exactly-once capability
    /// ([`crate::channelconfig::ChannelConfig::exactly_once`]); off by default.
    pub exactly_once: bool,
    /// The channel's config has Fabric's `Resubmission()` capability
    /// ([`crate::channelconfig::ChannelConfig::resubmission`]).
    pub resubmission: bool,
    /// Told about committed config blocks.
    pub sink: Arc<dyn ConfigSink>,
    /// Re-checks messages validated against an older config.
    pub revalidate: Arc<dyn decide::Revalidate + Send + Sync>,
    /// Where the blocks come from when the partition was pruned below the
    /// chain's position (`None`: the chain halts then).
    pub catch_up: Option<CatchUpHooks>,
}

/// Catch-up from other OSNs ([`catchup`]).
#[derive(Debug, Clone)]
pub struct CatchUpHooks {
    /// `Kafka.CatchUp.Sources`; empty: the channel config's orderer addresses.
    pub sources: Vec<String>,
    /// `Kafka.CatchUp.PullThreshold` (0 already replaced by the default):
    /// a starting chain more records behind than this pulls first.
    pub pull_threshold: u64,
    /// The Deliver client.
    pub source: Arc<dyn catchup::BlockSource>,
}

/// As [`start`], with the node's hooks.
#[allow(clippy::too_many_arguments)]
pub fn start_with_hooks(
    channel_id: String,
    settings: KafkaSettings,
    batch_size: BatchSize,
    batch_timeout: Duration,
    writer: BlockWriter,
    ledger: Ledger,
    last_metadata: Option<KafkaMetadata>,
    hooks: ChainHooks,
    shutdown: CancellationToken,
) -> (ChainHandle, tokio::task::JoinHandle<()>) {
    let (submit_tx, submit_rx) = mpsc::channel(SUBMIT_QUEUE_LEN);
    let (state_tx, state_rx) = watch::channel(ChainState::Starting);
    let (health_tx, health_rx) = watch::channel(None);
    let (errored_tx, errored_rx) = watch::channel(None);
    let (reprocessing_tx, reprocessing_rx) = watch::channel(false);
    let offsets = Offsets::from_metadata(last_metadata.as_ref());
    let settings = Arc::new(settings);
    let health_check = Arc::new(health::ConnectCheck {
        topic: channel_id.clone(),
        settings: Arc::clone(&settings),
        producer: std::sync::OnceLock::new(),
    });
    let chain = chain::KafkaChain {
        health_tx,
        errored_tx,
        reprocessing_tx,
        offsets,
        decider: None,
        channel_id,
        settings,
        batch_size,
        batch_timeout,
        writer,
        ledger,
        state_tx,
        consumed_tx: watch::channel(offsets.start_offset().saturating_sub(1)).0,
        hooks,
        io: crate::consensus::io_runtime(),
    };
    let task = crate::consensus::spawn_chain(chain.run(submit_rx, shutdown));
    (
        ChainHandle::new(submit_tx, state_rx).with_signals(super::ChainSignals {
            health_rx,
            errored_rx,
            reprocessing_rx,
            health_check,
        }),
        task,
    )
}
