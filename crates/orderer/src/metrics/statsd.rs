//! `Metrics.Provider: statsd`: the metrics of the registry in
//! [`crate::metrics`], written every `Metrics.Statsd.WriteInterval` to
//! `Metrics.Statsd.Address` over `Network` (`udp` or `tcp`) through the
//! `cadence` client, under Fabric's statsd names:
//!
//! - the name is Fabric's fully qualified name, namespace, subsystem and
//!   name joined by dots (`broadcast.validate_duration`,
//!   `consensus.kafka.request_rate`, `grpc.server.unary_request_duration`,
//!   `fabric_version`), followed by `.<label value>` for each label in the
//!   metric's label order (Fabric's `%{#fqname}.%{label}…` formats); label
//!   values have `.`, `|`, `:` and white space replaced by `_`;
//! - `Prefix` is put in front as given (Fabric adds no dot);
//! - counters: the increase since the last write, `name:N|c` (none when 0);
//! - gauges: the current value, `name:V|g`;
//! - histograms: every observation, in seconds as Fabric sends them,
//!   `name:0.000123|ms`. At most [`MAX_PENDING_TIMINGS`] observations are
//!   kept between two writes; more are dropped (and counted in
//!   `orderer_refused_total{reason="statsd_timings_dropped"}`).
//!
//! The decisions (names, deltas, lines) are pure functions of a registry
//! snapshot; the socket is behind cadence's `MetricSink`.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cadence::ext::MetricBackend;
use cadence::{BufferedUdpMetricSink, Counted, Gauged, Metric, MetricSink, StatsdClient};
use prometheus::proto::{MetricFamily, MetricType};
use tracing::{info, warn};

/// Histogram observations kept between two writes.
pub const MAX_PENDING_TIMINGS: usize = 65_536;

/// `Metrics.Statsd`, validated by the configuration loader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsdSettings {
    /// `Network`: `udp` or `tcp`.
    pub network: StatsdNetwork,
    /// `Address` (host:port).
    pub address: String,
    /// `WriteInterval`.
    pub write_interval: Duration,
    /// `Prefix`, put in front of every name as given.
    pub prefix: String,
}

/// `Metrics.Statsd.Network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsdNetwork {
    /// Datagrams, several lines per packet.
    Udp,
    /// One connection, one line per metric.
    Tcp,
}

static ON: AtomicBool = AtomicBool::new(false);
static PENDING: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());

/// Records one histogram observation (a no-op unless statsd is on).
pub fn timing(name: &str, labels: &[&str], value: f64) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let key = statsd_name(name, labels);
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if pending.len() < MAX_PENDING_TIMINGS {
        pending.push((key, value));
    } else {
        drop(pending);
        super::refused("statsd_timings_dropped");
    }
}

/// Fabric's dotted fully qualified name of a Prometheus metric name.
pub fn fqname(prom_name: &str) -> String {
    // Namespace and subsystem pairs that Fabric registers (both parts are
    // one word each, so the rest is the metric's own name).
    const TWO_PART: &[&str] = &["consensus_kafka_", "grpc_server_", "grpc_comm_"];
    if prom_name == "fabric_version" {
        return prom_name.into();
    }
    for p in TWO_PART {
        if let Some(rest) = prom_name.strip_prefix(p) {
            return format!("{}{rest}", p.replace('_', "."));
        }
    }
    match prom_name.split_once('_') {
        Some((ns, rest)) => format!("{ns}.{rest}"),
        None => prom_name.into(),
    }
}

/// The statsd name of a metric and its label values (in label order).
pub fn statsd_name(prom_name: &str, label_values: &[&str]) -> String {
    let mut out = fqname(prom_name);
    for v in label_values {
        out.push('.');
        out.extend(v.chars().map(|c| {
            if c == '.' || c == '|' || c == ':' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        }));
    }
    out
}

/// Label names in the order each metric declares them (Prometheus
/// exposition sorts labels by name; Fabric's statsd formats follow the
/// declared order). Filled by the registration helpers of
/// [`crate::metrics`].
static DECLARED: Mutex<Option<HashMap<String, Vec<String>>>> = Mutex::new(None);

/// Records the label order of a metric at registration.
pub fn declare(prom_name: &str, labels: &[&str]) {
    DECLARED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(
            prom_name.into(),
            labels.iter().map(|l| l.to_string()).collect(),
        );
}

fn label_order(prom_name: &str) -> Option<Vec<String>> {
    DECLARED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(prom_name).cloned())
}

/// One metric line to write.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// `name:N|c`.
    Count(String, i64),
    /// `name:V|g`.
    Gauge(String, f64),
    /// `name:V|ms` (seconds, as Fabric).
    Timing(String, f64),
}

/// Counter totals at the last write, to send increases.
#[derive(Default)]
pub struct Deltas {
    last: HashMap<String, f64>,
}

impl Deltas {
    /// The count and gauge lines of a registry snapshot (histograms are
    /// sent per observation, see [`timing`]).
    pub fn lines(&mut self, families: &[MetricFamily]) -> Vec<Line> {
        let mut out = Vec::new();
        for f in families {
            let name = f.name();
            let order = label_order(name);
            for m in f.get_metric() {
                let labels: Vec<&str> = match &order {
                    Some(order) => order
                        .iter()
                        .map(|l| {
                            m.get_label()
                                .iter()
                                .find(|p| p.name() == l.as_str())
                                .map_or("unknown", |p| p.value())
                        })
                        .collect(),
                    None => m.get_label().iter().map(|p| p.value()).collect(),
                };
                let key = statsd_name(name, &labels);
                match f.get_field_type() {
                    MetricType::COUNTER => {
                        let total = m.get_counter().get_value();
                        let before = self.last.insert(key.clone(), total).unwrap_or(0.0);
                        let delta = (total - before).round() as i64;
                        if delta != 0 {
                            out.push(Line::Count(key, delta));
                        }
                    }
                    MetricType::GAUGE => out.push(Line::Gauge(key, m.get_gauge().get_value())),
                    _ => {}
                }
            }
        }
        out
    }
}

/// A fully formed line for cadence's `send_metric` (Fabric's float timings).
struct Raw(String);

impl Metric for Raw {
    fn as_metric_str(&self) -> &str {
        &self.0
    }
}

/// One line per metric over a TCP connection, re-dialled after an error.
struct TcpSink {
    address: String,
    conn: Mutex<Option<io::BufWriter<TcpStream>>>,
}

impl MetricSink for TcpSink {
    fn emit(&self, metric: &str) -> io::Result<usize> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if conn.is_none() {
            let s = TcpStream::connect(&self.address)?;
            s.set_write_timeout(Some(Duration::from_secs(5)))?;
            *conn = Some(io::BufWriter::new(s));
        }
        let w = conn.as_mut().expect("just connected");
        let r = w
            .write_all(metric.as_bytes())
            .and_then(|_| w.write_all(b"\n"));
        if r.is_err() {
            *conn = None;
        }
        r.map(|_| metric.len() + 1)
    }

    fn flush(&self) -> io::Result<()> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let r = conn.as_mut().map_or(Ok(()), |w| w.flush());
        if r.is_err() {
            *conn = None;
        }
        r
    }
}

fn client(s: &StatsdSettings) -> io::Result<StatsdClient> {
    // The prefix is added to each name here (cadence would add a dot).
    Ok(match s.network {
        StatsdNetwork::Udp => {
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            let sink = BufferedUdpMetricSink::from(s.address.as_str(), socket)
                .map_err(|e| io::Error::other(e.to_string()))?;
            StatsdClient::from_sink("", sink)
        }
        StatsdNetwork::Tcp => StatsdClient::from_sink(
            "",
            TcpSink {
                address: s.address.clone(),
                conn: Mutex::new(None),
            },
        ),
    })
}

fn send(c: &StatsdClient, prefix: &str, line: Line) -> cadence::MetricResult<()> {
    match line {
        Line::Count(k, v) => c.count(&format!("{prefix}{k}"), v).map(|_| ()),
        Line::Gauge(k, v) => c.gauge(&format!("{prefix}{k}"), v).map(|_| ()),
        Line::Timing(k, v) => c.send_metric(&Raw(format!("{prefix}{k}:{v:.6}|ms"))),
    }
}

/// Starts writing every `write_interval` on a thread of its own; `refresh`
/// sets the gauges that are computed on demand (ledger heights, buffers)
/// before each write.
pub fn start(settings: StatsdSettings, refresh: Arc<dyn Fn() + Send + Sync>) -> io::Result<()> {
    let client = client(&settings)?;
    ON.store(true, Ordering::Relaxed);
    info!(address = %settings.address, network = ?settings.network,
          interval = ?settings.write_interval, "writing metrics to statsd");
    std::thread::Builder::new()
        .name("statsd".into())
        .spawn(move || {
            let mut deltas = Deltas::default();
            let mut failing = false;
            loop {
                std::thread::sleep(settings.write_interval);
                refresh();
                let mut lines = deltas.lines(&super::global().registry().gather());
                let timings = std::mem::take(&mut *PENDING.lock().unwrap_or_else(|e| e.into_inner()));
                lines.extend(timings.into_iter().map(|(k, v)| Line::Timing(k, v)));
                let mut result = Ok(());
                for line in lines {
                    result = result.and(send(&client, &settings.prefix, line));
                }
                result = result.and(client.flush());
                match result {
                    Err(e) if !failing => {
                        warn!(error = %e, address = %settings.address, "writing metrics to statsd failed");
                        failing = true;
                    }
                    Ok(()) => failing = false,
                    Err(_) => {}
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_names() {
        assert_eq!(
            fqname("broadcast_validate_duration"),
            "broadcast.validate_duration"
        );
        assert_eq!(
            fqname("consensus_kafka_request_rate"),
            "consensus.kafka.request_rate"
        );
        assert_eq!(
            fqname("grpc_server_unary_request_duration"),
            "grpc.server.unary_request_duration"
        );
        assert_eq!(fqname("grpc_comm_conn_opened"), "grpc.comm.conn_opened");
        assert_eq!(
            fqname("ledger_blockstorage_commit_time"),
            "ledger.blockstorage_commit_time"
        );
        assert_eq!(fqname("logging_entries_checked"), "logging.entries_checked");
        assert_eq!(fqname("fabric_version"), "fabric_version");
        assert_eq!(
            statsd_name("fabric_version", &["2.5.1"]),
            "fabric_version.2_5_1"
        );
        assert_eq!(
            statsd_name(
                "grpc_server_unary_request_duration",
                &["orderer.AtomicBroadcast", "Broadcast", "OK"]
            ),
            "grpc.server.unary_request_duration.orderer_AtomicBroadcast.Broadcast.OK"
        );
        assert_eq!(statsd_name("x_y", &["a b|c:d"]), "x.y.a_b_c_d");
    }

    #[test]
    fn counters_send_increases_gauges_values_in_declared_label_order() {
        let r = prometheus::Registry::new();
        let c = prometheus::CounterVec::new(
            prometheus::Opts::new("broadcast_processed_count", "h"),
            &["channel", "type", "status"],
        )
        .unwrap();
        let g = prometheus::GaugeVec::new(
            prometheus::Opts::new("ledger_blockchain_height", "h"),
            &["channel"],
        )
        .unwrap();
        r.register(Box::new(c.clone())).unwrap();
        r.register(Box::new(g.clone())).unwrap();
        declare("broadcast_processed_count", &["channel", "type", "status"]);
        c.with_label_values(&["ch", "ENDORSER_TRANSACTION", "SUCCESS"])
            .inc_by(3.0);
        g.with_label_values(&["ch"]).set(7.0);
        let mut d = Deltas::default();
        let key = "broadcast.processed_count.ch.ENDORSER_TRANSACTION.SUCCESS".to_string();
        assert_eq!(
            d.lines(&r.gather()),
            vec![
                Line::Count(key.clone(), 3),
                Line::Gauge("ledger.blockchain_height.ch".into(), 7.0)
            ]
        );
        c.with_label_values(&["ch", "ENDORSER_TRANSACTION", "SUCCESS"])
            .inc_by(2.0);
        assert_eq!(
            d.lines(&r.gather()),
            vec![
                Line::Count(key, 2),
                Line::Gauge("ledger.blockchain_height.ch".into(), 7.0)
            ]
        );
        // No increase, no count line.
        assert_eq!(d.lines(&r.gather()).len(), 1);
    }

    #[test]
    fn registered_metrics_use_their_declared_label_order() {
        let m = super::super::global();
        m.deliver_requests_completed
            .with_label_values(&["ch", "true", "block", "false"])
            .inc();
        let lines = Deltas::default().lines(&m.registry().gather());
        assert!(
            lines.contains(&Line::Count(
                "deliver.requests_completed.ch.true.block.false".into(),
                1
            )),
            "{lines:?}"
        );
    }
}
