//! The counter check: broadcast the values `0..n` (over `streams` Broadcast
//! streams, value `i` on stream `i % streams`) while following Deliver from
//! the height seen before the first broadcast, and verify that
//!
//! * every Broadcast response is SUCCESS;
//! * every value is delivered exactly once, and each stream's values in the
//!   order they were sent;
//! * consecutive blocks link (number, previous hash, data hash);
//! * each block carries a valid orderer signature (and, with a
//!   [`SignerTrust`], one by a trusted certificate).
//!
//! Each envelope is a MESSAGE-type envelope with a transaction ID whose
//! `Payload.data` is a marshaled `common.ConfigValue` (as Fabric's
//! `broadcast_msg` sample client sends) with
//! `value = "counter:<run id>:<i>"`. The run ID is random, so envelopes from
//! other clients or earlier runs on the same channel are ignored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fabric_common::envelope::{create_signed_envelope, EnvelopeOptions};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{ConfigValue, Envelope, HeaderType, Payload};
use prost::Message;
use serde::Serialize;
use tokio::sync::watch;

use crate::broadcast::{run_stream, StreamStats};
use crate::config::Target;
use crate::conn::connect;
use crate::deliver::{newest_block, ChainFollower, DeliverItem, DeliverSession, Position};
use crate::status_name;
use crate::verify::SignerTrust;

/// A violation of the counter properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A value arrived twice.
    Duplicate(u64),
    /// A value arrived after a later value of the same stream.
    OutOfOrder {
        /// The stream.
        stream: u64,
        /// The value.
        value: u64,
        /// The value delivered before it on that stream.
        after: u64,
    },
    /// A value outside `0..n`.
    OutOfRange(u64),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Duplicate(v) => write!(f, "counter {v} delivered twice"),
            Violation::OutOfOrder {
                stream,
                value,
                after,
            } => {
                write!(
                    f,
                    "counter {value} (stream {stream}) delivered after {after}"
                )
            }
            Violation::OutOfRange(v) => write!(f, "counter {v} was never sent"),
        }
    }
}

/// Checks delivered counter values (pure logic).
#[derive(Debug, Clone)]
pub struct CounterChecker {
    n: u64,
    streams: u64,
    seen: Vec<bool>,
    last: Vec<Option<u64>>,
    delivered: u64,
    violations: Vec<Violation>,
}

impl CounterChecker {
    /// Expects the values `0..n`, value `i` sent on stream `i % streams`.
    pub fn new(n: u64, streams: u64) -> Self {
        let streams = streams.max(1);
        Self {
            n,
            streams,
            seen: vec![false; n as usize],
            last: vec![None; streams as usize],
            delivered: 0,
            violations: Vec::new(),
        }
    }

    /// Records a delivered value.
    pub fn observe(&mut self, value: u64) -> Result<(), Violation> {
        let r = self.check(value);
        if let Err(v) = &r {
            self.violations.push(v.clone());
        }
        r
    }

    fn check(&mut self, value: u64) -> Result<(), Violation> {
        if value >= self.n {
            return Err(Violation::OutOfRange(value));
        }
        if std::mem::replace(&mut self.seen[value as usize], true) {
            return Err(Violation::Duplicate(value));
        }
        self.delivered += 1;
        let stream = value % self.streams;
        let last = &mut self.last[stream as usize];
        match *last {
            Some(after) if value < after => Err(Violation::OutOfOrder {
                stream,
                value,
                after,
            }),
            _ => {
                *last = Some(value);
                Ok(())
            }
        }
    }

    /// Distinct values delivered.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Every value has been delivered.
    pub fn complete(&self) -> bool {
        self.delivered == self.n
    }

    /// Values not delivered (at most `limit`).
    pub fn missing(&self, limit: usize) -> Vec<u64> {
        (0..self.n)
            .filter(|i| !self.seen[*i as usize])
            .take(limit)
            .collect()
    }

    /// Number of values not delivered.
    pub fn missing_count(&self) -> u64 {
        self.n - self.delivered
    }

    /// Violations seen so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }
}

/// The counter value carried by `value` if it belongs to run `run`.
pub fn parse_counter(run: &str, value: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(value).ok()?;
    let rest = s
        .strip_prefix("counter:")?
        .strip_prefix(run)?
        .strip_prefix(':')?;
    rest.parse().ok()
}

/// The counter value in a delivered envelope (bytes as stored in a block).
pub fn envelope_counter(run: &str, env_bytes: &[u8]) -> Option<u64> {
    let env = Envelope::decode(env_bytes).ok()?;
    let payload = Payload::decode(env.payload.as_slice()).ok()?;
    let cv = ConfigValue::decode(payload.data.as_slice()).ok()?;
    parse_counter(run, &cv.value)
}

/// The signed envelope carrying counter `i` of run `run`.
pub fn counter_envelope(signer: &LocalSigner, channel: &str, run: &str, i: u64) -> Envelope {
    let data = ConfigValue {
        value: format!("counter:{run}:{i}").into_bytes(),
        ..Default::default()
    };
    create_signed_envelope(
        HeaderType::Message,
        channel,
        Some(signer),
        data.encode_to_vec(),
        &EnvelopeOptions {
            with_txid: true,
            ..Default::default()
        },
    )
}

/// Options of a counter run.
#[derive(Debug, Clone)]
pub struct CounterOpts {
    /// Orderer address.
    pub server: String,
    /// Channel.
    pub channel: String,
    /// Client identity.
    pub signer: Arc<LocalSigner>,
    /// Number of values.
    pub n: u64,
    /// Broadcast streams.
    pub streams: usize,
    /// Maximum unanswered envelopes per stream.
    pub window: usize,
    /// Give up waiting for deliveries after this long (from the first broadcast).
    pub timeout: Duration,
    /// Block signature check (`None`: links only).
    pub trust: Option<SignerTrust>,
}

impl CounterOpts {
    /// `n` values over one stream with a 1000-envelope window, 120 s timeout,
    /// signatures checked against the target's trust.
    pub fn new(target: &Target, n: u64) -> Self {
        Self {
            server: target.server.clone(),
            channel: target.channel.clone(),
            signer: target.signer.clone(),
            n,
            streams: 1,
            window: 1000,
            timeout: Duration::from_secs(120),
            trust: Some(target.trust.clone()),
        }
    }
}

/// The result of a counter run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CounterReport {
    /// Values sent.
    pub n: u64,
    /// Streams used.
    pub streams: usize,
    /// Channel height before the first broadcast.
    pub start_height: u64,
    /// Height after the last block received.
    pub end_height: u64,
    /// Blocks received and checked.
    pub blocks: u64,
    /// SUCCESS responses.
    pub acked_success: u64,
    /// Non-SUCCESS responses by status.
    pub ack_failures: BTreeMap<String, u64>,
    /// Distinct counter values delivered.
    pub delivered: u64,
    /// Envelopes in the delivered blocks that belong to no value of this run.
    pub foreign_txs: u64,
    /// MSP IDs that signed the blocks.
    pub block_signers: Vec<String>,
    /// Every violation found (empty = pass).
    pub violations: Vec<String>,
    /// Seconds from the first broadcast to the last delivered value.
    pub elapsed_s: f64,
    /// Delivered values per second.
    pub tx_per_sec: f64,
}

impl CounterReport {
    /// No violation.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// One line for humans and scripts.
    pub fn summary_line(&self) -> String {
        format!(
            "counter: {} n={} streams={} acked={} delivered={} blocks={} heights={}..{} foreign={} \
             signers=[{}] elapsed={:.3}s rate={:.0}tx/s violations={}",
            if self.ok() { "PASS" } else { "FAIL" },
            self.n,
            self.streams,
            self.acked_success,
            self.delivered,
            self.blocks,
            self.start_height,
            self.end_height,
            self.foreign_txs,
            self.block_signers.join(","),
            self.elapsed_s,
            self.tx_per_sec,
            self.violations.len(),
        )
    }
}

struct FollowResult {
    checker: CounterChecker,
    follower: ChainFollower,
    foreign: u64,
    violations: Vec<String>,
    last_delivery: Option<Instant>,
}

/// Runs the counter check against a live orderer.
pub async fn run(opts: CounterOpts) -> Result<CounterReport> {
    let streams = opts.streams.max(1);
    let run_id = hex::encode(rand::random::<[u8; 6]>());
    let mut client = connect(&opts.server).await?;
    let newest = newest_block(&mut client, &opts.channel, &opts.signer)
        .await
        .context("reading the channel height")?;
    let prev = newest
        .header
        .clone()
        .context("newest block without header")?;
    let start_height = prev.number + 1;

    // Follow from the height seen before the first broadcast.
    let info = crate::deliver::seek_info(
        Position::Specified(start_height),
        Position::Specified(u64::MAX),
        false,
        false,
    );
    let mut session = DeliverSession::seek(&mut client, &opts.channel, &opts.signer, &info).await?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut follower = ChainFollower::new(Some(prev), opts.trust.clone());
    let mut checker = CounterChecker::new(opts.n, streams as u64);
    let follow_run = run_id.clone();
    let follow = tokio::spawn(async move {
        let mut foreign = 0u64;
        let mut violations = Vec::new();
        let mut last_delivery = None;
        while !checker.complete() && !*stop_rx.borrow() {
            let item = tokio::select! {
                it = session.next() => it,
                _ = tokio::time::sleep_until(deadline) => {
                    violations.push(format!("timed out after {:?} waiting for deliveries", opts.timeout));
                    break;
                }
                _ = stop_rx.changed() => continue,
            };
            match item {
                Ok(DeliverItem::Block(b)) => {
                    if let Err(e) = follower.check(&b) {
                        violations.push(e);
                    }
                    for d in b.data.as_ref().map(|d| d.data.as_slice()).unwrap_or(&[]) {
                        match envelope_counter(&follow_run, d) {
                            Some(v) => {
                                if let Err(e) = checker.observe(v) {
                                    violations.push(e.to_string());
                                }
                                last_delivery = Some(Instant::now());
                            }
                            None => foreign += 1,
                        }
                    }
                }
                Ok(DeliverItem::Status(s)) => {
                    violations.push(format!("deliver ended with status {}", status_name(s)));
                    break;
                }
                Ok(DeliverItem::End) => {
                    violations.push("deliver stream ended without a status".into());
                    break;
                }
                Err(e) => {
                    violations.push(format!("{e:#}"));
                    break;
                }
            }
        }
        FollowResult {
            checker,
            follower,
            foreign,
            violations,
            last_delivery,
        }
    });

    // Pre-sign every envelope, then broadcast over `streams` connections.
    let mut per_stream: Vec<Vec<(u64, Envelope)>> = vec![Vec::new(); streams];
    for i in 0..opts.n {
        per_stream[(i % streams as u64) as usize]
            .push((i, counter_envelope(&opts.signer, &opts.channel, &run_id, i)));
    }
    let mut tasks = Vec::new();
    for envs in per_stream {
        let c = connect(&opts.server).await?;
        let window = opts.window;
        tasks.push(tokio::spawn(async move {
            run_stream(c, futures::stream::iter(envs), window, None).await
        }));
    }
    let mut stats = StreamStats::default();
    for t in tasks {
        stats.merge(&t.await.context("broadcast task panicked")?);
    }
    let mut violations = Vec::new();
    if let Some(e) = &stats.error {
        violations.push(e.clone());
    }
    if let Some(f) = &stats.first_failure {
        violations.push(format!("non-SUCCESS broadcast response ({f})"));
    }
    if stats.closed_early {
        violations.push("a Broadcast stream closed before every envelope was answered".into());
    }
    if stats.success < opts.n {
        violations.push(format!(
            "only {} of {} envelopes acknowledged with SUCCESS",
            stats.success, opts.n
        ));
        let _ = stop_tx.send(true);
    }
    let fr = follow.await.context("deliver task panicked")?;
    violations.extend(fr.violations);
    if !fr.checker.complete() {
        violations.push(format!(
            "{} counter values never delivered (first: {:?})",
            fr.checker.missing_count(),
            fr.checker.missing(10)
        ));
    }
    let elapsed = match (stats.first_send, fr.last_delivery) {
        (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let delivered = fr.checker.delivered();
    Ok(CounterReport {
        n: opts.n,
        streams,
        start_height,
        end_height: fr.follower.last().map_or(start_height, |h| h.number + 1),
        blocks: fr.follower.blocks,
        acked_success: stats.success,
        ack_failures: stats.failures,
        delivered,
        foreign_txs: fr.foreign,
        block_signers: fr.follower.signers.into_iter().collect(),
        violations,
        elapsed_s: elapsed,
        tx_per_sec: if elapsed > 0.0 {
            delivered as f64 / elapsed
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_single_stream_passes() {
        let mut c = CounterChecker::new(5, 1);
        for i in 0..5 {
            c.observe(i).unwrap();
        }
        assert!(c.complete());
        assert!(c.violations().is_empty());
        assert!(c.missing(10).is_empty());
    }

    #[test]
    fn duplicates_out_of_order_and_out_of_range_are_reported() {
        let mut c = CounterChecker::new(5, 1);
        c.observe(0).unwrap();
        c.observe(2).unwrap();
        assert_eq!(
            c.observe(1),
            Err(Violation::OutOfOrder {
                stream: 0,
                value: 1,
                after: 2
            })
        );
        assert_eq!(c.observe(2), Err(Violation::Duplicate(2)));
        assert_eq!(c.observe(9), Err(Violation::OutOfRange(9)));
        assert_eq!(c.delivered(), 3);
        assert!(!c.complete());
        assert_eq!(c.missing(10), vec![3, 4]);
        assert_eq!(c.missing_count(), 2);
        assert_eq!(c.violations().len(), 3);
        c.observe(3).unwrap();
        c.observe(4).unwrap();
        assert!(c.complete()); // complete, but the violations remain
        assert_eq!(c.violations().len(), 3);
    }

    #[test]
    fn order_is_per_stream() {
        // Streams: 0 → {0,2,4}, 1 → {1,3,5}. Interleaving across streams is fine.
        let mut c = CounterChecker::new(6, 2);
        for v in [1, 0, 3, 2, 5, 4] {
            c.observe(v).unwrap();
        }
        assert!(c.complete());
        let mut c = CounterChecker::new(6, 2);
        c.observe(4).unwrap();
        c.observe(1).unwrap();
        assert_eq!(
            c.observe(2),
            Err(Violation::OutOfOrder {
                stream: 0,
                value: 2,
                after: 4
            })
        );
    }

    #[test]
    fn envelope_round_trip_and_foreign_runs() {
        let dir = tempfile::tempdir().unwrap();
        let signer = crate::test_user_signer(dir.path());
        let env = counter_envelope(&signer, "ch", "abc", 42);
        let bytes = env.encode_to_vec();
        assert_eq!(envelope_counter("abc", &bytes), Some(42));
        assert_eq!(envelope_counter("abd", &bytes), None);
        assert_eq!(envelope_counter("abc", b"garbage"), None);
        let p = fabric_common::envelope::parse_envelope(&env).unwrap();
        assert_eq!(p.channel_header.r#type, HeaderType::Message as i32);
        assert_eq!(p.channel_header.tx_id.len(), 64);
        assert_eq!(parse_counter("r", b"counter:r:7"), Some(7));
        assert_eq!(parse_counter("r", b"counter:rr:7"), None);
        // Every envelope is distinct (fresh nonce, fresh txid).
        let env2 = counter_envelope(&signer, "ch", "abc", 42);
        assert_ne!(env.payload, env2.payload);
    }
}
