//! Runs the client library and binary against a small in-process mock of the
//! AtomicBroadcast service (solo-style: batches of up to 10 envelopes or
//! every 20 ms, signed blocks, Fabric's Deliver seek semantics).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_common::block::{header_hash, new_block, LAST_CONFIG};
use fabric_common::devcrypto::{DevOrg, NodeOu};
use fabric_common::envelope::parse_envelope;
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{Block, Envelope, LastConfig, Metadata, OrdererBlockMetadata, Status};
use fabric_protos::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use fabric_protos::orderer::seek_info::SeekBehavior;
use fabric_protos::orderer::{
    deliver_response, seek_position, BroadcastResponse, DeliverResponse, SeekInfo, SeekPosition,
};
use orderer_client::bench::{self, BenchOpts};
use orderer_client::config::{DevNet, GlobalArgs, Target};
use orderer_client::conn::connect;
use orderer_client::counter::{self, CounterOpts};
use orderer_client::deliver::{self, DeliverOpts, Position};
use orderer_client::verify::sign_block;
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status as GrpcStatus, Streaming};

const CHANNEL: &str = "mychannel";

struct Ledger {
    blocks: Vec<Block>,
    pending: Vec<Vec<u8>>,
}

struct Mock {
    ledger: Mutex<Ledger>,
    height: watch::Sender<u64>,
    signer: LocalSigner,
    /// Corrupt the previous hash of this block number.
    tamper: Option<u64>,
    /// Answer every Nth envelope SERVICE_UNAVAILABLE although it was ordered
    /// (a lost acknowledgement), and count envelopes for it.
    flaky: Option<(u64, std::sync::atomic::AtomicU64)>,
}

impl Mock {
    fn cut(&self) {
        let mut l = self.ledger.lock().unwrap();
        if l.pending.is_empty() {
            return;
        }
        let data = std::mem::take(&mut l.pending);
        let prev = l.blocks.last().unwrap().header.clone().unwrap();
        let number = prev.number + 1;
        let mut prev_hash = header_hash(&prev);
        if self.tamper == Some(number) {
            prev_hash[0] ^= 1;
        }
        let mut b = new_block(number, prev_hash, data);
        let obm = OrdererBlockMetadata {
            last_config: Some(LastConfig { index: 0 }),
            consenter_metadata: vec![],
        };
        sign_block(&mut b, &self.signer, obm.encode_to_vec());
        b.metadata.as_mut().unwrap().metadata[LAST_CONFIG] = Metadata {
            value: LastConfig { index: 0 }.encode_to_vec(),
            signatures: vec![],
        }
        .encode_to_vec();
        l.blocks.push(b);
        let h = l.blocks.len() as u64;
        drop(l);
        self.height.send_replace(h);
    }

    fn height(&self) -> u64 {
        self.ledger.lock().unwrap().blocks.len() as u64
    }

    fn block(&self, n: u64) -> Block {
        self.ledger.lock().unwrap().blocks[n as usize].clone()
    }
}

#[derive(Clone)]
struct Svc(Arc<Mock>);

fn status(s: Status) -> i32 {
    s as i32
}

fn position(p: &Option<SeekPosition>, height: u64) -> Option<u64> {
    match p.as_ref()?.r#type.as_ref()? {
        seek_position::Type::Oldest(_) => Some(0),
        seek_position::Type::Newest(_) => Some(height - 1),
        seek_position::Type::Specified(s) => Some(s.number),
        _ => None,
    }
}

#[tonic::async_trait]
impl AtomicBroadcast for Svc {
    type BroadcastStream = ReceiverStream<Result<BroadcastResponse, GrpcStatus>>;
    type DeliverStream = ReceiverStream<Result<DeliverResponse, GrpcStatus>>;

    async fn broadcast(
        &self,
        req: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, GrpcStatus> {
        let mut input = req.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let mock = self.0.clone();
        tokio::spawn(async move {
            while let Some(Ok(env)) = input.next().await {
                let resp = match parse_envelope(&env) {
                    Ok(p) if p.channel_header.channel_id == CHANNEL => {
                        let full = {
                            let mut l = mock.ledger.lock().unwrap();
                            l.pending.push(env.encode_to_vec());
                            l.pending.len() >= 10
                        };
                        if full {
                            mock.cut();
                        }
                        let lose_ack = mock.flaky.as_ref().is_some_and(|(every, n)| {
                            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % every
                                == every - 1
                        });
                        BroadcastResponse {
                            status: status(if lose_ack {
                                Status::ServiceUnavailable
                            } else {
                                Status::Success
                            }),
                            info: String::new(),
                        }
                    }
                    Ok(_) => BroadcastResponse {
                        status: status(Status::NotFound),
                        info: "no such channel".into(),
                    },
                    Err(e) => BroadcastResponse {
                        status: status(Status::BadRequest),
                        info: e.to_string(),
                    },
                };
                let ok = resp.status == status(Status::Success);
                if tx.send(Ok(resp)).await.is_err() || !ok {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn deliver(
        &self,
        req: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, GrpcStatus> {
        let mut input = req.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let mock = self.0.clone();
        tokio::spawn(async move {
            let send = |r: deliver_response::Type| DeliverResponse { r#type: Some(r) };
            while let Some(Ok(env)) = input.next().await {
                let st = 'seek: {
                    let Ok(p) = parse_envelope(&env) else {
                        break 'seek Status::BadRequest;
                    };
                    if p.channel_header.channel_id != CHANNEL {
                        break 'seek Status::NotFound;
                    }
                    let Ok(si) = SeekInfo::decode(p.payload.data.as_slice()) else {
                        break 'seek Status::BadRequest;
                    };
                    let h = mock.height();
                    let (Some(start), Some(mut stop)) =
                        (position(&si.start, h), position(&si.stop, h))
                    else {
                        break 'seek Status::BadRequest;
                    };
                    if si.start == si.stop
                        && matches!(
                            si.start.as_ref().and_then(|s| s.r#type.as_ref()),
                            Some(seek_position::Type::Newest(_))
                        )
                    {
                        stop = start;
                    }
                    if start > h || stop < start {
                        break 'seek if start > h {
                            Status::NotFound
                        } else {
                            Status::BadRequest
                        };
                    }
                    let mut hrx = mock.height.subscribe();
                    let mut n = start;
                    loop {
                        while n >= *hrx.borrow_and_update() {
                            if si.behavior == SeekBehavior::FailIfNotReady as i32 {
                                break 'seek Status::NotFound;
                            }
                            if hrx.changed().await.is_err() {
                                break 'seek Status::ServiceUnavailable;
                            }
                        }
                        if tx
                            .send(Ok(send(deliver_response::Type::Block(mock.block(n)))))
                            .await
                            .is_err()
                        {
                            return;
                        }
                        if n == stop {
                            break 'seek Status::Success;
                        }
                        n += 1;
                    }
                };
                if tx
                    .send(Ok(send(deliver_response::Type::Status(st as i32))))
                    .await
                    .is_err()
                    || st != Status::Success
                {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct Net {
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    dev_dir: PathBuf,
    client_msp: PathBuf,
    orderer_org_msp: PathBuf,
    other_org_msp: PathBuf,
}

async fn start(tamper: Option<u64>) -> Net {
    start_with(tamper, None).await
}

async fn start_with(tamper: Option<u64>, flaky_every: Option<u64>) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let org = DevOrg::create(&dir.path().join("org"), "SampleOrg", "example.com").unwrap();
    let other = DevOrg::create(&dir.path().join("other"), "OtherOrg", "other.com").unwrap();
    let omsp = org.issue("orderer.example.com", NodeOu::Orderer).unwrap();
    let client_msp = org.issue("User1@example.com", NodeOu::Client).unwrap();
    let signer = LocalSigner::load(&omsp, "SampleOrg").unwrap();
    let genesis = new_block(0, vec![], vec![b"genesis".to_vec()]);
    let (height, _) = watch::channel(1u64);
    let mock = Arc::new(Mock {
        ledger: Mutex::new(Ledger {
            blocks: vec![genesis],
            pending: vec![],
        }),
        height,
        signer,
        tamper,
        flaky: flaky_every.map(|k| (k, std::sync::atomic::AtomicU64::new(0))),
    });
    let ticker = mock.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ticker.cut();
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = AtomicBroadcastServer::new(Svc(mock)).max_decoding_message_size(100 << 20);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    // devnet.json for the CLI test.
    let dev_dir = dir.path().join("dev");
    std::fs::create_dir_all(&dev_dir).unwrap();
    let dn = DevNet {
        channel_id: CHANNEL.into(),
        client_msp_dir: client_msp.clone(),
        client_mspid: "SampleOrg".into(),
        orderer_address: Some(addr.to_string()),
        orderer_cert_pem: Some(
            String::from_utf8(
                std::fs::read(omsp.join("signcerts/orderer.example.com-cert.pem")).unwrap(),
            )
            .unwrap(),
        ),
    };
    std::fs::write(
        dev_dir.join("devnet.json"),
        serde_json::to_vec_pretty(&dn).unwrap(),
    )
    .unwrap();
    Net {
        addr,
        dev_dir,
        client_msp,
        orderer_org_msp: org.msp_dir(),
        other_org_msp: other.msp_dir(),
        _dir: dir,
    }
}

fn target(net: &Net, trust_msp: Option<&PathBuf>) -> Target {
    let args = GlobalArgs {
        server: Some(net.addr.to_string()),
        channel: Some(CHANNEL.into()),
        mspdir: Some(net.client_msp.clone()),
        mspid: Some("SampleOrg".into()),
        orderer_mspdir: trust_msp.cloned(),
        ..Default::default()
    };
    args.resolve_in(&net.dev_dir).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_passes_on_one_and_several_streams() {
    let net = start(None).await;
    let t = target(&net, Some(&net.orderer_org_msp));
    let mut opts = CounterOpts::new(&t, 500);
    opts.timeout = Duration::from_secs(30);
    let r = counter::run(opts.clone()).await.unwrap();
    assert!(r.ok(), "{:#?}", r);
    assert_eq!(
        (r.delivered, r.acked_success, r.start_height),
        (500, 500, 1)
    );
    assert!(
        r.blocks >= 50 && r.end_height == r.start_height + r.blocks,
        "{r:?}"
    );
    assert_eq!(r.block_signers, vec!["SampleOrg".to_string()]);

    opts.streams = 3;
    opts.window = 7;
    let r2 = counter::run(opts).await.unwrap();
    assert!(r2.ok(), "{:#?}", r2);
    assert_eq!(r2.start_height, r.end_height);
    println!("{}", r2.summary_line());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_detects_untrusted_signer_broken_links_and_rejections() {
    let net = start(Some(3)).await;
    // Signed by a certificate the trust does not cover.
    let t = target(&net, Some(&net.other_org_msp));
    let mut opts = CounterOpts::new(&t, 100);
    opts.timeout = Duration::from_secs(10);
    let r = counter::run(opts.clone()).await.unwrap();
    assert!(!r.ok());
    assert!(
        r.violations.iter().any(|v| v.contains("not trusted")),
        "{:?}",
        r.violations
    );
    assert!(
        r.violations
            .iter()
            .any(|v| v.contains("block 3: previous_hash")),
        "{:?}",
        r.violations
    );
    assert_eq!(r.delivered, 100); // all values still arrive

    // Unknown channel: NOT_FOUND on the first envelope (mock: only Broadcast rejects it here).
    opts.channel = "nochannel".into();
    let err = counter::run(opts).await;
    assert!(
        err.is_err(),
        "deliver of an unknown channel must fail: {err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_rejections_are_counted() {
    let net = start(None).await;
    let t = target(&net, None);
    let client = connect(&t.server).await.unwrap();
    let envs: Vec<_> = (0..5u64)
        .map(|i| {
            let ch = if i == 2 { "nochannel" } else { CHANNEL };
            (
                i,
                orderer_client::counter::counter_envelope(&t.signer, ch, "x", i),
            )
        })
        .collect();
    let st =
        orderer_client::broadcast::run_stream(client, futures::stream::iter(envs), 10, None).await;
    assert_eq!(st.success, 2);
    assert_eq!(st.failures.get("NOT_FOUND"), Some(&1));
    assert!(st
        .first_failure
        .as_deref()
        .unwrap()
        .starts_with("tag 2: NOT_FOUND"));
    assert!(st.closed_early);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_measures_acks_and_deliveries() {
    let net = start(None).await;
    let t = target(&net, Some(&net.orderer_org_msp));
    let mut opts = BenchOpts::new(&t, 2001);
    opts.streams = 2;
    opts.window = 50;
    opts.size = 200;
    opts.trust = Some(t.trust.clone());
    opts.drain_timeout = Duration::from_secs(20);
    let r = bench::run(opts.clone()).await.unwrap();
    assert!(r.ok(true), "{r}");
    assert_eq!((r.sent, r.success, r.delivered), (2001, 2001, 2001));
    assert_eq!(r.ack_latency.count, 2001);
    assert_eq!(r.delivered_latency.count, 2001);
    assert!(r.acked_tx_per_sec > 0.0 && r.delivered_latency.p50_ms > 0.0);
    println!("{r}");

    opts.pregenerate = true;
    opts.count = Some(300);
    let r = bench::run(opts.clone()).await.unwrap();
    assert!(r.ok(true) && r.delivered == 300, "{r}");

    opts.pregenerate = false;
    opts.count = None;
    opts.duration = Some(Duration::from_millis(500));
    let r = bench::run(opts).await.unwrap();
    assert!(
        r.ok(true) && r.success > 0 && r.delivered == r.success,
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_runs_and_reports_status() {
    let net = start(None).await;
    let t = target(&net, Some(&net.orderer_org_msp));
    let mut opts = CounterOpts::new(&t, 50);
    opts.timeout = Duration::from_secs(10);
    assert!(counter::run(opts).await.unwrap().ok());
    let mut client = connect(&t.server).await.unwrap();
    let height = deliver::channel_height(&mut client, CHANNEL, &t.signer)
        .await
        .unwrap();
    assert!(height >= 6);
    let dopts = DeliverOpts {
        channel: CHANNEL.into(),
        start: Position::Oldest,
        stop: Position::Newest,
        fail_if_not_ready: false,
        best_effort: false,
        trust: Some(t.trust.clone()),
    };
    let mut seen = Vec::new();
    let r = deliver::run(&mut client, &t.signer, &dopts, |_, s, v| {
        assert!(v.is_none());
        seen.push(s.number)
    })
    .await
    .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.blocks, height);
    assert_eq!(seen, (0..height).collect::<Vec<_>>());
    assert_eq!(r.txs, 51);
    // FAIL_IF_NOT_READY beyond the height: NOT_FOUND after the existing blocks.
    let dopts = DeliverOpts {
        start: Position::Specified(height - 1),
        stop: Position::Specified(height + 5),
        fail_if_not_ready: true,
        ..dopts
    };
    let r = deliver::run(&mut client, &t.signer, &dopts, |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(r.blocks, 1);
    assert_eq!(r.status, Some(Status::NotFound as i32));
    assert!(!r.ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_uses_the_dev_network_with_no_flags() {
    let net = start(None).await;
    let bin = env!("CARGO_BIN_EXE_orderer-client");
    let run = |args: Vec<&'static str>| {
        let dev = net.dev_dir.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(bin)
                .args(args)
                .env("FABRIC_ORDERER_DEV_DIR", dev)
                .output()
                .unwrap()
        })
    };
    let out = run(vec!["counter", "-n", "300", "--streams", "2"])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("counter: PASS n=300"), "{stdout}");

    let out = run(vec!["channel-info"]).await.unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(info["height"].as_u64().unwrap() >= 31);

    let out = run(vec!["deliver", "--quiet", "--verify-signatures"])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("block 0 txs 1\n") && stdout.contains("status: SUCCESS"),
        "{stdout}"
    );

    let out = run(vec![
        "broadcast",
        "--count",
        "400",
        "--size",
        "64",
        "--json",
    ])
    .await
    .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{r}");
    assert_eq!(r["delivered"], 400);

    // Without a dev network: a clear error, exit code 2.
    let out = std::process::Command::new(bin)
        .arg("channel-info")
        .env("FABRIC_ORDERER_DEV_DIR", net.dev_dir.join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("devnet.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliable_load_resends_and_logs_each_acknowledged_txid_once() {
    // Every 7th envelope is ordered but answered SERVICE_UNAVAILABLE, and the
    // first address is dead: the load must move on, re-send, and log every
    // envelope exactly once when it is finally answered SUCCESS.
    let net = start_with(None, Some(7)).await;
    let t = target(&net, None);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let ack_log = dir.path().join("acks.log");
    let opts = orderer_client::reliable::ReliableOpts {
        servers: vec![dead, net.addr.to_string()],
        channel: CHANNEL.into(),
        signer: t.signer.clone(),
        size: 32,
        streams: 2,
        batch: 10,
        duration: Duration::from_millis(1500),
        rate: Some(400.0),
        response_timeout: Duration::from_secs(5),
        resend_for: Duration::from_secs(30),
        ack_log: ack_log.clone(),
        resend_log: Some(dir.path().join("resent.log")),
    };
    let r = orderer_client::reliable::run(opts).await.unwrap();
    println!("{r}");
    assert!(r.made >= 20, "{r}");
    assert_eq!(r.given_up, 0, "{r}");
    assert_eq!(r.acknowledged, r.made, "{r}");
    assert!(r.resent > 0 && r.broken_batches > 0, "{r}");
    assert!(
        r.refused.get("SERVICE_UNAVAILABLE").copied().unwrap_or(0) > 0,
        "{r}"
    );
    let lines: Vec<String> = std::fs::read_to_string(&ack_log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let distinct: std::collections::HashSet<&String> = lines.iter().collect();
    assert_eq!(lines.len() as u64, r.made);
    assert_eq!(distinct.len(), lines.len(), "an ID logged twice");
    // Every acknowledged ID is in the mock's chain; the lost acknowledgements
    // put some there twice (the mock has no tx-ID window: the orderer's job).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut chain = std::collections::HashMap::<String, u32>::new();
    let mut c = connect(&t.server).await.unwrap();
    let opts = DeliverOpts {
        channel: CHANNEL.into(),
        start: Position::Specified(1),
        stop: Position::Newest,
        fail_if_not_ready: false,
        best_effort: false,
        trust: None,
    };
    deliver::run(&mut c, &t.signer, &opts, |b, _, _| {
        for e in &b.data.as_ref().unwrap().data {
            let env = Envelope::decode(e.as_slice()).unwrap();
            *chain
                .entry(orderer_client::reliable::txid(&env))
                .or_default() += 1;
        }
    })
    .await
    .unwrap();
    assert!(lines.iter().all(|id| chain.contains_key(id)));
    assert!(chain.values().any(|n| *n > 1));
    // The resend log names every re-send, so each extra copy in the chain is
    // accounted for by a re-send of that ID.
    let mut resent = std::collections::HashMap::<String, u32>::new();
    let log = std::fs::read_to_string(dir.path().join("resent.log")).unwrap();
    for id in log.lines() {
        *resent.entry(id.to_string()).or_default() += 1;
    }
    assert_eq!(resent.values().sum::<u32>() as u64, r.resent, "{r}");
    for (id, n) in &chain {
        let allowed = 1 + resent.get(id).copied().unwrap_or(0);
        assert!(*n <= allowed, "{id}: {n} copies, re-sent {}", allowed - 1);
    }
}
