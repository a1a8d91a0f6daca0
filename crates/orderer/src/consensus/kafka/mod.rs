//! The Kafka consenter (`OrdererType: kafka`), wire-compatible with Fabric's:
//! one topic per channel named as the channel ID, partition 0, record key
//! `"0"`, value a marshaled `orderer.KafkaMessage`; offsets kept in each
//! block's `KafkaMetadata`, never in consumer groups.
//!
//! * ③ produce ([`produce`]): Broadcast submissions become `Regular`
//!   messages, produced pipelined and batched by librdkafka with
//!   `acks=all` (idempotent); SUCCESS goes back only once Kafka acknowledged.
//! * ④ consume: from `last_offset_persisted + 1`, in the chain task.
//! * ⑤ decide ([`decide`]): pure per-message decisions (cutter, time-to-cut).
//! * ⑥ blocks are written by the chain task, which owns the ledger writer.
//!
//! Start-up follows Fabric's guide: create the topic, a producer, post a
//! `CONNECT`, a consumer at the resume offset — each step retried every
//! `Kafka.Retry.ShortInterval` for `ShortTotal`, then every `LongInterval`
//! for `LongTotal`. Until then the chain is `Starting` (Broadcast and
//! Deliver answer SERVICE_UNAVAILABLE).

pub mod check;
pub mod decide;
pub mod inspect;
pub mod produce;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fabric_ledger::Ledger;
use fabric_protos::orderer::{kafka_message, KafkaMessage, KafkaMetadata};
use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer as _};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use self::decide::{Action, AlwaysValid, Decider, Offsets};
use super::{config_effect, ChainHandle, ChainState, ConfigEffect, ConfigSink, NoConfigSink};
use crate::blockcutter::BatchSize;
use crate::blockwriter::BlockWriter;
use crate::limits::{
    KAFKA_BACKLOG_STALL, KAFKA_MAX_BACKLOG, KAFKA_MESSAGE_TIMEOUT, SUBMIT_QUEUE_LEN,
};

/// The partition every channel uses.
pub const PARTITION: i32 = 0;
/// The record key Fabric writes.
pub const RECORD_KEY: &str = "0";
/// Fabric's producer message limit (sarama MaxRequestSize − 1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 103_809_024;

/// `Kafka.*` settings from `orderer.yaml`, plus the channel's brokers.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `Orderer/KafkaBrokers` from the channel config.
    pub brokers: Vec<String>,
    /// `Kafka.Retry.ShortInterval`.
    pub short_interval: Duration,
    /// `Kafka.Retry.ShortTotal`.
    pub short_total: Duration,
    /// `Kafka.Retry.LongInterval`.
    pub long_interval: Duration,
    /// `Kafka.Retry.LongTotal`.
    pub long_total: Duration,
    /// `Kafka.Retry.NetworkTimeouts.DialTimeout`.
    pub dial_timeout: Duration,
    /// `Kafka.Retry.NetworkTimeouts.ReadTimeout`.
    pub read_timeout: Duration,
    /// `Kafka.Retry.NetworkTimeouts.WriteTimeout`.
    pub write_timeout: Duration,
    /// `Kafka.Retry.Producer.RetryBackoff`.
    pub producer_retry_backoff: Duration,
    /// `Kafka.Retry.Metadata.RetryBackoff`.
    pub metadata_retry_backoff: Duration,
    /// `Kafka.Retry.Consumer.RetryBackoff`.
    pub consumer_retry_backoff: Duration,
    /// `Kafka.Topic.ReplicationFactor`.
    pub replication_factor: i32,
    /// `Kafka.Verbose`.
    pub verbose: bool,
    /// `Kafka.TLS`: enabled, client cert PEM, key PEM, root CA PEMs.
    pub tls: Option<(String, String, Vec<String>)>,
    /// `Kafka.SASLPlain`: user, password.
    pub sasl_plain: Option<(String, String)>,
}

impl KafkaSettings {
    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.brokers.join(","))
            .set("client.id", "fabric-orderer-rs")
            .set(
                "socket.timeout.ms",
                ms(self.read_timeout.max(self.write_timeout)).to_string(),
            )
            .set(
                "socket.connection.setup.timeout.ms",
                ms(self.dial_timeout).max(1000).to_string(),
            )
            .set(
                "retry.backoff.ms",
                ms(self.producer_retry_backoff).max(1).to_string(),
            )
            .set("topic.metadata.refresh.interval.ms", "10000")
            .set("reconnect.backoff.ms", "100")
            .set(
                "reconnect.backoff.max.ms",
                ms(self.consumer_retry_backoff).max(100).to_string(),
            )
            .set("log_level", if self.verbose { "7" } else { "4" });
        if self.verbose {
            c.set("debug", "broker,topic,msg,protocol");
        }
        let protocol = match (&self.tls, &self.sasl_plain) {
            (Some(_), Some(_)) => "SASL_SSL",
            (Some(_), None) => "SSL",
            (None, Some(_)) => "SASL_PLAINTEXT",
            (None, None) => "PLAINTEXT",
        };
        c.set("security.protocol", protocol);
        if let Some((cert, key, roots)) = &self.tls {
            if !cert.is_empty() {
                c.set("ssl.certificate.pem", cert);
            }
            if !key.is_empty() {
                c.set("ssl.key.pem", key);
            }
            if !roots.is_empty() {
                c.set("ssl.ca.pem", roots.join("\n"));
            }
        }
        if let Some((user, password)) = &self.sasl_plain {
            c.set("sasl.mechanisms", "PLAIN")
                .set("sasl.username", user)
                .set("sasl.password", password);
        }
        c
    }

    /// How long a client waits for Kafka to acknowledge its record (and a
    /// start-up step for one CONNECT): `Kafka.Retry.ShortTotal`, between 5
    /// and 60 s. librdkafka itself keeps trying for [`KAFKA_MESSAGE_TIMEOUT`].
    pub fn ack_timeout(&self) -> Duration {
        self.short_total
            .clamp(Duration::from_secs(5), Duration::from_secs(60))
    }

    fn producer(&self) -> Result<FutureProducer, KafkaError> {
        let mut c = self.client_config();
        c.set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .set("message.timeout.ms", ms(KAFKA_MESSAGE_TIMEOUT).to_string())
            .set("queue.buffering.max.messages", "100000")
            .set("compression.type", "none");
        c.create()
    }

    fn consumer(&self) -> Result<StreamConsumer, KafkaError> {
        let mut c = self.client_config();
        c.set("group.id", "fabric-orderer-rs-unused")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "error")
            .set("fetch.wait.max.ms", "50")
            .set("fetch.min.bytes", "1")
            .set("receive.message.max.bytes", "110000000")
            .set("fetch.max.bytes", "104857600")
            .set("max.partition.fetch.bytes", "104857600");
        c.create()
    }

    fn admin(&self) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
        self.client_config().create()
    }
}

/// Records librdkafka's last error (its error callback) for
/// [`KafkaSettings::metadata_diagnosed`].
#[derive(Debug, Default)]
struct DiagContext {
    last_error: std::sync::Mutex<Option<String>>,
}

impl DiagContext {
    /// Keeps the first error that names a cause (a refused login, a TLS
    /// failure) over generic ones such as "all brokers down".
    fn note(&self, what: String) {
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        let specific = |s: &str| transport_hint(s) != transport_hint("");
        match &*last {
            Some(prev) if specific(prev) || !specific(&what) && prev.contains("AllBrokersDown") => {
            }
            _ => *last = Some(what),
        }
    }
}

impl rdkafka::client::ClientContext for DiagContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        if fac == "FAIL" {
            self.note(log_message.to_string());
        }
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                error!(target: "librdkafka", "librdkafka: {fac} {log_message}")
            }
            L::Warning => warn!(target: "librdkafka", "librdkafka: {fac} {log_message}"),
            L::Notice | L::Info => info!(target: "librdkafka", "librdkafka: {fac} {log_message}"),
            L::Debug => debug!(target: "librdkafka", "librdkafka: {fac} {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.note(format!("{error}: {reason}"));
    }
}

impl rdkafka::producer::ProducerContext for DiagContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// What to check for a transport error of librdkafka's.
pub fn transport_hint(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("sasl") || r.contains("authentication") {
        "the brokers refused the SASL/PLAIN login: check Kafka.SASLPlain.User and Kafka.SASLPlain.Password"
    } else if r.contains("certificate verify failed") || r.contains("could not be verified") {
        "the brokers' TLS certificate does not chain to Kafka.TLS.RootCAs: check Kafka.TLS.RootCAs"
    } else if r.contains("ssl") || r.contains("tls") || r.contains("handshake") {
        "the TLS handshake with the brokers failed: check Kafka.TLS (Certificate, PrivateKey, RootCAs) and that Orderer/KafkaBrokers names the brokers' SSL listeners"
    } else {
        "check that the brokers in Orderer/KafkaBrokers are up and reachable"
    }
}

impl KafkaSettings {
    /// The cluster metadata (all topics, or `topic`) through a short-lived
    /// client; blocking. On failure the error carries librdkafka's last
    /// transport error (a refused SASL login, a TLS certificate that does
    /// not verify, …) and what to check.
    pub fn metadata_diagnosed(
        &self,
        topic: Option<&str>,
        timeout: Duration,
    ) -> Result<rdkafka::metadata::Metadata, String> {
        let p: rdkafka::producer::BaseProducer<DiagContext> = self
            .client_config()
            .create_with_context(DiagContext::default())
            .map_err(|e| format!("creating a Kafka client: {e}"))?;
        let md = p.client().fetch_metadata(topic, timeout);
        // Delivers the error events queued meanwhile to DiagContext.
        p.poll(Duration::from_millis(50));
        md.map_err(|e| {
            let last = p
                .context()
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            match last {
                Some(reason) => format!(
                    "cannot read the cluster metadata from {}: {e}; last transport error: {reason} ({})",
                    self.brokers.join(","),
                    transport_hint(&reason)
                ),
                None => format!(
                    "cannot read the cluster metadata from {}: {e} ({})",
                    self.brokers.join(","),
                    transport_hint("")
                ),
            }
        })
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u32::MAX)) as u64
}

/// Runs `step` under Fabric's retry schedule: at once, then every short
/// interval for the short total, then every long interval for the long total.
pub async fn retry<T, E, F, Fut>(
    what: &str,
    s: &KafkaSettings,
    shutdown: &CancellationToken,
    mut step: F,
) -> Option<Result<T, E>>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut last = match step().await {
        Ok(v) => return Some(Ok(v)),
        Err(e) => e,
    };
    for (interval, total) in [
        (s.short_interval, s.short_total),
        (s.long_interval, s.long_total),
    ] {
        let interval = interval.max(Duration::from_millis(10));
        let end = Instant::now() + total;
        while Instant::now() < end {
            warn!(step = what, error = %last, retry_in = ?interval, "kafka step failed; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(interval) => {}
            }
            match step().await {
                Ok(v) => return Some(Ok(v)),
                Err(e) => last = e,
            }
        }
    }
    Some(Err(last))
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
    let health_check = Arc::new(ConnectCheck {
        topic: channel_id.clone(),
        settings: Arc::clone(&settings),
        producer: std::sync::OnceLock::new(),
    });
    let chain = KafkaChain {
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

/// How often a ready Kafka chain checks that its partition is reachable.
pub const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one probe may take.
pub const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The health probe of a ready chain: a metadata request for the channel's
/// topic through the producer's client every [`HEALTH_PROBE_INTERVAL`];
/// unhealthy when the brokers do not answer or partition 0 has no leader.
/// `/healthz` reports it (Fabric's Kafka health check posts a CONNECT
/// instead; a metadata round trip tells the same without writing to the
/// partition).
async fn health_probe(
    channel_id: String,
    producer: Arc<FutureProducer>,
    health_tx: watch::Sender<Option<String>>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(HEALTH_PROBE_INTERVAL) => {}
        }
        let p = Arc::clone(&producer);
        let topic = channel_id.clone();
        let probe = tokio::task::spawn_blocking(move || {
            let md = p
                .client()
                .fetch_metadata(Some(&topic), HEALTH_PROBE_TIMEOUT)
                .map_err(|e| format!("Kafka unreachable: metadata request failed: {e}"))?;
            let t = md
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .ok_or_else(|| format!("Kafka: topic {topic} not in the metadata"))?;
            if let Some(e) = t.error() {
                return Err(format!(
                    "Kafka: topic {topic}: {:?}",
                    RDKafkaErrorCode::from(e)
                ));
            }
            match t.partitions().iter().find(|p| p.id() == PARTITION) {
                Some(p) if p.leader() >= 0 && p.error().is_none() => Ok(()),
                Some(p) => Err(format!(
                    "Kafka: partition {topic}/{PARTITION} has no leader (replicas {:?}, in sync {:?})",
                    p.replicas(),
                    p.isr()
                )),
                None => Err(format!("Kafka: partition {topic}/{PARTITION} missing")),
            }
        });
        let verdict = match tokio::time::timeout(HEALTH_PROBE_TIMEOUT * 2, probe).await {
            Ok(Ok(r)) => r.err(),
            Ok(Err(e)) => Some(format!("Kafka health probe failed: {e}")),
            Err(_) => Some("Kafka unreachable: metadata request did not finish".to_string()),
        };
        let changed = *health_tx.borrow() != verdict;
        if changed {
            match &verdict {
                Some(why) => warn!(%channel_id, reason = %why, "Kafka health check failing"),
                None => info!(%channel_id, "Kafka health check passing again"),
            }
            health_tx.send_replace(verdict);
        }
    }
}

/// Fabric's Kafka `HealthCheck`: posts a CONNECT; unhealthy only when the
/// partition refuses it for too few in-sync replicas (NOT_ENOUGH_REPLICAS).
/// Its own producer sends once, without retries, so the broker's answer is
/// what the check sees.
struct ConnectCheck {
    topic: String,
    settings: Arc<KafkaSettings>,
    producer: std::sync::OnceLock<FutureProducer>,
}

impl std::fmt::Debug for ConnectCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectCheck")
            .field("topic", &self.topic)
            .finish()
    }
}

impl ConnectCheck {
    fn producer(&self) -> Result<FutureProducer, KafkaError> {
        if let Some(p) = self.producer.get() {
            return Ok(p.clone());
        }
        let mut c = self.settings.client_config();
        c.set("acks", "all")
            .set("enable.idempotence", "false")
            .set("message.send.max.retries", "0")
            .set("linger.ms", "0")
            .set("message.timeout.ms", ms(HEALTH_PROBE_TIMEOUT).to_string());
        let p: FutureProducer = c.create()?;
        Ok(self.producer.get_or_init(|| p).clone())
    }
}

impl super::HealthCheck for ConnectCheck {
    fn check(&self) -> futures::future::BoxFuture<'static, Option<String>> {
        let producer = self.producer();
        let topic = self.topic.clone();
        Box::pin(async move {
            let producer = match producer {
                Ok(p) => p,
                Err(e) => return Some(format!("cannot create a Kafka producer: {e}")),
            };
            let payload = connect_message();
            let rec = rdkafka::producer::FutureRecord::to(&topic)
                .partition(PARTITION)
                .key(RECORD_KEY)
                .payload(&payload);
            let err = match producer.send(rec, HEALTH_PROBE_TIMEOUT).await {
                Ok(_) => return None,
                Err((e, _)) => e,
            };
            warn!(channel_id = %topic, error = %err, "Cannot post CONNECT message");
            let code = err.rdkafka_error_code();
            if !matches!(
                code,
                Some(
                    RDKafkaErrorCode::NotEnoughReplicas
                        | RDKafkaErrorCode::NotEnoughReplicasAfterAppend
                )
            ) {
                return None; // Fabric: only too few in-sync replicas fails the check
            }
            let replicas = tokio::task::spawn_blocking(move || {
                producer
                    .client()
                    .fetch_metadata(Some(&topic), HEALTH_PROBE_TIMEOUT)
                    .ok()
                    .and_then(|md| {
                        md.topics().first().and_then(|t| {
                            t.partitions()
                                .iter()
                                .find(|p| p.id() == PARTITION)
                                .map(|p| (p.replicas().to_vec(), p.isr().to_vec()))
                        })
                    })
            })
            .await
            .ok()
            .flatten();
            let (replicas, isr) = replicas.unwrap_or_default();
            Some(format!(
                "[replica ids: {replicas:?}]: kafka server: Messages are rejected since there are fewer in-sync replicas than required (in sync: {isr:?})"
            ))
        })
    }
}

struct KafkaChain {
    health_tx: watch::Sender<Option<String>>,
    /// `Some(reason)` while consumption is errored (Fabric's closed `errorChan`).
    errored_tx: watch::Sender<Option<String>>,
    /// The decider's [`Decider::reprocessing_pending`], for Broadcast.
    reprocessing_tx: watch::Sender<bool>,
    channel_id: String,
    settings: Arc<KafkaSettings>,
    batch_size: BatchSize,
    batch_timeout: Duration,
    offsets: Offsets,
    decider: Option<Decider>,
    writer: BlockWriter,
    ledger: Ledger,
    state_tx: watch::Sender<ChainState>,
    /// The last offset the chain processed, for the produce side's
    /// back-pressure ([`produce::Backlog`]); published every
    /// [`CONSUMED_EVERY`] messages and at each block.
    consumed_tx: watch::Sender<i64>,
    hooks: ChainHooks,
    /// The runtime that started the chain (the gRPC one): the produce task
    /// runs there, next to the Broadcast streams that feed it.
    io: tokio::runtime::Handle,
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

/// How often (in messages) the chain publishes its consumed offset.
const CONSUMED_EVERY: i64 = 64;

fn connect_message() -> Vec<u8> {
    KafkaMessage {
        r#type: Some(kafka_message::Type::Connect(Default::default())),
    }
    .encode_to_vec()
}

impl KafkaChain {
    async fn setup(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<Result<(FutureProducer, StreamConsumer), String>> {
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
            let rec = rdkafka::producer::FutureRecord::to(&topic)
                .partition(PARTITION)
                .key(RECORD_KEY)
                .payload(&payload);
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
        // 4. Consumer at the resume offset.
        let start = self.offsets.start_offset();
        let consumer = retry("set up consumer", s, shutdown, || async {
            let c = s.consumer().map_err(|e| e.to_string())?;
            let mut tpl = TopicPartitionList::new();
            let off = if start < 0 {
                Offset::Beginning
            } else {
                Offset::Offset(start)
            };
            tpl.add_partition_offset(&topic, PARTITION, off)
                .map_err(|e| e.to_string())?;
            c.assign(&tpl).map_err(|e| e.to_string())?;
            // Metadata round trip proves the brokers are reachable.
            c.fetch_metadata(Some(&topic), Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(c)
        })
        .await?;
        Some(consumer.map(|c| (producer, c)))
    }

    async fn run(
        mut self,
        submit_rx: mpsc::Receiver<super::Submission>,
        shutdown: CancellationToken,
    ) {
        info!(channel_id = %self.channel_id, last_offset_persisted = self.offsets.last_offset_persisted,
              height = self.ledger.height(), brokers = ?self.settings.brokers, "starting Kafka chain");
        let (producer, consumer) = match self.setup(&shutdown).await {
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
        self.state_tx.send_replace(ChainState::Ready);
        crate::metrics::kafka_last_offset_persisted(
            &self.channel_id,
            self.offsets.last_offset_persisted,
        );
        info!(channel_id = %self.channel_id, start_offset = self.offsets.start_offset(), "Start phase completed successfully");
        self.consume(consumer, &producer, shutdown).await;
        let _ = produce_task.await;
        info!(channel_id = %self.channel_id, "Kafka chain stopped");
    }

    async fn consume(
        &mut self,
        consumer: StreamConsumer,
        producer: &FutureProducer,
        shutdown: CancellationToken,
    ) {
        let mut stream = consumer.stream();
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
                _ = shutdown.cancelled() => return,
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
                    let Some(d) = self.decider.as_mut() else { return };
                    if let Action::Produce(m) = d.on_timer() {
                        self.produce_side(producer, m);
                    }
                }
                item = stream.next() => {
                    let Some(item) = item else { return };
                    let msg = match item {
                        Ok(m) => m,
                        Err(e) => {
                            warn!(channel_id = %self.channel_id, topic = %self.channel_id, partition = PARTITION, error = %e, "error during consumption");
                            if matches!(e, KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange)) {
                                let why = format!("unrecoverable error during consumption: {e}");
                                self.state_tx.send_replace(ChainState::Halted(why));
                                return;
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
                    let Some(payload) = msg.payload() else { continue };
                    let km = match KafkaMessage::decode(payload) {
                        Ok(km) => km,
                        Err(e) => {
                            error!(channel_id = %self.channel_id, offset, error = %e, "unable to unmarshal consumed message; skipping");
                            continue;
                        }
                    };
                    let Some(d) = self.decider.as_mut() else { return };
                    let seq = self.hooks.config_seq;
                    let actions = match d.on_message(offset, &km, seq, &self.batch_size, &*self.hooks.revalidate) {
                        Ok(a) => a,
                        Err(e) => {
                            error!(channel_id = %self.channel_id, offset, error = %e, "consenter stopped");
                            self.state_tx.send_replace(ChainState::Halted(e.to_string()));
                            return;
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
                                    return;
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
    fn post_connect(&self, producer: &FutureProducer, shutdown: &CancellationToken) {
        let producer = producer.clone();
        let settings = Arc::clone(&self.settings);
        let topic = self.channel_id.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let posted = retry("post CONNECT", &settings, &shutdown, || async {
                let payload = connect_message();
                let rec = rdkafka::producer::FutureRecord::to(&topic)
                    .partition(PARTITION)
                    .key(RECORD_KEY)
                    .payload(&payload);
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
    fn produce_side(&self, producer: &FutureProducer, msg: KafkaMessage) {
        let bytes = msg.encode_to_vec();
        let topic = self.channel_id.clone();
        let rec = rdkafka::producer::FutureRecord::to(&topic)
            .partition(PARTITION)
            .key(RECORD_KEY)
            .payload(&bytes);
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
        crate::metrics::block_fill_cut(&self.channel_id);
        let md_bytes = md.encode_to_vec();
        let mut block = self.writer.next_block(data, is_config, &md_bytes);
        if self.hooks.legacy_orderer_metadata {
            // Outside the signed bytes, as in Fabric v1.4 (its signature covers
            // the same OrdererBlockMetadata value as ours).
            if let Some(m) = block.metadata.as_mut() {
                m.metadata[fabric_common::block::ORDERER] = fabric_protos::common::Metadata {
                    value: md_bytes,
                    signatures: vec![],
                }
                .encode_to_vec();
            }
        }
        let number = self.writer.next_number() - 1;
        match super::append_durably(
            &mut self.ledger,
            &block,
            &self.channel_id,
            &self.state_tx,
            shutdown,
        )
        .await
        {
            Ok(()) => {
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
