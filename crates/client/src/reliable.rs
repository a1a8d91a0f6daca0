//! Load that survives faults: `orderer-client broadcast --ack-log FILE`.
//!
//! Each stream sends batches of distinct signed envelopes (the load
//! generator's, [`crate::bench::bench_envelope`]) to one of several OSNs and
//! waits, within a timeout, for one answer per envelope. An envelope answered
//! SUCCESS is *acknowledged*: its transaction ID is appended to the ack log
//! (one hex ID per line) before anything else happens to it. An envelope
//! answered otherwise (SERVICE_UNAVAILABLE, …) or not answered at all (stream
//! error, OSN killed, timeout) is re-sent later with the same bytes, hence the
//! same transaction ID, after moving to the next OSN with a capped
//! exponential backoff; with a resend log, its tx ID is appended there (one
//! line per re-send) before the copy is sent. A re-send whose first copy was
//! ordered after all is in the chain twice, as with Fabric's OSN, unless the
//! channel's config switches the orderer's exactly-once window on; the
//! fault-injection checker accepts such copies only for re-sent tx IDs. New envelopes are made until `duration`; re-sends go
//! on for at most `resend_for` more, then what is still unanswered is given up
//! (never acknowledged, so it may or may not be in the chain).

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{ChannelHeader, Envelope, Payload};
use prost::Message;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use crate::bench::bench_envelope;
use crate::conn::{connect, Client};
use crate::{status_name, SUCCESS};

/// Options of a fault-tolerant load run.
#[derive(Debug, Clone)]
pub struct ReliableOpts {
    /// OSN addresses; stream `i` starts on `servers[i % n]` and moves on after a failure.
    pub servers: Vec<String>,
    /// Channel.
    pub channel: String,
    /// Client identity.
    pub signer: Arc<LocalSigner>,
    /// `ConfigValue.value` size in bytes.
    pub size: usize,
    /// Concurrent streams.
    pub streams: usize,
    /// Envelopes per batch (one Broadcast stream per batch).
    pub batch: usize,
    /// Make new envelopes for this long.
    pub duration: Duration,
    /// New envelopes per second over all streams (`None`: as fast as answered).
    pub rate: Option<f64>,
    /// A batch not fully answered within this is abandoned and re-sent.
    pub response_timeout: Duration,
    /// After `duration`, keep re-sending unanswered envelopes for at most this long.
    pub resend_for: Duration,
    /// Where acknowledged transaction IDs are appended.
    pub ack_log: PathBuf,
    /// Where the transaction ID of every re-send is appended (before it is sent).
    pub resend_log: Option<PathBuf>,
}

/// The figures of a fault-tolerant load run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReliableReport {
    /// Distinct envelopes made.
    pub made: u64,
    /// Envelopes written to a stream (including re-sends).
    pub sent: u64,
    /// Re-sends (an envelope sent again after no SUCCESS).
    pub resent: u64,
    /// Envelopes answered SUCCESS (= lines added to the ack log).
    pub acknowledged: u64,
    /// Non-SUCCESS answers by status.
    pub refused: BTreeMap<String, u64>,
    /// Batches abandoned: connection failures, stream errors, early closes, timeouts.
    pub broken_batches: u64,
    /// Envelopes never acknowledged (given up at the end).
    pub given_up: u64,
    /// The first few problems seen, for the log.
    pub sample_errors: Vec<String>,
}

impl ReliableReport {
    fn merge(&mut self, o: &ReliableReport) {
        self.made += o.made;
        self.sent += o.sent;
        self.resent += o.resent;
        self.acknowledged += o.acknowledged;
        for (k, v) in &o.refused {
            *self.refused.entry(k.clone()).or_default() += v;
        }
        self.broken_batches += o.broken_batches;
        self.given_up += o.given_up;
        for e in &o.sample_errors {
            if self.sample_errors.len() < 10 {
                self.sample_errors.push(e.clone());
            }
        }
    }

    fn note(&mut self, e: String) {
        if self.sample_errors.len() < 5 {
            self.sample_errors.push(e);
        }
    }
}

impl std::fmt::Display for ReliableReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let refused: Vec<String> = self
            .refused
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(
            f,
            "load: made={} sent={} resent={} acknowledged={} refused=[{}] broken_batches={} given_up={}",
            self.made,
            self.sent,
            self.resent,
            self.acknowledged,
            refused.join(" "),
            self.broken_batches,
            self.given_up
        )?;
        for e in &self.sample_errors {
            write!(f, "\n  problem: {e}")?;
        }
        Ok(())
    }
}

/// The transaction ID of an envelope (empty if it has none).
pub fn txid(env: &Envelope) -> String {
    Payload::decode(env.payload.as_slice())
        .ok()
        .and_then(|p| p.header)
        .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
        .map(|c| c.tx_id)
        .unwrap_or_default()
}

/// How one batch went: the statuses received, in order, and why it stopped early.
struct BatchOutcome {
    statuses: Vec<(i32, String)>,
    problem: Option<String>,
}

/// Sends `envs` on one Broadcast stream and reads one answer per envelope.
/// The request side stays open until every answer has arrived.
async fn send_batch(client: &mut Client, envs: Vec<Envelope>) -> BatchOutcome {
    let n = envs.len();
    let (tx, rx) = mpsc::channel(n.max(1));
    for e in envs {
        // Capacity n: never blocks.
        let _ = tx.try_send(e);
    }
    let mut statuses = Vec::with_capacity(n);
    let mut resp = match client.broadcast(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(e) => {
            return BatchOutcome {
                statuses,
                problem: Some(format!("Broadcast RPC: {e}")),
            }
        }
    };
    let problem = loop {
        if statuses.len() == n {
            break None;
        }
        match resp.message().await {
            Ok(Some(r)) => statuses.push((r.status, r.info)),
            Ok(None) => {
                break Some(format!(
                    "stream closed after {} of {n} answers",
                    statuses.len()
                ))
            }
            Err(e) => break Some(format!("stream failed: {e}")),
        }
    };
    drop(tx);
    BatchOutcome { statuses, problem }
}

struct Shared {
    opts: ReliableOpts,
    run: u64,
    log: Mutex<std::io::BufWriter<std::fs::File>>,
    resends: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
}

/// Appends `ids`, one a line, and flushes.
fn append_ids<'a>(
    log: &Mutex<std::io::BufWriter<std::fs::File>>,
    ids: impl Iterator<Item = &'a String>,
) -> Result<()> {
    let mut w = log.lock().expect("log lock");
    for id in ids {
        writeln!(w, "{id}")?;
    }
    w.flush()?;
    Ok(())
}

impl Shared {
    fn record(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        append_ids(&self.log, ids.iter())
    }

    /// Notes the re-sends of `batch` (entries flagged `true`) before it is sent.
    fn record_resends(&self, batch: &[(String, Envelope, bool)]) -> Result<()> {
        match &self.resends {
            Some(log) if batch.iter().any(|b| b.2) => {
                append_ids(log, batch.iter().filter(|b| b.2).map(|b| &b.0))
            }
            _ => Ok(()),
        }
    }
}

async fn run_one(shared: Arc<Shared>, stream: usize, start: Instant) -> Result<ReliableReport> {
    let o = &shared.opts;
    let mut rep = ReliableReport::default();
    let end_new = start + o.duration;
    let end_all = end_new + o.resend_for;
    let per_stream_rate = o.rate.map(|r| (r / o.streams as f64).max(0.001));
    let mut next_new = start;
    let mut pending: VecDeque<(String, Envelope, bool)> = VecDeque::new();
    let mut seq: u64 = 0;
    let mut server = stream % o.servers.len();
    let mut client: Option<Client> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let now = Instant::now();
        let making = now < end_new;
        if (!making && pending.is_empty()) || now >= end_all {
            break;
        }
        let mut batch: Vec<(String, Envelope, bool)> = Vec::with_capacity(o.batch);
        while batch.len() < o.batch {
            if let Some(p) = pending.pop_front() {
                batch.push(p);
            } else {
                break;
            }
        }
        if making {
            let mut room = o.batch - batch.len();
            if let Some(r) = per_stream_rate {
                // New envelopes due by now at the stream's rate (no burst
                // of more than a second's worth after a stall).
                next_new = next_new.max(now - Duration::from_secs(1).min(now - start));
                let due = if now < next_new {
                    0
                } else {
                    ((now - next_new).as_secs_f64() * r).floor() as usize + 1
                };
                room = room.min(due);
            }
            for _ in 0..room {
                let tag = crate::bench::tag(stream, seq);
                seq += 1;
                let env = bench_envelope(&shared.opts.signer, &o.channel, shared.run, tag, o.size);
                rep.made += 1;
                batch.push((txid(&env), env, false));
                if let Some(r) = per_stream_rate {
                    next_new += Duration::from_secs_f64(1.0 / r);
                }
            }
        }
        if batch.is_empty() {
            let wake = next_new
                .max(now + Duration::from_millis(5))
                .min(now + Duration::from_millis(200));
            tokio::time::sleep_until(wake).await;
            continue;
        }
        if client.is_none() {
            let addr = &o.servers[server];
            match tokio::time::timeout(Duration::from_secs(5), connect(addr)).await {
                Ok(Ok(c)) => client = Some(c),
                Ok(Err(e)) => rep.note(format!("{addr}: {e:#}")),
                Err(_) => rep.note(format!("{addr}: connect timeout")),
            }
            if client.is_none() {
                rep.broken_batches += 1;
                for b in batch.into_iter().rev() {
                    pending.push_front(b);
                }
                server = (server + 1) % o.servers.len();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        }
        let c = client.as_mut().expect("connected");
        let envs: Vec<Envelope> = batch.iter().map(|(_, e, _)| e.clone()).collect();
        rep.sent += envs.len() as u64;
        rep.resent += batch.iter().filter(|b| b.2).count() as u64;
        shared
            .record_resends(&batch)
            .context("writing the resend log")?;
        let outcome = match tokio::time::timeout(o.response_timeout, send_batch(c, envs)).await {
            Ok(out) => out,
            Err(_) => BatchOutcome {
                statuses: Vec::new(),
                problem: Some(format!("no full answer within {:?}", o.response_timeout)),
            },
        };
        let mut acked = Vec::new();
        let mut failed = outcome.problem.is_some();
        for (i, (id, env, _)) in batch.into_iter().enumerate() {
            match outcome.statuses.get(i) {
                Some((s, _)) if *s == SUCCESS => acked.push(id),
                Some((s, info)) => {
                    failed = true;
                    let name = status_name(*s);
                    if !rep.refused.contains_key(&name) {
                        rep.note(format!("{}: {name} {info}", o.servers[server]));
                    }
                    *rep.refused.entry(name).or_default() += 1;
                    pending.push_back((id, env, true));
                }
                None => pending.push_back((id, env, true)),
            }
        }
        rep.acknowledged += acked.len() as u64;
        shared.record(&acked).context("writing the ack log")?;
        if failed {
            if let Some(p) = outcome.problem {
                rep.broken_batches += 1;
                rep.note(format!("{}: {p}", o.servers[server]));
            }
            client = None;
            server = (server + 1) % o.servers.len();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        } else {
            backoff = Duration::from_millis(100);
        }
    }
    rep.given_up = pending.len() as u64;
    Ok(rep)
}

/// Runs the load; the ack log is complete when this returns.
pub async fn run(opts: ReliableOpts) -> Result<ReliableReport> {
    anyhow::ensure!(!opts.servers.is_empty(), "no orderer address");
    anyhow::ensure!(
        opts.streams > 0 && opts.batch > 0,
        "streams and batch must be > 0"
    );
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&opts.ack_log)
        .with_context(|| format!("opening the ack log {}", opts.ack_log.display()))?;
    let resends = match &opts.resend_log {
        Some(p) => Some(Mutex::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening the resend log {}", p.display()))?,
        ))),
        None => None,
    };
    let shared = Arc::new(Shared {
        run: rand::random(),
        log: Mutex::new(std::io::BufWriter::new(file)),
        resends,
        opts,
    });
    let start = Instant::now();
    let tasks: Vec<_> = (0..shared.opts.streams)
        .map(|s| tokio::spawn(run_one(shared.clone(), s, start)))
        .collect();
    let mut report = ReliableReport::default();
    for t in tasks {
        report.merge(&t.await.context("load stream panicked")??);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::envelope::{create_signed_envelope, EnvelopeOptions};
    use fabric_protos::common::HeaderType;

    #[test]
    fn txid_is_read_from_the_channel_header() {
        let e = create_signed_envelope(
            HeaderType::Message,
            "ch",
            None,
            vec![1],
            &EnvelopeOptions {
                with_txid: true,
                ..Default::default()
            },
        );
        let id = txid(&e);
        assert_eq!(id.len(), 64, "{id}");
        let e = create_signed_envelope(
            HeaderType::Message,
            "ch",
            None,
            vec![1],
            &EnvelopeOptions::default(),
        );
        assert_eq!(txid(&e), "");
        assert_eq!(txid(&Envelope::default()), "");
    }
}
