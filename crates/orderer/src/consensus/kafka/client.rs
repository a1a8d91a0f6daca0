//! The Kafka clients of a chain: `Kafka.*` settings turned into librdkafka
//! configuration (producer, consumer, admin), transport diagnostics, and
//! Fabric's retry schedule for start-up steps.

use std::future::Future;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer as _};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::stats::{StatsContext, STATS_INTERVAL_MS};
use super::MAX_MESSAGE_BYTES;
use crate::limits::KAFKA_MESSAGE_TIMEOUT;

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
    /// `Kafka.SASLPlain` or (ours) `Kafka.SASLSCRAM`.
    pub sasl: Option<SaslSettings>,
    /// `Kafka.CatchUp.Sources` (ours): OSNs to pull pruned blocks from.
    pub catch_up_sources: Vec<String>,
    /// `Kafka.CatchUp.PullThreshold` (ours; 0: the default).
    pub catch_up_pull_threshold: u64,
}

/// A SASL login to the brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslSettings {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (librdkafka's names).
    pub mechanism: String,
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl SaslSettings {
    /// The `orderer.yaml` section these came from, for messages.
    pub fn section(&self) -> &'static str {
        if self.mechanism == "PLAIN" {
            "Kafka.SASLPlain"
        } else {
            "Kafka.SASLSCRAM"
        }
    }
}

impl KafkaSettings {
    pub(super) fn client_config(&self) -> ClientConfig {
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
        if crate::metrics::enabled() {
            c.set("statistics.interval.ms", STATS_INTERVAL_MS.to_string());
        }
        if self.verbose {
            c.set("debug", "broker,topic,msg,protocol");
        }
        let protocol = match (&self.tls, &self.sasl) {
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
        if let Some(sasl) = &self.sasl {
            c.set("sasl.mechanisms", &sasl.mechanism)
                .set("sasl.username", &sasl.user)
                .set("sasl.password", &sasl.password);
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

    pub(super) fn producer(&self) -> Result<ChainProducer, KafkaError> {
        let mut c = self.client_config();
        c.set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .set("message.timeout.ms", ms(KAFKA_MESSAGE_TIMEOUT).to_string())
            .set("queue.buffering.max.messages", "100000")
            .set("compression.type", "none");
        c.create_with_context(StatsContext)
    }

    pub(super) fn consumer(&self) -> Result<ChainConsumer, KafkaError> {
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
        c.create_with_context(StatsContext)
    }

    pub(super) fn admin(&self) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
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
        if fac == "FAIL" {
            self.note(log_message.to_string());
        }
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.note(format!("{error}: {reason}"));
    }
}

impl rdkafka::producer::ProducerContext for DiagContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// A librdkafka log line into `tracing`, under the target Fabric's
/// `orderer.consensus.kafka.sarama` logger name selects.
pub(super) fn log_to_tracing(level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            error!(target: "librdkafka", "librdkafka: {fac} {msg}")
        }
        L::Warning => warn!(target: "librdkafka", "librdkafka: {fac} {msg}"),
        L::Notice | L::Info => info!(target: "librdkafka", "librdkafka: {fac} {msg}"),
        L::Debug => debug!(target: "librdkafka", "librdkafka: {fac} {msg}"),
    }
}

/// A chain's producer: statistics and logs through [`StatsContext`].
pub type ChainProducer = FutureProducer<StatsContext>;
/// A chain's consumer: statistics and logs through [`StatsContext`].
pub type ChainConsumer = StreamConsumer<StatsContext>;

/// What to check for a transport error of librdkafka's.
pub fn transport_hint(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("sasl") || r.contains("authentication") {
        "the brokers refused the SASL login: check the user and password of Kafka.SASLPlain (or Kafka.SASLSCRAM, and its Mechanism)"
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

pub(super) fn ms(d: Duration) -> u64 {
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
