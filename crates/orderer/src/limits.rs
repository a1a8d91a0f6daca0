//! Every bound in the node, in one place.

/// Submissions queued per chain before Broadcast streams wait.
pub const SUBMIT_QUEUE_LEN: usize = 4096;
/// Envelopes in flight (received, not yet answered) per Broadcast stream.
pub const BROADCAST_WINDOW: usize = 1024;
/// Longest a Broadcast stream validates envelopes before it yields its
/// worker to other tasks (Deliver streams, acknowledgements).
pub const BROADCAST_TURN: std::time::Duration = std::time::Duration::from_micros(500);
/// Deliver responses buffered per stream before the sender waits. Each can
/// be a whole block (up to `AbsoluteMaxBytes` plus metadata), so this bounds
/// what a slow follower pins in the orderer: with 16, 50 followers reading a
/// ~0.5 MB block every 5 s grew the orderer past 650 MiB in 3 minutes; the
/// HTTP/2 flow-control window already keeps fast followers pipelined.
pub const DELIVER_BUFFER: usize = 2;
/// Default gRPC message size limit (Fabric `General.MaxRecvMsgSize`).
pub const GRPC_MAX_MSG: usize = 100 * 1024 * 1024;

/// Kafka records this OSN's chain may be behind the newest offset Kafka
/// acknowledged to it before Broadcast submissions wait: without it, Kafka
/// acknowledges (and the client is answered) faster than blocks are cut and
/// written, and the backlog, and with it broadcast→delivered latency, grows
/// for as long as the load lasts. ~0.5–1 s of traffic at 10–20k tx/s.
pub const KAFKA_MAX_BACKLOG: i64 = 10_000;
/// A chain whose consumed offset does not move for this long is stuck, not
/// slow (consumer errors, a full disk): submissions stop waiting for it and
/// are produced as Fabric would (Kafka holds them until the chain resumes).
pub const KAFKA_BACKLOG_STALL: std::time::Duration = std::time::Duration::from_secs(5);

/// How long librdkafka keeps trying to deliver a record before it gives up
/// (`message.timeout.ms`). Deliberately far longer than any client waits
/// (`KafkaSettings::ack_timeout`): when records time out while a request
/// holding others is in flight, librdkafka's idempotent producer bumps its
/// epoch and sends those others again under new sequence numbers, which the
/// broker cannot recognise as copies (measured: a 40-record batch written
/// twice after a broker was killed for 6 s). A client that is not answered
/// within its timeout gets SERVICE_UNAVAILABLE; its record may still be
/// ordered, as with Fabric's producer, and a copy then exists only if the
/// client sends it again.
pub const KAFKA_MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// First wait before retrying a failed ledger append (disk full, I/O error).
pub const LEDGER_RETRY_BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest wait between ledger append retries (the backoff doubles up to it).
pub const LEDGER_RETRY_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(5);

const _: () = assert!(BROADCAST_WINDOW <= SUBMIT_QUEUE_LEN);

/// Normal envelopes remembered by a channel's exactly-once window, when the
/// channel's config switches it on (`crate::dedupe`; off by default).
pub const EXACTLY_ONCE_WINDOW_ENVELOPES: usize = 100_000;
/// The most heap that window holds, whatever clients send: 32-byte SHA-256
/// digests, each in a ring and a hash set (64 bytes per envelope), plus the
/// containers' power-of-two slack
/// (`crate::dedupe::WindowLimits::max_heap_bytes`): 4 MiB of ring and at
/// most 2 × 131,072 buckets × 33 bytes of set = 12,845,072 bytes (12.25 MiB)
/// per channel (checked at compile time below).
pub const EXACTLY_ONCE_WINDOW_MAX_BYTES: usize = 12_845_072;
const _: () =
    assert!(crate::dedupe::WindowLimits::DEFAULT.max_heap_bytes() == EXACTLY_ONCE_WINDOW_MAX_BYTES);
