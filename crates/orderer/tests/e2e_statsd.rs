//! End-to-end: `Metrics.Provider: statsd` (Fabric's `ORDERER_METRICS_*`
//! variables): the real orderer writes Fabric-named statsd lines to a UDP
//! listener (and a TCP one) run by the test.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use fabric_common::envelope::{seek_newest, seek_oldest};
use fabric_protos::common::{Envelope, Status};
use fabric_protos::orderer::SeekInfo;
use support::*;

fn statsd_env(network: &str, addr: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ORDERER_METRICS_PROVIDER", "statsd".into()),
        ("ORDERER_METRICS_STATSD_NETWORK", network.into()),
        ("ORDERER_METRICS_STATSD_ADDRESS", addr.into()),
        ("ORDERER_METRICS_STATSD_WRITEINTERVAL", "500ms".into()),
        ("ORDERER_METRICS_STATSD_PREFIX", "osn1.".into()),
    ]
}

fn start(net: &Net, name: &str, env: &[(&'static str, String)]) -> Node {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Node::start_env(
        net,
        &net.dir.path().join(name),
        free_port(),
        "SampleOrg",
        true,
        &env,
        true,
    )
}

/// `name -> (type, values)` of statsd lines.
fn parse(lines: &[String]) -> HashMap<String, (String, Vec<f64>)> {
    let mut out: HashMap<String, (String, Vec<f64>)> = HashMap::new();
    for l in lines {
        let (name, rest) = l.split_once(':').unwrap_or_else(|| panic!("line {l:?}"));
        let (value, kind) = rest.split_once('|').unwrap_or_else(|| panic!("line {l:?}"));
        let e = out
            .entry(name.into())
            .or_insert_with(|| (kind.into(), vec![]));
        assert_eq!(e.0, kind, "{l}");
        e.1.push(value.parse().unwrap_or_else(|_| panic!("value in {l:?}")));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabric_named_metrics_reach_a_udp_and_a_tcp_listener() {
    let net = net(100, 10, 1 << 20);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr = udp.local_addr().unwrap().to_string();
    let node = start(&net, "ledger", &statsd_env("udp", &addr));

    let mut client = node.client().await;
    let envs: Vec<Envelope> = (0..20u32)
        .map(|i| tx(&net.client, CHANNEL, format!("statsd:{i}").into_bytes()))
        .collect();
    let resps = broadcast(&mut client, envs).await;
    assert!(resps.iter().all(|r| r.status == Status::Success as i32));
    let seek = SeekInfo {
        start: Some(seek_oldest()),
        stop: Some(seek_newest()),
        ..Default::default()
    };
    let (blocks, status) = deliver(&mut client, &net.client, CHANNEL, seek).await;
    assert_eq!(status, Some(Status::Success));
    let height = blocks.len() as f64;

    // Collect until the writes after the traffic are in (several intervals).
    let mut lines = Vec::new();
    let until = Instant::now() + Duration::from_secs(4);
    let mut buf = [0u8; 65536];
    while Instant::now() < until {
        if let Ok(n) = udp.recv(&mut buf) {
            let text = String::from_utf8(buf[..n].to_vec()).unwrap();
            lines.extend(text.lines().filter(|l| !l.is_empty()).map(String::from));
        }
    }
    let m = parse(&lines);
    let get = |name: &str| {
        m.get(name)
            .unwrap_or_else(|| panic!("no {name} in {:#?}", m.keys().collect::<Vec<_>>()))
    };
    let ch = CHANNEL;
    // Counters: increases, summing to the traffic.
    let processed = get(&format!(
        "osn1.broadcast.processed_count.{ch}.MESSAGE.SUCCESS"
    ));
    assert_eq!(processed.0, "c");
    assert_eq!(processed.1.iter().sum::<f64>(), 20.0);
    let received =
        get("osn1.grpc.server.stream_requests_received.orderer_AtomicBroadcast.Broadcast");
    assert_eq!(
        (received.0.as_str(), received.1.iter().sum::<f64>()),
        ("c", 1.0)
    );
    let deliver_done = get(&format!(
        "osn1.deliver.requests_completed.{ch}.false.block.true"
    ));
    assert_eq!(deliver_done.1.iter().sum::<f64>(), 1.0);
    // Histograms: one timing per observation, in seconds.
    let validate = get(&format!(
        "osn1.broadcast.validate_duration.{ch}.MESSAGE.SUCCESS"
    ));
    assert_eq!(validate.0, "ms");
    assert_eq!(validate.1.len(), 20);
    assert!(validate.1.iter().all(|s| (0.0..5.0).contains(s)));
    let commits = get(&format!("osn1.ledger.blockstorage_commit_time.{ch}"));
    assert_eq!(
        commits.1.len() as f64,
        height - 1.0,
        "a commit time per block after genesis"
    );
    get(&format!("osn1.blockcutter.block_fill_duration.{ch}"));
    get("osn1.grpc.server.stream_request_duration.orderer_AtomicBroadcast.Broadcast.OK");
    // Gauges: current values.
    let h = get(&format!("osn1.ledger.blockchain_height.{ch}"));
    assert_eq!((h.0.as_str(), *h.1.last().unwrap()), ("g", height));
    let version = format!(
        "osn1.fabric_version.{}",
        env!("CARGO_PKG_VERSION").replace('.', "_")
    );
    assert_eq!(get(&version).1.last(), Some(&1.0));
    drop(node);

    // TCP: one line per metric on a connection.
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    let _node = start(&net, "ledger-tcp", &statsd_env("tcp", &addr));
    let (conn, _) = tcp.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut first = String::new();
    BufReader::new(conn).read_line(&mut first).unwrap();
    assert!(first.starts_with("osn1."), "{first:?}");
    assert!(
        first.trim_end().ends_with("|g") || first.trim_end().ends_with("|c"),
        "{first:?}"
    );
}
