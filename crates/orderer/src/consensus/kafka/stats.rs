//! Fabric's Kafka client metrics (sarama's meters and histograms, which
//! Fabric publishes as `consensus_kafka_*` gauges) computed from
//! librdkafka's statistics (`statistics.interval.ms`, on only while
//! metrics are recorded): per broker id the byte, request and response
//! rates, mean request and response sizes and mean latency; per topic the
//! mean batch size in bytes, records per request, records per second and
//! the compression ratio (×100; this orderer's producer does not compress,
//! so 100, as sarama reports for uncompressed batches). Rates are over the
//! last statistics interval, 2 s (sarama's are one-minute moving averages);
//! a client's first report publishes its brokers and topics with no rate yet.
//! Every chain's producer and consumer report; their figures are summed per
//! broker and topic. A client that stopped reporting is forgotten.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;

/// How often librdkafka reports, while metrics are on.
pub const STATS_INTERVAL_MS: u64 = 2_000;

/// The context of the chains' producers and consumers: statistics into
/// the metrics, log lines into `tracing` (`orderer.consensus.kafka.sarama`).
#[derive(Debug, Default, Clone, Copy)]
pub struct StatsContext;

impl ClientContext for StatsContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        super::client::log_to_tracing(level, fac, log_message);
    }

    fn stats(&self, statistics: Statistics) {
        record(&statistics);
    }
}

impl ConsumerContext for StatsContext {}

/// One broker's counters in one report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BrokerCounters {
    /// Requests sent.
    pub tx: u64,
    /// Bytes sent.
    pub txbytes: u64,
    /// Responses received.
    pub rx: u64,
    /// Bytes received.
    pub rxbytes: u64,
    /// Mean round-trip time over the interval, µs (0: none).
    pub rtt_avg_us: i64,
}

/// One topic's figures in one report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TopicCounters {
    /// Records sent (all partitions).
    pub txmsgs: u64,
    /// Mean batch size in bytes over the interval.
    pub batchsize_avg: i64,
    /// Mean records per batch over the interval.
    pub batchcnt_avg: i64,
}

/// What one client reported at one time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// librdkafka's monotonic clock, µs.
    pub ts_us: i64,
    /// By broker id.
    pub brokers: HashMap<i32, BrokerCounters>,
    /// By topic.
    pub topics: HashMap<String, TopicCounters>,
}

impl Report {
    /// The parts of librdkafka's statistics the metrics need; bootstrap
    /// entries (no broker id yet) are left out.
    pub fn of(s: &Statistics) -> Report {
        let brokers = s
            .brokers
            .values()
            .filter(|b| b.nodeid >= 0)
            .map(|b| {
                let c = BrokerCounters {
                    tx: b.tx,
                    txbytes: b.txbytes,
                    rx: b.rx,
                    rxbytes: b.rxbytes,
                    rtt_avg_us: b.rtt.as_ref().map_or(0, |w| w.avg),
                };
                (b.nodeid, c)
            })
            .collect();
        let topics = s
            .topics
            .iter()
            .map(|(name, t)| {
                let c = TopicCounters {
                    txmsgs: t.partitions.values().map(|p| p.txmsgs).sum(),
                    batchsize_avg: t.batchsize.avg,
                    batchcnt_avg: t.batchcnt.avg,
                };
                (name.clone(), c)
            })
            .collect();
        Report {
            ts_us: s.ts,
            brokers,
            topics,
        }
    }
}

/// One client's figures over one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    /// By broker id.
    pub brokers: HashMap<i32, BrokerRates>,
    /// By topic.
    pub topics: HashMap<String, TopicRates>,
}

/// Per second over the interval, and its deltas (for sums of means).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BrokerRates {
    /// Bytes/s received.
    pub incoming_bytes: f64,
    /// Bytes/s sent.
    pub outgoing_bytes: f64,
    /// Requests/s sent.
    pub requests: f64,
    /// Responses/s received.
    pub responses: f64,
    /// Requests, bytes sent, responses, bytes received in the interval.
    pub deltas: (u64, u64, u64, u64),
    /// Mean round-trip time, ms (0: none).
    pub latency_ms: f64,
}

/// A topic over one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TopicRates {
    /// Records/s sent.
    pub records: f64,
    /// Mean batch bytes (0: none sent).
    pub batch_size: f64,
    /// Mean records per batch.
    pub records_per_request: f64,
}

/// A client's first report: the brokers and topics it talks to, with the
/// figures a single report has (round-trip time, batch means) and no rates
/// yet, so the gauges exist from the first report on.
pub fn first(now: &Report) -> Rates {
    let brokers = now
        .brokers
        .iter()
        .map(|(id, n)| {
            let r = BrokerRates {
                latency_ms: n.rtt_avg_us as f64 / 1000.0,
                ..BrokerRates::default()
            };
            (*id, r)
        })
        .collect();
    let topics = now
        .topics
        .iter()
        .map(|(t, n)| {
            let r = TopicRates {
                records: 0.0,
                batch_size: n.batchsize_avg as f64,
                records_per_request: n.batchcnt_avg as f64,
            };
            (t.clone(), r)
        })
        .collect();
    Rates { brokers, topics }
}

/// What changed between two reports of one client.
pub fn rates(prev: &Report, now: &Report) -> Rates {
    let secs = (now.ts_us - prev.ts_us) as f64 / 1e6;
    if secs <= 0.0 {
        return Rates::default();
    }
    let brokers = now
        .brokers
        .iter()
        .map(|(id, n)| {
            let p = prev.brokers.get(id).copied().unwrap_or_default();
            let d = (
                n.tx.saturating_sub(p.tx),
                n.txbytes.saturating_sub(p.txbytes),
                n.rx.saturating_sub(p.rx),
                n.rxbytes.saturating_sub(p.rxbytes),
            );
            let r = BrokerRates {
                incoming_bytes: d.3 as f64 / secs,
                outgoing_bytes: d.1 as f64 / secs,
                requests: d.0 as f64 / secs,
                responses: d.2 as f64 / secs,
                deltas: d,
                latency_ms: n.rtt_avg_us as f64 / 1000.0,
            };
            (*id, r)
        })
        .collect();
    let topics = now
        .topics
        .iter()
        .map(|(t, n)| {
            let p = prev.topics.get(t).copied().unwrap_or_default();
            let r = TopicRates {
                records: n.txmsgs.saturating_sub(p.txmsgs) as f64 / secs,
                batch_size: n.batchsize_avg as f64,
                records_per_request: n.batchcnt_avg as f64,
            };
            (t.clone(), r)
        })
        .collect();
    Rates { brokers, topics }
}

/// The gauges' values: every client's latest rates, summed per broker and
/// topic (means weighted by their counts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    /// broker id → (incoming, outgoing, requests/s, request size, latency ms, responses/s, response size).
    pub brokers: HashMap<i32, [f64; 7]>,
    /// topic → (batch size, records/s, records per request, compression ratio).
    pub topics: HashMap<String, [f64; 4]>,
}

/// Sums the clients' rates into [`Gauges`].
pub fn gauges<'a>(clients: impl IntoIterator<Item = &'a Rates>) -> Gauges {
    let mut b: HashMap<i32, (BrokerRates, f64, usize)> = HashMap::new();
    let mut t: HashMap<String, (TopicRates, usize)> = HashMap::new();
    for r in clients {
        for (id, x) in &r.brokers {
            let e = b.entry(*id).or_default();
            e.0.incoming_bytes += x.incoming_bytes;
            e.0.outgoing_bytes += x.outgoing_bytes;
            e.0.requests += x.requests;
            e.0.responses += x.responses;
            e.0.deltas.0 += x.deltas.0;
            e.0.deltas.1 += x.deltas.1;
            e.0.deltas.2 += x.deltas.2;
            e.0.deltas.3 += x.deltas.3;
            if x.latency_ms > 0.0 {
                e.1 += x.latency_ms;
                e.2 += 1;
            }
        }
        for (name, x) in &r.topics {
            let e = t.entry(name.clone()).or_default();
            e.0.records += x.records;
            if x.batch_size > 0.0 {
                e.0.batch_size += x.batch_size;
                e.0.records_per_request += x.records_per_request;
                e.1 += 1;
            }
        }
    }
    let mean = |sum: u64, n: u64| if n == 0 { 0.0 } else { sum as f64 / n as f64 };
    let brokers = b
        .into_iter()
        .map(|(id, (r, lat, n))| {
            let (tx, txb, rx, rxb) = r.deltas;
            let latency = if n == 0 { 0.0 } else { lat / n as f64 };
            let v = [
                r.incoming_bytes,
                r.outgoing_bytes,
                r.requests,
                mean(txb, tx),
                latency,
                r.responses,
                mean(rxb, rx),
            ];
            (id, v)
        })
        .collect();
    let topics = t
        .into_iter()
        .map(|(name, (r, n))| {
            let k = n.max(1) as f64;
            let ratio = if n == 0 { 0.0 } else { 100.0 };
            (
                name,
                [
                    r.batch_size / k,
                    r.records,
                    r.records_per_request / k,
                    ratio,
                ],
            )
        })
        .collect();
    Gauges { brokers, topics }
}

struct Client {
    last: Report,
    rates: Rates,
}

static CLIENTS: LazyLock<Mutex<HashMap<String, Client>>> = LazyLock::new(Default::default);

/// A client's statistics: updates its rates and publishes the sums.
fn record(s: &Statistics) {
    let now = Report::of(s);
    let forget_before = now.ts_us - 3 * STATS_INTERVAL_MS as i64 * 1000;
    let g = {
        let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
        match clients.get_mut(&s.name) {
            Some(c) => {
                c.rates = rates(&c.last, &now);
                c.last = now;
            }
            None => {
                clients.insert(
                    s.name.clone(),
                    Client {
                        rates: first(&now),
                        last: now,
                    },
                );
            }
        }
        clients.retain(|_, c| c.last.ts_us >= forget_before);
        gauges(clients.values().map(|c| &c.rates))
    };
    crate::metrics::ops::kafka_client_gauges(&g);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ts_s: i64, tx: u64, txbytes: u64, rx: u64, rxbytes: u64, msgs: u64) -> Report {
        Report {
            ts_us: ts_s * 1_000_000,
            brokers: HashMap::from([(
                1,
                BrokerCounters {
                    tx,
                    txbytes,
                    rx,
                    rxbytes,
                    rtt_avg_us: 2_500,
                },
            )]),
            topics: HashMap::from([(
                "ch".to_string(),
                TopicCounters {
                    txmsgs: msgs,
                    batchsize_avg: 4_000,
                    batchcnt_avg: 4,
                },
            )]),
        }
    }

    #[test]
    fn rates_over_the_interval_and_sums_over_clients() {
        let a = rates(
            &report(10, 100, 10_000, 100, 5_000, 400),
            &report(15, 150, 20_000, 150, 7_500, 900),
        );
        let b = rates(
            &report(3, 0, 0, 0, 0, 0),
            &report(8, 50, 30_000, 50, 2_500, 100),
        );
        let ab = &a.brokers[&1];
        assert_eq!(ab.requests, 10.0);
        assert_eq!(ab.outgoing_bytes, 2_000.0);
        assert_eq!(ab.latency_ms, 2.5);
        assert_eq!(a.topics["ch"].records, 100.0);
        let g = gauges([&a, &b]);
        let [inc, out, req, req_size, lat, resp, resp_size] = g.brokers[&1];
        assert_eq!((inc, out, req, resp), (1_000.0, 8_000.0, 20.0, 20.0));
        // 40,000 bytes in 100 requests; 5,000 bytes in 100 responses
        assert_eq!((req_size, resp_size, lat), (400.0, 50.0, 2.5));
        assert_eq!(g.topics["ch"], [4_000.0, 120.0, 4.0, 100.0]);
        let f = first(&report(10, 100, 10_000, 100, 5_000, 400));
        assert_eq!(f.brokers[&1].latency_ms, 2.5);
        assert_eq!(f.brokers[&1].requests, 0.0);
        assert_eq!(f.topics["ch"].batch_size, 4_000.0);
        // no time passed: nothing
        assert_eq!(
            rates(&report(5, 1, 1, 1, 1, 1), &report(5, 9, 9, 9, 9, 9)),
            Rates::default()
        );
    }
}
