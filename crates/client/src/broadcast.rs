//! A pipelined Broadcast stream: up to `window` envelopes in flight, one
//! `BroadcastResponse` per envelope, in order (Fabric's Broadcast contract).
//! On a non-SUCCESS status the server closes the stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fabric_protos::common::Envelope;
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_stream::wrappers::ReceiverStream;

use crate::conn::Client;
use crate::latency::LatencyStats;
use crate::{status_name, SUCCESS};

/// Send times by tag, shared with a Deliver follower that measures
/// broadcast→delivered latency.
pub type SendTimes = Mutex<HashMap<u64, Instant>>;

/// What happened on one Broadcast stream.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// Envelopes written to the stream.
    pub sent: u64,
    /// Responses received.
    pub acked: u64,
    /// SUCCESS responses.
    pub success: u64,
    /// Non-SUCCESS responses by status name.
    pub failures: BTreeMap<String, u64>,
    /// The first non-SUCCESS response: "tag T: STATUS info".
    pub first_failure: Option<String>,
    /// Send → response latency.
    pub ack_latency: LatencyStats,
    /// The server ended the stream before every envelope was answered.
    pub closed_early: bool,
    /// A transport error.
    pub error: Option<String>,
    /// When the first envelope was written.
    pub first_send: Option<Instant>,
    /// When the last response arrived.
    pub last_ack: Option<Instant>,
}

impl StreamStats {
    /// Adds another stream's figures.
    pub fn merge(&mut self, o: &StreamStats) {
        self.sent += o.sent;
        self.acked += o.acked;
        self.success += o.success;
        for (k, v) in &o.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
        if self.first_failure.is_none() {
            self.first_failure.clone_from(&o.first_failure);
        }
        self.ack_latency.merge(&o.ack_latency);
        self.closed_early |= o.closed_early;
        if self.error.is_none() {
            self.error.clone_from(&o.error);
        }
        self.first_send = match (self.first_send, o.first_send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ack = match (self.last_ack, o.last_ack) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Sends `(tag, envelope)` items over one Broadcast stream with at most
/// `window` unanswered, until the items run out and all are answered, the
/// server closes the stream, or the transport fails. Send times are
/// recorded in `send_times` (before the envelope is written) when given.
pub async fn run_stream<S>(
    mut client: Client,
    envelopes: S,
    window: usize,
    send_times: Option<Arc<SendTimes>>,
) -> StreamStats
where
    S: Stream<Item = (u64, Envelope)> + Send + Unpin + 'static,
{
    let window = window.max(1);
    let mut stats = StreamStats::default();
    let (req_tx, req_rx) = mpsc::channel::<Envelope>(window.min(256));
    let (inflight_tx, mut inflight_rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let sem = Arc::new(Semaphore::new(window));
    let sent = Arc::new(AtomicU64::new(0));
    let (done_tx, mut done_rx) = oneshot::channel::<u64>();

    let sender = {
        let sem = sem.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut envelopes = envelopes;
            loop {
                match sem.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
                let Some((tag, env)) = envelopes.next().await else {
                    break;
                };
                let now = Instant::now();
                if let Some(st) = &send_times {
                    st.lock().expect("send times lock").insert(tag, now);
                }
                if inflight_tx.send((tag, now)).is_err() || req_tx.send(env).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            let _ = done_tx.send(sent.load(Ordering::Relaxed));
            // Returned (not dropped) so the request side stays open until
            // every response has arrived.
            req_tx
        })
    };

    let mut total: Option<u64> = None;
    let call = client.broadcast(ReceiverStream::new(req_rx));
    tokio::pin!(call);
    let resp = loop {
        tokio::select! {
            r = &mut call => break r,
            t = &mut done_rx, if total.is_none() => {
                let t = t.unwrap_or(0);
                total = Some(t);
                if t == 0 {
                    stats.sent = 0;
                    return stats;
                }
            }
        }
    };
    let mut resp = match resp {
        Ok(r) => r.into_inner(),
        Err(e) => {
            stats.error = Some(format!("Broadcast RPC failed: {e}"));
            sem.close();
            sender.abort();
            stats.sent = sent.load(Ordering::Relaxed);
            return stats;
        }
    };

    let mut complete = false;
    loop {
        if total.is_some_and(|t| stats.acked >= t) {
            complete = true;
            break;
        }
        tokio::select! {
            m = resp.message() => match m {
                Ok(Some(r)) => {
                    let now = Instant::now();
                    stats.acked += 1;
                    let Ok((tag, sent_at)) = inflight_rx.try_recv() else {
                        stats.error = Some("response without a request".into());
                        break;
                    };
                    stats.first_send.get_or_insert(sent_at);
                    stats.last_ack = Some(now);
                    stats.ack_latency.record(now - sent_at);
                    if r.status == SUCCESS {
                        stats.success += 1;
                    } else {
                        let name = status_name(r.status);
                        if stats.first_failure.is_none() {
                            stats.first_failure = Some(format!("tag {tag}: {name} {}", r.info));
                        }
                        *stats.failures.entry(name).or_default() += 1;
                    }
                    sem.add_permits(1);
                }
                Ok(None) => break,
                Err(e) => {
                    stats.error = Some(format!("Broadcast stream failed: {e}"));
                    break;
                }
            },
            t = &mut done_rx, if total.is_none() => total = Some(t.unwrap_or(0)),
        }
    }
    sem.close();
    stats.sent = sent.load(Ordering::Relaxed);
    if complete {
        // Half-close only now.
        drop(sender.await);
    } else {
        sender.abort();
        if stats.acked < stats.sent || total.is_none() {
            stats.closed_early = stats.error.is_none();
        }
    }
    stats
}
