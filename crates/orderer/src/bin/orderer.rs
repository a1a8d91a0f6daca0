//! `orderer start` / `orderer version`, configured as Fabric's orderer:
//! `orderer.yaml` through `FABRIC_CFG_PATH`, `ORDERER_*` overrides.
//!
//! Logging follows `FABRIC_LOGGING_SPEC` (Fabric's syntax, see
//! [`orderer::operations::logspec`]) and can be changed at run time through
//! the operations endpoint's `/logspec`; lines are laid out as
//! `FABRIC_LOGGING_FORMAT` says ([`orderer::operations::logformat`]). SIGTERM or SIGINT shuts down in
//! order ([`orderer::server`]) and exits 0; a second signal, or
//! [`FORCE_EXIT_AFTER`] without the shutdown completing, ends the process at once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use fabric_common::msp::KeySource;
use fabric_common::pkcs11::Pkcs11Settings;
use orderer::consensus::kafka::client::SaslSettings;
use orderer::consensus::kafka::KafkaSettings;
use orderer::devnet::{self, DevNet};
use orderer::metrics::statsd::{StatsdNetwork, StatsdSettings};
use orderer::operations::logformat::{FabricLayout, LogCounter, LogFormat};
use orderer::operations::{LogControl, LogSpec, OperationsSettings};
use orderer::server::{self, NodeSettings, TlsSettings};
use orderer_config::{Bootstrap, ConfigSource};
use tracing::{error, info, warn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// jemalloc: the orderer allocates and frees many small buffers per
/// envelope (gRPC frames, protobuf fields, Kafka records, block data) across
/// threads, which glibc malloc served at ≈7 % of the CPU under load; jemalloc
/// can also record where the memory in use was allocated, which
/// `/debug/pprof/heap` serves ([`orderer::operations::pprof`]). C libraries
/// (librdkafka, a PKCS#11 module) keep glibc's malloc: jemalloc's symbols
/// are prefixed (`_rjem_`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once when it initialises (the prefixed build's
/// `malloc_conf` symbol): profiling compiled in and enabled, so that
/// allocation sites can be recorded, but sampling inactive. The node turns
/// `prof.active` on at start-up only when `General.Profile.Enabled`
/// ([`orderer::operations::pprof::activate_heap_profiling`]). Inactive,
/// allocations take the same fast path as without profiling (one slow-path
/// call per 512 KiB allocated checks whether to sample), and so do frees,
/// except that of a small object starting on a page boundary, which a
/// profiling build sends down the slower path (such objects could be
/// samples). When active, one
/// allocation per 2^19 bytes (512 KiB) allocated is sampled, Go's
/// `runtime.MemProfileRate` default.
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &[u8; 46] = orderer::operations::pprof::JEMALLOC_CONF;

/// After a shutdown signal, the process ends by this time whatever happens.
const FORCE_EXIT_AFTER: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "orderer",
    about = "Hyperledger Fabric ordering service node (Rust)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the orderer.
    Start,
    /// Show version information.
    Version,
    /// Check the Kafka cluster against Fabric's Kafka guide (brokers,
    /// replication, min.insync.replicas, unclean leader election, message
    /// sizes, retention), reading orderer.yaml and the bootstrap block.
    /// Exit status 0: every rule passes; 1: a rule fails; 2: the check
    /// could not run.
    CheckKafka {
        /// How long to wait for the cluster's answers, in seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Offline checks of a ledger folder (Fabric's `FileLedger.Location`
    /// layout), for example before handing it to another orderer binary.
    Ledger {
        #[command(subcommand)]
        cmd: LedgerCmd,
    },
}

#[derive(Subcommand)]
enum LedgerCmd {
    /// Walks every channel's block files read-only: record framing, block
    /// numbering, hash chain, data hashes, this orderer's checksums where it
    /// has them, and every block's orderer signatures against the channel's
    /// `/Channel/Orderer/BlockValidation` policy. Prints one line per
    /// channel with the first problem (file and offset). Exit status 0: all
    /// channels pass; 1: a problem; 2: the check could not run.
    Verify {
        /// The ledger folder (default: `FileLedger.Location` of orderer.yaml).
        dir: Option<std::path::PathBuf>,
    },
}

/// `orderer ledger verify`.
fn ledger_verify(dir: Option<std::path::PathBuf>) -> Result<bool> {
    let dir = match dir {
        Some(d) => d,
        None => {
            orderer_config::load()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .file_ledger
                .location
        }
    };
    anyhow::ensure!(
        dir.join("chains").is_dir(),
        "{} holds no chains/ folder: not an orderer ledger",
        dir.display()
    );
    let outcomes = orderer::ledgercheck::verify_ledger(&dir)?;
    for o in &outcomes {
        println!("{}", orderer::ledgercheck::outcome_line(o));
    }
    Ok(outcomes.iter().all(|o| o.result.is_ok()))
}

/// What the log looks like and what it lets through, decided once at start.
struct LoggingSettings {
    /// The Fabric log spec (may be invalid: then `info`, with a warning).
    spec: String,
    /// Where `spec` came from, for the warning.
    spec_source: &'static str,
    /// The line layout.
    format: LogFormat,
}

impl LoggingSettings {
    /// `FABRIC_LOGGING_SPEC` / `FABRIC_LOGGING_FORMAT`, else the deprecated
    /// `General.LogLevel` / `General.LogFormat` of `config`. `Kafka.Verbose`
    /// adds `orderer.consensus.kafka.sarama=debug` to the spec, as Fabric's
    /// Kafka consenter does. A format Fabric would refuse is an error.
    fn new(config: Option<&orderer_config::Config>) -> Result<Self> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let general = config.map(|c| &c.general);
        let (mut spec, spec_source) = match env("FABRIC_LOGGING_SPEC") {
            Some(s) => (s, "FABRIC_LOGGING_SPEC"),
            None => (
                general.map(|g| g.log_level.clone()).unwrap_or_default(),
                "General.LogLevel",
            ),
        };
        if config.is_some_and(|c| c.kafka.verbose) {
            let base = LogSpec::parse(&spec)
                .map(|s| s.normalized())
                .unwrap_or(spec);
            spec = format!("{base}:orderer.consensus.kafka.sarama=debug");
        }
        let (format, format_source) = match env("FABRIC_LOGGING_FORMAT") {
            Some(f) => (f, "FABRIC_LOGGING_FORMAT"),
            None => (
                general.map(|g| g.log_format.clone()).unwrap_or_default(),
                "General.LogFormat",
            ),
        };
        let format =
            LogFormat::parse(&format).map_err(|e| anyhow::anyhow!("{format_source}: {e}"))?;
        Ok(Self {
            spec,
            spec_source,
            format,
        })
    }
}

/// Installs the subscriber (Fabric's line layouts, to standard error as
/// Fabric's orderer) with the spec behind a reload handle, and returns the
/// control `/logspec` uses.
fn init_logging(l: LoggingSettings) -> Arc<LogControl> {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let (spec, bad) = match LogSpec::parse(&l.spec) {
        Ok(s) => (s, None),
        Err(e) => (
            LogSpec::parse("info").expect("info is a valid spec"),
            Some(e),
        ),
    };
    let filter = EnvFilter::try_new(spec.directives()).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let color = std::io::stderr().is_terminal();
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(FabricLayout::new(l.format, color)),
        )
        .with(LogCounter)
        .init();
    if let Some(e) = bad {
        warn!("{}: {e}; using info", l.spec_source);
    }
    Arc::new(LogControl::new(
        spec.normalized(),
        Box::new(move |directives| {
            let f = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
            handle.reload(f).map_err(|e| e.to_string())
        }),
    ))
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// `Kafka.SASLPlain`, or our `Kafka.SASLSCRAM` (SCRAM-SHA-512 by default).
fn sasl_settings(k: &orderer_config::Kafka) -> Option<SaslSettings> {
    if k.sasl_plain.enabled {
        return Some(SaslSettings {
            mechanism: "PLAIN".into(),
            user: k.sasl_plain.user.clone(),
            password: k.sasl_plain.password.clone(),
        });
    }
    let s = &k.sasl_scram;
    s.enabled.then(|| SaslSettings {
        mechanism: if s.mechanism.is_empty() {
            "SCRAM-SHA-512".into()
        } else {
            s.mechanism.clone()
        },
        user: s.user.clone(),
        password: s.password.clone(),
    })
}

fn kafka_settings(k: &orderer_config::Kafka) -> KafkaSettings {
    let r = &k.retry;
    KafkaSettings {
        brokers: Vec::new(),
        short_interval: r.short_interval,
        short_total: r.short_total,
        long_interval: r.long_interval,
        long_total: r.long_total,
        dial_timeout: r.network_timeouts.dial_timeout,
        read_timeout: r.network_timeouts.read_timeout,
        write_timeout: r.network_timeouts.write_timeout,
        producer_retry_backoff: r.producer.retry_backoff,
        metadata_retry_backoff: r.metadata.retry_backoff,
        consumer_retry_backoff: r.consumer.retry_backoff,
        replication_factor: i32::from(k.topic.replication_factor),
        verbose: k.verbose,
        tls: k.tls.enabled.then(|| {
            (
                k.tls.certificate.clone(),
                k.tls.private_key.clone(),
                k.tls.root_cas.clone(),
            )
        }),
        sasl: sasl_settings(k),
        catch_up_sources: k.catch_up.sources.clone(),
        catch_up_pull_threshold: k.catch_up.pull_threshold,
    }
}

/// `General.ConnectionTimeout`, `General.Keepalive.*` and `General.Limits.*`;
/// zero (unset) takes Fabric's default, or ours where Fabric has none.
fn net_settings(g: &orderer_config::model::General) -> orderer::net::NetSettings {
    let d = orderer::net::NetSettings::default();
    let dur = |v: Duration, def: Duration| if v.is_zero() { def } else { v };
    let num = |v: u32, def: usize| if v == 0 { def } else { v as usize };
    let bytes = |v: u64, def: u64| if v == 0 { def } else { v };
    orderer::net::NetSettings {
        connection_timeout: dur(g.connection_timeout, d.connection_timeout),
        keepalive_interval: dur(g.keepalive.server_interval, d.keepalive_interval),
        keepalive_timeout: dur(g.keepalive.server_timeout, d.keepalive_timeout),
        keepalive_min_interval: dur(g.keepalive.server_min_interval, d.keepalive_min_interval),
        max_connections: num(g.limits.max_connections, d.max_connections),
        max_concurrent_streams: if g.limits.max_concurrent_streams == 0 {
            d.max_concurrent_streams
        } else {
            g.limits.max_concurrent_streams
        },
        max_streams: num(g.limits.max_streams, d.max_streams),
        max_deliver_buffered_bytes: bytes(
            g.limits.max_deliver_buffered_bytes,
            d.max_deliver_buffered_bytes,
        ),
        receive: orderer::net::ingress::ReceiveLimits {
            stream_bytes: bytes(g.limits.max_stream_bytes, d.receive.stream_bytes),
            connection_bytes: bytes(g.limits.max_connection_bytes, d.receive.connection_bytes),
            total_bytes: bytes(g.limits.max_received_bytes, d.receive.total_bytes),
        },
    }
}

/// `General.BCCSP` (validated when the config loaded) as the signer's key
/// source. `SoftwareVerify` and `Immutable` are accepted: verification is
/// always in software and the orderer never creates keys on the token.
fn key_source(b: &orderer_config::Bccsp) -> KeySource {
    if b.default != "PKCS11" {
        return KeySource::Software;
    }
    let p = &b.pkcs11;
    let key_ids = p
        .key_id_mappings()
        .expect("BCCSP.PKCS11.KeyIds is checked when the config loads")
        .into_iter()
        .map(|m| (m.ski, m.id))
        .collect();
    KeySource::Pkcs11(Pkcs11Settings {
        library: p.library.clone().into(),
        label: p.label.clone(),
        pin: p.pin.clone(),
        alt_id: (!p.alt_id.is_empty()).then(|| p.alt_id.clone()),
        key_ids,
    })
}

fn settings(config: orderer_config::Config, log: Arc<LogControl>) -> Result<NodeSettings> {
    for w in &config.warnings {
        warn!("{w}");
    }
    let g = &config.general;
    let mut s = NodeSettings {
        listen: config.listen_addr(),
        ledger_root: config.file_ledger.location.clone(),
        msp_dir: g.local_msp_dir.clone(),
        msp_id: g.local_msp_id.clone(),
        key_source: key_source(&g.bccsp),
        profile: g.profile.enabled.then(|| g.profile.address.clone()),
        statsd: (config.metrics.provider == "statsd").then(|| {
            let m = &config.metrics.statsd;
            StatsdSettings {
                network: if m.network == "tcp" {
                    StatsdNetwork::Tcp
                } else {
                    StatsdNetwork::Udp
                },
                address: m.address.clone(),
                write_interval: m.write_interval,
                prefix: m.prefix.clone(),
            }
        }),
        bootstrap_file: match config.bootstrap() {
            Bootstrap::File(p) => Some(p),
            _ => None,
        },
        time_window: g.authentication.time_window,
        no_expiration_checks: g.authentication.no_expiration_checks,
        max_recv_msg_size: g.max_recv_msg_size as usize,
        max_send_msg_size: g.max_send_msg_size as usize,
        kafka: kafka_settings(&config.kafka),
        tls: TlsSettings {
            enabled: g.tls.enabled,
            certificate: g.tls.certificate.clone(),
            private_key: g.tls.private_key.clone(),
            client_auth_required: g.tls.client_auth_required,
            client_root_cas: g.tls.client_root_cas.clone(),
            root_cas: g.tls.root_cas.clone(),
        },
        operations: Some(OperationsSettings {
            listen: config.operations.listen_address.clone(),
            tls: config.operations.tls.enabled.then(|| {
                let t = &config.operations.tls;
                orderer::operations::tls::OperationsTls {
                    certificate: t.certificate.clone(),
                    private_key: t.private_key.clone(),
                    client_auth_required: t.client_auth_required,
                    client_root_cas: t.client_root_cas.clone(),
                }
            }),
            prometheus: config.metrics.provider == "prometheus",
            // The built-in default address only logs when it is taken.
            required: matches!(config.source, ConfigSource::File(_))
                || env_set("ORDERER_OPERATIONS_LISTENADDRESS"),
            log: Some(log),
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit_sha: option_env!("ORDERER_COMMIT_SHA").unwrap_or("").to_string(),
        }),
        net: net_settings(g),
    };
    let explicit_bootstrap =
        env_set("ORDERER_GENERAL_BOOTSTRAPFILE") || env_set("ORDERER_GENERAL_GENESISFILE");
    if matches!(config.source, ConfigSource::BuiltinDefaults) && !explicit_bootstrap {
        // The embedded development default.
        let dir = devnet::default_dir();
        let net = DevNet::ensure(&dir, &s.listen)?;
        if !env_set("ORDERER_GENERAL_LOCALMSPDIR") {
            s.msp_dir = net.orderer_msp_dir.clone();
            s.msp_id = net.mspid.clone();
        }
        if !env_set("ORDERER_FILELEDGER_LOCATION") {
            s.ledger_root = net.ledger_dir.clone();
        }
        s.bootstrap_file = Some(net.genesis_file.clone());
        info!(
            dir = %net.dir.display(),
            channel_id = %net.channel_id,
            client_msp_dir = %net.client_msp_dir.display(),
            client_mspid = %net.mspid,
            "no orderer.yaml found: running the embedded development network (solo)"
        );
        info!(
            "try: orderer-client counter -n 1000   (channel {}, client MSP {})",
            net.channel_id,
            net.client_msp_dir.display()
        );
    } else if let ConfigSource::File(p) = &config.source {
        info!(file = %p.display(), "loaded orderer.yaml");
    }
    Ok(s)
}

fn version() {
    println!("orderer:");
    println!(" Version: {}", env!("CARGO_PKG_VERSION"));
    println!(" Implementation: Rust (fabric-orderer-rs)");
    println!(
        " OS/Arch: {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!(" Consensus types: solo, kafka");
}

/// `orderer check-kafka`: the brokers and `AbsoluteMaxBytes` come from the
/// bootstrap block, the topics are its channel and every channel in the
/// ledger; `Kafka.TLS` / `Kafka.SASLPlain` as for `start`.
fn check_kafka(timeout: Duration) -> Result<bool> {
    use orderer::channelconfig::ChannelConfig;
    use orderer::consensus::kafka::{check, inspect};
    let config = orderer_config::load().map_err(|e| anyhow::anyhow!("{e}"))?;
    let Bootstrap::File(file) = config.bootstrap() else {
        anyhow::bail!(
            "check-kafka reads the Kafka brokers from the bootstrap block: set General.BootstrapMethod \
             to file and General.BootstrapFile (ORDERER_GENERAL_BOOTSTRAPFILE)"
        );
    };
    let block = server::read_block_file(&file)?;
    let cc = ChannelConfig::from_block(&block)
        .with_context(|| format!("the config in {}", file.display()))?;
    if cc.consensus_type != "kafka" {
        anyhow::bail!(
            "channel {} in {} uses consensus type {:?}, not kafka: nothing to check",
            cc.channel_id,
            file.display(),
            cc.consensus_type
        );
    }
    let mut ks = kafka_settings(&config.kafka);
    ks.brokers = cc.kafka_brokers.clone();
    let mut topics = vec![cc.channel_id.clone()];
    for id in server::existing_channels(&config.file_ledger.location)? {
        if !topics.contains(&id) {
            topics.push(id);
        }
    }
    let amb = u64::from(cc.batch_size.absolute_max_bytes);
    println!(
        "Kafka cluster check: brokers {} (TLS {}, SASL {}), topics {}, AbsoluteMaxBytes {amb}",
        ks.brokers.join(","),
        ks.tls.is_some(),
        ks.sasl.as_ref().map_or("off", |s| s.mechanism.as_str()),
        topics.join(",")
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut observed = rt
        .block_on(inspect::observe(&ks, &topics, amb, timeout))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Catch-up (finite retention is accepted with it): Kafka.CatchUp.Sources,
    // else the bootstrap channel's orderer addresses (channels created later
    // take their Orderer group and addresses from it), without this OSN.
    let own = format!(
        "{}:{}",
        config.general.listen_address, config.general.listen_port
    );
    let sources = orderer::consensus::kafka::catchup::other_sources(
        &config.kafka.catch_up.sources,
        &cc,
        &own,
    );
    if sources.is_empty() {
        println!("catch-up: no source other than this OSN ({own}): retention must be off");
    } else {
        println!("catch-up sources: {}", sources.join(", "));
    }
    for t in &topics {
        observed.catch_up.insert(t.clone(), sources.clone());
    }
    for t in &observed.topics {
        match t.replicas {
            Some(n) => println!("topic {}: {n} replica(s)", t.name),
            None => println!(
                "topic {}: not created yet (the broker defaults apply when it is)",
                t.name
            ),
        }
    }
    let results = check::evaluate(&observed);
    print!("{}", check::report(&results));
    Ok(check::failed_rules(&results).is_empty())
}

/// Errors end the process with one readable line (the context chain joined
/// by ": "), never a multi-line `Debug` dump with backtrace frames.
fn main() {
    if let Err(e) = run() {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd.unwrap_or(Cmd::Start) {
        Cmd::CheckKafka { timeout } => {
            // The report goes to stdout, logs (FABRIC_LOGGING_SPEC) to stderr.
            init_logging(LoggingSettings::new(None)?);
            match check_kafka(Duration::from_secs(timeout.max(1))) {
                Ok(true) => Ok(()),
                Ok(false) => std::process::exit(1),
                Err(e) => {
                    eprintln!("check-kafka: error: {e:#}");
                    std::process::exit(2);
                }
            }
        }
        Cmd::Version => {
            version();
            Ok(())
        }
        Cmd::Ledger {
            cmd: LedgerCmd::Verify { dir },
        } => match ledger_verify(dir) {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => {
                eprintln!("ledger verify: error: {e:#}");
                std::process::exit(2);
            }
        },
        Cmd::Start => {
            let config = orderer_config::load().map_err(|e| anyhow::anyhow!("{e}"))?;
            let log = init_logging(LoggingSettings::new(Some(&config))?);
            let s = settings(config, log)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let node = server::start(s).await?;
                let stop = node.shutdown.clone();
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .context("installing the SIGTERM handler")?;
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                    info!("received a shutdown signal; shutting down");
                    stop.cancel();
                    std::thread::spawn(|| {
                        std::thread::sleep(FORCE_EXIT_AFTER);
                        error!(after = ?FORCE_EXIT_AFTER, "shutdown did not complete in time; exiting");
                        std::process::exit(0);
                    });
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                    warn!("second shutdown signal; exiting at once");
                    std::process::exit(1);
                });
                node.wait().await
            })
            .context("orderer")?;
            rt.shutdown_timeout(Duration::from_secs(1));
            info!("orderer stopped");
            Ok(())
        }
    }
}
