//! Every bound in the node, in one place.

/// Submissions queued per chain before Broadcast streams wait.
pub const SUBMIT_QUEUE_LEN: usize = 4096;
/// Envelopes in flight (received, not yet answered) per Broadcast stream.
pub const BROADCAST_WINDOW: usize = 1024;
/// Longest a Broadcast stream validates envelopes before it yields its
/// worker to other tasks (Deliver streams, acknowledgements).
pub const BROADCAST_TURN: std::time::Duration = std::time::Duration::from_micros(500);
/// Deliver blocks a stream holds between the ledger and the socket, whatever
/// their size: counted from the ledger read until h2 has written the block's
/// last byte (`crate::net::streams::DeliverFlow`), so a client that never
/// reads (HTTP/2 window 0) pins at most this many blocks per stream (before,
/// about five). Also the response channel's capacity. Each can be a whole
/// block (up to `AbsoluteMaxBytes` plus metadata): with 16, 50 followers
/// reading a ~0.5 MB block every 5 s grew the orderer past 650 MiB in 3
/// minutes; the HTTP/2 flow-control window keeps fast followers pipelined.
pub const DELIVER_BUFFER: usize = 2;
/// Deliver blocks one stream may hold between the ledger read and the
/// socket write (`net::streams::DeliverFlow`), whatever their size. Above
/// the response channel's [`DELIVER_BUFFER`]: a block stays counted until h2
/// has written its last byte, so with 2 a fast follower waited for each
/// block's last flow-control round trip before reading the next one, and
/// fell seconds behind under load (`bench-compare.sh -c kafka:1024:128:1:1`,
/// p50 broadcast→delivered: 0.6 s before the budget, 3.9 s with 2, 2.4 s
/// with 4, 1.2 s with 8 against 0.8 s in the same run). Many streams of one
/// connection are still held to [`DELIVER_CONNECTION_BUFFER`] together.
pub const DELIVER_STREAM_BLOCKS: usize = 8;
/// Deliver blocks all the streams of one connection hold together (counted
/// as for [`DELIVER_BUFFER`]): many non-reading streams on one connection
/// pin at most this many blocks; beyond it that connection's streams wait,
/// other connections are not affected.
pub const DELIVER_CONNECTION_BUFFER: usize = 16;
/// More than [`DELIVER_BUFFER`] blocks may be held by a stream while those
/// it holds are under this many bytes (with at most `DELIVER_BUFFER` of
/// them read and not yet encoded, their size unknown): small blocks are
/// then sent many at a time (held to 2, a catch-up of 1,500 small blocks
/// took 1.5–1.8× as long as before). A stream holds at most
/// `DELIVER_BUFFER` blocks of any size plus `DELIVER_BUFFER_BYTES` of small ones.
pub const DELIVER_BUFFER_BYTES: u64 = 1 << 20;
/// The same for all the Deliver streams of one connection: at most
/// `DELIVER_CONNECTION_BUFFER` blocks, or `DELIVER_CONNECTION_BUFFER_BYTES`
/// of small ones plus 2 of any size.
pub const DELIVER_CONNECTION_BUFFER_BYTES: u64 = 4 << 20;
/// `General.Limits.MaxDeliverBufferedBytes` default: bytes of Deliver
/// blocks all streams of all connections hold between the ledger read and
/// the socket (`net::streams::DeliverTotal`); beyond it every Deliver
/// stream waits before its next ledger read. The per-connection bounds
/// above leave `MaxConnections × 16` blocks to clients that open many
/// connections and never read; this caps them in bytes (Fabric has no such
/// bound). Raise it for many followers of large blocks.
pub const DELIVER_TOTAL_BUFFER_BYTES: u64 = 256 << 20;
/// Default gRPC message size limit (Fabric `General.MaxRecvMsgSize`).
pub const GRPC_MAX_MSG: usize = 100 * 1024 * 1024;

/// `General.ConnectionTimeout` default (Fabric's `comm.DefaultConnectionTimeout`):
/// the gRPC port closes a connection whose TLS handshake and HTTP/2 preface
/// are not done this long after it was accepted (`crate::net::accept`).
pub const CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// `General.Keepalive.ServerInterval` default (Fabric's, gRPC's): ping a
/// connection idle this long.
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2 * 3600);
/// `General.Keepalive.ServerTimeout` default: close a connection whose ping
/// is not answered within this.
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// `General.Keepalive.ServerMinInterval` default (Fabric's
/// `comm.DefaultKeepaliveOptions`): a client that pings more often than
/// this is disconnected (`crate::net::keepalive`, grpc-go's rule).
pub const KEEPALIVE_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// `General.Limits.MaxConnections` default: gRPC connections open or
/// handshaking at once (lowered at start to the descriptor limit less 256,
/// `crate::net::effective_max_connections`); more are closed at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// `General.Limits.MaxConcurrentStreams` default: streams per gRPC
/// connection (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`; h2 refuses more).
pub const MAX_CONCURRENT_STREAMS: u32 = 1000;
/// `General.Limits.MaxStreams` default: Broadcast and Deliver streams open
/// at once over all connections; more are refused with RESOURCE_EXHAUSTED.
/// An idle Broadcast stream costs ≈25 KB (release; 35 KB in a debug build,
/// `e2e_hardening`), ≈200 MB for all of them.
pub const MAX_STREAMS: usize = 8192;

/// `General.Limits.MaxStreamBytes` default: client bytes one Broadcast or
/// Deliver stream may hold received and not yet answered (`net::ingress`):
/// a message's length is taken when its header arrives, and given back when
/// Broadcast answers it (Deliver: when the request is decoded). Beyond it
/// the stream is not read (HTTP/2 flow control stops the client); a larger
/// message takes the whole budget.
pub const RECEIVE_STREAM_BYTES: u64 = 16 << 20;
/// `General.Limits.MaxConnectionBytes` default: the same for all the
/// streams of one connection together.
pub const RECEIVE_CONNECTION_BYTES: u64 = 64 << 20;
/// `General.Limits.MaxReceivedBytes` default: the same for all streams of
/// all connections. Above `General.MaxRecvMsgSize` (100 MiB) so the largest
/// message is not alone; six concurrent 95 MiB messages held 805 MiB before.
pub const RECEIVE_TOTAL_BYTES: u64 = 128 << 20;
/// A message whose budget is held must arrive within this plus one second
/// per [`MESSAGE_RECEIVE_MIN_RATE`] bytes of its length (the rule of
/// Apache's `mod_reqtimeout`), else the stream ends with
/// `RESOURCE_EXHAUSTED`: a client announcing a large message and stalling
/// cannot keep the budget from others.
pub const MESSAGE_RECEIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// See [`MESSAGE_RECEIVE_TIMEOUT`]: 1 MiB/s.
pub const MESSAGE_RECEIVE_MIN_RATE: u64 = 1 << 20;

/// Operations endpoint: a request's head and body must arrive within this
/// (Fabric's `fabhttp` `ReadTimeout`).
pub const OPS_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Operations endpoint: a response must be written within this (Fabric's
/// `fabhttp` `WriteTimeout`).
pub const OPS_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// Operations endpoint: a keep-alive connection idle this long is closed.
pub const OPS_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Operations endpoint: connections open at once (more wait in the kernel's
/// accept queue).
pub const OPS_MAX_CONNECTIONS: usize = 1024;
/// `/logspec` PUT body limit.
pub const LOGSPEC_MAX_BODY: usize = 64 * 1024;
/// Logger names one `/logspec` spec may name.
pub const LOGSPEC_MAX_LOGGERS: usize = 256;

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
