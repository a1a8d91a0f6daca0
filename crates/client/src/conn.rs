//! gRPC connections to an orderer (plain TCP, like Fabric's sample clients).

use std::time::Duration;

use anyhow::{Context, Result};
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use tonic::transport::{Channel, Endpoint};

/// Fabric's gRPC message size limit (100 MiB).
pub const MAX_MESSAGE_SIZE: usize = 100 * 1024 * 1024;

/// The client type used throughout this crate.
pub type Client = AtomicBroadcastClient<Channel>;

/// `host:port` → `http://host:port` (an address with a scheme is kept).
pub fn endpoint_uri(server: &str) -> String {
    if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    }
}

/// Opens a new HTTP/2 connection to `server` and wraps it in a client whose
/// message limits are raised to 100 MiB.
pub async fn connect(server: &str) -> Result<Client> {
    let endpoint = Endpoint::from_shared(endpoint_uri(server))
        .with_context(|| format!("bad orderer address {server:?}"))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .initial_connection_window_size(16 * 1024 * 1024)
        .initial_stream_window_size(8 * 1024 * 1024);
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to the orderer at {server}"))?;
    Ok(client(channel))
}

/// Wraps an existing channel with the 100 MiB limits.
pub fn client(channel: Channel) -> Client {
    AtomicBroadcastClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_gets_a_scheme() {
        assert_eq!(endpoint_uri("127.0.0.1:7050"), "http://127.0.0.1:7050");
        assert_eq!(endpoint_uri("https://o:7050"), "https://o:7050");
    }
}
