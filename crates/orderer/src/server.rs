//! Start-up: load the signing identity, open or bootstrap the channels'
//! ledgers, start one chain task per channel, and serve gRPC (with TLS from
//! `General.TLS`) and the operations endpoint until shutdown.
//!
//! Shutdown ([`RunningNode::wait`] once `shutdown` is cancelled), bounded by
//! [`SHUTDOWN_BUDGET`]:
//! 1. the gRPC server stops accepting connections and tells clients to go
//!    away (HTTP/2 GOAWAY); requests in flight go on, with the chains still
//!    running, for up to [`DRAIN_GRACE`];
//! 2. the chains stop: envelopes not yet in a block are answered
//!    SERVICE_UNAVAILABLE, Deliver streams waiting for blocks end, and each
//!    chain's ledger (fsynced per block) is closed; Kafka clients are dropped.
//!    A chain still busy after [`CHAIN_STOP_GRACE`] is aborted;
//! 3. connections still open [`CLOSE_GRACE`] later (streams the clients keep
//!    open while idle) are cut.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fabric_common::msp::{KeySource, LocalSigner};
use fabric_ledger::Ledger;
use fabric_protos::common::{Block, Envelope, HeaderType};
use prost::Message;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::blockwriter::BlockWriter;
use crate::broadcast::Broadcaster;
use crate::channelconfig::ChannelConfig;
use crate::channels::{ChannelBundle, ChannelSupport, Registrar};
use crate::configupdate;
use crate::consensus::kafka::{self, KafkaSettings};
use crate::consensus::solo::{self, SoloSettings};
use crate::consensus::ConfigSink;
use crate::deliver::Deliverer;
use crate::operations::{self, OperationsSettings};
use crate::service::AtomicBroadcastService;

/// How long requests in flight may go on after shutdown begins, with the
/// chains still running.
pub const DRAIN_GRACE: Duration = Duration::from_secs(3);
/// How long a chain may take to stop before its task is aborted (a Kafka
/// chain may be inside a broker call; it holds no unwritten state then, and
/// a block append is never interrupted: it has no await point).
pub const CHAIN_STOP_GRACE: Duration = Duration::from_secs(2);
/// How long connections may stay open once the chains have stopped (idle
/// streams that the clients keep open are cut then).
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The most the whole shutdown takes.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(8);

/// `General.TLS`.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `General.TLS.Enabled`.
    pub enabled: bool,
    /// `General.TLS.Certificate` (PEM file).
    pub certificate: PathBuf,
    /// `General.TLS.PrivateKey` (PEM file).
    pub private_key: PathBuf,
    /// `General.TLS.ClientAuthRequired`: mutual TLS, and Deliver's
    /// `tls_cert_hash` binding.
    pub client_auth_required: bool,
    /// `General.TLS.ClientRootCAs` (PEM files) that client certificates must
    /// chain to, besides the TLS CAs of the channels' organizations.
    pub client_root_cas: Vec<PathBuf>,
    /// `General.TLS.RootCAs` (PEM files): the servers this node connects to
    /// as a client (catch-up from other OSNs) must chain to one of them or
    /// to a TLS CA of the channel's organizations.
    pub root_cas: Vec<PathBuf>,
}

/// The TLS root and intermediate CA certificates (PEM) of every
/// organization in the channels' configs (orderer and application orgs, and
/// the consortium orgs of a system channel), as Fabric adds them to the
/// client root CAs of a mutual-TLS server.
pub fn channel_tls_roots(registrar: &Registrar) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for id in registrar.channel_ids() {
        let Some(support) = registrar.get(&id) else {
            continue;
        };
        config_tls_roots(&support.config().config, &mut out);
    }
    out
}

/// Adds the TLS root and intermediate CA certificates (PEM) of the
/// organizations in `config` to `out` (no repeats).
pub fn config_tls_roots(config: &fabric_protos::common::Config, out: &mut Vec<Vec<u8>>) {
    use fabric_protos::msp::FabricMspConfig;
    let Some(group) = config.channel_group.as_ref() else {
        return;
    };
    let Ok(msps) = fabric_msp::collect_msp_configs(group) else {
        return;
    };
    for m in msps.iter().filter(|m| m.r#type == 0) {
        if let Ok(f) = FabricMspConfig::decode(m.config.as_slice()) {
            for c in f.tls_root_certs.into_iter().chain(f.tls_intermediate_certs) {
                if !c.is_empty() && !out.contains(&c) {
                    out.push(c);
                }
            }
        }
    }
}

impl TlsSettings {
    /// Whether clients must present a certificate (Fabric's `mutualTLS`).
    pub fn mutual(&self) -> bool {
        self.enabled && self.client_auth_required
    }

    /// The rustls server config ([`crate::net::tls::server_config`]):
    /// TLS 1.2 and 1.3, the server certificate and key, and with mutual
    /// TLS the client root CAs: `ClientRootCAs` plus `channel_roots` (PEM,
    /// see [`channel_tls_roots`]; `None`: only check the files).
    pub fn server_config(
        &self,
        channel_roots: Option<&[Vec<u8>]>,
    ) -> Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>> {
        crate::net::tls::server_config(self, channel_roots)
    }
}

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
    /// `General.BCCSP`: where the local MSP's private key is.
    pub key_source: KeySource,
    /// `Metrics.Statsd` when `Metrics.Provider` is `statsd`.
    pub statsd: Option<crate::metrics::statsd::StatsdSettings>,
    /// `General.Profile.Address` when `General.Profile.Enabled`: the pprof
    /// endpoint ([`crate::operations::pprof`]).
    pub profile: Option<String>,
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
    /// `General.TLS`.
    pub tls: TlsSettings,
    /// The operations endpoint (none: off).
    pub operations: Option<OperationsSettings>,
    /// Connection and stream limits and timeouts of the gRPC port.
    pub net: crate::net::NetSettings,
}

/// A running node.
#[derive(Debug)]
pub struct RunningNode {
    /// The bound gRPC address.
    pub addr: SocketAddr,
    /// The bound operations address, when the endpoint is on.
    pub operations_addr: Option<SocketAddr>,
    /// Cancel to stop (see the module doc for the sequence).
    pub shutdown: CancellationToken,
    /// The channels.
    pub registrar: Arc<Registrar>,
    starter: Arc<ChainStarter>,
    chains_stop: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    operations: Option<tokio::task::JoinHandle<()>>,
}

impl RunningNode {
    /// Runs until `shutdown` is cancelled (or the gRPC server fails), then
    /// shuts down in order within [`SHUTDOWN_BUDGET`].
    pub async fn wait(self) -> Result<()> {
        let RunningNode {
            shutdown,
            starter,
            chains_stop,
            mut server,
            operations,
            ..
        } = self;
        let early = tokio::select! {
            r = &mut server => Some(r),
            _ = shutdown.cancelled() => None,
        };
        shutdown.cancel();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_BUDGET;
        let mut result = early;
        if result.is_none() {
            info!(grace = ?DRAIN_GRACE, "stopped accepting connections; letting requests in flight finish");
            if let Ok(r) = tokio::time::timeout(DRAIN_GRACE, &mut server).await {
                result = Some(r);
            }
        }
        info!("stopping chains");
        chains_stop.cancel();
        let chains_deadline = deadline.min(tokio::time::Instant::now() + CHAIN_STOP_GRACE);
        for mut t in starter.take_tasks() {
            if tokio::time::timeout_at(chains_deadline, &mut t)
                .await
                .is_err()
            {
                warn!("a chain did not stop in time; aborting it");
                t.abort();
                let _ = t.await;
            }
        }
        info!("chains stopped, ledgers closed");
        if result.is_none() {
            let until = deadline.min(tokio::time::Instant::now() + CLOSE_GRACE);
            match tokio::time::timeout_at(until, &mut server).await {
                Ok(r) => result = Some(r),
                Err(_) => {
                    info!("closing connections still open");
                    server.abort();
                }
            }
        }
        if let Some(ops) = operations {
            let _ = tokio::time::timeout_at(deadline, ops).await;
        }
        match result {
            Some(r) => r.context("server task")?.context("gRPC server"),
            None => Ok(()),
        }
    }
}

/// The channels whose ledgers exist under `ledger_root`, sorted.
pub fn existing_channels(ledger_root: &Path) -> Result<Vec<String>> {
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
    Ok(bootstrap_channel_if_empty(ledger_root, genesis)?.0)
}

/// As [`bootstrap_channel`]; also says whether the genesis block was
/// written now (the ledger was empty or absent).
fn bootstrap_channel_if_empty(ledger_root: &Path, genesis: &Block) -> Result<(String, bool)> {
    let config = ChannelConfig::from_block(genesis).context("genesis block config")?;
    let number = genesis.header.as_ref().map_or(u64::MAX, |h| h.number);
    if number != 0 {
        bail!("genesis block has number {number}, expected 0");
    }
    let mut ledger = Ledger::open(ledger_root, &config.channel_id)
        .with_context(|| format!("opening ledger for channel {}", config.channel_id))?;
    let created = ledger.height() == 0;
    if created {
        ledger.append(genesis).context("writing genesis block")?;
    }
    Ok((config.channel_id, created))
}

/// The channel a block creates, when the block is an `ORDERER_TRANSACTION`
/// block of the system channel: its ID and the inner config transaction.
fn creation_in_block(block: &Block) -> Option<(String, Envelope)> {
    let [only] = block.data.as_ref()?.data.as_slice() else {
        return None;
    };
    let outer = Envelope::decode(only.as_slice()).ok()?;
    let inner = configupdate::unwrap_orderer_transaction(&outer).ok()?;
    let id = fabric_common::envelope::parse_envelope(&inner)
        .ok()?
        .channel_header
        .channel_id;
    Some((id, inner))
}

/// Starts the node: bootstraps if needed, starts chains, binds and serves.
pub async fn start(settings: NodeSettings) -> Result<RunningNode> {
    let signer = Arc::new(
        LocalSigner::load_with(&settings.msp_dir, &settings.msp_id, &settings.key_source)
            .with_context(|| {
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

    // Fail early on unreadable TLS files, before any chain starts.
    settings.tls.server_config(None)?;
    let shutdown = CancellationToken::new();
    if let Some(address) = &settings.profile {
        operations::pprof::start(address, shutdown.clone()).await?;
    }
    let chains_stop = CancellationToken::new();
    let registrar = Arc::new(Registrar::new());
    let starter = Arc::new_cyclic(|me| ChainStarter {
        me: me.clone(),
        settings: settings.clone(),
        signer: Arc::clone(&signer),
        registrar: Arc::clone(&registrar),
        shutdown: chains_stop.clone(),
        tasks: std::sync::Mutex::new(Vec::new()),
        tls: std::sync::OnceLock::new(),
    });
    let prometheus = settings.operations.as_ref().is_some_and(|o| o.prometheus);
    crate::metrics::set_enabled(prometheus || settings.statsd.is_some());
    if prometheus || settings.statsd.is_some() {
        crate::metrics::set_version(env!("CARGO_PKG_VERSION"));
    }
    if let Some(statsd) = &settings.statsd {
        let registrar = Arc::clone(&registrar);
        crate::metrics::statsd::start(
            statsd.clone(),
            Arc::new(move || crate::metrics::refresh(&registrar)),
        )
        .with_context(|| format!("Metrics.Statsd.Address {}", statsd.address))?;
    }
    let stop_chains_on_error = chains_stop.clone().drop_guard();
    // An empty ledger may belong to a channel whose creation was interrupted
    // (see `finish_interrupted_creation`): it is started after the others.
    for id in &channels {
        starter.try_start_channel(id)?;
    }
    for id in existing_channels(&settings.ledger_root)? {
        if registrar.get(&id).is_none() {
            starter.start_channel(&id)?;
        }
    }
    spawn_kafka_check(&settings, &registrar, chains_stop.clone());

    let expiration_checks = !settings.no_expiration_checks;
    let broadcaster = Broadcaster::new(
        Arc::clone(&registrar),
        expiration_checks,
        Arc::clone(&signer),
    );
    let deliverer = Deliverer::new(
        Arc::clone(&registrar),
        settings.time_window,
        expiration_checks,
    )
    .with_mutual_tls(settings.tls.mutual());
    let svc = crate::service::OrdererGrpc::new(
        AtomicBroadcastService::new(broadcaster, deliverer),
        crate::service::MessageLimits {
            max_recv: settings.max_recv_msg_size,
            max_send: settings.max_send_msg_size,
        },
    );
    let listener = TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let operations = match settings.operations.clone() {
        Some(ops) => operations::start(ops, Arc::clone(&registrar), shutdown.clone()).await?,
        None => None,
    };
    let net = &settings.net;
    let max_connections = crate::net::effective_max_connections(
        net.max_connections,
        crate::net::raise_descriptor_limit(),
    );
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(net.max_concurrent_streams)
        .http2_keepalive_interval(Some(net.keepalive_interval))
        .http2_keepalive_timeout(Some(net.keepalive_timeout))
        .layer(crate::net::grpcmetrics::GrpcMetricsLayer)
        .layer(crate::net::streams::StreamLimitLayer::new(
            net.max_streams,
            crate::limits::DELIVER_STREAM_BLOCKS,
            net.max_deliver_buffered_bytes,
        ))
        .layer(crate::net::ingress::ReceiveBudgetLayer::new(
            net.receive,
            settings.max_recv_msg_size,
        ));
    let channel_roots = if settings.tls.mutual() {
        channel_tls_roots(&registrar)
    } else {
        Vec::new()
    };
    let tls = crate::net::tls::ServerTls::new(&settings.tls, channel_roots)?;
    if let Some(t) = &tls {
        let _ = starter.tls.set(Arc::clone(t));
        // A config block committed while the chains started.
        t.set_channel_roots(channel_tls_roots(&registrar));
    }
    info!(%addr, tls = settings.tls.enabled, mutual_tls = settings.tls.mutual(),
          channels = ?registrar.channel_ids(), max_connections,
          max_concurrent_streams = net.max_concurrent_streams, max_streams = net.max_streams,
          connection_timeout = ?net.connection_timeout, "Beginning to serve requests");
    let stop = shutdown.clone();
    stop_chains_on_error.disarm();
    let accept_limits = crate::net::accept::AcceptLimits {
        connection_timeout: net.connection_timeout,
        max_connections,
        min_ping_interval: net.keepalive_min_interval,
    };
    let accept_stop = shutdown.clone();
    let router = builder.add_service(svc);
    let server = match tls {
        Some(tls) => {
            let hs = crate::net::accept::Tls(tls);
            let incoming = crate::net::accept::incoming(listener, hs, accept_limits, accept_stop)
                .map(Ok::<_, std::io::Error>);
            tokio::spawn(async move {
                router
                    .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                    .await
            })
        }
        None => {
            let hs = crate::net::accept::Plain;
            let incoming = crate::net::accept::incoming(listener, hs, accept_limits, accept_stop)
                .map(Ok::<_, std::io::Error>);
            tokio::spawn(async move {
                router
                    .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                    .await
            })
        }
    };
    Ok(RunningNode {
        addr,
        operations_addr: operations.as_ref().map(|o| o.addr),
        shutdown,
        registrar,
        starter,
        chains_stop,
        server,
        operations: operations.map(|o| o.task),
    })
}

/// The start-up Kafka cluster check ([`kafka::inspect::warn_at_start`]) over
/// every Kafka channel: their brokers, topics and largest `AbsoluteMaxBytes`.
/// It runs beside the chains and only logs.
fn spawn_kafka_check(settings: &NodeSettings, registrar: &Registrar, stop: CancellationToken) {
    let mut ks = settings.kafka.clone();
    ks.brokers.clear();
    let mut topics = Vec::new();
    let mut absolute_max_bytes = 0u64;
    let mut catch_up = std::collections::BTreeMap::new();
    for id in registrar.channel_ids() {
        let Some(support) = registrar.get(&id) else {
            continue;
        };
        let config = support.config();
        if config.consensus_type != "kafka" {
            continue;
        }
        for b in &config.kafka_brokers {
            if !ks.brokers.contains(b) {
                ks.brokers.push(b.clone());
            }
        }
        absolute_max_bytes =
            absolute_max_bytes.max(u64::from(config.batch_size.absolute_max_bytes));
        catch_up.insert(
            id.clone(),
            kafka::catchup::other_sources(
                &settings.kafka.catch_up_sources,
                &config,
                &settings.listen,
            ),
        );
        topics.push(id);
    }
    if !topics.is_empty() {
        tokio::spawn(kafka::inspect::warn_at_start(
            ks,
            topics,
            absolute_max_bytes,
            catch_up,
            stop,
        ));
    }
}

/// Starts chains: at start-up for every channel in the ledger, and at run
/// time for channels created through the system channel. It is also every
/// chain's [`ConfigSink`] and the source of their re-validation.
#[derive(Debug)]
pub struct ChainStarter {
    me: std::sync::Weak<ChainStarter>,
    settings: NodeSettings,
    signer: Arc<LocalSigner>,
    registrar: Arc<Registrar>,
    shutdown: CancellationToken,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The gRPC port's TLS, once serving: its client roots follow the
    /// channels' configs.
    tls: std::sync::OnceLock<Arc<crate::net::tls::ServerTls>>,
}

impl ChainStarter {
    fn take_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Opens channel `id`'s ledger, builds its bundle and starts its chain.
    pub fn start_channel(self: &Arc<Self>, id: &str) -> Result<()> {
        if !self.try_start_channel(id)? {
            bail!("channel {id}: ledger is empty");
        }
        Ok(())
    }

    /// As [`Self::start_channel`]; `false` (nothing started) when the
    /// ledger is empty.
    fn try_start_channel(self: &Arc<Self>, id: &str) -> Result<bool> {
        let settings = &self.settings;
        let ledger = Ledger::open(&settings.ledger_root, id)
            .with_context(|| format!("opening ledger for channel {id}"))?;
        let reader = ledger.reader();
        let last = reader
            .last_block()
            .with_context(|| format!("channel {id}: reading last block"))?;
        let Some(last) = last else {
            return Ok(false);
        };
        self.finish_interrupted_creation(id, &last)?;
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
        let writer = BlockWriter::new(Arc::clone(&self.signer), Some(&last));
        let sink: Arc<dyn ConfigSink> = Arc::clone(self) as Arc<dyn ConfigSink>;
        let (handle, task) = match config.consensus_type.as_str() {
            "solo" => solo::start_with_hooks(
                id.to_string(),
                SoloSettings {
                    batch_size: config.batch_size,
                    batch_timeout: config.batch_timeout,
                    sequence: config.sequence,
                    exactly_once: config.exactly_once(),
                },
                writer,
                ledger,
                solo::SoloHooks {
                    sink,
                    revalidate: self.revalidator(id),
                },
                self.shutdown.clone(),
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
                let hooks = kafka::ChainHooks {
                    config_seq: config.sequence,
                    legacy_orderer_metadata: config.legacy_orderer_metadata(),
                    exactly_once: config.exactly_once(),
                    resubmission: config.resubmission(),
                    sink,
                    revalidate: self.revalidator(id),
                    catch_up: Some(self.catch_up_hooks(&config.config)?),
                };
                kafka::start_with_hooks(
                    id.to_string(),
                    ks,
                    config.batch_size,
                    config.batch_timeout,
                    writer,
                    ledger,
                    md,
                    hooks,
                    self.shutdown.clone(),
                )
            }
            other => bail!("channel {id}: consensus type {other:?} is not supported"),
        };
        info!(channel_id = %id, height = reader.height(), consensus = %config.consensus_type, "channel started");
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
        self.registrar
            .insert(ChannelSupport::from_bundle(bundle, handle, reader));
        Ok(true)
    }

    /// Repairs a stop between committing a system-channel block that holds
    /// an `ORDERER_TRANSACTION` and creating that channel's ledger. The chain
    /// calls its [`ConfigSink`] only after the block is durable, and before it
    /// orders anything else, so such a block can only be the channel's last.
    /// Creating the ledger again from the same inner transaction gives the
    /// same genesis block; a ledger that has blocks is left alone.
    fn finish_interrupted_creation(&self, id: &str, last: &Block) -> Result<()> {
        let Some((new_id, inner)) = creation_in_block(last) else {
            return Ok(());
        };
        if new_id == id || self.registrar.get(&new_id).is_some() {
            return Ok(());
        }
        let genesis = configupdate::genesis_block_for_new_channel(&inner);
        let (_, created) = bootstrap_channel_if_empty(&self.settings.ledger_root, &genesis)
            .with_context(|| format!("channel {id}: finishing the creation of channel {new_id}"))?;
        if created {
            warn!(channel_id = %new_id, system_channel = %id,
                  "created the ledger of a channel whose creation block was committed before the orderer stopped");
        }
        Ok(())
    }

    /// Catch-up from other OSNs for a Kafka channel of `config`: the
    /// sources of `Kafka.CatchUp.Sources`, Deliver signed by this node's
    /// identity, over TLS when `General.TLS.Enabled` (trusting
    /// `General.TLS.RootCAs`, this channel's and the other channels' TLS
    /// CAs; presenting this node's certificate for mutual TLS).
    fn catch_up_hooks(
        &self,
        config: &fabric_protos::common::Config,
    ) -> Result<kafka::CatchUpHooks> {
        let s = &self.settings;
        let tls = if s.tls.enabled {
            let read = |key: &str, p: &Path| {
                std::fs::read(p).with_context(|| format!("{key}: reading {}", p.display()))
            };
            let mut roots = Vec::new();
            for p in &s.tls.root_cas {
                roots.push(read("General.TLS.RootCAs", p)?);
            }
            config_tls_roots(config, &mut roots);
            for r in channel_tls_roots(&self.registrar) {
                if !roots.contains(&r) {
                    roots.push(r);
                }
            }
            let identity = (
                read("General.TLS.Certificate", &s.tls.certificate)?,
                read("General.TLS.PrivateKey", &s.tls.private_key)?,
            );
            Some(kafka::catchup::ClientTls {
                roots,
                identity: Some(identity),
            })
        } else {
            None
        };
        Ok(kafka::CatchUpHooks {
            sources: s.kafka.catch_up_sources.clone(),
            pull_threshold: match s.kafka.catch_up_pull_threshold {
                0 => kafka::catchup::DEFAULT_PULL_THRESHOLD,
                n => n,
            },
            source: Arc::new(kafka::catchup::GrpcBlockSource {
                signer: Arc::clone(&self.signer),
                tls,
                max_message: s.max_recv_msg_size.max(1 << 20),
            }),
        })
    }

    /// Re-validation of `id`'s envelopes through its message processor.
    fn revalidator(&self, id: &str) -> Arc<crate::msgprocessor::ChannelRevalidator> {
        Arc::new(crate::msgprocessor::ChannelRevalidator {
            channel_id: id.to_string(),
            registrar: Arc::clone(&self.registrar),
            signer: Arc::clone(&self.signer),
            expiration_checks: !self.settings.no_expiration_checks,
        })
    }

    fn create_channel(self: &Arc<Self>, inner: &Envelope) -> Result<()> {
        let parsed = fabric_common::envelope::parse_envelope(inner)?;
        let id = parsed.channel_header.channel_id.clone();
        if self.registrar.get(&id).is_some() {
            return Ok(());
        }
        let genesis = configupdate::genesis_block_for_new_channel(inner);
        bootstrap_channel(&self.settings.ledger_root, &genesis)?;
        self.start_channel(&id)?;
        info!(channel_id = %id, "created channel");
        Ok(())
    }
}

impl ConfigSink for ChainStarter {
    fn config_committed(&self, channel_id: &str, env: &Envelope) {
        let Some(this) = self.me.upgrade() else {
            return;
        };
        match fabric_common::envelope::parse_envelope(env) {
            Ok(p) if p.channel_header.r#type == HeaderType::OrdererTransaction as i32 => {
                match configupdate::unwrap_orderer_transaction(env) {
                    Ok(inner) => {
                        if let Err(e) = this.create_channel(&inner) {
                            error!(channel_id, error = %e, "creating a channel from an orderer transaction failed");
                        }
                    }
                    Err(e) => error!(channel_id, error = %e, "bad orderer transaction"),
                }
            }
            Ok(_) => match (
                ChannelConfig::from_envelope(env),
                self.registrar.get(channel_id),
            ) {
                (Ok(cfg), Some(support)) => {
                    let seq = cfg.sequence;
                    if let Err(e) = support.set_config(cfg) {
                        error!(channel_id, error = %e, "applying committed config failed");
                    } else {
                        info!(channel_id, sequence = seq, "applied new channel config");
                    }
                }
                (Err(e), _) => error!(channel_id, error = %e, "committed config does not parse"),
                (_, None) => {}
            },
            Err(e) => error!(channel_id, error = %e, "committed config envelope does not parse"),
        }
        // As Fabric's orderer: the mutual-TLS client roots follow every
        // channel's MSPs (an organization added by a config update, or a
        // new channel's organizations, can connect at once).
        if let Some(tls) = this.tls.get() {
            tls.set_channel_roots(channel_tls_roots(&this.registrar));
        }
    }
}
