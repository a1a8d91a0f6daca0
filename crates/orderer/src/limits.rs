//! Every bound in the node, in one place.

/// Submissions queued per chain before Broadcast streams wait.
pub const SUBMIT_QUEUE_LEN: usize = 4096;
/// Envelopes in flight (received, not yet answered) per Broadcast stream.
pub const BROADCAST_WINDOW: usize = 1024;
/// Deliver responses buffered per stream before the sender waits.
pub const DELIVER_BUFFER: usize = 16;
/// Default gRPC message size limit (Fabric `General.MaxRecvMsgSize`).
pub const GRPC_MAX_MSG: usize = 100 * 1024 * 1024;

const _: () = assert!(BROADCAST_WINDOW <= SUBMIT_QUEUE_LEN);
