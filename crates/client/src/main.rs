//! `orderer-client`: sample and test client for the orderer's
//! `AtomicBroadcast` service (Fabric's `broadcast_msg` and `deliver_stdout`
//! sample clients, plus a counter check and channel info).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use fabric_common::block::header_hash;
use orderer_client::bench::{self, BenchOpts};
use orderer_client::config::GlobalArgs;
use orderer_client::conn::connect;
use orderer_client::counter::{self, CounterOpts};
use orderer_client::deliver::{self, BlockSummary, DeliverOpts, Position};
use orderer_client::status_name;

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
        /// Total envelopes
        #[arg(long, conflicts_with = "duration")]
        count: Option<u64>,
        /// Send for this many seconds
        #[arg(long)]
        duration: Option<f64>,
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
    },
    /// Print the channel height and newest block
    ChannelInfo,
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

async fn real_main(cli: Cli) -> Result<bool> {
    let target = cli.global.resolve()?;
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
            let report = deliver::run(&mut client, &target.signer, &opts, |_, s, violation| {
                print_block(s, quiet);
                if let Some(v) = violation {
                    outln!("violation: {v}");
                }
            })
            .await?;
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
            no_follow,
            drain_timeout,
            json,
        } => {
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
    }
}

fn print_block(s: &BlockSummary, quiet: bool) {
    if quiet {
        outln!("block {} txs {}", s.number, s.tx_count);
    } else {
        outln!("{}", serde_json::to_string(s).expect("summary serializes"));
    }
}
