//! The Broadcast load generator (Fabric's `broadcast_msg`, pipelined) with a
//! Deliver follower in the same process that measures broadcast→delivered
//! latency.
//!
//! Every envelope is distinct and validly signed: a MESSAGE-type envelope
//! with a transaction ID whose `Payload.data` is a marshaled
//! `common.ConfigValue` of `size` value bytes (as `broadcast_msg` sends):
//! `"ocb1" ‖ run id (8 bytes) ‖ tag (8 bytes, big-endian) ‖ zero padding`.
//! Signing runs ahead of sending on one OS thread per stream (or, with
//! `pregenerate`, entirely before the clock starts).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fabric_common::envelope::{create_signed_envelope, EnvelopeOptions};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{ConfigValue, Envelope, HeaderType, Payload};
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use prost::Message;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::broadcast::{run_stream, SendTimes, StreamStats};
use crate::config::Target;
use crate::conn::connect;
use crate::deliver::{newest_block, ChainFollower, DeliverItem, DeliverSession, Position};
use crate::latency::{LatencyStats, LatencySummary};
use crate::status_name;
use crate::verify::SignerTrust;

const MAGIC: &[u8; 4] = b"ocb1";
/// Bytes of the marker at the start of each value.
pub const MARKER_LEN: usize = 20;

/// Options of a load run.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// Orderer address.
    pub server: String,
    /// Channel.
    pub channel: String,
    /// Client identity.
    pub signer: Arc<LocalSigner>,
    /// `ConfigValue.value` size in bytes (at least [`MARKER_LEN`]).
    pub size: usize,
    /// Broadcast streams (one connection each).
    pub streams: usize,
    /// Maximum unanswered envelopes per stream.
    pub window: usize,
    /// Total envelopes (split over the streams); `None`: until `duration`.
    pub count: Option<u64>,
    /// Stop sending after this long.
    pub duration: Option<Duration>,
    /// Sign every envelope before starting the clock (needs `count`).
    pub pregenerate: bool,
    /// With `pregenerate`: read the envelopes from this file when it exists
    /// (same bytes for every run that uses it), else sign them and write it.
    pub envelopes_file: Option<std::path::PathBuf>,
    /// Follow Deliver and measure delivered latency.
    pub follow: bool,
    /// After the last response, wait this long at most for deliveries.
    pub drain_timeout: Duration,
    /// Check block signatures while following (`None`: links only).
    pub trust: Option<SignerTrust>,
}

impl BenchOpts {
    /// 1 KiB values, 4 streams, window 1000, `count` envelopes, following Deliver.
    pub fn new(target: &Target, count: u64) -> Self {
        Self {
            server: target.server.clone(),
            channel: target.channel.clone(),
            signer: target.signer.clone(),
            size: 1024,
            streams: 4,
            window: 1000,
            count: Some(count),
            duration: None,
            pregenerate: false,
            envelopes_file: None,
            follow: true,
            drain_timeout: Duration::from_secs(60),
            trust: None,
        }
    }
}

/// The figures of a load run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    /// Streams used.
    pub streams: usize,
    /// Value size.
    pub size: usize,
    /// Envelopes written.
    pub sent: u64,
    /// Responses received.
    pub acked: u64,
    /// SUCCESS responses.
    pub success: u64,
    /// Non-SUCCESS responses by status.
    pub failures: BTreeMap<String, u64>,
    /// First non-SUCCESS response.
    pub first_failure: Option<String>,
    /// Transport errors and early closes.
    pub errors: Vec<String>,
    /// Seconds from the first send to the last response.
    pub send_elapsed_s: f64,
    /// SUCCESS responses per second.
    pub acked_tx_per_sec: f64,
    /// Send → response latency.
    pub ack_latency: LatencySummary,
    /// Envelopes of this run delivered.
    pub delivered: u64,
    /// Envelopes of this run delivered more than once.
    pub duplicates: u64,
    /// Delivered envelopes per second (first send → last delivery).
    pub delivered_tx_per_sec: f64,
    /// Send → delivered latency.
    pub delivered_latency: LatencySummary,
    /// Blocks received by the follower.
    pub blocks: u64,
    /// Chain/signature violations seen by the follower.
    pub chain_violations: Vec<String>,
    /// CPU seconds this process used from the start of sending to the end
    /// (signing, if live, sending, following; not pre-signing).
    pub client_cpu_s: f64,
}

/// This process's user+system CPU seconds so far (`/proc/self/stat`, in
/// the kernel's fixed 100 Hz user ticks); 0 where unavailable.
fn process_cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime, stime are 14, 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (tick(11) + tick(12)) as f64 / 100.0
}

impl BenchReport {
    /// No errors, no failures, every SUCCESS delivered once, no chain violation.
    pub fn ok(&self, followed: bool) -> bool {
        self.errors.is_empty()
            && self.failures.is_empty()
            && self.chain_violations.is_empty()
            && (!followed || (self.delivered == self.success && self.duplicates == 0))
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "broadcast: streams={} size={}B sent={} acked={} success={} elapsed={:.3}s",
            self.streams, self.size, self.sent, self.acked, self.success, self.send_elapsed_s
        )?;
        writeln!(
            f,
            "throughput: {:.1} tx/s acked, {:.1} tx/s delivered",
            self.acked_tx_per_sec, self.delivered_tx_per_sec
        )?;
        writeln!(f, "ack latency:       {}", self.ack_latency)?;
        writeln!(f, "delivered latency: {}", self.delivered_latency)?;
        writeln!(
            f,
            "delivered: {} (duplicates {}) in {} blocks",
            self.delivered, self.duplicates, self.blocks
        )?;
        if !self.failures.is_empty() {
            let list: Vec<String> = self
                .failures
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(
                f,
                "non-SUCCESS responses: {} (first: {})",
                list.join(" "),
                self.first_failure.as_deref().unwrap_or("-")
            )?;
        }
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        for v in self.chain_violations.iter().take(10) {
            writeln!(f, "chain violation: {v}")?;
        }
        Ok(())
    }
}

/// The tag of envelope `seq` on stream `stream`.
pub fn tag(stream: usize, seq: u64) -> u64 {
    ((stream as u64) << 40) | seq
}

/// The `ConfigValue.value` carrying `tag` of run `run`.
pub fn bench_value(run: u64, tag: u64, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size.max(MARKER_LEN));
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&run.to_be_bytes());
    v.extend_from_slice(&tag.to_be_bytes());
    v.resize(size.max(MARKER_LEN), 0);
    v
}

/// The tag in a delivered envelope (bytes as stored in a block) of run `run`.
pub fn envelope_tag(run: u64, env_bytes: &[u8]) -> Option<u64> {
    let env = Envelope::decode(env_bytes).ok()?;
    let payload = Payload::decode(env.payload.as_slice()).ok()?;
    let cv = ConfigValue::decode(payload.data.as_slice()).ok()?;
    let v = cv.value;
    if v.len() < MARKER_LEN || &v[..4] != MAGIC || v[4..12] != run.to_be_bytes() {
        return None;
    }
    Some(u64::from_be_bytes(v[12..20].try_into().ok()?))
}

/// A signed load envelope.
pub fn bench_envelope(
    signer: &LocalSigner,
    channel: &str,
    run: u64,
    tag: u64,
    size: usize,
) -> Envelope {
    let data = ConfigValue {
        value: bench_value(run, tag, size),
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

#[derive(Default)]
struct FollowStats {
    delivered: u64,
    duplicates: u64,
    latency: LatencyStats,
    blocks: u64,
    violations: Vec<String>,
    last_delivery: Option<Instant>,
}

/// Follows Deliver until `target` (count, deadline) is met.
async fn follow(
    mut session: DeliverSession,
    mut chain: ChainFollower,
    run: u64,
    send_times: Arc<SendTimes>,
    mut target: watch::Receiver<Option<(u64, tokio::time::Instant)>>,
) -> FollowStats {
    let mut st = FollowStats::default();
    loop {
        let goal = *target.borrow();
        if let Some((n, _)) = goal {
            if st.delivered >= n {
                break;
            }
        }
        let deadline = goal.map(|(_, d)| d);
        let item = tokio::select! {
            it = session.next() => it,
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => break,
            r = target.changed() => {
                if r.is_err() { break; }
                continue;
            }
        };
        match item {
            Ok(DeliverItem::Block(b)) => {
                let now = Instant::now();
                st.blocks += 1;
                if let Err(e) = chain.check(&b) {
                    st.violations.push(e);
                }
                let data = b.data.as_ref().map(|d| d.data.as_slice()).unwrap_or(&[]);
                let mut times = send_times.lock().expect("send times lock");
                for d in data {
                    let Some(tag) = envelope_tag(run, d) else {
                        continue;
                    };
                    match times.remove(&tag) {
                        Some(sent) => {
                            st.delivered += 1;
                            st.latency.record(now - sent);
                            st.last_delivery = Some(now);
                        }
                        None => st.duplicates += 1,
                    }
                }
            }
            Ok(DeliverItem::Status(s)) => {
                st.violations
                    .push(format!("deliver ended with status {}", status_name(s)));
                break;
            }
            Ok(DeliverItem::End) => {
                st.violations
                    .push("deliver stream ended without a status".into());
                break;
            }
            Err(e) => {
                st.violations.push(format!("{e:#}"));
                break;
            }
        }
    }
    st
}

type Lists = Vec<Vec<(u64, Envelope)>>;

/// Signs every stream's envelopes, one thread per stream.
fn sign_all(
    opts: &BenchOpts,
    run_id: u64,
    streams: usize,
    per_stream: impl Fn(usize) -> Option<u64> + Sync,
) -> Lists {
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..streams)
            .map(|s| {
                let n = per_stream(s).unwrap_or(0);
                let (signer, channel, size) = (&opts.signer, &opts.channel, opts.size);
                sc.spawn(move || {
                    (0..n)
                        .map(|i| {
                            let t = tag(s, i);
                            (t, bench_envelope(signer, channel, run_id, t, size))
                        })
                        .collect()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("signing thread panicked"))
            .collect()
    })
}

/// Pre-signed envelopes in a file, so that several runs (our orderer and
/// Fabric's) receive the same bytes. Layout: `"ocbenv1\n"`, run id (u64),
/// value size (u64), channel (u32 length + bytes), streams (u32), then per
/// stream a count (u64) and that many `tag (u64) ‖ length (u32) ‖ envelope`;
/// integers big-endian.
mod envfile {
    use std::io::{BufReader, BufWriter, Read, Write};
    use std::path::Path;

    use anyhow::{ensure, Context, Result};
    use fabric_protos::common::Envelope;
    use prost::Message;

    use super::Lists;

    const MAGIC: &[u8; 8] = b"ocbenv1\n";
    /// Bound on one stored envelope (the orderer's default AbsoluteMaxBytes).
    const MAX_ENVELOPE: u32 = 100 << 20;

    pub fn write(path: &Path, run: u64, channel: &str, size: usize, lists: &Lists) -> Result<()> {
        let tmp = path.with_extension("partial");
        let mut w = BufWriter::new(
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
        );
        w.write_all(MAGIC)?;
        w.write_all(&run.to_be_bytes())?;
        w.write_all(&(size as u64).to_be_bytes())?;
        w.write_all(&(channel.len() as u32).to_be_bytes())?;
        w.write_all(channel.as_bytes())?;
        w.write_all(&(lists.len() as u32).to_be_bytes())?;
        for l in lists {
            w.write_all(&(l.len() as u64).to_be_bytes())?;
            for (tag, env) in l {
                let b = env.encode_to_vec();
                w.write_all(&tag.to_be_bytes())?;
                w.write_all(&(b.len() as u32).to_be_bytes())?;
                w.write_all(&b)?;
            }
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    fn u64_of(r: &mut impl Read) -> Result<u64> {
        let mut b = [0u8; 8];
        r.read_exact(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    fn u32_of(r: &mut impl Read) -> Result<u32> {
        let mut b = [0u8; 4];
        r.read_exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    pub fn read(path: &Path, channel: &str, size: usize, streams: usize) -> Result<(u64, Lists)> {
        let mut r = BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        );
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        ensure!(
            &magic == MAGIC,
            "{} is not an envelope file",
            path.display()
        );
        let run = u64_of(&mut r)?;
        let file_size = u64_of(&mut r)?;
        let n = u32_of(&mut r)?;
        ensure!(
            n as usize == channel.len(),
            "{}: another channel",
            path.display()
        );
        let mut ch = vec![0u8; n as usize];
        r.read_exact(&mut ch)?;
        ensure!(
            ch == channel.as_bytes() && file_size == size as u64,
            "{}: made for another channel or size",
            path.display()
        );
        let file_streams = u32_of(&mut r)? as usize;
        ensure!(
            file_streams == streams,
            "{}: made for {file_streams} streams",
            path.display()
        );
        let mut lists = Vec::with_capacity(streams);
        for _ in 0..streams {
            let count = u64_of(&mut r)?;
            let mut l = Vec::new();
            for _ in 0..count {
                let tag = u64_of(&mut r)?;
                let len = u32_of(&mut r)?;
                ensure!(len <= MAX_ENVELOPE, "{}: oversized record", path.display());
                let mut b = vec![0u8; len as usize];
                r.read_exact(&mut b)?;
                l.push((tag, Envelope::decode(b.as_slice())?));
            }
            lists.push(l);
        }
        Ok((run, lists))
    }
}

/// Runs the load against a live orderer.
pub async fn run(opts: BenchOpts) -> Result<BenchReport> {
    anyhow::ensure!(
        opts.count.is_some() || opts.duration.is_some(),
        "give a count or a duration"
    );
    let streams = opts.streams.max(1);
    let mut run_id: u64 = rand::random();
    let send_times: Arc<SendTimes> = Arc::new(Mutex::new(Default::default()));

    // Envelope sources.
    let per_stream = |s: usize| {
        opts.count
            .map(|c| c / streams as u64 + u64::from((s as u64) < c % streams as u64))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut sources: Vec<BoxStream<'static, (u64, Envelope)>> = Vec::new();
    let mut generators = Vec::new();
    if let (true, Some(count)) = (opts.pregenerate, opts.count) {
        let (file_run, lists) = match &opts.envelopes_file {
            Some(path) if path.exists() => {
                let (id, lists) = envfile::read(path, &opts.channel, opts.size, streams)?;
                anyhow::ensure!(
                    lists.iter().map(|l| l.len() as u64).sum::<u64>() >= count,
                    "{} holds fewer than {count} envelopes",
                    path.display()
                );
                (id, lists)
            }
            _ => {
                let lists = sign_all(&opts, run_id, streams, per_stream);
                if let Some(path) = &opts.envelopes_file {
                    envfile::write(path, run_id, &opts.channel, opts.size, &lists)?;
                }
                (run_id, lists)
            }
        };
        run_id = file_run;
        sources.extend(lists.into_iter().enumerate().map(|(s, l)| {
            let n = per_stream(s).unwrap_or(0) as usize;
            stream::iter(l.into_iter().take(n)).boxed()
        }));
    } else {
        for s in 0..streams {
            let (tx, rx) = mpsc::channel::<(u64, Envelope)>(opts.window.clamp(64, 4096) * 2);
            let limit = per_stream(s);
            let (signer, channel, size, stop) = (
                opts.signer.clone(),
                opts.channel.clone(),
                opts.size,
                stop.clone(),
            );
            generators.push(std::thread::spawn(move || {
                let mut i = 0u64;
                while limit.is_none_or(|l| i < l) && !stop.load(Ordering::Relaxed) {
                    let t = tag(s, i);
                    if tx
                        .blocking_send((t, bench_envelope(&signer, &channel, run_id, t, size)))
                        .is_err()
                    {
                        break;
                    }
                    i += 1;
                }
            }));
            sources.push(ReceiverStream::new(rx).boxed());
        }
    }

    // Start the follower at the current height.
    let (target_tx, target_rx) = watch::channel(None);
    let follower = if opts.follow {
        let mut client = connect(&opts.server).await?;
        let newest = newest_block(&mut client, &opts.channel, &opts.signer)
            .await
            .context("reading the channel height")?;
        let prev = newest
            .header
            .clone()
            .context("newest block without header")?;
        let info = crate::deliver::seek_info(
            Position::Specified(prev.number + 1),
            Position::Specified(u64::MAX),
            false,
            false,
        );
        let chain = ChainFollower::new(Some(prev), opts.trust.clone());
        // Open the Deliver stream inside the task: Fabric's orderer sends the
        // response headers only with the first block, so waiting for them
        // here, before broadcasting, would wait forever.
        let (channel, signer, times) = (
            opts.channel.clone(),
            opts.signer.clone(),
            send_times.clone(),
        );
        Some(tokio::spawn(async move {
            match DeliverSession::seek(&mut client, &channel, &signer, &info).await {
                Ok(session) => follow(session, chain, run_id, times, target_rx).await,
                Err(e) => FollowStats {
                    violations: vec![format!("opening Deliver: {e:#}")],
                    ..Default::default()
                },
            }
        }))
    } else {
        None
    };

    // Broadcast.
    let cpu0 = process_cpu_s();
    let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
    let mut tasks = Vec::new();
    for src in sources {
        let client = connect(&opts.server).await?;
        let src = match deadline {
            Some(d) => src.take_until(tokio::time::sleep_until(d)).boxed(),
            None => src,
        };
        let times = opts.follow.then(|| send_times.clone());
        let window = opts.window;
        tasks.push(tokio::spawn(run_stream(client, src, window, times)));
    }
    let mut stats = StreamStats::default();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(s) => stats.merge(&s),
            Err(e) => errors.push(format!("broadcast task: {e}")),
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(e) = &stats.error {
        errors.push(e.clone());
    }
    if stats.closed_early {
        errors.push(
            "a Broadcast stream was closed by the server before every envelope was answered".into(),
        );
    }

    let mut report = BenchReport {
        streams,
        size: opts.size.max(MARKER_LEN),
        sent: stats.sent,
        acked: stats.acked,
        success: stats.success,
        failures: stats.failures.clone(),
        first_failure: stats.first_failure.clone(),
        ack_latency: stats.ack_latency.summary(),
        ..Default::default()
    };
    if let (Some(a), Some(b)) = (stats.first_send, stats.last_ack) {
        report.send_elapsed_s = (b - a).as_secs_f64();
        if report.send_elapsed_s > 0.0 {
            report.acked_tx_per_sec = stats.success as f64 / report.send_elapsed_s;
        }
    }

    if let Some(h) = follower {
        let _ = target_tx.send(Some((
            stats.success,
            tokio::time::Instant::now() + opts.drain_timeout,
        )));
        let fs = h.await.context("deliver task panicked")?;
        report.delivered = fs.delivered;
        report.duplicates = fs.duplicates;
        report.delivered_latency = fs.latency.summary();
        report.blocks = fs.blocks;
        report.chain_violations = fs.violations;
        if let (Some(a), Some(b)) = (stats.first_send, fs.last_delivery) {
            let secs = (b - a).as_secs_f64();
            if secs > 0.0 {
                report.delivered_tx_per_sec = fs.delivered as f64 / secs;
            }
        }
        if fs.delivered < stats.success {
            errors.push(format!(
                "{} acknowledged envelopes not delivered within {:?}",
                stats.success - fs.delivered,
                opts.drain_timeout
            ));
        }
    }
    drop(target_tx);
    for g in generators {
        let _ = g.join();
    }
    report.client_cpu_s = process_cpu_s() - cpu0;
    report.errors = errors;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_layout_and_tag_round_trip() {
        let v = bench_value(7, tag(3, 99), 1024);
        assert_eq!(v.len(), 1024);
        assert_eq!(&v[..4], b"ocb1");
        assert_eq!(bench_value(7, 1, 5).len(), MARKER_LEN);
        let dir = tempfile::tempdir().unwrap();
        let signer = crate::test_user_signer(dir.path());
        let env = bench_envelope(&signer, "ch", 7, tag(3, 99), 100);
        let bytes = env.encode_to_vec();
        assert_eq!(envelope_tag(7, &bytes), Some((3 << 40) | 99));
        assert_eq!(envelope_tag(8, &bytes), None);
        // The signature verifies over the payload.
        let pk = fabric_common::msp::cert_public_key(signer.cert_der()).unwrap();
        fabric_common::crypto::verify_p256(&pk, &env.payload, &env.signature).unwrap();
        let p = fabric_common::envelope::parse_envelope(&env).unwrap();
        assert_eq!(p.channel_header.tx_id.len(), 64);
    }

    #[test]
    fn envelope_file_round_trip_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let signer = crate::test_user_signer(dir.path());
        let lists: Lists = (0..2)
            .map(|s| {
                (0..3)
                    .map(|i| (tag(s, i), bench_envelope(&signer, "ch", 9, tag(s, i), 64)))
                    .collect()
            })
            .collect();
        let path = dir.path().join("envs.bin");
        envfile::write(&path, 9, "ch", 64, &lists).unwrap();
        let (run, back) = envfile::read(&path, "ch", 64, 2).unwrap();
        assert_eq!(run, 9);
        assert_eq!(back.len(), 2);
        for (a, b) in lists.iter().zip(&back) {
            assert_eq!(a.len(), b.len());
            for ((ta, ea), (tb, eb)) in a.iter().zip(b) {
                assert_eq!(ta, tb);
                assert_eq!(ea.encode_to_vec(), eb.encode_to_vec());
            }
        }
        // Another channel, size or stream count is refused, as is a truncated file.
        assert!(envfile::read(&path, "other", 64, 2).is_err());
        assert!(envfile::read(&path, "ch", 65, 2).is_err());
        assert!(envfile::read(&path, "ch", 64, 3).is_err());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        assert!(envfile::read(&path, "ch", 64, 2).is_err());
    }
}
