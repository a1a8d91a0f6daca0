//! Test support: a real `orderer` process on a free port, with crypto
//! material and a genesis block made for the test, plus gRPC helpers.

#![allow(dead_code)]

pub mod attack;
pub mod faults;
pub mod kafka;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fabric_common::devcrypto::{DevOrg, NodeOu};
use fabric_common::envelope::{create_signed_envelope, seek_envelope, EnvelopeOptions};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{Block, Envelope, HeaderType, Status};
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::orderer::{deliver_response, BroadcastResponse, SeekInfo};
use prost::Message;
use tonic::transport::Channel;

pub const CHANNEL: &str = "testchannel";
/// The orderer capability that switches a channel's exactly-once window on.
pub const EXACTLY_ONCE: &str = "RS_EXACTLY_ONCE";

pub struct Net {
    pub dir: tempfile::TempDir,
    pub org: DevOrg,
    pub orderer_msp: PathBuf,
    pub client: LocalSigner,
    pub genesis: PathBuf,
}

/// Crypto for one org plus a solo genesis block with the given batch settings.
pub fn net(batch_timeout_ms: i64, max_message_count: u32, absolute_max_bytes: u32) -> Net {
    net_with(CHANNEL, |dev| {
        dev.batch_timeout = fabric_configtx::units::GoDuration::from_millis(batch_timeout_ms);
        dev.batch_size.max_message_count = max_message_count;
        dev.batch_size.absolute_max_bytes = absolute_max_bytes;
        dev.batch_size.preferred_max_bytes =
            absolute_max_bytes.min(dev.batch_size.preferred_max_bytes);
    })
}

/// One org (`SampleOrg`: an orderer and a client identity) and a genesis
/// block for `channel` from the development profile, adjusted by `tweak`.
pub fn net_with(channel: &str, tweak: impl FnOnce(&mut fabric_configtx::dev::DevNetwork)) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let org = DevOrg::create(&dir.path().join("org"), "SampleOrg", "example.com").unwrap();
    let orderer_msp = org.issue("orderer.example.com", NodeOu::Orderer).unwrap();
    let client_msp = org.issue("User1@example.com", NodeOu::Client).unwrap();
    let client = LocalSigner::load(&client_msp, "SampleOrg").unwrap();
    let mut dev = fabric_configtx::dev::DevNetwork::new(org.msp_dir());
    tweak(&mut dev);
    let block = fabric_configtx::genesis::genesis_block_from_profile(
        &dev.system_channel_profile(),
        channel,
    )
    .unwrap();
    let genesis = dir.path().join("genesis.block");
    std::fs::write(&genesis, block.encode_to_vec()).unwrap();
    Net {
        dir,
        org,
        orderer_msp,
        client,
        genesis,
    }
}

/// A workspace binary next to the test executable
/// (`target/<profile>/deps/<test>` → `target/<profile>/<name>`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        p.is_file(),
        "{} not built (run `cargo build --workspace --bins` first)",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Node {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Node {
    /// Starts `orderer start` configured only through `ORDERER_*` variables.
    pub fn start(net: &Net, ledger: &Path, port: u16) -> Node {
        Self::start_with(net, ledger, port, "SampleOrg", true)
    }

    /// As [`Node::start`], with the MSP ID, and v2 (`BOOTSTRAPFILE`) or v1.4
    /// (`GENESISMETHOD`/`GENESISFILE`) bootstrap variables.
    pub fn start_with(net: &Net, ledger: &Path, port: u16, mspid: &str, v2_keys: bool) -> Node {
        Self::start_env(net, ledger, port, mspid, v2_keys, &[], true)
    }

    /// As [`Node::start_with`], with extra environment variables; `wait`
    /// says whether to wait for the port to listen.
    pub fn start_env(
        net: &Net,
        ledger: &Path,
        port: u16,
        mspid: &str,
        v2_keys: bool,
        extra_env: &[(&str, &str)],
        wait: bool,
    ) -> Node {
        let cfg = net.dir.path().join("no-config");
        std::fs::create_dir_all(&cfg).unwrap();
        let log = net
            .dir
            .path()
            .join(format!("orderer-{port}-{}.log", rand_suffix()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orderer"));
        if v2_keys {
            cmd.env("ORDERER_GENERAL_BOOTSTRAPFILE", &net.genesis);
        } else {
            cmd.env("ORDERER_GENERAL_GENESISMETHOD", "file")
                .env("ORDERER_GENERAL_GENESISFILE", &net.genesis);
        }
        cmd.arg("start")
            .current_dir(&cfg)
            .env("FABRIC_CFG_PATH", &cfg)
            .env("ORDERER_GENERAL_LISTENADDRESS", "127.0.0.1")
            .env("ORDERER_GENERAL_LISTENPORT", port.to_string())
            .env("ORDERER_GENERAL_LOCALMSPDIR", &net.orderer_msp)
            .env("ORDERER_GENERAL_LOCALMSPID", mspid)
            .env("ORDERER_FILELEDGER_LOCATION", ledger)
            .env("FABRIC_LOGGING_SPEC", "info")
            // Both streams append, so neither overwrites the other's lines.
            .stdout(Stdio::from(append(&log)))
            .stderr(Stdio::from(append(&log)));
        // Last, so that a test can override any of the above.
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawning orderer");
        let node = Node { child, port, log };
        if wait {
            node.wait_listening();
        }
        node
    }

    pub fn wait_listening(&self) {
        self.wait_port(self.port, Duration::from_secs(30));
    }

    /// Waits until something listens on `port` (this node's gRPC or
    /// operations port); panics with the node's log after `within`.
    pub fn wait_port(&self, port: u16, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "orderer did not listen on {port}: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub async fn client(&self) -> AtomicBroadcastClient<Channel> {
        let ch = Channel::from_shared(format!("http://127.0.0.1:{}", self.port))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap();
        AtomicBroadcastClient::new(ch)
            .max_decoding_message_size(100 << 20)
            .max_encoding_message_size(100 << 20)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000
}

pub fn tx(signer: &LocalSigner, channel: &str, data: Vec<u8>) -> Envelope {
    create_signed_envelope(
        HeaderType::Message,
        channel,
        Some(signer),
        data,
        &EnvelopeOptions {
            with_txid: true,
            ..Default::default()
        },
    )
}

/// Sends all envelopes on one stream (pipelined) and collects the responses
/// until the server closes the stream.
pub async fn broadcast(
    client: &mut AtomicBroadcastClient<Channel>,
    envs: Vec<Envelope>,
) -> Vec<BroadcastResponse> {
    let stream = tokio_stream::iter(envs);
    let mut resp = client.broadcast(stream).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Ok(Some(r)) = resp.message().await {
        out.push(r);
    }
    out
}

/// One Deliver request: the blocks and the final status.
pub async fn deliver(
    client: &mut AtomicBroadcastClient<Channel>,
    signer: &LocalSigner,
    channel: &str,
    seek: SeekInfo,
) -> (Vec<Block>, Option<Status>) {
    deliver_many(
        client,
        vec![seek_envelope(channel, Some(signer), &seek, vec![])],
    )
    .await
    .pop()
    .unwrap()
}

/// Several seek envelopes on one stream, each answered by blocks then a status.
pub async fn deliver_many(
    client: &mut AtomicBroadcastClient<Channel>,
    envs: Vec<Envelope>,
) -> Vec<(Vec<Block>, Option<Status>)> {
    let n = envs.len();
    let (tx, rx) = tokio::sync::mpsc::channel(n.max(1));
    for e in envs {
        tx.send(e).await.unwrap();
    }
    let mut resp = client
        .deliver(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    let mut blocks = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), resp.message()).await {
            Ok(Ok(Some(m))) => match m.r#type {
                Some(deliver_response::Type::Block(b)) => blocks.push(b),
                Some(deliver_response::Type::Status(s)) => {
                    out.push((std::mem::take(&mut blocks), Status::try_from(s).ok()));
                }
                None => panic!("empty deliver response"),
            },
            _ => {
                out.push((std::mem::take(&mut blocks), None));
                break;
            }
        }
    }
    drop(tx);
    while out.len() < n {
        out.push((vec![], None));
    }
    out
}

/// Verifies the hash chain and each block's orderer signature.
pub fn verify_chain(blocks: &[Block], orderer_ca_pem: &str) {
    verify_chain_msp(blocks, orderer_ca_pem, "SampleOrg")
}

/// As [`verify_chain`], for an orderer of MSP `mspid`.
pub fn verify_chain_msp(blocks: &[Block], orderer_ca_pem: &str, mspid: &str) {
    use fabric_common::block::{header_bytes, metadata_at, verify_link, SIGNATURES};
    let ca = pem::parse(orderer_ca_pem).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(ca.contents()).unwrap();
    let mut prev: Option<&fabric_protos::common::BlockHeader> = None;
    for b in blocks {
        verify_link(prev, b).unwrap();
        let number = b.header.as_ref().unwrap().number;
        if number > 0 {
            let md = metadata_at(b, SIGNATURES).unwrap();
            assert_eq!(md.signatures.len(), 1, "block {number} signatures");
            let sig = &md.signatures[0];
            let shdr =
                fabric_protos::common::SignatureHeader::decode(sig.signature_header.as_slice())
                    .unwrap();
            let id =
                fabric_protos::msp::SerializedIdentity::decode(shdr.creator.as_slice()).unwrap();
            assert_eq!(id.mspid, mspid);
            let cert = pem::parse(&id.id_bytes).unwrap();
            let (_, cert) = x509_parser::parse_x509_certificate(cert.contents()).unwrap();
            cert.verify_signature(Some(ca.public_key()))
                .expect("orderer cert chains to the CA");
            let pk = cert.public_key().subject_public_key.data.to_vec();
            let mut msg = md.value.clone();
            msg.extend_from_slice(&sig.signature_header);
            msg.extend_from_slice(&header_bytes(b.header.as_ref().unwrap()));
            fabric_common::crypto::verify_p256(&pk, &msg, &sig.signature).expect("block signature");
        }
        prev = b.header.as_ref();
    }
}

/// The envelopes' data (payload data) of a block, in order.
/// Asserts that the blocks after the genesis block were cut by
/// `max_message_count`: none holds more, and full blocks are the rule. A
/// block the batch timer cut short is allowed (a busy CI machine can stall
/// a pipelined stream for longer than `BatchTimeout`); it only shifts the
/// cuts, so the count may exceed the minimum by the `timer_cuts_allowed`.
pub fn assert_cut_by_count(
    blocks: &[Block],
    total: usize,
    max_message_count: usize,
    timer_cuts_allowed: usize,
) {
    let sizes: Vec<usize> = blocks
        .iter()
        .skip(1)
        .map(|b| b.data.as_ref().map_or(0, |d| d.data.len()))
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), total, "envelopes in {sizes:?}");
    assert!(
        sizes.iter().all(|&n| n <= max_message_count),
        "a block holds more than MaxMessageCount {max_message_count}: {sizes:?}"
    );
    assert!(
        sizes.contains(&max_message_count),
        "no block is full at MaxMessageCount {max_message_count}: {sizes:?}"
    );
    let min_blocks = total.div_ceil(max_message_count);
    assert!(
        sizes.len() >= min_blocks && sizes.len() <= min_blocks + timer_cuts_allowed,
        "{} blocks for {total} envelopes at MaxMessageCount {max_message_count}: {sizes:?}",
        sizes.len()
    );
}

pub fn block_payloads(b: &Block) -> Vec<Vec<u8>> {
    b.data
        .as_ref()
        .unwrap()
        .data
        .iter()
        .map(|d| {
            let env = Envelope::decode(d.as_slice()).unwrap();
            fabric_common::envelope::parse_envelope(&env)
                .unwrap()
                .payload
                .data
        })
        .collect()
}

/// Parses `yaml` as a `configtx.yaml` (relative `MSPDir`s resolved against
/// `dir`), writes the genesis block of `profile` for `channel` into `dir`
/// and returns its path.
pub fn genesis_from_configtx(dir: &Path, yaml: &str, profile: &str, channel: &str) -> PathBuf {
    let top = fabric_configtx::config::TopLevel::parse(yaml, dir).unwrap();
    let profile = top.profile(profile).unwrap();
    let block = fabric_configtx::genesis::genesis_block_from_profile(&profile, channel).unwrap();
    let path = dir.join(format!("{channel}.genesis.block"));
    std::fs::write(&path, block.encode_to_vec()).unwrap();
    path
}

/// The `configtx.yaml` sections (no `Profiles:`) of a three-org network used
/// by the policy and channel tests: OrdererOrg (OrdererMSP), Org1MSP and
/// Org2MSP under `crypto/{orderer,org1,org2}/msp`, V2_0 capabilities, solo,
/// with the batch's absolute and preferred maximum bytes given.
pub fn three_org_configtx(absolute_max: &str, preferred_max: &str) -> String {
    THREE_ORG_CONFIGTX
        .replace("{ABSOLUTE_MAX}", absolute_max)
        .replace("{PREFERRED_MAX}", preferred_max)
}

const THREE_ORG_CONFIGTX: &str = r#"
Organizations:
    - &OrdererOrg
        Name: OrdererOrg
        ID: OrdererMSP
        MSPDir: crypto/orderer/msp
        Policies:
            Readers:
                Type: Signature
                Rule: "OR('OrdererMSP.member')"
            Writers:
                Type: Signature
                Rule: "OR('OrdererMSP.member')"
            Admins:
                Type: Signature
                Rule: "OR('OrdererMSP.admin')"
    - &Org1
        Name: Org1MSP
        ID: Org1MSP
        MSPDir: crypto/org1/msp
        Policies:
            Readers:
                Type: Signature
                Rule: "OR('Org1MSP.admin', 'Org1MSP.peer', 'Org1MSP.client')"
            Writers:
                Type: Signature
                Rule: "OR('Org1MSP.admin', 'Org1MSP.client')"
            Admins:
                Type: Signature
                Rule: "OR('Org1MSP.admin')"
    - &Org2
        Name: Org2MSP
        ID: Org2MSP
        MSPDir: crypto/org2/msp
        Policies:
            Readers:
                Type: Signature
                Rule: "OR('Org2MSP.admin', 'Org2MSP.peer', 'Org2MSP.client')"
            Writers:
                Type: Signature
                Rule: "OR('Org2MSP.admin', 'Org2MSP.client')"
            Admins:
                Type: Signature
                Rule: "OR('Org2MSP.admin')"

Capabilities:
    Channel: &ChannelCapabilities
        V2_0: true
    Orderer: &OrdererCapabilities
        V2_0: true
    Application: &ApplicationCapabilities
        V2_0: true

Application: &ApplicationDefaults
    Organizations:
    Policies:
        Readers:
            Type: ImplicitMeta
            Rule: "ANY Readers"
        Writers:
            Type: ImplicitMeta
            Rule: "ANY Writers"
        Admins:
            Type: ImplicitMeta
            Rule: "MAJORITY Admins"
    Capabilities:
        <<: *ApplicationCapabilities

Orderer: &OrdererDefaults
    OrdererType: solo
    Addresses:
        - 127.0.0.1:7050
    BatchTimeout: 100ms
    BatchSize:
        MaxMessageCount: 10
        AbsoluteMaxBytes: {ABSOLUTE_MAX}
        PreferredMaxBytes: {PREFERRED_MAX}
    Organizations:
    Policies:
        Readers:
            Type: ImplicitMeta
            Rule: "ANY Readers"
        Writers:
            Type: ImplicitMeta
            Rule: "ANY Writers"
        Admins:
            Type: ImplicitMeta
            Rule: "MAJORITY Admins"
        BlockValidation:
            Type: ImplicitMeta
            Rule: "ANY Writers"
    Capabilities:
        <<: *OrdererCapabilities

Channel: &ChannelDefaults
    Policies:
        Readers:
            Type: ImplicitMeta
            Rule: "ANY Readers"
        Writers:
            Type: ImplicitMeta
            Rule: "ANY Writers"
        Admins:
            Type: ImplicitMeta
            Rule: "MAJORITY Admins"
    Capabilities:
        <<: *ChannelCapabilities

"#;

/// `path` opened for appending (created if absent).
fn append(path: &Path) -> std::fs::File {
    std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// `GET path` on 127.0.0.1:`port` (HTTP/1.1, no TLS): status code and body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let (code, body) = http_get_bytes(port, path, Duration::from_secs(20));
    (code, String::from_utf8_lossy(&body).to_string())
}

/// As [`http_get`], with the body as bytes (not chunked) and a read timeout.
pub fn http_get_bytes(port: u16, path: &str, timeout: Duration) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body)
}

/// Sends each of `messages` (raw bytes, not re-encoded) as one Broadcast
/// request on one stream; the responses until the server closes the stream.
pub async fn broadcast_raw(port: u16, messages: Vec<Vec<u8>>) -> Vec<BroadcastResponse> {
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    #[derive(Default)]
    struct RawCodec;
    impl Encoder for RawCodec {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            use prost::bytes::BufMut;
            dst.put_slice(&item);
            Ok(())
        }
    }
    impl Decoder for RawCodec {
        type Item = BroadcastResponse;
        type Error = tonic::Status;
        fn decode(
            &mut self,
            src: &mut DecodeBuf<'_>,
        ) -> Result<Option<BroadcastResponse>, tonic::Status> {
            BroadcastResponse::decode(src)
                .map(Some)
                .map_err(|e| tonic::Status::internal(e.to_string()))
        }
    }
    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = BroadcastResponse;
        type Encoder = RawCodec;
        type Decoder = RawCodec;
        fn encoder(&mut self) -> RawCodec {
            RawCodec
        }
        fn decoder(&mut self) -> RawCodec {
            RawCodec
        }
    }

    let ch = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.unwrap();
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/orderer.AtomicBroadcast/Broadcast");
    let req = tonic::Request::new(tokio_stream::iter(messages));
    let mut resp = grpc
        .streaming(req, path, RawCodec)
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Ok(Some(r)) = resp.message().await {
        out.push(r);
    }
    out
}
