//! A Kafka chain's health: the background metadata probe, and Fabric's
//! on-demand CONNECT check that `/healthz` runs.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer as _};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::client::ms;
use super::{connect_message, KafkaSettings, PARTITION};

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
pub(super) async fn health_probe(
    channel_id: String,
    producer: Arc<super::client::ChainProducer>,
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
pub(super) struct ConnectCheck {
    pub(super) topic: String,
    pub(super) settings: Arc<KafkaSettings>,
    pub(super) producer: std::sync::OnceLock<FutureProducer>,
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

impl crate::consensus::HealthCheck for ConnectCheck {
    fn check(&self) -> futures::future::BoxFuture<'static, Option<String>> {
        let producer = self.producer();
        let topic = self.topic.clone();
        Box::pin(async move {
            let producer = match producer {
                Ok(p) => p,
                Err(e) => return Some(format!("cannot create a Kafka producer: {e}")),
            };
            let payload = connect_message();
            let rec = super::record(&topic, &payload);
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
