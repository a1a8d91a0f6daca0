//! The metrics Fabric registers around the orderer's own: gRPC server
//! calls (`common/grpcmetrics`), block storage commit time
//! (`blkstorage`), log entries (`flogging/metrics`), and the process
//! (Go's Prometheus client exports `process_*`; here the Rust client's
//! process collector, same names). Registered in the one registry by
//! [`init`] when the `prometheus` provider is on.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `grpc_server_unary_request_duration` | histogram | service, method, code |
//! | `grpc_server_unary_requests_received` | counter | service, method |
//! | `grpc_server_unary_requests_completed` | counter | service, method, code |
//! | `grpc_server_stream_request_duration` | histogram | service, method, code |
//! | `grpc_server_stream_requests_received` | counter | service, method |
//! | `grpc_server_stream_requests_completed` | counter | service, method, code |
//! | `grpc_server_stream_messages_received` | counter | service, method |
//! | `grpc_server_stream_messages_sent` | counter | service, method |
//! | `ledger_blockstorage_commit_time` | histogram (0.005 … 10 s) | channel |
//! | `consensus_kafka_{incoming,outgoing}_byte_rate`, `_request_{rate,size,latency}`, `_response_{rate,size}` | gauge | broker_id |
//! | `consensus_kafka_{batch_size,record_send_rate,records_per_request,compression_ratio}` | gauge | topic |
//! | `logging_entries_checked` | counter | level |
//! | `logging_entries_written` | counter | level |
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`, … | | |
//!
//! The orderer's gRPC methods are all streams, so the unary ones stay
//! empty, as in Fabric's orderer.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{CounterVec, GaugeVec, HistogramOpts, HistogramVec, Registry};

use super::{counter, enabled, gauge, global, histogram};

/// Fabric's `ledger_blockstorage_commit_time` buckets.
const COMMIT_TIME_BUCKETS: &[f64] = &[0.005, 0.01, 0.015, 0.05, 0.1, 1.0, 10.0];

const SERVICE_METHOD: &[&str] = &["service", "method"];
const SERVICE_METHOD_CODE: &[&str] = &["service", "method", "code"];

/// The gRPC server's metrics of one kind of call.
pub struct CallMetrics {
    /// `…_request_duration`.
    pub duration: HistogramVec,
    /// The name of `duration`.
    pub duration_name: String,
    /// `…_requests_received`.
    pub received: CounterVec,
    /// `…_requests_completed`.
    pub completed: CounterVec,
}

impl CallMetrics {
    fn new(r: &Registry, kind: &str) -> Self {
        let name = |n: &str| format!("grpc_server_{kind}_{n}");
        Self {
            duration_name: name("request_duration"),
            duration: histogram(
                r,
                &name("request_duration"),
                &format!("The time to complete a {kind} request."),
                SERVICE_METHOD_CODE,
            ),
            received: counter(
                r,
                &name("requests_received"),
                &format!("The number of {kind} requests received."),
                SERVICE_METHOD,
            ),
            completed: counter(
                r,
                &name("requests_completed"),
                &format!("The number of {kind} requests completed."),
                SERVICE_METHOD_CODE,
            ),
        }
    }
}

/// Everything here, registered once.
pub struct Ops {
    /// Unary calls.
    pub unary: CallMetrics,
    /// Streaming calls.
    pub stream: CallMetrics,
    /// `grpc_server_stream_messages_received`.
    pub messages_received: CounterVec,
    /// `grpc_server_stream_messages_sent`.
    pub messages_sent: CounterVec,
    commit_time: HistogramVec,
    kafka_broker: Vec<GaugeVec>,
    kafka_topic: Vec<GaugeVec>,
    log_checked: CounterVec,
    log_written: CounterVec,
}

impl Ops {
    fn new(r: &Registry) -> Self {
        let commit_time = HistogramVec::new(
            HistogramOpts::new(
                "ledger_blockstorage_commit_time",
                "Time taken in seconds for committing the block to storage.",
            )
            .buckets(COMMIT_TIME_BUCKETS.to_vec()),
            &["channel"],
        )
        .expect("metric definition");
        r.register(Box::new(commit_time.clone()))
            .expect("metric registration");
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("metric registration");
        Self {
            unary: CallMetrics::new(r, "unary"),
            stream: CallMetrics::new(r, "stream"),
            messages_received: counter(
                r,
                "grpc_server_stream_messages_received",
                "The number of stream messages received.",
                SERVICE_METHOD,
            ),
            messages_sent: counter(
                r,
                "grpc_server_stream_messages_sent",
                "The number of stream messages sent.",
                SERVICE_METHOD,
            ),
            commit_time,
            kafka_broker: KAFKA_BROKER_GAUGES
                .iter()
                .map(|(n, h)| gauge(r, n, h, &["broker_id"]))
                .collect(),
            kafka_topic: KAFKA_TOPIC_GAUGES
                .iter()
                .map(|(n, h)| gauge(r, n, h, &["topic"]))
                .collect(),
            log_checked: counter(
                r,
                "logging_entries_checked",
                "Number of log entries checked against the active logging level",
                &["level"],
            ),
            log_written: counter(
                r,
                "logging_entries_written",
                "Number of log entries that are written",
                &["level"],
            ),
        }
    }
}

/// Fabric's sarama gauges by broker, in the order of
/// `consensus::kafka::stats::Gauges::brokers`.
const KAFKA_BROKER_GAUGES: [(&str, &str); 7] = [
    (
        "consensus_kafka_incoming_byte_rate",
        "Bytes/second read off brokers.",
    ),
    (
        "consensus_kafka_outgoing_byte_rate",
        "Bytes/second written to brokers.",
    ),
    (
        "consensus_kafka_request_rate",
        "Requests/second sent to brokers.",
    ),
    (
        "consensus_kafka_request_size",
        "The mean request size in bytes to brokers.",
    ),
    (
        "consensus_kafka_request_latency",
        "The mean request latency in ms to brokers.",
    ),
    (
        "consensus_kafka_response_rate",
        "Requests/second sent to brokers.",
    ),
    (
        "consensus_kafka_response_size",
        "The mean response size in bytes from brokers.",
    ),
];

/// Fabric's sarama gauges by topic, in the order of
/// `consensus::kafka::stats::Gauges::topics`.
const KAFKA_TOPIC_GAUGES: [(&str, &str); 4] = [
    (
        "consensus_kafka_batch_size",
        "The mean batch size in bytes sent to topics.",
    ),
    (
        "consensus_kafka_record_send_rate",
        "The number of records per second sent to topics.",
    ),
    (
        "consensus_kafka_records_per_request",
        "The mean number of records sent per request to topics.",
    ),
    (
        "consensus_kafka_compression_ratio",
        "The mean compression ratio (as percentage) for topics.",
    ),
];

/// Publishes the Kafka clients' figures (`consensus_kafka_*` by broker and topic).
pub fn kafka_client_gauges(g: &crate::consensus::kafka::stats::Gauges) {
    let Some(o) = ops() else { return };
    for (id, values) in &g.brokers {
        let id = id.to_string();
        for (gauge, v) in o.kafka_broker.iter().zip(values) {
            gauge.with_label_values(&[id.as_str()]).set(*v);
        }
    }
    for (topic, values) in &g.topics {
        for (gauge, v) in o.kafka_topic.iter().zip(values) {
            gauge.with_label_values(&[topic.as_str()]).set(*v);
        }
    }
}

static OPS: LazyLock<Ops> = LazyLock::new(|| Ops::new(global().registry()));

/// Registers these metrics (the `prometheus` provider is on).
pub fn init() {
    LazyLock::force(&OPS);
}

/// These metrics, when recording is on.
pub fn ops() -> Option<&'static Ops> {
    enabled().then(|| &*OPS)
}

/// `ledger_blockstorage_commit_time{channel}`.
pub fn ledger_commit_time(channel: &str, took: Duration) {
    if let Some(o) = ops() {
        super::observe(
            &o.commit_time,
            "ledger_blockstorage_commit_time",
            &[channel],
            took.as_secs_f64(),
        );
    }
}

/// A log entry of `level` (zap's name) was checked against the active
/// level (`logging_entries_checked`).
pub fn log_checked(level: &str) {
    if let Some(o) = ops() {
        o.log_checked.with_label_values(&[level]).inc();
    }
}

/// A log entry of `level` was written (`logging_entries_written`).
pub fn log_written(level: &str) {
    if let Some(o) = ops() {
        o.log_written.with_label_values(&[level]).inc();
    }
}
