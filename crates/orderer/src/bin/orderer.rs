//! `orderer start` / `orderer version`, configured as Fabric's orderer:
//! `orderer.yaml` through `FABRIC_CFG_PATH`, `ORDERER_*` overrides.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use orderer::consensus::kafka::KafkaSettings;
use orderer::devnet::{self, DevNet};
use orderer::server::{self, NodeSettings};
use orderer_config::{Bootstrap, ConfigSource};
use tracing::{info, warn};

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
}

fn init_logging() {
    let spec = std::env::var("FABRIC_LOGGING_SPEC").unwrap_or_else(|_| "info".into());
    // Fabric's spec is `level` or `logger=level:level`; take the default level part.
    let level = spec
        .split(':')
        .find(|p| !p.contains('='))
        .unwrap_or("info")
        .to_ascii_lowercase();
    let level = match level.as_str() {
        "warning" => "warn".to_string(),
        "critical" | "panic" | "fatal" => "error".to_string(),
        other => other.to_string(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
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
        sasl_plain: k
            .sasl_plain
            .enabled
            .then(|| (k.sasl_plain.user.clone(), k.sasl_plain.password.clone())),
    }
}

fn settings() -> Result<NodeSettings> {
    let config = orderer_config::load().map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &config.warnings {
        warn!("{w}");
    }
    let g = &config.general;
    let mut s = NodeSettings {
        listen: config.listen_addr(),
        ledger_root: config.file_ledger.location.clone(),
        msp_dir: g.local_msp_dir.clone(),
        msp_id: g.local_msp_id.clone(),
        bootstrap_file: match config.bootstrap() {
            Bootstrap::File(p) => Some(p),
            _ => None,
        },
        time_window: g.authentication.time_window,
        no_expiration_checks: g.authentication.no_expiration_checks,
        max_recv_msg_size: g.max_recv_msg_size as usize,
        max_send_msg_size: g.max_send_msg_size as usize,
        kafka: kafka_settings(&config.kafka),
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd.unwrap_or(Cmd::Start) {
        Cmd::Version => {
            version();
            Ok(())
        }
        Cmd::Start => {
            init_logging();
            let s = settings()?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let node = server::start(s).await?;
                let stop = node.shutdown.clone();
                tokio::spawn(async move {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                            .expect("installing SIGTERM handler");
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                    info!("shutting down");
                    stop.cancel();
                });
                node.wait().await
            })
            .context("orderer")
        }
    }
}
