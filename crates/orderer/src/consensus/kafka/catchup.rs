//! Catch-up from another OSN (issue #15): when the Kafka partition no longer
//! holds the offset a chain needs next (retention or DeleteRecords pruned
//! it), the chain pulls the missing blocks over `Deliver` from other OSNs of
//! the channel, verifies each before it appends it, and then consumes Kafka
//! from the `KafkaMetadata` offsets of the last pulled block.
//!
//! * [`Verifier`] is pure and synchronous: number, previous hash, data hash,
//!   the orderer signatures against `/Channel/Orderer/BlockValidation` of the
//!   config in force before the block (a pulled config block replaces the
//!   policies for the blocks after it), and the block's `KafkaMetadata`.
//! * [`BlockSource`] is the I/O: a Deliver stream from one OSN address
//!   ([`GrpcBlockSource`] over gRPC, TLS and mutual TLS as the rest of the
//!   node; tests replace it).
//! * The driver is the chain task's (`chain.rs`, `catch_up`): sources in
//!   order, a rejected block or a failing source moves to the next one, all
//!   failing waits with [`backoff`] and tries again.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fabric_common::block::{consenter_metadata, header_hash, verify_link, ChainError};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{Block, BlockHeader, ChannelHeader, Envelope, HeaderType, Payload};
use fabric_protos::orderer::{KafkaMetadata, SeekInfo};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use prost::Message as _;

use crate::channelconfig::ChannelConfig;
use crate::ledgercheck::{verify_signatures, BlockCheckError};
use crate::policy::ChannelPolicies;

/// The first wait when no source could provide the missing blocks.
pub const CATCH_UP_BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest wait between rounds over all sources.
pub const CATCH_UP_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// `Kafka.CatchUp.PullThreshold` when not set: a starting chain more than
/// this many records behind the partition's end pulls from other OSNs first.
/// Measured (`scripts/bench-catchup.sh`, BENCHMARKS.md "Catch-up speed"):
/// pulling is 1.6–2.0× faster than replaying per record (21,000–37,000 vs
/// 12,400–18,100 tx/s in blocks of 100–500; 325 vs 204 blocks/s in blocks
/// of 10), so it never loses on speed; below 10,000 records the gain is
/// under about 0.3 s (blocks of 100), not worth a dependency on another OSN
/// for an ordinary restart.
pub const DEFAULT_PULL_THRESHOLD: u64 = 10_000;

/// Progress is logged every this many pulled blocks.
pub const CATCH_UP_LOG_EVERY: u64 = 100;

/// The next wait after `current`: doubled, at most [`CATCH_UP_BACKOFF_MAX`].
pub fn backoff(current: Duration) -> Duration {
    (current * 2).clamp(CATCH_UP_BACKOFF_MIN, CATCH_UP_BACKOFF_MAX)
}

/// Why a pulled block is refused. Nothing refused is ever appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The block has no header.
    #[error("block has no header")]
    MissingHeader,
    /// Not the next block (a gap, or a block already held).
    #[error("block {found} is not the next block {expected} (gap or repeat)")]
    Number { expected: u64, found: u64 },
    /// Its `previous_hash` is not the hash of our last block's header: a
    /// different chain.
    #[error("block {0}: previous_hash is not the hash of this OSN's last block header (a different chain)")]
    PreviousHash(u64),
    /// Its `data_hash` is not the hash of its data.
    #[error("block {0}: data_hash does not match the block's data")]
    DataHash(u64),
    /// The orderer signatures are missing or do not satisfy the policy.
    #[error("{0}")]
    Signatures(BlockCheckError),
    /// No `KafkaMetadata`: the block does not say where Kafka resumes.
    #[error("block {number}: Kafka metadata missing or undecodable: {reason}")]
    Metadata { number: u64, reason: String },
    /// A config block whose config cannot be used.
    #[error("block {number}: its channel config cannot be used: {reason}")]
    BadConfig { number: u64, reason: String },
}

/// What the chain needs of a verified block.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The block's number.
    pub number: u64,
    /// Its Kafka offsets.
    pub kafka: KafkaMetadata,
    /// A CONFIG block: the channel's new config.
    pub new_config: Option<Box<ChannelConfig>>,
    /// A config-class block (CONFIG or ORDERER_TRANSACTION): its only
    /// envelope, for the chain's [`crate::consensus::ConfigSink`].
    pub config_envelope: Option<Envelope>,
}

/// Verifies pulled blocks one after the other, from the chain's last block
/// and the config in force. Pure: no I/O.
pub struct Verifier {
    last: BlockHeader,
    config: ChannelConfig,
    policies: ChannelPolicies,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("next", &self.next_number())
            .field("sequence", &self.config.sequence)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// After `last` (the ledger's last block), under `config` (the config
    /// in force at `last`).
    pub fn new(last: &Block, config: ChannelConfig) -> Result<Self, String> {
        let last = last.header.clone().ok_or("the last block has no header")?;
        let policies = ChannelPolicies::from_config(&config.config).map_err(|e| e.to_string())?;
        Ok(Self {
            last,
            config,
            policies,
        })
    }

    /// The number of the block expected next.
    pub fn next_number(&self) -> u64 {
        self.last.number + 1
    }

    /// The config in force.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// Verifies `block` as the next block; when it passes, the verifier
    /// moves past it (a config block's policies apply to what follows).
    pub fn verify(&mut self, block: &Block) -> Result<Verified, Rejected> {
        let header = block.header.as_ref().ok_or(Rejected::MissingHeader)?;
        let number = header.number;
        verify_link(Some(&self.last), block).map_err(|e| match e {
            ChainError::Number { expected, found } => Rejected::Number { expected, found },
            ChainError::PreviousHash(n) => Rejected::PreviousHash(n),
            ChainError::DataHash(n) => Rejected::DataHash(n),
            _ => Rejected::MissingHeader,
        })?;
        // Belt and braces: verify_link compares with the hash of `last`.
        if header.previous_hash != header_hash(&self.last) {
            return Err(Rejected::PreviousHash(number));
        }
        verify_signatures(&self.policies, block, number).map_err(Rejected::Signatures)?;
        let kafka = consenter_metadata(block)
            .ok_or_else(|| "no consenter metadata".to_string())
            .and_then(|b| KafkaMetadata::decode(b.as_slice()).map_err(|e| e.to_string()))
            .map_err(|reason| Rejected::Metadata { number, reason })?;
        let (new_config, config_envelope) = match config_class(block) {
            Some((env, HeaderType::Config)) => {
                let cfg = ChannelConfig::from_envelope(&env).map_err(|e| Rejected::BadConfig {
                    number,
                    reason: e.to_string(),
                })?;
                let policies =
                    ChannelPolicies::from_config(&cfg.config).map_err(|e| Rejected::BadConfig {
                        number,
                        reason: e.to_string(),
                    })?;
                self.policies = policies;
                self.config = cfg.clone();
                (Some(Box::new(cfg)), Some(env))
            }
            Some((env, _)) => (None, Some(env)),
            None => (None, None),
        };
        self.last = header.clone();
        Ok(Verified {
            number,
            kafka,
            new_config,
            config_envelope,
        })
    }
}

/// A block of one CONFIG or ORDERER_TRANSACTION envelope: the envelope and
/// its type.
fn config_class(block: &Block) -> Option<(Envelope, HeaderType)> {
    let data = block.data.as_ref().filter(|d| d.data.len() == 1)?;
    let env = Envelope::decode(data.data[0].as_slice()).ok()?;
    let ch = Payload::decode(env.payload.as_slice())
        .ok()
        .and_then(|p| p.header)
        .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())?;
    match HeaderType::try_from(ch.r#type).ok()? {
        t @ (HeaderType::Config | HeaderType::OrdererTransaction) => Some((env, t)),
        _ => None,
    }
}

/// The catch-up sources of a channel whose `orderer.yaml` lists none: the
/// channel config's `OrdererAddresses` and its orderer organizations'
/// `Endpoints`, in that order, without repeats.
pub fn config_sources(config: &ChannelConfig) -> Vec<String> {
    use fabric_protos::common::OrdererAddresses;
    let mut out: Vec<String> = Vec::new();
    let mut add = |bytes: &[u8]| {
        if let Ok(a) = OrdererAddresses::decode(bytes) {
            for s in a.addresses {
                if !s.is_empty() && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    };
    let Some(root) = config.config.channel_group.as_ref() else {
        return Vec::new();
    };
    if let Some(v) = root.values.get("OrdererAddresses") {
        add(&v.value);
    }
    if let Some(orderer) = root.groups.get("Orderer") {
        for org in orderer.groups.values() {
            if let Some(v) = org.values.get("Endpoints") {
                add(&v.value);
            }
        }
    }
    out
}

/// The catch-up sources of a channel other than this OSN itself (`own`:
/// its `General.ListenAddress:ListenPort`): `configured`
/// (`Kafka.CatchUp.Sources`) when not empty, else [`config_sources`].
/// Empty means catch-up cannot work for the channel, so its Kafka topic
/// must keep every record ([`super::check`]). An address is this OSN when it
/// is `own`, or when `own` listens on every interface (`0.0.0.0`, `[::]`)
/// and the address is a loopback one with the same port; a host name that
/// resolves to this machine is not recognised.
pub fn other_sources(configured: &[String], config: &ChannelConfig, own: &str) -> Vec<String> {
    let all = if configured.is_empty() {
        config_sources(config)
    } else {
        configured.to_vec()
    };
    all.into_iter().filter(|a| !is_own(a, own)).collect()
}

fn split_host_port(a: &str) -> Option<(&str, &str)> {
    let (h, p) = a.rsplit_once(':')?;
    Some((h.trim_start_matches('[').trim_end_matches(']'), p))
}

fn is_own(addr: &str, own: &str) -> bool {
    if addr == own {
        return true;
    }
    match (split_host_port(addr), split_host_port(own)) {
        (Some((h, p)), Some((oh, op))) if p == op => {
            let wildcard = matches!(oh, "" | "0.0.0.0" | "::");
            let loopback = matches!(h, "127.0.0.1" | "localhost" | "::1");
            h == oh || (wildcard && loopback)
        }
        _ => false,
    }
}

/// A Deliver stream of blocks from one OSN.
pub type BlockStream = BoxStream<'static, Result<Block, String>>;

/// The I/O of catch-up: blocks `start..` of `channel` (up to the source's
/// newest block at the time of the request) from the OSN at `address`.
pub trait BlockSource: Send + Sync + fmt::Debug {
    /// Opens the stream.
    fn open(
        &self,
        address: &str,
        channel: &str,
        start: u64,
    ) -> BoxFuture<'static, Result<BlockStream, String>>;
}

/// Client TLS for catch-up (`General.TLS`): trust `General.TLS.RootCAs`
/// (and the channels' orderer TLS roots), present the node's certificate.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// Root CA certificates (PEM).
    pub roots: Vec<Vec<u8>>,
    /// The node's certificate and key (PEM), for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// [`BlockSource`] over gRPC `AtomicBroadcast/Deliver`, with seek envelopes
/// signed by this OSN's local MSP identity.
#[derive(Clone)]
pub struct GrpcBlockSource {
    /// Signs the seek envelopes.
    pub signer: Arc<LocalSigner>,
    /// `None`: plaintext.
    pub tls: Option<ClientTls>,
    /// The largest message accepted (`General.MaxRecvMsgSize`).
    pub max_message: usize,
}

impl fmt::Debug for GrpcBlockSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcBlockSource")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// How long connecting to a source may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a source may stay silent in the middle of a stream.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

impl GrpcBlockSource {
    fn tls_cert_hash(&self) -> Vec<u8> {
        use sha2::Digest;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::CertificateDer;
        let Some((cert, _)) = self.tls.as_ref().and_then(|t| t.identity.as_ref()) else {
            return Vec::new();
        };
        match CertificateDer::pem_slice_iter(cert).next() {
            Some(Ok(der)) => sha2::Sha256::digest(der.as_ref()).to_vec(),
            _ => Vec::new(),
        }
    }
}

impl BlockSource for GrpcBlockSource {
    fn open(
        &self,
        address: &str,
        channel: &str,
        start: u64,
    ) -> BoxFuture<'static, Result<BlockStream, String>> {
        use fabric_common::envelope::{seek_envelope, seek_newest, seek_specified};
        use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
        use fabric_protos::orderer::deliver_response::Type;
        use futures::StreamExt as _;
        let this = self.clone();
        let address = address.to_string();
        let channel = channel.to_string();
        Box::pin(async move {
            let scheme = if this.tls.is_some() { "https" } else { "http" };
            let mut ep = tonic::transport::Endpoint::from_shared(format!("{scheme}://{address}"))
                .map_err(|e| format!("bad address {address:?}: {e}"))?
                .connect_timeout(CONNECT_TIMEOUT);
            if let Some(tls) = &this.tls {
                let mut c = tonic::transport::ClientTlsConfig::new();
                for r in &tls.roots {
                    c = c.ca_certificate(tonic::transport::Certificate::from_pem(r));
                }
                if let Some((cert, key)) = &tls.identity {
                    c = c.identity(tonic::transport::Identity::from_pem(cert, key));
                }
                ep = ep.tls_config(c).map_err(|e| format!("TLS settings: {e}"))?;
            }
            let ch = ep.connect().await.map_err(|e| format!("connecting: {e}"))?;
            let mut client = AtomicBroadcastClient::new(ch)
                .max_decoding_message_size(this.max_message)
                .max_encoding_message_size(this.max_message);
            let seek = SeekInfo {
                start: Some(seek_specified(start)),
                stop: Some(seek_newest()),
                ..Default::default()
            };
            let env = seek_envelope(&channel, Some(&this.signer), &seek, this.tls_cert_hash());
            // A source that never answers must not hold the chain.
            let resp = tokio::time::timeout(READ_TIMEOUT, client.deliver(tokio_stream::once(env)))
                .await
                .map_err(|_| format!("Deliver: no answer within {READ_TIMEOUT:?}"))?
                .map_err(|e| format!("Deliver: {e}"))?
                .into_inner();
            // Blocks until the status; SUCCESS ends the stream, any other
            // status is an error.
            let stream = futures::stream::unfold(Some(resp), |resp| async move {
                let mut resp = resp?;
                let next = match tokio::time::timeout(READ_TIMEOUT, resp.message()).await {
                    Err(_) => Some(Err(format!("no answer within {READ_TIMEOUT:?}"))),
                    Ok(Err(e)) => Some(Err(format!("Deliver: {e}"))),
                    Ok(Ok(None)) => Some(Err("stream ended without a status".into())),
                    Ok(Ok(Some(m))) => match m.r#type {
                        Some(Type::Block(b)) => return Some((Ok(b), Some(resp))),
                        Some(Type::Status(s)) => {
                            if s == fabric_protos::common::Status::Success as i32 {
                                None
                            } else {
                                let name = fabric_protos::common::Status::try_from(s)
                                    .map(|s| s.as_str_name().to_string())
                                    .unwrap_or_else(|_| s.to_string());
                                Some(Err(format!("Deliver answered {name}")))
                            }
                        }
                        None => Some(Err("empty Deliver response".into())),
                    },
                };
                next.map(|n| (n, None))
            });
            Ok(stream.boxed())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fabric_common::block::SIGNATURES;
    use fabric_common::msp::LocalSigner;

    use super::*;
    use crate::blockwriter::BlockWriter;
    use crate::devnet::DevNet;

    use crate::ledgercheck::tests::{fixture, Fixture};

    fn md(last_offset_persisted: i64) -> Vec<u8> {
        KafkaMetadata {
            last_offset_persisted,
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn verifier(f: &Fixture) -> Verifier {
        Verifier::new(&f.genesis, ChannelConfig::from_block(&f.genesis).unwrap()).unwrap()
    }

    #[test]
    fn good_blocks_pass_in_order_with_their_offsets() {
        let mut f = fixture();
        let mut v = verifier(&f);
        assert_eq!(v.next_number(), 1);
        for i in 0..3i64 {
            let b = f
                .writer
                .next_block(vec![vec![i as u8; 8]], false, &md(10 + i));
            let ok = v.verify(&b).unwrap();
            assert_eq!(
                (ok.number, ok.kafka.last_offset_persisted),
                (i as u64 + 1, 10 + i)
            );
            assert!(ok.new_config.is_none() && ok.config_envelope.is_none());
        }
        assert_eq!(v.next_number(), 4);
    }

    #[test]
    fn tampered_blocks_are_rejected_and_the_verifier_does_not_move() {
        let mut f = fixture();
        let mut v = verifier(&f);
        let good = f.writer.next_block(vec![b"tx".to_vec()], false, &md(5));

        // a bad signature (one bit of it flipped)
        let mut bad_sig = good.clone();
        {
            let m = &mut bad_sig.metadata.as_mut().unwrap().metadata[SIGNATURES];
            let mut meta = fabric_protos::common::Metadata::decode(m.as_slice()).unwrap();
            let s = &mut meta.signatures[0].signature;
            let last = s.len() - 2;
            s[last] ^= 1;
            *m = meta.encode_to_vec();
        }
        assert!(matches!(
            v.verify(&bad_sig),
            Err(Rejected::Signatures(BlockCheckError::PolicyNotMet {
                number: 1,
                ..
            }))
        ),);
        // no signature at all
        let mut unsigned = good.clone();
        unsigned.metadata.as_mut().unwrap().metadata[SIGNATURES].clear();
        assert_eq!(
            v.verify(&unsigned).unwrap_err(),
            Rejected::Signatures(BlockCheckError::NoSignatures(1))
        );
        // data changed under a valid header
        let mut bad_data = good.clone();
        bad_data.data.as_mut().unwrap().data[0] = b"other tx".to_vec();
        assert_eq!(v.verify(&bad_data).unwrap_err(), Rejected::DataHash(1));
        // a wrong previous hash
        let mut bad_prev = good.clone();
        bad_prev.header.as_mut().unwrap().previous_hash[0] ^= 1;
        assert_eq!(v.verify(&bad_prev).unwrap_err(), Rejected::PreviousHash(1));
        // a gap: block 2 offered where block 1 is expected
        let b2 = f.writer.next_block(vec![b"tx2".to_vec()], false, &md(6));
        assert_eq!(
            v.verify(&b2).unwrap_err(),
            Rejected::Number {
                expected: 1,
                found: 2
            }
        );
        // signed by an orderer the channel does not know (another chain)
        let mut foreign = BlockWriter::new(Arc::clone(&f.stranger), Some(&f.genesis));
        let fb = foreign.next_block(vec![b"tx".to_vec()], false, &md(5));
        assert!(matches!(
            v.verify(&fb),
            Err(Rejected::Signatures(BlockCheckError::PolicyNotMet { .. }))
        ));
        // Nothing above moved the verifier: the good blocks still pass.
        assert_eq!(v.next_number(), 1);
        v.verify(&good).unwrap();
        v.verify(&b2).unwrap();
        assert_eq!(v.next_number(), 3);
    }

    #[test]
    fn a_block_without_kafka_metadata_is_rejected() {
        let mut f = fixture();
        let mut v = verifier(&f);
        let b = f
            .writer
            .next_block(vec![b"tx".to_vec()], false, &[0xff, 0xff]);
        assert!(matches!(
            v.verify(&b),
            Err(Rejected::Metadata { number: 1, .. })
        ));
    }

    #[test]
    fn a_different_chain_is_rejected_by_its_previous_hash() {
        let mut f = fixture();
        let mut v = verifier(&f);
        let ours = f.writer.next_block(vec![b"a".to_vec()], false, &md(1));
        v.verify(&ours).unwrap();
        // the same signer's block 2 on top of another block 1
        let mut other_writer = BlockWriter::new(
            Arc::new(LocalSigner::load(&signer_dir(&f), "SampleOrg").unwrap()),
            Some(&f.genesis),
        );
        let _other1 = other_writer.next_block(vec![b"b".to_vec()], false, &md(1));
        let other2 = other_writer.next_block(vec![b"c".to_vec()], false, &md(2));
        assert_eq!(v.verify(&other2).unwrap_err(), Rejected::PreviousHash(2));
    }

    fn signer_dir(f: &Fixture) -> std::path::PathBuf {
        DevNet::ensure(&f._dir.path().join("net"), "127.0.0.1:7050")
            .unwrap()
            .orderer_msp_dir
    }

    #[test]
    fn a_pulled_config_block_is_applied_for_the_blocks_after_it() {
        let mut f = fixture();
        let mut v = verifier(&f);
        // A config block holding the genesis config (sequence and all).
        let env = f.genesis.data.as_ref().unwrap().data[0].clone();
        let cfg_block = f.writer.next_block(vec![env], true, &md(3));
        let ok = v.verify(&cfg_block).unwrap();
        assert!(ok.config_envelope.is_some());
        let cfg = ok.new_config.expect("a CONFIG block");
        assert_eq!(cfg.channel_id, v.config().channel_id);
        // The blocks after it are checked under it, and still pass.
        let b = f.writer.next_block(vec![b"tx".to_vec()], false, &md(4));
        v.verify(&b).unwrap();
        // An ordinary block with one non-config envelope is not a config block.
        let b = f
            .writer
            .next_block(vec![b"not an envelope".to_vec()], false, &md(5));
        let ok = v.verify(&b).unwrap();
        assert!(ok.new_config.is_none() && ok.config_envelope.is_none());
    }

    #[test]
    fn the_config_lists_sources_when_orderer_yaml_does_not() {
        let f = fixture();
        let cfg = ChannelConfig::from_block(&f.genesis).unwrap();
        assert_eq!(config_sources(&cfg), ["127.0.0.1:7050"]);
    }

    #[test]
    fn other_sources_leave_out_this_osn() {
        let f = fixture();
        let cfg = ChannelConfig::from_block(&f.genesis).unwrap();
        // The config names only 127.0.0.1:7050.
        assert_eq!(
            other_sources(&[], &cfg, "127.0.0.1:7051"),
            ["127.0.0.1:7050"]
        );
        assert!(other_sources(&[], &cfg, "127.0.0.1:7050").is_empty());
        assert!(other_sources(&[], &cfg, "0.0.0.0:7050").is_empty());
        // Configured sources replace the config's.
        let conf = vec!["osn1:7050".to_string(), "localhost:7050".to_string()];
        assert_eq!(other_sources(&conf, &cfg, "0.0.0.0:7050"), ["osn1:7050"]);
        assert_eq!(other_sources(&conf, &cfg, "10.0.0.1:7050"), conf);
    }

    #[test]
    fn backoff_doubles_from_one_second_to_thirty() {
        let mut d = CATCH_UP_BACKOFF_MIN;
        let mut seen = vec![d];
        for _ in 0..7 {
            d = backoff(d);
            seen.push(d);
        }
        let secs: Vec<u64> = seen.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
