//! `orderer-client`: sample and test client for the orderer's
//! `AtomicBroadcast` service (Fabric's `broadcast_msg` and `deliver_stdout`
//! sample clients, plus a counter check, channel info and `peer channel`'s
//! create / update / fetch).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use fabric_common::block::header_hash;
use orderer_client::bench::{self, BenchOpts};
use orderer_client::channel::{self, ConfigTx, FetchTarget};
use orderer_client::config::GlobalArgs;
use orderer_client::conn::connect;
use orderer_client::counter::{self, CounterOpts};
use orderer_client::deliver::{self, BlockSummary, DeliverOpts, Position};
use orderer_client::{status_name, SUCCESS};

/// `println!` that ends the process quietly when stdout is closed
/// (e.g. `orderer-client deliver --stop forever | head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            panic!("writing to stdout: {e}");
        }
    }};
}

#[derive(Debug, Parser)]
#[command(
    name = "orderer-client",
    version,
    about = "Client for the orderer's AtomicBroadcast service"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Behavior {
    /// BLOCK_UNTIL_READY
    Block,
    /// FAIL_IF_NOT_READY
    Fail,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Broadcast the counter values 0..N and check they are delivered once, in order,
    /// in correctly linked and signed blocks
    Counter {
        /// Number of values
        #[arg(short = 'n', long, default_value_t = 1000)]
        n: u64,
        /// Broadcast streams (value i goes on stream i % K; order is checked per stream)
        #[arg(long, default_value_t = 1)]
        streams: usize,
        /// Maximum unanswered envelopes per stream
        #[arg(long, default_value_t = 1000)]
        window: usize,
        /// Seconds to wait for all deliveries
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Do not check block signatures
        #[arg(long)]
        no_verify_signatures: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Deliver blocks and print them (Fabric's deliver_stdout), checking hash links
    Deliver {
        /// oldest | newest | block number
        #[arg(long, default_value = "oldest")]
        start: Position,
        /// newest | block number | forever
        #[arg(long, default_value = "newest")]
        stop: Position,
        /// What to do when the start block does not exist yet
        #[arg(long, value_enum, default_value = "block")]
        behavior: Behavior,
        /// SeekErrorResponse BEST_EFFORT
        #[arg(long)]
        best_effort: bool,
        /// Print only block numbers and transaction counts
        #[arg(short, long)]
        quiet: bool,
        /// Also verify each block's orderer signature (block 0 exempt)
        #[arg(long)]
        verify_signatures: bool,
        /// Write the blocks' bytes as received to FILE, each preceded by its length
        /// (4 bytes, big-endian), instead of printing them
        #[arg(long, value_name = "FILE")]
        raw_out: Option<PathBuf>,
    },
    /// Load generator: pipelined Broadcast over several streams, reporting tx/s and
    /// broadcast→delivered latency
    Broadcast {
        /// Size of each envelope's payload value in bytes
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Broadcast streams (one connection each)
        #[arg(long, default_value_t = 4)]
        streams: usize,
        /// Total envelopes (with --duration too: whichever ends first)
        #[arg(long)]
        count: Option<u64>,
        /// Send for this many seconds
        #[arg(long)]
        duration: Option<f64>,
        /// With --count: the pre-signed envelopes, read from FILE when it exists,
        /// else signed and written there (so several runs send the same bytes)
        #[arg(long, value_name = "FILE", conflicts_with = "sign_live")]
        envelopes: Option<PathBuf>,
        /// Maximum unanswered envelopes per stream
        #[arg(long, default_value_t = 1000)]
        window: usize,
        /// With --count, sign envelopes while sending instead of all of them before
        /// the clock starts (the default with --count, so signing does not compete
        /// with the orderer for CPU during the measurement)
        #[arg(long)]
        sign_live: bool,
        /// Do not follow Deliver (no delivered latency)
        #[arg(long)]
        no_follow: bool,
        /// Seconds to wait for deliveries after the last response
        #[arg(long, default_value_t = 60)]
        drain_timeout: u64,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// Fault-tolerant mode: append the tx ID of every envelope answered SUCCESS to
        /// FILE, re-send (same bytes, same tx ID) whatever got another answer or none,
        /// moving to the next --servers address; --window is the batch size
        #[arg(long, value_name = "FILE", requires = "duration")]
        ack_log: Option<PathBuf>,
        /// With --ack-log: more orderer addresses (comma-separated) besides --server
        #[arg(long, value_delimiter = ',', requires = "ack_log")]
        servers: Vec<String>,
        /// With --ack-log: new envelopes per second over all streams
        #[arg(long, requires = "ack_log")]
        rate: Option<f64>,
        /// With --ack-log: seconds to wait for a batch's answers before re-sending it elsewhere
        #[arg(long, default_value_t = 10.0)]
        response_timeout: f64,
        /// With --ack-log: seconds to keep re-sending unanswered envelopes after --duration
        #[arg(long, default_value_t = 60.0)]
        resend_for: f64,
        /// With --ack-log: append the tx ID of every re-send to FILE (one line per
        /// re-send, written before the copy is sent)
        #[arg(long, value_name = "FILE", requires = "ack_log")]
        resend_log: Option<PathBuf>,
    },
    /// Hold many Broadcast streams and Deliver followers open against one orderer
    /// for a while, sending at a fixed total rate, and sample the orderer's RSS
    Load {
        /// Broadcast streams kept open
        #[arg(long, default_value_t = 1000)]
        broadcast_streams: usize,
        /// Deliver followers (from the newest block, forever)
        #[arg(long, default_value_t = 200)]
        followers: usize,
        /// How many of the followers read slowly
        #[arg(long, default_value_t = 0)]
        slow_followers: usize,
        /// A slow follower's pause between two responses, in milliseconds
        #[arg(long, default_value_t = 1000)]
        slow_delay_ms: u64,
        /// Envelopes per second over all Broadcast streams (0: idle streams)
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        /// Maximum unanswered envelopes per stream
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Payload bytes per envelope
        #[arg(long, default_value_t = 256)]
        size: usize,
        /// Seconds to run once every stream is open
        #[arg(long, default_value_t = 600)]
        duration: u64,
        /// gRPC streams per HTTP/2 connection
        #[arg(long, default_value_t = 1)]
        streams_per_connection: usize,
        /// The orderer's process id, for RSS samples
        #[arg(long)]
        orderer_pid: Option<u32>,
        /// Seconds between RSS samples
        #[arg(long, default_value_t = 5)]
        sample_secs: u64,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the channel height and newest block
    ChannelInfo,
    /// Create or update a channel, or fetch one of its blocks (like `peer channel`)
    Channel {
        #[command(subcommand)]
        cmd: ChannelCmd,
    },
}

#[derive(Debug, Subcommand)]
enum ChannelCmd {
    /// Sign and submit a channel creation transaction, then write the new
    /// channel's genesis block (`peer channel create`)
    Create {
        /// The CONFIG_UPDATE envelope from `configtxgen -outputCreateChannelTx`
        #[arg(short = 'f', long = "channel-tx", visible_alias = "file")]
        channel_tx: PathBuf,
        /// Where to write block 0 [default: <channel>.block]
        #[arg(long = "output-block")]
        output_block: Option<PathBuf>,
        /// Seconds to wait for the new channel's genesis block
        #[arg(short = 't', long, default_value_t = 10)]
        timeout: u64,
        /// Also sign as this admin (MSPDIR:MSPID), before the submitting identity; repeatable
        #[arg(long = "sign-with", value_name = "MSPDIR:MSPID")]
        sign_with: Vec<String>,
    },
    /// Sign and submit a config update (`peer channel update -f`), or change the
    /// channel's Orderer/BatchSize.MaxMessageCount (--max-message-count)
    Update {
        /// A CONFIG_UPDATE envelope, or a bare ConfigUpdateEnvelope or ConfigUpdate
        #[arg(
            short = 'f',
            long,
            required_unless_present = "max_message_count",
            conflicts_with = "max_message_count"
        )]
        file: Option<PathBuf>,
        /// Build and submit the update setting Orderer/BatchSize.MaxMessageCount
        /// from the channel's current config block (sign as an admin: --mspdir)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        max_message_count: Option<u32>,
        /// Also sign as this admin (MSPDIR:MSPID), before the submitting identity; repeatable
        #[arg(long = "sign-with", value_name = "MSPDIR:MSPID")]
        sign_with: Vec<String>,
        /// Further config updates of the same channel, sent on the same Broadcast stream right
        /// after the first (so the orderer validates them all against the same config); repeatable
        #[arg(long = "then", value_name = "FILE", requires = "file")]
        then: Vec<PathBuf>,
        /// Seconds to wait for the orderer
        #[arg(short = 't', long, default_value_t = 30)]
        timeout: u64,
    },
    /// Fetch a block and write it to a file (`peer channel fetch`)
    Fetch {
        /// oldest | newest | config | a block number
        target: FetchTarget,
        /// Output file [default: <channel>_<target>.block]
        #[arg(conflicts_with = "output")]
        output_file: Option<PathBuf>,
        /// Output file [default: <channel>_<target>.block]
        #[arg(long)]
        output: Option<PathBuf>,
        /// Give up after this many seconds (a block beyond the height is waited for)
        #[arg(short = 't', long)]
        timeout: Option<u64>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(real_main(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn real_main(mut cli: Cli) -> Result<bool> {
    // A config transaction file names its channel: it is the default for
    // --channel, and must match an explicit one.
    let config_tx = match &cli.cmd {
        Cmd::Channel {
            cmd: ChannelCmd::Create { channel_tx: f, .. },
        }
        | Cmd::Channel {
            cmd: ChannelCmd::Update { file: Some(f), .. },
        } => Some(read_config_tx(f)?),
        _ => None,
    };
    if let Some(tx) = &config_tx {
        cli.global
            .channel
            .get_or_insert_with(|| tx.channel_id.clone());
    }
    let target = cli.global.resolve()?;
    if let Some(tx) = &config_tx {
        tx.check_channel(&target.channel)?;
    }
    match cli.cmd {
        Cmd::Counter {
            n,
            streams,
            window,
            timeout,
            no_verify_signatures,
            json,
        } => {
            let mut opts = CounterOpts::new(&target, n);
            opts.streams = streams;
            opts.window = window;
            opts.timeout = Duration::from_secs(timeout);
            if no_verify_signatures {
                opts.trust = None;
            }
            let report = counter::run(opts).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for v in report.violations.iter().take(20) {
                    outln!("violation: {v}");
                }
                if report.violations.len() > 20 {
                    outln!("... {} more violations", report.violations.len() - 20);
                }
                outln!("{}", report.summary_line());
            }
            Ok(report.ok())
        }
        Cmd::Deliver {
            start,
            stop,
            behavior,
            best_effort,
            quiet,
            verify_signatures,
            raw_out,
        } => {
            let opts = DeliverOpts {
                channel: target.channel.clone(),
                start,
                stop,
                fail_if_not_ready: matches!(behavior, Behavior::Fail),
                best_effort,
                trust: verify_signatures.then(|| target.trust.clone()),
            };
            let mut client = connect(&target.server).await?;
            let mut raw = match &raw_out {
                Some(p) => Some(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => None,
            };
            let mut raw_err = None;
            let report = deliver::run(&mut client, &target.signer, &opts, |b, s, violation| {
                match raw.as_mut() {
                    Some(w) => {
                        use prost::Message as _;
                        use std::io::Write as _;
                        let bytes = b.encode_to_vec();
                        let r = w
                            .write_all(&(bytes.len() as u32).to_be_bytes())
                            .and_then(|_| w.write_all(&bytes));
                        if let Err(e) = r {
                            raw_err.get_or_insert(e);
                        }
                    }
                    None => print_block(s, quiet),
                }
                if let Some(v) = violation {
                    outln!("violation: {v}");
                }
            })
            .await?;
            if let Some(mut w) = raw {
                use std::io::Write as _;
                if let Some(e) = raw_err {
                    return Err(e).context("writing raw blocks");
                }
                w.flush().context("writing raw blocks")?;
            }
            match report.status {
                Some(s) => outln!("status: {}", status_name(s)),
                None => outln!("status: none (stream ended)"),
            }
            outln!(
                "deliver: blocks={} txs={} violations={}",
                report.blocks,
                report.txs,
                report.violations.len()
            );
            Ok(report.ok())
        }
        Cmd::Broadcast {
            size,
            streams,
            count,
            duration,
            window,
            sign_live,
            envelopes,
            no_follow,
            drain_timeout,
            json,
            ack_log,
            servers,
            rate,
            response_timeout,
            resend_for,
            resend_log,
        } => {
            if let Some(ack_log) = ack_log {
                let mut all = vec![target.server.clone()];
                all.extend(servers.into_iter().filter(|s| !s.is_empty()));
                let opts = orderer_client::reliable::ReliableOpts {
                    servers: all,
                    channel: target.channel.clone(),
                    signer: target.signer.clone(),
                    size,
                    streams,
                    batch: window,
                    duration: Duration::from_secs_f64(duration.unwrap_or(10.0)),
                    rate,
                    response_timeout: Duration::from_secs_f64(response_timeout),
                    resend_for: Duration::from_secs_f64(resend_for),
                    ack_log,
                    resend_log,
                };
                let report = orderer_client::reliable::run(opts).await?;
                if json {
                    outln!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    outln!("{report}");
                }
                return Ok(true);
            }
            let mut opts = BenchOpts::new(&target, count.unwrap_or(0));
            opts.count = count;
            opts.duration = duration.map(Duration::from_secs_f64);
            if opts.count.is_none() && opts.duration.is_none() {
                opts.count = Some(10_000);
            }
            opts.size = size;
            opts.streams = streams;
            opts.window = window;
            opts.pregenerate = !sign_live && opts.count.is_some();
            opts.envelopes_file = envelopes;
            opts.follow = !no_follow;
            opts.drain_timeout = Duration::from_secs(drain_timeout);
            let report = bench::run(opts).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                outln!("{}", report.to_string().trim_end());
            }
            Ok(report.ok(!no_follow))
        }
        Cmd::Load {
            broadcast_streams,
            followers,
            slow_followers,
            slow_delay_ms,
            rate,
            window,
            size,
            duration,
            streams_per_connection,
            orderer_pid,
            sample_secs,
            json,
        } => {
            let opts = orderer_client::load::LoadOpts {
                server: target.server.clone(),
                channel: target.channel.clone(),
                signer: target.signer.clone(),
                broadcast_streams,
                followers,
                slow_followers,
                slow_delay: Duration::from_millis(slow_delay_ms),
                rate,
                window,
                size,
                duration: Duration::from_secs(duration),
                streams_per_connection,
                orderer_pid,
                sample_every: Duration::from_secs(sample_secs.max(1)),
                progress: !json,
            };
            let r = orderer_client::load::run(opts).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                let mib = |k: Option<u64>| {
                    k.map_or("n/a".to_string(), |k| {
                        format!("{:.1} MiB", k as f64 / 1024.0)
                    })
                };
                outln!(
                    "streams: {} Broadcast, {} Deliver ({} slow)",
                    r.broadcast_streams,
                    r.followers,
                    r.slow_followers
                );
                outln!(
                    "orderer RSS: before open {}, after open {}, min {}, max {}, end {}",
                    mib(r.rss_before_open_kib),
                    mib(r.rss_after_open_kib),
                    mib(r.rss_min_kib),
                    mib(r.rss_max_kib),
                    mib(r.rss_end_kib)
                );
                outln!(
                    "sent {} in {:.0}s, SUCCESS {} ({:.1} tx/s), other statuses {:?}",
                    r.sent,
                    r.duration_secs,
                    r.success,
                    r.throughput_tx_per_sec,
                    r.failures
                );
                outln!(
                    "blocks delivered: {} (per follower min {} max {})",
                    r.blocks_delivered,
                    r.follower_blocks_min_max.0,
                    r.follower_blocks_min_max.1
                );
                outln!("transport errors: {} {:?}", r.errors, r.first_errors);
            }
            Ok(r.errors == 0 && r.failures.is_empty())
        }
        Cmd::ChannelInfo => {
            let mut client = connect(&target.server).await?;
            let b = deliver::newest_block(&mut client, &target.channel, &target.signer).await?;
            let s = BlockSummary::of(&b);
            let h = b.header.clone().unwrap_or_default();
            outln!(
                "{}",
                serde_json::json!({
                    "channel": target.channel,
                    "height": s.number + 1,
                    "newest_block": s.number,
                    "current_hash": hex::encode(header_hash(&h)),
                    "previous_hash": s.previous_hash,
                    "data_hash": s.data_hash,
                    "tx_count": s.tx_count,
                    "last_config": s.last_config,
                })
            );
            Ok(true)
        }
        Cmd::Channel { cmd } => channel_cmd(cmd, config_tx, &target).await,
    }
}

fn read_config_tx(path: &Path) -> Result<ConfigTx> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("channel configuration tx file {}", path.display()))?;
    channel::parse_config_tx(&bytes).with_context(|| format!("{}", path.display()))
}

fn load_cosigners(specs: &[String]) -> Result<Vec<fabric_common::msp::LocalSigner>> {
    specs.iter().map(|s| channel::load_signer_spec(s)).collect()
}

/// Prints the Broadcast answer; true on SUCCESS.
fn report_status(resp: &fabric_protos::orderer::BroadcastResponse) -> bool {
    outln!("status: {}", status_name(resp.status));
    if !resp.info.is_empty() {
        outln!("info: {}", resp.info);
    }
    resp.status == SUCCESS
}

fn write_block(path: &Path, block: &fabric_protos::common::Block) -> Result<()> {
    use prost::Message as _;
    std::fs::write(path, block.encode_to_vec())
        .with_context(|| format!("writing {}", path.display()))
}

async fn with_timeout<T>(
    secs: u64,
    what: &str,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(r) => r,
        Err(_) => bail!("timeout after {secs}s {what}"),
    }
}

async fn channel_cmd(
    cmd: ChannelCmd,
    config_tx: Option<ConfigTx>,
    target: &orderer_client::config::Target,
) -> Result<bool> {
    let signer = &*target.signer;
    let ch = target.channel.as_str();
    match cmd {
        ChannelCmd::Create {
            output_block,
            timeout,
            sign_with,
            ..
        } => {
            let tx = config_tx.expect("read before resolving");
            let cosigners = load_cosigners(&sign_with)?;
            let cosigners: Vec<_> = cosigners.iter().collect();
            let resp = with_timeout(timeout, "waiting for the orderer's answer", async {
                let mut client = connect(&target.server).await?;
                channel::submit_config_update(&mut client, ch, tx.envelope, &cosigners, signer)
                    .await
            })
            .await?;
            if !report_status(&resp) {
                return Ok(false);
            }
            let block = channel::wait_for_block(
                &target.server,
                ch,
                signer,
                0,
                Duration::from_secs(timeout),
            )
            .await?;
            let file = output_block.unwrap_or_else(|| PathBuf::from(format!("{ch}.block")));
            write_block(&file, &block)?;
            outln!("wrote block 0 of channel {ch} to {}", file.display());
            Ok(true)
        }
        ChannelCmd::Update {
            max_message_count,
            sign_with,
            then,
            timeout,
            ..
        } => {
            let cosigners = load_cosigners(&sign_with)?;
            let cosigners: Vec<_> = cosigners.iter().collect();
            if !then.is_empty() {
                let first = config_tx.context("--then needs --file")?;
                let mut envs = vec![channel::signed_config_update_tx(
                    ch,
                    first.envelope,
                    &cosigners,
                    signer,
                )];
                for f in &then {
                    let tx = read_config_tx(f)?;
                    tx.check_channel(ch)?;
                    envs.push(channel::signed_config_update_tx(
                        ch,
                        tx.envelope,
                        &cosigners,
                        signer,
                    ));
                }
                let resps = with_timeout(timeout, "updating the channel", async {
                    let mut client = connect(&target.server).await?;
                    channel::broadcast_envelopes(&mut client, envs).await
                })
                .await?;
                let mut ok = resps.len() == then.len() + 1;
                for r in &resps {
                    ok &= report_status(r);
                }
                return Ok(ok);
            }
            let resp = with_timeout(timeout, "updating the channel", async {
                let mut client = connect(&target.server).await?;
                let cue = match (config_tx, max_message_count) {
                    (Some(tx), _) => tx.envelope,
                    (None, Some(n)) => {
                        let block = channel::fetch_config_block(&mut client, ch, signer).await?;
                        let (_, config) = channel::config_from_block(&block)?;
                        let current = channel::batch_size(&config)?;
                        if current.max_message_count == n {
                            outln!("Orderer/BatchSize.MaxMessageCount of {ch} is already {n}");
                            return Ok(None);
                        }
                        outln!(
                            "Orderer/BatchSize.MaxMessageCount of {ch}: {} -> {n} (config block {})",
                            current.max_message_count,
                            block.header.as_ref().map_or(0, |h| h.number)
                        );
                        let cu = channel::try_batch_size_update(&block, ch, n)?;
                        use prost::Message as _;
                        fabric_protos::common::ConfigUpdateEnvelope {
                            config_update: cu.encode_to_vec(),
                            signatures: Vec::new(),
                        }
                    }
                    (None, None) => bail!("--file or --max-message-count is required"),
                };
                channel::submit_config_update(&mut client, ch, cue, &cosigners, signer)
                    .await
                    .map(Some)
            })
            .await?;
            Ok(resp.is_none_or(|r| report_status(&r)))
        }
        ChannelCmd::Fetch {
            target: what,
            output_file,
            output,
            timeout,
        } => {
            let fetch = async {
                let mut client = connect(&target.server).await?;
                channel::fetch(&mut client, ch, signer, what).await
            };
            let block = match timeout {
                Some(secs) => with_timeout(secs, &format!("fetching {what}"), fetch).await?,
                None => fetch.await?,
            };
            let file = output
                .or(output_file)
                .unwrap_or_else(|| PathBuf::from(what.default_file(ch)));
            write_block(&file, &block)?;
            outln!(
                "wrote block {} of channel {ch} to {}",
                block.header.as_ref().map_or(0, |h| h.number),
                file.display()
            );
            Ok(true)
        }
    }
}

fn print_block(s: &BlockSummary, quiet: bool) {
    if quiet {
        outln!("block {} txs {}", s.number, s.tx_count);
    } else {
        outln!("{}", serde_json::to_string(s).expect("summary serializes"));
    }
}
