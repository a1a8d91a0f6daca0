//! What the gRPC port does before a request reaches the service, and the
//! limits around it (issue #16):
//!
//! | what | where | limit (default) | beyond it |
//! |---|---|---|---|
//! | connections on the gRPC port, handshaking or open | [`accept`] | `General.Limits.MaxConnections` (4096, lowered to fit the descriptor limit) | the connection is closed at once, logged (rate-limited), `orderer_refused_total{reason="connection_limit"}` |
//! | TLS handshake and HTTP/2 preface | [`accept`] | `General.ConnectionTimeout` (Fabric's default 5 s) from accept | closed, logged with the remote address (rate-limited), `reason="handshake_failed"`, `"handshake_timeout"`, `"preface_timeout"` |
//! | keepalive | tonic/h2 | `General.Keepalive.ServerInterval` (2 h) / `ServerTimeout` (20 s) | the connection is closed when a ping is not answered |
//! | client pings | [`keepalive`] | `General.Keepalive.ServerMinInterval` (Fabric's default 1 min), grpc-go's rule: the third ping closer than that to the previous one, with no HEADERS or DATA sent by the server in between | GOAWAY `ENHANCE_YOUR_CALM` `too_many_pings`, closed, logged (rate-limited), `reason="too_many_pings"` |
//! | streams per connection | h2 `SETTINGS_MAX_CONCURRENT_STREAMS` | `General.Limits.MaxConcurrentStreams` (1000) | h2 refuses the stream (`REFUSED_STREAM`); gRPC clients wait for a free stream |
//! | streams in total (Broadcast + Deliver) | [`streams`] | `General.Limits.MaxStreams` (8192) | `RESOURCE_EXHAUSTED`, logged (rate-limited), `reason="stream_limit"` |
//! | client bytes received and not yet answered (Broadcast envelopes until their answer, Deliver requests until decoded) | [`ingress`] | `General.Limits.MaxStreamBytes` (16 MiB) per stream, `MaxConnectionBytes` (64 MiB) per connection, `MaxReceivedBytes` (128 MiB) in all; a larger message takes a whole budget | the stream is not read (HTTP/2 flow control stops the client), logged (rate-limited), `orderer_receive_budget_waits_total{level}`; a message holding budget that does not arrive within 10 s + 1 s/MiB ends its stream with `RESOURCE_EXHAUSTED`, `reason="receive_timeout"` |
//! | Deliver blocks buffered per stream | [`streams`] (`DeliverFlow`) | [`crate::limits::DELIVER_STREAM_BLOCKS`] (8) blocks, whatever their size, counted until h2 has written their last byte to the socket | the stream waits before reading the next block from the ledger |
//! | Deliver blocks buffered per connection | [`streams`] (`ConnBudget`) | [`crate::limits::DELIVER_CONNECTION_BUFFER`] (16) blocks | that connection's streams wait |
//! | Deliver block bytes buffered in total | [`streams`] (`DeliverTotal`) | `General.Limits.MaxDeliverBufferedBytes` (256 MiB), from each block's ledger read | every Deliver stream waits before its next ledger read; `orderer_deliver_bytes_buffered` |

pub mod accept;
pub mod connmap;
pub mod grpcmetrics;
pub mod ingress;
pub mod keepalive;
pub mod ratelog;
pub mod streams;
pub mod tls;

use std::time::Duration;

use crate::limits;

/// The connection and stream limits of the gRPC port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSettings {
    /// `General.ConnectionTimeout`: the TLS handshake and the HTTP/2
    /// preface must be done this long after the connection was accepted.
    pub connection_timeout: Duration,
    /// `General.Keepalive.ServerInterval`: the server pings a connection
    /// idle this long.
    pub keepalive_interval: Duration,
    /// `General.Keepalive.ServerTimeout`: a ping not answered within this
    /// closes the connection.
    pub keepalive_timeout: Duration,
    /// `General.Keepalive.ServerMinInterval`: clients must not ping more
    /// often ([`keepalive`]).
    pub keepalive_min_interval: Duration,
    /// `General.Limits.MaxConnections`.
    pub max_connections: usize,
    /// `General.Limits.MaxConcurrentStreams` (per connection).
    pub max_concurrent_streams: u32,
    /// `General.Limits.MaxStreams` (all connections).
    pub max_streams: usize,
    /// `General.Limits.MaxDeliverBufferedBytes` ([`streams::DeliverTotal`]).
    pub max_deliver_buffered_bytes: u64,
    /// `General.Limits.MaxStreamBytes`, `MaxConnectionBytes`, `MaxReceivedBytes`.
    pub receive: ingress::ReceiveLimits,
}

impl Default for NetSettings {
    fn default() -> Self {
        Self {
            connection_timeout: limits::CONNECTION_TIMEOUT,
            keepalive_interval: limits::KEEPALIVE_INTERVAL,
            keepalive_timeout: limits::KEEPALIVE_TIMEOUT,
            keepalive_min_interval: limits::KEEPALIVE_MIN_INTERVAL,
            max_connections: limits::MAX_CONNECTIONS,
            max_concurrent_streams: limits::MAX_CONCURRENT_STREAMS,
            max_streams: limits::MAX_STREAMS,
            max_deliver_buffered_bytes: limits::DELIVER_TOTAL_BUFFER_BYTES,
            receive: ingress::ReceiveLimits::default(),
        }
    }
}

/// Descriptors kept free for everything but gRPC connections (ledger
/// files, Kafka, the operations endpoint, logs).
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft descriptor limit to the hard one (as Go's runtime does
/// for Fabric's orderer) and returns the soft limit in force.
pub fn raise_descriptor_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    Some(lim.rlim_cur)
}

/// `configured` connections, lowered so that they fit in the descriptor
/// limit `nofile` with [`RESERVED_DESCRIPTORS`] to spare (at least 16).
pub fn effective_max_connections(configured: usize, nofile: Option<u64>) -> usize {
    match nofile {
        Some(n) => {
            let fit = n.saturating_sub(RESERVED_DESCRIPTORS).max(16);
            configured.min(usize::try_from(fit).unwrap_or(usize::MAX))
        }
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_fit_the_descriptor_limit() {
        assert_eq!(effective_max_connections(4096, Some(1024)), 768);
        assert_eq!(effective_max_connections(4096, Some(1 << 20)), 4096);
        assert_eq!(effective_max_connections(4096, Some(100)), 16);
        assert_eq!(effective_max_connections(50, None), 50);
    }
}
