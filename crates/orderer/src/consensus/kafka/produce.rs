//! ③ Kafka produce: Broadcast submissions of one channel become
//! `KafkaMessage::Regular` records, handed to librdkafka in arrival order
//! (it batches them; idempotence keeps their order on retries). Each
//! submission is acknowledged once Kafka acknowledged its record with
//! `acks=all`. Nothing here waits on one round trip per envelope.

use std::sync::Arc;

use fabric_protos::orderer::{
    kafka_message, kafka_message_regular::Class, KafkaMessage, KafkaMessageRegular,
};
use prost::Message;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{PARTITION, RECORD_KEY};
use crate::consensus::{ChainError, ChainState, Submission, SubmitKind};

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
    producer: Arc<FutureProducer>,
    mut submit_rx: mpsc::Receiver<Submission>,
    state_rx: watch::Receiver<ChainState>,
    shutdown: CancellationToken,
) {
    loop {
        let sub = tokio::select! {
            _ = shutdown.cancelled() => return,
            s = submit_rx.recv() => match s { Some(s) => s, None => return },
        };
        if let ChainState::Halted(why) = &*state_rx.borrow() {
            let _ = sub.ack.send(Err(ChainError::NotReady(format!(
                "consenter halted: {why}"
            ))));
            continue;
        }
        let class = match sub.kind {
            SubmitKind::Normal => Class::Normal,
            SubmitKind::Config => Class::Config,
        };
        let bytes = regular(sub.envelope, sub.config_seq, class);
        let mut attempts = 0u32;
        loop {
            let rec = FutureRecord::to(&channel_id)
                .partition(PARTITION)
                .key(RECORD_KEY)
                .payload(&bytes);
            match producer.send_result(rec) {
                Ok(fut) => {
                    let ack = sub.ack;
                    let channel_id = channel_id.clone();
                    tokio::spawn(async move {
                        let res = match fut.await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err((e, _))) => {
                                warn!(%channel_id, topic = %channel_id, error = %e, "Kafka did not acknowledge a record");
                                Err(ChainError::Enqueue(e.to_string()))
                            }
                            Err(_) => Err(ChainError::Enqueue("producer closed".into())),
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
