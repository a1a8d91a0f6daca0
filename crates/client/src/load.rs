//! The `load` command: many long-lived Broadcast streams and Deliver
//! followers against one orderer for a fixed time, sampling the orderer's
//! resident memory (`VmRSS` in `/proc/<pid>/status`) as it goes.
//!
//! * `broadcast_streams` Broadcast streams stay open for the whole run.
//!   Together they send `rate` envelopes per second (0: idle streams), each
//!   stream at most `window` unanswered. Every envelope is distinct and
//!   signed (a transaction ID each), so none is dropped as a duplicate.
//! * `followers` Deliver streams follow the chain from the newest block,
//!   forever. `slow_followers` of them read one response every
//!   `slow_delay`, so the orderer has to hold back (its per-stream buffers
//!   must stay bounded).
//! * Streams share connections: `streams_per_connection` streams each.
//!
//! The report: RSS before the streams open, after they are open, and
//! min/max over the run; envelopes sent / SUCCESS / other statuses by name;
//! blocks received by followers; transport errors.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fabric_common::envelope::{create_signed_envelope, EnvelopeOptions};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{Envelope, HeaderType};
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;

use crate::conn::{connect, Client};
use crate::deliver::{seek_info, DeliverItem, DeliverSession, Position};
use crate::{status_name, SUCCESS};

/// Options of a load run.
#[derive(Debug, Clone)]
pub struct LoadOpts {
    /// Orderer address.
    pub server: String,
    /// Channel.
    pub channel: String,
    /// Client identity.
    pub signer: Arc<LocalSigner>,
    /// Broadcast streams kept open.
    pub broadcast_streams: usize,
    /// Deliver followers.
    pub followers: usize,
    /// Of the followers, how many read slowly.
    pub slow_followers: usize,
    /// A slow follower's pause between two responses.
    pub slow_delay: Duration,
    /// Envelopes per second over all streams (0: idle).
    pub rate: f64,
    /// Unanswered envelopes per stream at most.
    pub window: usize,
    /// Payload bytes per envelope.
    pub size: usize,
    /// How long the load runs (after all streams are open).
    pub duration: Duration,
    /// gRPC streams per HTTP/2 connection.
    pub streams_per_connection: usize,
    /// The orderer's process id, for RSS samples (`None`: no samples).
    pub orderer_pid: Option<u32>,
    /// Time between RSS samples.
    pub sample_every: Duration,
    /// Print a progress line per sample to stderr.
    pub progress: bool,
}

/// One RSS sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the streams were open.
    pub t_secs: f64,
    /// The orderer's resident set, KiB.
    pub rss_kib: u64,
    /// SUCCESS answers so far.
    pub success: u64,
    /// Blocks received by all followers so far.
    pub blocks_delivered: u64,
}

/// What a load run saw.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LoadReport {
    /// Broadcast streams that were open.
    pub broadcast_streams: usize,
    /// Deliver followers that were open.
    pub followers: usize,
    /// Slow followers among them.
    pub slow_followers: usize,
    /// Target rate, envelopes/s.
    pub rate: f64,
    /// Seconds the load ran.
    pub duration_secs: f64,
    /// RSS (KiB) before any stream was opened.
    pub rss_before_open_kib: Option<u64>,
    /// RSS (KiB) once every stream was open (before load).
    pub rss_after_open_kib: Option<u64>,
    /// Lowest RSS sample during the run (KiB).
    pub rss_min_kib: Option<u64>,
    /// Highest RSS sample during the run (KiB).
    pub rss_max_kib: Option<u64>,
    /// RSS at the end of the run (KiB).
    pub rss_end_kib: Option<u64>,
    /// Envelopes sent.
    pub sent: u64,
    /// SUCCESS answers.
    pub success: u64,
    /// Other answers by status name.
    pub failures: BTreeMap<String, u64>,
    /// SUCCESS answers per second over the run.
    pub throughput_tx_per_sec: f64,
    /// Blocks received by all followers.
    pub blocks_delivered: u64,
    /// Blocks received by the fastest and slowest follower.
    pub follower_blocks_min_max: (u64, u64),
    /// Transport errors (stream or connection failures), with the first few.
    pub errors: u64,
    /// The first few transport errors.
    pub first_errors: Vec<String>,
    /// Every RSS sample.
    pub samples: Vec<Sample>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    success: AtomicU64,
    blocks: AtomicU64,
    errors: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    first_errors: Mutex<Vec<String>>,
}

impl Counters {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().expect("errors lock");
        if first.len() < 5 {
            first.push(what);
        }
    }
}

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Opens `n` connections and hands out clients round-robin,
/// `per_connection` streams each.
async fn connections(server: &str, streams: usize, per_connection: usize) -> Result<Vec<Client>> {
    let n = streams.div_ceil(per_connection.max(1)).max(1);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(connect(server).await?);
    }
    Ok(out)
}

/// Runs the load and returns the report.
pub async fn run(opts: LoadOpts) -> Result<LoadReport> {
    let counters = Arc::new(Counters::default());
    let mut report = LoadReport {
        broadcast_streams: opts.broadcast_streams,
        followers: opts.followers,
        slow_followers: opts.slow_followers.min(opts.followers),
        rate: opts.rate,
        ..Default::default()
    };
    let rss = || opts.orderer_pid.and_then(rss_kib);
    report.rss_before_open_kib = rss();

    let stop = new_stop();
    // Send permits, refilled by the pacer at `rate`.
    let permits = Arc::new(Semaphore::new(0));
    let total = opts.broadcast_streams + opts.followers;
    let conns = connections(&opts.server, total, opts.streams_per_connection).await?;
    let mut conn_iter = conns.iter().cycle();

    let mut tasks = Vec::new();
    let seq = Arc::new(AtomicU64::new(0));
    let run_id: u64 = rand::random();
    for _ in 0..opts.broadcast_streams {
        let client = conn_iter.next().expect("at least one connection").clone();
        let (req_tx, req_rx) = mpsc::channel::<Envelope>(opts.window.max(1));
        let mut c = client;
        let resp = c
            .broadcast(ReceiverStream::new(req_rx))
            .await
            .context("opening a Broadcast stream")?
            .into_inner();
        tasks.push(tokio::spawn(broadcast_stream(
            req_tx,
            resp,
            opts.clone(),
            Arc::clone(&permits),
            Arc::clone(&counters),
            Arc::clone(&seq),
            run_id,
            stop.clone(),
        )));
    }
    let per_follower: Arc<Vec<AtomicU64>> =
        Arc::new((0..opts.followers).map(|_| AtomicU64::new(0)).collect());
    for i in 0..opts.followers {
        let mut client = conn_iter.next().expect("at least one connection").clone();
        let info = seek_info(
            Position::Newest,
            Position::Specified(u64::MAX),
            false,
            false,
        );
        let session = DeliverSession::seek(&mut client, &opts.channel, &opts.signer, &info)
            .await
            .context("opening a Deliver stream")?;
        let delay = (i < report.slow_followers).then_some(opts.slow_delay);
        tasks.push(tokio::spawn(follow(
            session,
            delay,
            Arc::clone(&counters),
            Arc::clone(&per_follower),
            i,
            stop.clone(),
        )));
    }
    // Let the server settle, then measure the cost of the open streams.
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.rss_after_open_kib = rss();
    if opts.progress {
        eprintln!(
            "{} Broadcast streams and {} followers open; orderer RSS {:?} KiB (before: {:?} KiB)",
            opts.broadcast_streams,
            opts.followers,
            report.rss_after_open_kib,
            report.rss_before_open_kib
        );
    }

    let start = Instant::now();
    let pacer = if opts.rate > 0.0 {
        let permits = Arc::clone(&permits);
        let rate = opts.rate;
        let stop = stop.clone();
        Some(tokio::spawn(async move {
            let tick = Duration::from_millis(10);
            let mut interval = tokio::time::interval(tick);
            let mut credit = 0.0f64;
            let mut last = Instant::now();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = interval.tick() => {}
                }
                let now = Instant::now();
                credit += rate * now.duration_since(last).as_secs_f64();
                last = now;
                let whole = credit.floor();
                credit -= whole;
                // Unused permits do not pile up beyond one second's worth.
                let room = (rate as usize).saturating_sub(permits.available_permits());
                permits.add_permits((whole as usize).min(room));
            }
        }))
    } else {
        None
    };

    let mut next_sample = Instant::now();
    while start.elapsed() < opts.duration {
        if Instant::now() >= next_sample {
            next_sample += opts.sample_every;
            if let Some(r) = rss() {
                let s = Sample {
                    t_secs: start.elapsed().as_secs_f64(),
                    rss_kib: r,
                    success: counters.success.load(Ordering::Relaxed),
                    blocks_delivered: counters.blocks.load(Ordering::Relaxed),
                };
                if opts.progress {
                    eprintln!(
                        "t={:>6.1}s rss={:>7.1} MiB success={} blocks_delivered={} errors={}",
                        s.t_secs,
                        r as f64 / 1024.0,
                        s.success,
                        s.blocks_delivered,
                        counters.errors.load(Ordering::Relaxed)
                    );
                }
                report.samples.push(s);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.duration_secs = start.elapsed().as_secs_f64();
    report.rss_end_kib = rss();
    stop.cancel();
    permits.close();
    if let Some(p) = pacer {
        let _ = p.await;
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }

    report.sent = counters.sent.load(Ordering::Relaxed);
    report.success = counters.success.load(Ordering::Relaxed);
    report.failures = counters.failures.lock().expect("lock").clone();
    report.errors = counters.errors.load(Ordering::Relaxed);
    report.first_errors = counters.first_errors.lock().expect("lock").clone();
    report.throughput_tx_per_sec = report.success as f64 / report.duration_secs.max(1e-9);
    report.blocks_delivered = counters.blocks.load(Ordering::Relaxed);
    let counts: Vec<u64> = per_follower
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    report.follower_blocks_min_max = (
        counts.iter().copied().min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    );
    report.rss_min_kib = report.samples.iter().map(|s| s.rss_kib).min();
    report.rss_max_kib = report.samples.iter().map(|s| s.rss_kib).max();
    Ok(report)
}

fn new_stop() -> Stop {
    Stop(Arc::new(tokio::sync::Notify::new()), Arc::default())
}

/// A cancellation flag with a waitable notification.
#[derive(Clone)]
struct Stop(Arc<tokio::sync::Notify>, Arc<std::sync::atomic::AtomicBool>);

impl Stop {
    fn cancel(&self) {
        self.1.store(true, Ordering::SeqCst);
        self.0.notify_waiters();
    }

    fn is_cancelled(&self) -> bool {
        self.1.load(Ordering::SeqCst)
    }

    async fn cancelled(&self) {
        loop {
            let notified = self.0.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn broadcast_stream(
    req_tx: mpsc::Sender<Envelope>,
    mut resp: tonic::Streaming<fabric_protos::orderer::BroadcastResponse>,
    opts: LoadOpts,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    seq: Arc<AtomicU64>,
    run_id: u64,
    stop: Stop,
) {
    let window = Arc::new(Semaphore::new(opts.window.max(1)));
    let reader = {
        let counters = Arc::clone(&counters);
        let window = Arc::clone(&window);
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = resp.message() => m,
                };
                match msg {
                    Ok(Some(r)) => {
                        window.add_permits(1);
                        if r.status == SUCCESS {
                            counters.success.fetch_add(1, Ordering::Relaxed);
                        } else {
                            *counters
                                .failures
                                .lock()
                                .expect("lock")
                                .entry(status_name(r.status))
                                .or_default() += 1;
                        }
                    }
                    Ok(None) => {
                        if !stop.is_cancelled() {
                            counters.error("Broadcast stream closed by the server".into());
                        }
                        return;
                    }
                    Err(e) => {
                        if !stop.is_cancelled() {
                            counters.error(format!("Broadcast stream: {e}"));
                        }
                        return;
                    }
                }
            }
        })
    };
    if opts.rate > 0.0 {
        loop {
            let slot = tokio::select! {
                _ = stop.cancelled() => break,
                w = window.acquire() => w,
            };
            let Ok(slot) = slot else { break };
            slot.forget();
            let permit = tokio::select! {
                _ = stop.cancelled() => break,
                p = permits.acquire() => p,
            };
            let Ok(permit) = permit else { break };
            permit.forget();
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let mut data = vec![0u8; opts.size.max(16)];
            data[..8].copy_from_slice(&run_id.to_be_bytes());
            data[8..16].copy_from_slice(&n.to_be_bytes());
            let env = create_signed_envelope(
                HeaderType::Message,
                &opts.channel,
                Some(&*opts.signer),
                data,
                &EnvelopeOptions {
                    with_txid: true,
                    ..Default::default()
                },
            );
            if req_tx.send(env).await.is_err() {
                break;
            }
            counters.sent.fetch_add(1, Ordering::Relaxed);
        }
    } else {
        stop.cancelled().await;
    }
    drop(req_tx);
    let _ = reader.await;
}

async fn follow(
    mut session: DeliverSession,
    delay: Option<Duration>,
    counters: Arc<Counters>,
    per_follower: Arc<Vec<AtomicU64>>,
    i: usize,
    stop: Stop,
) {
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => return,
            item = session.next() => item,
        };
        match item {
            Ok(DeliverItem::Block(_)) => {
                counters.blocks.fetch_add(1, Ordering::Relaxed);
                per_follower[i].fetch_add(1, Ordering::Relaxed);
            }
            Ok(DeliverItem::Status(s)) => {
                counters.error(format!("follower {i}: status {}", status_name(s)));
                return;
            }
            Ok(DeliverItem::End) => {
                counters.error(format!("follower {i}: stream ended"));
                return;
            }
            Err(e) => {
                counters.error(format!("follower {i}: {e:#}"));
                return;
            }
        }
        if let Some(d) = delay {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(d) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_rss() {
        let kib = rss_kib(std::process::id()).expect("VmRSS of this process");
        assert!(kib > 100, "{kib}");
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
