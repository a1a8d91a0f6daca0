//! Fabric's orderer metrics (`docs/source/metrics_reference.rst`), under
//! Fabric's exact names and labels, in one process-wide Prometheus registry.
//! The operations endpoint serves them at `/metrics` when
//! `Metrics.Provider` is `prometheus`; otherwise recording is switched off
//! ([`set_enabled`]) and every helper here returns at once.
//!
//! | metric | type | labels | recorded in |
//! |---|---|---|---|
//! | `broadcast_validate_duration` | histogram | channel, type, status | `broadcast` (per envelope) |
//! | `broadcast_enqueue_duration` | histogram | channel, type, status | `broadcast` |
//! | `broadcast_processed_count` | counter | channel, type, status | `broadcast` |
//! | `deliver_streams_opened` / `deliver_streams_closed` | counter | — | `deliver` |
//! | `deliver_requests_received` | counter | channel, filtered, data_type | `deliver` |
//! | `deliver_requests_completed` | counter | channel, filtered, data_type, success | `deliver` |
//! | `deliver_blocks_sent` | counter | channel, filtered, data_type | `deliver` |
//! | `blockcutter_block_fill_duration` | histogram | channel | solo and Kafka chains |
//! | `consensus_kafka_last_offset_persisted` | gauge | channel | Kafka chain, per block |
//! | `consensus_kafka_catchup_height` | gauge | channel | ours: Kafka chain catching up from other OSNs, per pulled block (0 when done) |
//! | `ledger_blockchain_height` | gauge | channel | at scrape time, from the registrar |
//! | `fabric_version` | gauge | version | at start |
//! | `grpc_comm_conn_opened` / `grpc_comm_conn_closed` | counter | — | `net` (gRPC connections handed to the server, and closed) |
//! | `orderer_deliver_blocks_buffered` | gauge | — | ours: at scrape time, Deliver blocks between the ledger read and the socket (`net::streams`) |
//! | `orderer_deliver_bytes_buffered` | gauge | — | ours: at scrape time, the bytes of those blocks, against `General.Limits.MaxDeliverBufferedBytes` (`net::streams`) |
//! | `orderer_received_bytes_held` | gauge | — | ours: at scrape time, client bytes received and not yet answered (`net::ingress`) |
//! | `orderer_receive_budget_waits_total` | counter | level | ours: a message had to wait for the stream's, connection's or node's receive budget (`net::ingress`) |
//! | `orderer_refused_total` | counter | reason | ours: `net` and `operations` (a limit or timeout refused or closed something; see `crate::net`) |
//!
//! The gRPC server, ledger commit time, logging and process metrics Fabric
//! also registers are in [`ops`].
//!
//! As in Fabric, a Broadcast envelope is counted when it has been validated
//! and handed to its chain (status `SUCCESS`) or refused (its error
//! status); `broadcast_enqueue_duration` is only observed for envelopes that
//! passed validation.

pub mod ops;
pub mod statsd;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use fabric_protos::common::{Envelope, HeaderType, Status};
use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, Opts, Registry,
    TextEncoder,
};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Switches recording on (the `prometheus` provider) or off.
pub fn set_enabled(on: bool) {
    if on {
        ops::init();
    }
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether metrics are recorded.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// All metrics, registered once.
pub struct Metrics {
    registry: Registry,
    broadcast_validate_duration: HistogramVec,
    broadcast_enqueue_duration: HistogramVec,
    broadcast_processed_count: CounterVec,
    deliver_streams_opened: IntCounter,
    deliver_streams_closed: IntCounter,
    deliver_requests_received: CounterVec,
    deliver_requests_completed: CounterVec,
    deliver_blocks_sent: CounterVec,
    blockcutter_block_fill_duration: HistogramVec,
    consensus_kafka_last_offset_persisted: GaugeVec,
    consensus_kafka_catchup_height: GaugeVec,
    ledger_blockchain_height: GaugeVec,
    fabric_version: GaugeVec,
    grpc_comm_conn_opened: IntCounter,
    grpc_comm_conn_closed: IntCounter,
    refused: CounterVec,
    deliver_blocks_buffered: prometheus::IntGauge,
    deliver_bytes_buffered: prometheus::IntGauge,
    received_bytes_held: prometheus::IntGauge,
    receive_budget_waits: CounterVec,
    /// When each channel's pending batch received its first envelope.
    fill_start: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn int_gauge(r: &Registry, name: &str, help: &str) -> prometheus::IntGauge {
    let g = prometheus::IntGauge::new(name, help).expect("metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registration");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    statsd::declare(name, labels);
    let h = HistogramVec::new(HistogramOpts::new(name, help), labels).expect("metric definition");
    r.register(Box::new(h.clone()))
        .expect("metric registration");
    h
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> CounterVec {
    statsd::declare(name, labels);
    let c = CounterVec::new(Opts::new(name, help), labels).expect("metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registration");
    c
}

fn int_counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registration");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    statsd::declare(name, labels);
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registration");
    g
}

const BROADCAST_LABELS: &[&str] = &["channel", "type", "status"];
const DELIVER_LABELS: &[&str] = &["channel", "filtered", "data_type"];

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        Self {
            broadcast_validate_duration: histogram(
                &r,
                "broadcast_validate_duration",
                "The time to validate a transaction in seconds.",
                BROADCAST_LABELS,
            ),
            broadcast_enqueue_duration: histogram(
                &r,
                "broadcast_enqueue_duration",
                "The time to enqueue a transaction in seconds.",
                BROADCAST_LABELS,
            ),
            broadcast_processed_count: counter(
                &r,
                "broadcast_processed_count",
                "The number of transactions processed.",
                BROADCAST_LABELS,
            ),
            deliver_streams_opened: int_counter(
                &r,
                "deliver_streams_opened",
                "The number of GRPC streams that have been opened for the deliver service.",
            ),
            deliver_streams_closed: int_counter(
                &r,
                "deliver_streams_closed",
                "The number of GRPC streams that have been closed for the deliver service.",
            ),
            deliver_requests_received: counter(
                &r,
                "deliver_requests_received",
                "The number of deliver requests that have been received.",
                DELIVER_LABELS,
            ),
            deliver_requests_completed: counter(
                &r,
                "deliver_requests_completed",
                "The number of deliver requests that have been completed.",
                &["channel", "filtered", "data_type", "success"],
            ),
            deliver_blocks_sent: counter(
                &r,
                "deliver_blocks_sent",
                "The number of blocks sent by the deliver service.",
                DELIVER_LABELS,
            ),
            blockcutter_block_fill_duration: histogram(
                &r,
                "blockcutter_block_fill_duration",
                "The time from first transaction enqueing to the block being cut in seconds.",
                &["channel"],
            ),
            consensus_kafka_last_offset_persisted: gauge(
                &r,
                "consensus_kafka_last_offset_persisted",
                "The offset specified in the block metadata of the most recently committed block.",
                &["channel"],
            ),
            consensus_kafka_catchup_height: gauge(
                &r,
                "consensus_kafka_catchup_height",
                "Ours: while a Kafka chain catches up from other OSNs, the height it has reached; 0 when not catching up.",
                &["channel"],
            ),
            ledger_blockchain_height: gauge(
                &r,
                "ledger_blockchain_height",
                "Height of the chain in blocks.",
                &["channel"],
            ),
            fabric_version: gauge(
                &r,
                "fabric_version",
                "The active version of Fabric.",
                &["version"],
            ),
            grpc_comm_conn_opened: int_counter(
                &r,
                "grpc_comm_conn_opened",
                "gRPC connections opened. Open minus closed connections is the active number of connections.",
            ),
            grpc_comm_conn_closed: int_counter(
                &r,
                "grpc_comm_conn_closed",
                "gRPC connections closed. Open minus closed connections is the active number of connections.",
            ),
            refused: counter(
                &r,
                "orderer_refused_total",
                "Connections, streams and requests refused or closed by a limit or a timeout, by reason.",
                &["reason"],
            ),
            deliver_blocks_buffered: int_gauge(
                &r,
                "orderer_deliver_blocks_buffered",
                "Deliver blocks read from the ledger and not yet written to a client's connection.",
            ),
            deliver_bytes_buffered: int_gauge(
                &r,
                "orderer_deliver_bytes_buffered",
                "Bytes of the Deliver blocks read from the ledger and not yet written to a client's connection.",
            ),
            received_bytes_held: int_gauge(
                &r,
                "orderer_received_bytes_held",
                "Client bytes received on Broadcast and Deliver streams and not yet answered.",
            ),
            receive_budget_waits: counter(
                &r,
                "orderer_receive_budget_waits_total",
                "Messages that waited for a receive budget (stream, connection or total) before being read.",
                &["level"],
            ),
            fill_start: Mutex::new(HashMap::new()),
            registry: r,
        }
    }

    /// The registry (for tests and custom exposition).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// One histogram observation: the Prometheus histogram, and a statsd
/// timing when that provider is on. `name` is the histogram's name.
pub fn observe(h: &HistogramVec, name: &str, labels: &[&str], value: f64) {
    h.with_label_values(labels).observe(value);
    statsd::timing(name, labels, value);
}

/// Sets the gauges computed on demand (ledger heights, held buffers),
/// before a scrape or a statsd write.
pub fn refresh(registrar: &crate::channels::Registrar) {
    for id in registrar.channel_ids() {
        if let Some(s) = registrar.get(&id) {
            set_ledger_height(&id, s.ledger.height());
        }
    }
    set_deliver_blocks_buffered(crate::net::streams::blocks_held_total());
    set_deliver_bytes_buffered(crate::net::streams::bytes_held_total());
    set_received_bytes_held(crate::net::ingress::bytes_held_total());
}

/// Everything in the Prometheus text exposition format (version 0.0.4).
pub fn render_text() -> Result<String, String> {
    let families = METRICS.registry.gather();
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut out)
        .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// A gRPC connection was handed to the server (`grpc_comm_conn_opened`).
pub fn conn_opened() {
    if enabled() {
        METRICS.grpc_comm_conn_opened.inc();
    }
}

/// A gRPC connection closed (`grpc_comm_conn_closed`).
pub fn conn_closed() {
    if enabled() {
        METRICS.grpc_comm_conn_closed.inc();
    }
}

/// A limit or timeout refused or closed something (`orderer_refused_total{reason}`).
pub fn refused(reason: &str) {
    if enabled() {
        METRICS.refused.with_label_values(&[reason]).inc();
    }
}

/// `orderer_deliver_blocks_buffered`.
pub fn set_deliver_blocks_buffered(n: usize) {
    if enabled() {
        METRICS.deliver_blocks_buffered.set(n as i64);
    }
}

/// `orderer_deliver_bytes_buffered`.
pub fn set_deliver_bytes_buffered(n: u64) {
    if enabled() {
        METRICS.deliver_bytes_buffered.set(n as i64);
    }
}

/// `orderer_received_bytes_held`.
pub fn set_received_bytes_held(n: u64) {
    if enabled() {
        METRICS.received_bytes_held.set(n as i64);
    }
}

/// `orderer_receive_budget_waits_total{level}`.
pub fn receive_budget_wait(level: &str) {
    if enabled() {
        METRICS
            .receive_budget_waits
            .with_label_values(&[level])
            .inc();
    }
}

/// `fabric_version{version} 1`.
pub fn set_version(version: &str) {
    METRICS
        .fabric_version
        .with_label_values(&[version])
        .set(1.0);
}

/// `ledger_blockchain_height{channel}`.
pub fn set_ledger_height(channel: &str, height: u64) {
    METRICS
        .ledger_blockchain_height
        .with_label_values(&[channel])
        .set(height as f64);
}

/// `consensus_kafka_last_offset_persisted{channel}`.
pub fn kafka_last_offset_persisted(channel: &str, offset: i64) {
    if !enabled() {
        return;
    }
    METRICS
        .consensus_kafka_last_offset_persisted
        .with_label_values(&[channel])
        .set(offset as f64);
}

/// A Kafka chain catching up from other OSNs reached `height` (0: done).
pub fn kafka_catchup_height(channel: &str, height: u64) {
    if !enabled() {
        return;
    }
    METRICS
        .consensus_kafka_catchup_height
        .with_label_values(&[channel])
        .set(height as f64);
}

/// A chain's pending batch holds an envelope: starts the fill clock unless running.
pub fn block_fill_pending(channel: &str) {
    if !enabled() {
        return;
    }
    let mut m = METRICS.fill_start.lock().unwrap_or_else(|e| e.into_inner());
    if !m.contains_key(channel) {
        m.insert(channel.to_string(), Instant::now());
    }
}

/// A chain cut a block: observes `blockcutter_block_fill_duration` since
/// the first envelope of the batch (when one was noted) and stops the clock.
pub fn block_fill_cut(channel: &str) {
    if !enabled() {
        return;
    }
    let start = METRICS
        .fill_start
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(channel);
    if let Some(start) = start {
        observe(
            &METRICS.blockcutter_block_fill_duration,
            "blockcutter_block_fill_duration",
            &[channel],
            start.elapsed().as_secs_f64(),
        );
    }
}

// ---- Broadcast ----

/// Only the two channel-header fields the labels need; other fields are skipped
/// without copying.
#[derive(Clone, PartialEq, prost::Message)]
struct LabelChannelHeader {
    #[prost(int32, tag = "1")]
    r#type: i32,
    #[prost(string, tag = "4")]
    channel_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelHeader {
    #[prost(bytes = "vec", tag = "1")]
    channel_header: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelPayload {
    #[prost(message, optional, tag = "1")]
    header: Option<LabelHeader>,
}

/// `(channel, type)` labels of an envelope, Fabric's `"unknown"` when the
/// headers do not decode.
fn envelope_labels(env: &Envelope) -> (String, String) {
    use prost::Message;
    let ch = LabelPayload::decode(env.payload.as_slice())
        .ok()
        .and_then(|p| p.header)
        .and_then(|h| LabelChannelHeader::decode(h.channel_header.as_slice()).ok());
    match ch {
        Some(ch) => {
            let t = HeaderType::try_from(ch.r#type)
                .map(|t| t.as_str_name().to_string())
                .unwrap_or_else(|_| ch.r#type.to_string());
            (ch.channel_id, t)
        }
        None => ("unknown".into(), "unknown".into()),
    }
}

tokio::task_local! {
    static ENQUEUE_START: Arc<Mutex<Option<Instant>>>;
}

/// Broadcast's `MetricsTracker`: one per envelope.
#[derive(Debug)]
pub struct BroadcastTracker {
    on: bool,
    channel: String,
    tx_type: String,
    start: Instant,
    enqueue_start: Arc<Mutex<Option<Instant>>>,
}

impl BroadcastTracker {
    /// Starts timing the validation of `env`.
    pub fn begin(env: &Envelope) -> Self {
        let on = enabled();
        let (channel, tx_type) = if on {
            envelope_labels(env)
        } else {
            (String::new(), String::new())
        };
        Self {
            on,
            channel,
            tx_type,
            start: Instant::now(),
            enqueue_start: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs `fut` (the envelope's processing) so that
    /// [`broadcast_begin_enqueue`] inside it marks this tracker.
    pub async fn scope<F: Future>(&self, fut: F) -> F::Output {
        ENQUEUE_START
            .scope(Arc::clone(&self.enqueue_start), fut)
            .await
    }

    /// Records the outcome with Fabric's status label.
    pub fn record(&self, status: Status) {
        if !self.on {
            return;
        }
        let labels = [
            self.channel.as_str(),
            self.tx_type.as_str(),
            status.as_str_name(),
        ];
        let enqueue = *self.enqueue_start.lock().unwrap_or_else(|e| e.into_inner());
        let validated = enqueue.unwrap_or_else(Instant::now);
        observe(
            &METRICS.broadcast_validate_duration,
            "broadcast_validate_duration",
            &labels,
            validated.duration_since(self.start).as_secs_f64(),
        );
        if let Some(e) = enqueue {
            observe(
                &METRICS.broadcast_enqueue_duration,
                "broadcast_enqueue_duration",
                &labels,
                e.elapsed().as_secs_f64(),
            );
        }
        METRICS
            .broadcast_processed_count
            .with_label_values(&labels)
            .inc();
    }
}

/// Validation of the current envelope is over; enqueueing begins (Fabric's
/// `BeginEnqueue`). A no-op outside [`BroadcastTracker::scope`].
pub fn broadcast_begin_enqueue() {
    let _ = ENQUEUE_START.try_with(|s| {
        *s.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    });
}

// ---- Deliver ----

/// The orderer's Deliver serves blocks, unfiltered.
const DATA_TYPE: &str = "block";
const FILTERED: &str = "false";

/// Counts a Deliver stream as opened now and as closed when dropped.
#[derive(Debug)]
pub struct DeliverStreamGuard {
    on: bool,
}

/// `deliver_streams_opened` now, `deliver_streams_closed` when the guard drops.
pub fn deliver_stream_opened() -> DeliverStreamGuard {
    let on = enabled();
    if on {
        METRICS.deliver_streams_opened.inc();
    }
    DeliverStreamGuard { on }
}

impl Drop for DeliverStreamGuard {
    fn drop(&mut self) {
        if self.on {
            METRICS.deliver_streams_closed.inc();
        }
    }
}

/// One Deliver request on a known channel: counted as received when made,
/// as completed (`success` false unless [`DeliverRequest::complete`] says
/// otherwise) when dropped.
#[derive(Debug)]
pub struct DeliverRequest {
    channel: Option<String>,
    success: bool,
}

impl DeliverRequest {
    /// `deliver_requests_received{channel,filtered,data_type}`.
    pub fn received(channel: &str) -> Self {
        if !enabled() {
            return Self {
                channel: None,
                success: false,
            };
        }
        METRICS
            .deliver_requests_received
            .with_label_values(&[channel, FILTERED, DATA_TYPE])
            .inc();
        Self {
            channel: Some(channel.to_string()),
            success: false,
        }
    }

    /// Sets the outcome recorded when the request is dropped.
    pub fn complete(&mut self, success: bool) {
        self.success = success;
    }
}

impl Drop for DeliverRequest {
    fn drop(&mut self) {
        if let Some(ch) = &self.channel {
            let success = if self.success { "true" } else { "false" };
            METRICS
                .deliver_requests_completed
                .with_label_values(&[ch.as_str(), FILTERED, DATA_TYPE, success])
                .inc();
        }
    }
}

/// `deliver_blocks_sent{channel,filtered,data_type}`.
pub fn deliver_block_sent(channel: &str) {
    if !enabled() {
        return;
    }
    METRICS
        .deliver_blocks_sent
        .with_label_values(&[channel, FILTERED, DATA_TYPE])
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_an_envelope() {
        let env = fabric_common::envelope::create_signed_envelope(
            HeaderType::EndorserTransaction,
            "mychannel",
            None,
            b"data".to_vec(),
            &Default::default(),
        );
        assert_eq!(
            envelope_labels(&env),
            ("mychannel".to_string(), "ENDORSER_TRANSACTION".to_string())
        );
        let bad = Envelope {
            payload: vec![0xff, 0x01],
            signature: vec![],
        };
        assert_eq!(
            envelope_labels(&bad),
            ("unknown".to_string(), "unknown".to_string())
        );
    }

    #[tokio::test]
    async fn tracker_and_text_format_use_fabric_names() {
        set_enabled(true);
        let env = fabric_common::envelope::create_signed_envelope(
            HeaderType::Message,
            "metrics-test",
            None,
            vec![],
            &Default::default(),
        );
        let t = BroadcastTracker::begin(&env);
        t.scope(async { broadcast_begin_enqueue() }).await;
        t.record(Status::Success);
        {
            let mut r = DeliverRequest::received("metrics-test");
            deliver_block_sent("metrics-test");
            r.complete(true);
        }
        block_fill_pending("metrics-test");
        block_fill_cut("metrics-test");
        let text = render_text().unwrap();
        assert!(text.contains(
            "broadcast_processed_count{channel=\"metrics-test\",status=\"SUCCESS\",type=\"MESSAGE\"} 1"
        ), "{text}");
        assert!(text.contains("broadcast_enqueue_duration_count{channel=\"metrics-test\""));
        assert!(text.contains(
            "deliver_requests_completed{channel=\"metrics-test\",data_type=\"block\",filtered=\"false\",success=\"true\"} 1"
        ));
        assert!(text.contains("blockcutter_block_fill_duration_count{channel=\"metrics-test\"} 1"));
        // Fabric's counters have no `_total`; only the process collector's
        // `process_cpu_seconds_total` (Go's client has the same name).
        assert!(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .all(|l| !l.contains("_total") || l.starts_with("process_cpu_seconds_total")),
            "{text}"
        );
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }
}
