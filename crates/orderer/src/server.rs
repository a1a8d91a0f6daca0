//! Start-up: load the signing identity, open or bootstrap the channels'
//! ledgers, start one chain task per channel, and serve gRPC until shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fabric_common::msp::LocalSigner;
use fabric_ledger::Ledger;
use fabric_protos::common::Block;
use fabric_protos::orderer::atomic_broadcast_server::AtomicBroadcastServer;
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::blockwriter::BlockWriter;
use crate::broadcast::Broadcaster;
use crate::channelconfig::ChannelConfig;
use crate::channels::{ChannelBundle, ChannelSupport, Registrar};
use crate::consensus::kafka::{self, KafkaSettings};
use crate::consensus::solo::{self, SoloSettings};
use crate::deliver::Deliverer;
use crate::service::AtomicBroadcastService;

/// What the node needs to run, resolved from `orderer.yaml` once at start.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// gRPC listen address (port 0 picks a free port).
    pub listen: String,
    /// `FileLedger.Location`.
    pub ledger_root: PathBuf,
    /// `General.LocalMSPDir`.
    pub msp_dir: PathBuf,
    /// `General.LocalMSPID`.
    pub msp_id: String,
    /// Genesis block to bootstrap from when the ledger has no channel.
    pub bootstrap_file: Option<PathBuf>,
    /// `General.Authentication.TimeWindow`.
    pub time_window: Duration,
    /// `General.Authentication.NoExpirationChecks`: client certificates are
    /// not checked for expiry (Broadcast and Deliver).
    pub no_expiration_checks: bool,
    /// `General.MaxRecvMsgSize`.
    pub max_recv_msg_size: usize,
    /// `General.MaxSendMsgSize`.
    pub max_send_msg_size: usize,
    /// `Kafka.*` (the brokers come from each channel's config).
    pub kafka: KafkaSettings,
}

/// A running node.
#[derive(Debug)]
pub struct RunningNode {
    /// The bound gRPC address.
    pub addr: SocketAddr,
    /// Cancel to stop.
    pub shutdown: CancellationToken,
    /// The channels.
    pub registrar: Arc<Registrar>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningNode {
    /// Waits for the server and chains to stop (after `shutdown` is cancelled).
    pub async fn wait(self) -> Result<()> {
        let r = self.server.await.context("server task")?;
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        r.context("gRPC server")
    }
}

fn existing_channels(ledger_root: &Path) -> Result<Vec<String>> {
    let chains = ledger_root.join("chains");
    let mut out = Vec::new();
    match std::fs::read_dir(&chains) {
        Ok(rd) => {
            for e in rd {
                let e = e.with_context(|| format!("reading {}", chains.display()))?;
                if e.path().is_dir() {
                    if let Some(name) = e.file_name().to_str() {
                        out.push(name.to_string());
                    }
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", chains.display())),
    }
    out.sort();
    Ok(out)
}

/// Reads a genesis block file.
pub fn read_block_file(path: &Path) -> Result<Block> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading genesis block {}", path.display()))?;
    Block::decode(bytes.as_slice()).with_context(|| format!("{} is not a block", path.display()))
}

/// Creates the ledger of a new channel from its genesis block.
fn bootstrap_channel(ledger_root: &Path, genesis: &Block) -> Result<String> {
    let config = ChannelConfig::from_block(genesis).context("genesis block config")?;
    let number = genesis.header.as_ref().map_or(u64::MAX, |h| h.number);
    if number != 0 {
        bail!("genesis block has number {number}, expected 0");
    }
    let mut ledger = Ledger::open(ledger_root, &config.channel_id)
        .with_context(|| format!("opening ledger for channel {}", config.channel_id))?;
    if ledger.height() == 0 {
        ledger.append(genesis).context("writing genesis block")?;
    }
    Ok(config.channel_id)
}

/// Starts the node: bootstraps if needed, starts chains, binds and serves.
pub async fn start(settings: NodeSettings) -> Result<RunningNode> {
    let signer = Arc::new(
        LocalSigner::load(&settings.msp_dir, &settings.msp_id).with_context(|| {
            format!(
                "loading local MSP {} from {}",
                settings.msp_id,
                settings.msp_dir.display()
            )
        })?,
    );
    std::fs::create_dir_all(&settings.ledger_root).with_context(|| {
        format!(
            "creating FileLedger.Location {}",
            settings.ledger_root.display()
        )
    })?;
    let mut channels = existing_channels(&settings.ledger_root)?;
    if channels.is_empty() {
        let Some(file) = &settings.bootstrap_file else {
            bail!("the ledger at {} has no channel and no bootstrap file is configured (General.BootstrapFile)", settings.ledger_root.display());
        };
        let genesis = read_block_file(file)?;
        let id = bootstrap_channel(&settings.ledger_root, &genesis)?;
        info!(channel_id = %id, file = %file.display(), "bootstrapped from genesis block");
        channels.push(id);
    }

    let shutdown = CancellationToken::new();
    let registrar = Arc::new(Registrar::new());
    let mut tasks = Vec::new();
    for id in &channels {
        let ledger = Ledger::open(&settings.ledger_root, id)
            .with_context(|| format!("opening ledger for channel {id}"))?;
        let reader = ledger.reader();
        let last = reader
            .last_block()
            .with_context(|| format!("channel {id}: reading last block"))?;
        let Some(last) = last else {
            bail!("channel {id}: ledger is empty");
        };
        let lc = fabric_common::block::last_config_index(&last).unwrap_or(0);
        let config_block = reader
            .get(lc)
            .with_context(|| format!("channel {id}: reading config block {lc}"))?;
        let config = ChannelConfig::from_block(&config_block)
            .with_context(|| format!("channel {id}: config block {lc}"))?;
        // The channel's MSPs and policies, before its chain is started.
        let bundle = ChannelBundle::new(config).map_err(|e| {
            anyhow::anyhow!("channel {id}: setting up MSPs and policies of config block {lc}: {e}")
        })?;
        let config = Arc::clone(&bundle.config);
        let writer = BlockWriter::new(Arc::clone(&signer), Some(&last));
        let (handle, task) = match config.consensus_type.as_str() {
            "solo" => solo::start(
                id.clone(),
                SoloSettings {
                    batch_size: config.batch_size,
                    batch_timeout: config.batch_timeout,
                },
                writer,
                ledger,
                shutdown.clone(),
            ),
            "kafka" => {
                let md = fabric_common::block::consenter_metadata(&last)
                    .map(|b| fabric_protos::orderer::KafkaMetadata::decode(b.as_slice()))
                    .transpose()
                    .with_context(|| {
                        format!("channel {id}: Kafka metadata of the last block (ledger may be corrupted)")
                    })?;
                let mut ks = settings.kafka.clone();
                ks.brokers = config.kafka_brokers.clone();
                if ks.brokers.is_empty() {
                    bail!("channel {id}: OrdererType kafka but Orderer/KafkaBrokers is empty");
                }
                kafka::start(
                    id.clone(),
                    ks,
                    config.batch_size,
                    config.batch_timeout,
                    writer,
                    ledger,
                    md,
                    shutdown.clone(),
                )
            }
            other => bail!("channel {id}: consensus type {other:?} is not supported"),
        };
        info!(channel_id = %id, height = reader.height(), consensus = %config.consensus_type, "channel started");
        tasks.push(task);
        registrar.insert(ChannelSupport::from_bundle(bundle, handle, reader));
    }

    let expiration_checks = !settings.no_expiration_checks;
    let broadcaster = Broadcaster::new(Arc::clone(&registrar), expiration_checks);
    let deliverer = Deliverer::new(
        Arc::clone(&registrar),
        settings.time_window,
        expiration_checks,
    );
    let svc = AtomicBroadcastServer::new(AtomicBroadcastService::new(broadcaster, deliverer))
        .max_decoding_message_size(settings.max_recv_msg_size)
        .max_encoding_message_size(settings.max_send_msg_size);
    let listener = TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    info!(%addr, channels = ?registrar.channel_ids(), "Beginning to serve requests");
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                stop.cancelled_owned(),
            )
            .await
    });
    Ok(RunningNode {
        addr,
        shutdown,
        registrar,
        tasks,
        server,
    })
}
