//! ③ Kafka produce: Broadcast submissions of one channel become
//! `KafkaMessage::Regular` records, handed to librdkafka in arrival order
//! (it batches them; idempotence keeps their order on retries). Each
//! submission is acknowledged once Kafka acknowledged its record with
//! `acks=all`. Nothing here waits on one round trip per envelope.
//!
//! Back-pressure ([`Backlog`]): a submission waits while this OSN's chain is
//! more than [`KAFKA_MAX_BACKLOG`](crate::limits::KAFKA_MAX_BACKLOG) records behind the newest offset Kafka
//! acknowledged to it, so clients are not answered faster than blocks are
//! cut (the backlog, and broadcast→delivered latency, would otherwise grow
//! for as long as the load lasts). A chain that does not move for
//! [`KAFKA_BACKLOG_STALL`](crate::limits::KAFKA_BACKLOG_STALL) is stuck, not slow: submissions are then produced
//! without waiting, as Fabric does, until it moves again.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::client::ChainProducer;
use fabric_protos::orderer::{
    kafka_message, kafka_message_regular::Class, KafkaMessage, KafkaMessageRegular,
};
use prost::Message;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::consensus::{ChainError, ChainState, Submission, SubmitKind};

/// Whether a chain that processed `consumed` is more than `max` records
/// behind `acked`, the newest offset Kafka acknowledged to this OSN.
pub fn too_far_behind(acked: i64, consumed: i64, max: i64) -> bool {
    acked.saturating_sub(consumed) > max
}

/// How far this OSN's chain is behind what Kafka acknowledged to it.
#[derive(Debug, Clone)]
pub struct Backlog {
    acked: Arc<AtomicI64>,
    consumed: watch::Receiver<i64>,
    max: i64,
    stall: Duration,
    /// The consumed offset at which the chain was found stuck: no waiting
    /// until it moves from there.
    stuck_at: Option<i64>,
}

impl Backlog {
    /// `consumed`: the chain's last processed offset, published by the chain.
    pub fn new(consumed: watch::Receiver<i64>, max: i64, stall: Duration) -> Self {
        Self {
            acked: Arc::new(AtomicI64::new(-1)),
            consumed,
            max,
            stall,
            stuck_at: None,
        }
    }

    /// Records an offset Kafka acknowledged for one of this OSN's records.
    pub fn acked(&self, offset: i64) {
        self.acked.fetch_max(offset, Ordering::Relaxed);
    }

    fn behind(&self, consumed: i64) -> bool {
        too_far_behind(self.acked.load(Ordering::Relaxed), consumed, self.max)
    }

    /// Returns when the chain is at most `max` records behind, at once when
    /// it is stuck (no move for `stall`), or on shutdown. `true` if it waited.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let mut waited = false;
        loop {
            let consumed = *self.consumed.borrow_and_update();
            if self.stuck_at.is_some_and(|s| s != consumed) {
                self.stuck_at = None;
            }
            if !self.behind(consumed) || self.stuck_at.is_some() {
                return waited;
            }
            waited = true;
            tokio::select! {
                _ = shutdown.cancelled() => return waited,
                r = tokio::time::timeout(self.stall, self.consumed.changed()) => match r {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return waited, // the chain is gone
                    Err(_) => {
                        warn!(consumed, acked = self.acked.load(Ordering::Relaxed), stall = ?self.stall,
                            "the chain has not consumed for a while; producing without waiting for it");
                        self.stuck_at = Some(consumed);
                        return waited;
                    }
                },
            }
        }
    }
}

/// Encodes a Broadcast envelope as Fabric's `Regular` message.
pub fn regular(envelope: Vec<u8>, config_seq: u64, class: Class) -> Vec<u8> {
    KafkaMessage {
        r#type: Some(kafka_message::Type::Regular(KafkaMessageRegular {
            payload: envelope,
            config_seq,
            class: class as i32,
            original_offset: 0,
        })),
    }
    .encode_to_vec()
}

/// The produce loop of one channel.
pub async fn run(
    channel_id: String,
    producer: Arc<ChainProducer>,
    mut submit_rx: mpsc::Receiver<Submission>,
    state_rx: watch::Receiver<ChainState>,
    mut backlog: Backlog,
    ack_timeout: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let sub = tokio::select! {
            _ = shutdown.cancelled() => return,
            s = submit_rx.recv() => match s { Some(s) => s, None => return },
        };
        if backlog.wait(&shutdown).await {
            debug!(%channel_id, "waited for the chain to catch up before producing");
        }
        let refused = match &*state_rx.borrow() {
            ChainState::Halted(why) => Some(format!("consenter halted: {why}")),
            ChainState::CatchingUp(why) => Some(why.clone()),
            _ => None,
        };
        if let Some(why) = refused {
            let _ = sub.ack.send(Err(ChainError::NotReady(why)));
            continue;
        }
        let class = match sub.kind {
            SubmitKind::Normal => Class::Normal,
            SubmitKind::Config => Class::Config,
        };
        let bytes = regular(sub.envelope, sub.config_seq, class);
        let mut attempts = 0u32;
        loop {
            let rec = super::record(&channel_id, &bytes);
            match producer.send_result(rec) {
                Ok(fut) => {
                    let ack = sub.ack;
                    let channel_id = channel_id.clone();
                    let backlog = backlog.clone();
                    tokio::spawn(async move {
                        let res = match tokio::time::timeout(ack_timeout, fut).await {
                            // librdkafka keeps trying (KAFKA_MESSAGE_TIMEOUT); the
                            // record may still be ordered, as with Fabric's producer.
                            Err(_) => {
                                warn!(%channel_id, topic = %channel_id, timeout = ?ack_timeout, "Kafka did not acknowledge a record in time");
                                Err(ChainError::Enqueue(format!(
                                    "Kafka did not acknowledge the record within {ack_timeout:?} (it may still be ordered)"
                                )))
                            }
                            Ok(Ok(Ok(delivery))) => {
                                backlog.acked(delivery.offset);
                                Ok(())
                            }
                            Ok(Ok(Err((e, _)))) => {
                                warn!(%channel_id, topic = %channel_id, error = %e, "Kafka did not acknowledge a record");
                                Err(ChainError::Enqueue(e.to_string()))
                            }
                            Ok(Err(_)) => Err(ChainError::Enqueue("producer closed".into())),
                        };
                        let _ = ack.send(res);
                    });
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if attempts < 100 =>
                {
                    // librdkafka's local queue is full: wait for it to drain (bounded).
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err((e, _)) => {
                    let _ = sub.ack.send(Err(ChainError::Enqueue(e.to_string())));
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_millis(300);

    fn backlog(consumed: i64, acked: i64) -> (watch::Sender<i64>, Backlog) {
        let (tx, rx) = watch::channel(consumed);
        let b = Backlog::new(rx, 100, STALL);
        b.acked(acked);
        (tx, b)
    }

    #[test]
    fn behind_only_past_the_bound() {
        assert!(!too_far_behind(-1, -1, 100));
        assert!(!too_far_behind(100, 0, 100));
        assert!(too_far_behind(101, 0, 100));
        assert!(
            !too_far_behind(5, 50, 100),
            "acked behind consumed (other OSNs)"
        );
        assert!(!too_far_behind(i64::MIN, i64::MAX, 0));
        assert!(too_far_behind(i64::MAX, i64::MIN, 0));
    }

    #[tokio::test]
    async fn no_wait_within_the_bound() {
        let (_tx, mut b) = backlog(10, 110);
        let t = std::time::Instant::now();
        assert!(!b.wait(&CancellationToken::new()).await);
        assert!(t.elapsed() < STALL);
        b.acked(50); // older acknowledgements never lower the mark
        assert!(!b.wait(&CancellationToken::new()).await);
    }

    #[tokio::test]
    async fn waits_until_the_chain_catches_up() {
        let (tx, mut b) = backlog(0, 250);
        let feeder = tokio::spawn(async move {
            for c in [50, 100, 149, 150] {
                tokio::time::sleep(Duration::from_millis(40)).await;
                tx.send_replace(c);
            }
            tx
        });
        let t = std::time::Instant::now();
        assert!(b.wait(&CancellationToken::new()).await);
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(150) && took < STALL * 2,
            "{took:?}"
        );
        assert_eq!(*b.consumed.borrow(), 150);
        drop(feeder.await.unwrap());
    }

    #[tokio::test]
    async fn a_stuck_chain_is_waited_for_once() {
        let (tx, mut b) = backlog(0, 1_000);
        let t = std::time::Instant::now();
        assert!(b.wait(&CancellationToken::new()).await);
        assert!(t.elapsed() >= STALL);
        // Still stuck at the same offset: no more waiting.
        let t = std::time::Instant::now();
        assert!(!b.wait(&CancellationToken::new()).await);
        assert!(t.elapsed() < STALL);
        // It moves but is still far behind: waiting resumes.
        tx.send_replace(1);
        let t = std::time::Instant::now();
        assert!(b.wait(&CancellationToken::new()).await);
        assert!(t.elapsed() >= STALL);
    }

    #[tokio::test]
    async fn shutdown_and_a_gone_chain_end_the_wait() {
        let (_tx, mut b) = backlog(0, 1_000);
        let stop = CancellationToken::new();
        stop.cancel();
        let t = std::time::Instant::now();
        assert!(b.wait(&stop).await);
        assert!(t.elapsed() < STALL);
        let (tx, mut b) = backlog(0, 1_000);
        drop(tx);
        let t = std::time::Instant::now();
        assert!(b.wait(&CancellationToken::new()).await);
        assert!(t.elapsed() < STALL);
    }
}
