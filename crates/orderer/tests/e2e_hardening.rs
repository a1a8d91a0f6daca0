//! End-to-end, on the real binary: the attacks of issue #16, each repeated
//! on 127.0.0.1 and shown bounded while a normal client keeps being served.
//!
//! * silent gRPC connections (no HTTP/2 preface, stalled TLS handshakes)
//!   are closed within `General.ConnectionTimeout`; failed handshakes are
//!   logged with the remote address;
//! * `General.Limits.MaxConnections`, `MaxConcurrentStreams`, `MaxStreams`;
//! * Deliver streams that never read pin at most `DELIVER_STREAM_BLOCKS` blocks
//!   each (RSS measured);
//! * bytes that are not an `Envelope` end Broadcast and Deliver with
//!   INTERNAL, a message over `MaxRecvMsgSize` with RESOURCE_EXHAUSTED;
//! * idle operations connections are closed; `/logspec` floods do not
//!   slow Deliver.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use fabric_common::envelope::{seek_envelope, seek_newest, seek_oldest};
use fabric_protos::common::Status;
use fabric_protos::orderer::SeekInfo;
use prost::Message;
use support::attack::*;
use support::*;

const BROADCAST: &str = "/orderer.AtomicBroadcast/Broadcast";
const DELIVER: &str = "/orderer.AtomicBroadcast/Deliver";

fn log_of(node: &Node) -> String {
    std::fs::read_to_string(&node.log).unwrap_or_default()
}

/// An idle Broadcast stream: its sender (nothing is ever sent) and responses.
type IdleStream = (
    tokio::sync::mpsc::Sender<fabric_protos::common::Envelope>,
    tonic::Streaming<fabric_protos::orderer::BroadcastResponse>,
);

/// Opens `count` Broadcast streams round-robin over `clients` and sends
/// nothing on them. Returns the streams still open and how many were refused
/// with RESOURCE_EXHAUSTED, at the call or as the stream's first message
/// (awaited for `first_message`); any other answer fails the test.
async fn idle_broadcast_streams(
    clients: &mut [fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient<
        tonic::transport::Channel,
    >],
    count: usize,
    first_message: Duration,
) -> (Vec<IdleStream>, usize) {
    let mut open = Vec::new();
    let mut refused = 0;
    for i in 0..count {
        let n = clients.len();
        let c = &mut clients[i % n];
        let (tx, rx) = tokio::sync::mpsc::channel::<fabric_protos::common::Envelope>(1);
        match c
            .broadcast(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
        {
            Ok(resp) => open.push((tx, resp.into_inner())),
            Err(st) => {
                assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
                refused += 1;
            }
        }
    }
    let mut still_open = Vec::new();
    for (tx, mut s) in open {
        match tokio::time::timeout(first_message, s.message()).await {
            Err(_) => still_open.push((tx, s)),
            Ok(Err(st)) if st.code() == tonic::Code::ResourceExhausted => refused += 1,
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
    (still_open, refused)
}

/// Block 0 over a fresh connection: how long it took.
async fn deliver_block0(node: &Node, net: &Net) -> Duration {
    let t = Instant::now();
    let mut c = node.client().await;
    let (blocks, status) = deliver(&mut c, &net.client, CHANNEL, seek(0, Some(0))).await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(blocks.len(), 1);
    t.elapsed()
}

/// Waits until the peer closes `s` (EOF or error); how long that took.
fn wait_closed(mut s: std::net::TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(t.elapsed()),
            Ok(_) => continue, // e.g. the server's SETTINGS frame
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => return Some(t.elapsed()),
        }
    }
}

/// Whether the peer has closed `s` (without waiting).
fn closed_now(mut s: &std::net::TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    closed
}

// ---------------------------------------------------------------- raw HTTP/2 gRPC --

fn grpc_frame(msg: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + msg.len());
    b.put_u8(0);
    b.put_u32(msg.len() as u32);
    b.put_slice(msg);
    b.freeze()
}

async fn h2_client(port: u16, window: u32) -> h2::client::SendRequest<Bytes> {
    h2_client_task(port, window).await.0
}

/// As [`h2_client`], with the connection's task (abort it to close the
/// connection).
async fn h2_client_task(
    port: u16,
    window: u32,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<()>) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (client, conn) = h2::client::Builder::new()
        .initial_window_size(window)
        .initial_connection_window_size(window)
        .handshake(tcp)
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (client, task)
}

/// Opens a gRPC call on `path` and sends `body` (stream left open).
async fn h2_call(
    client: &mut h2::client::SendRequest<Bytes>,
    port: u16,
    path: &str,
    body: Bytes,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let mut c = client.clone().ready().await.unwrap();
    let (resp, mut send) = c.send_request(req, false).unwrap();
    *client = c;
    send.send_data(body, false).unwrap();
    (resp, send)
}

/// Reads a whole response: the gRPC messages and the `grpc-status`.
async fn h2_finish(resp: h2::client::ResponseFuture) -> (Vec<Vec<u8>>, Option<i32>) {
    h2_finish_within(resp, Duration::from_secs(10)).await
}

/// As [`h2_finish`], the response headers expected within `limit`.
async fn h2_finish_within(
    resp: h2::client::ResponseFuture,
    limit: Duration,
) -> (Vec<Vec<u8>>, Option<i32>) {
    let resp = tokio::time::timeout(limit, resp)
        .await
        .expect("response headers")
        .unwrap();
    if let Some(s) = resp.headers().get("grpc-status") {
        return (vec![], s.to_str().unwrap().parse().ok());
    }
    let mut body = resp.into_body();
    let mut data = BytesMut::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.data())
        .await
        .expect("response data")
    {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = tokio::time::timeout(Duration::from_secs(10), body.trailers())
        .await
        .expect("trailers")
        .unwrap();
    let status = trailers
        .and_then(|t| t.get("grpc-status").cloned())
        .and_then(|v| v.to_str().ok().and_then(|s| s.parse().ok()));
    let mut msgs = Vec::new();
    let mut rest = &data[..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        msgs.push(rest[5..5 + len].to_vec());
        rest = &rest[5 + len..];
    }
    (msgs, status)
}

// ------------------------------------------------------------------------- tests --

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_connections_are_closed_within_connection_timeout() {
    let net = net(100, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let ops = free_port();
    let ops_addr = format!("127.0.0.1:{ops}");
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[
            ("ORDERER_GENERAL_CONNECTIONTIMEOUT", "1s"),
            ("ORDERER_OPERATIONS_LISTENADDRESS", &ops_addr),
        ],
        true,
    );
    // 200 connections that never send the preface, one that sends half of it.
    let mut silent: Vec<_> = (0..200)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut half = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    silent.push(half);
    // And one that sends the preface but not the SETTINGS frame after it.
    let mut no_settings = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    no_settings
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    silent.push(no_settings);
    // A normal client is served meanwhile.
    let took = deliver_block0(&node, &net).await;
    assert!(took < Duration::from_secs(2), "deliver took {took:?}");
    let closes: Vec<Duration> = tokio::task::spawn_blocking(move || {
        silent
            .into_iter()
            .map(|s| wait_closed(s, Duration::from_secs(5)).expect("connection left open"))
            .collect()
    })
    .await
    .unwrap();
    let slowest = closes.iter().max().unwrap();
    eprintln!(
        "202 silent gRPC connections closed, the last after {slowest:?} (ConnectionTimeout 1s)"
    );
    // Measured from after all were opened: at most the timeout, plus slack.
    assert!(*slowest < Duration::from_secs(3), "{slowest:?}");
    let log = log_of(&node);
    assert!(
        log.contains("did not send the HTTP/2 preface"),
        "no preface-timeout log: {log}"
    );

    // The operations port: 300 idle connections are closed after the idle
    // timeout, while /healthz keeps answering.
    let idle: Vec<_> = (0..300)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", ops)).unwrap())
        .collect();
    let t = Instant::now();
    let healthz = {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", ops)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(healthz.starts_with("HTTP/1.1 200"), "{healthz}");
    let closes: Vec<Duration> = tokio::task::spawn_blocking(move || {
        idle.into_iter()
            .map(|s| wait_closed(s, Duration::from_secs(20)).expect("ops connection left open"))
            .collect()
    })
    .await
    .unwrap();
    let slowest = t.elapsed().min(*closes.iter().max().unwrap() + t.elapsed());
    eprintln!(
        "300 idle operations connections closed within {:?}",
        t.elapsed()
    );
    assert!(slowest < Duration::from_secs(13), "{slowest:?}");
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_and_stream_limits() {
    let net = net(100, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let mut node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[
            ("ORDERER_GENERAL_CONNECTIONTIMEOUT", "4s"),
            ("ORDERER_GENERAL_LIMITS_MAXCONNECTIONS", "20"),
            ("ORDERER_GENERAL_LIMITS_MAXCONCURRENTSTREAMS", "10"),
            ("ORDERER_GENERAL_LIMITS_MAXSTREAMS", "25"),
        ],
        true,
    );
    let pid = node.child.id();
    // Let the start-up probe's connection go, then 25 silent connections:
    // 20 fill the slots, the others are closed at once; so is one more.
    std::thread::sleep(Duration::from_millis(500));
    let mut silent: Vec<_> = (0..25)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let open_silent = silent.iter().filter(|s| !closed_now(s)).count();
    assert!((15..=20).contains(&open_silent), "{open_silent} of 25 kept");
    // A slot still held by the probe then (a loaded machine) is taken now.
    for _ in open_silent..20 {
        silent.push(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    }
    std::thread::sleep(Duration::from_millis(100));
    let extra = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Closed at once, long before the 4 s timeout would close it.
    let closed = wait_closed(extra, Duration::from_secs(3))
        .unwrap_or_else(|| panic!("21st connection kept: {}", log_of(&node)));
    assert!(closed < Duration::from_secs(2), "{closed:?}");
    // Once the timeout has closed the silent ones, clients are served.
    std::thread::sleep(Duration::from_millis(4300).saturating_sub(closed));
    drop(silent);
    deliver_block0(&node, &net).await;

    // Streams: 10 per connection, 25 in total.
    let base = rss_mib(pid);
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(node.client().await);
    }
    let mut open = Vec::new();
    let mut refused = 0;
    for i in 0..30 {
        let c = &mut clients[i / 10];
        let (tx, rx) = tokio::sync::mpsc::channel::<fabric_protos::common::Envelope>(1);
        let call = c.broadcast(tokio_stream::wrappers::ReceiverStream::new(rx));
        match tokio::time::timeout(Duration::from_secs(5), call).await {
            Ok(Ok(resp)) => {
                let mut s = resp.into_inner();
                // The refusal may come as the first message.
                match tokio::time::timeout(Duration::from_millis(100), s.message()).await {
                    Err(_) => open.push((tx, s)),
                    Ok(Err(st)) => {
                        assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
                        refused += 1;
                    }
                    Ok(Ok(m)) => panic!("unexpected {m:?}"),
                }
            }
            Ok(Err(st)) => {
                assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
                refused += 1;
            }
            Err(_) => panic!("stream {i} neither opened nor refused"),
        }
    }
    assert_eq!(open.len(), 25);
    assert_eq!(refused, 5);
    assert!(log_of(&node).contains("General.Limits.MaxStreams reached"));
    eprintln!(
        "25 idle Broadcast streams: RSS {base:.1} -> {:.1} MiB; 5 refused with RESOURCE_EXHAUSTED",
        rss_mib(pid)
    );
    // An open stream still works; closing streams frees slots.
    let (tx, mut s) = open.pop().unwrap();
    tx.send(tx_env(&net, b"after limit")).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), s.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(r.status, Status::Success as i32);
    drop((tx, s));
    open.truncate(10);
    tokio::time::sleep(Duration::from_millis(200)).await;
    deliver_block0(&node, &net).await;

    // Per connection: an 11th stream on a connection with 10 open waits
    // (h2 refuses it; the gRPC client waits for a free stream).
    let mut c = node.client().await;
    let mut mine = Vec::new();
    for _ in 0..10 {
        let (tx, rx) = tokio::sync::mpsc::channel::<fabric_protos::common::Envelope>(1);
        let s = c
            .broadcast(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        mine.push((tx, s));
    }
    let mut c2 = c.clone();
    let eleventh = tokio::spawn(async move {
        let (tx, rx) = tokio::sync::mpsc::channel::<fabric_protos::common::Envelope>(1);
        let s = c2
            .broadcast(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
        (tx, s)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !eleventh.is_finished(),
        "11th stream on one connection opened"
    );
    mine.pop();
    let (_tx, s) = tokio::time::timeout(Duration::from_secs(5), eleventh)
        .await
        .expect("11th stream after one closed")
        .unwrap();
    s.unwrap();
    assert!(node.alive());
}

fn tx_env(net: &Net, data: &[u8]) -> fabric_protos::common::Envelope {
    tx(&net.client, CHANNEL, data.to_vec())
}

/// Opens `n` Deliver streams of every block on one connection whose
/// HTTP/2 window (64 KiB) is never opened again.
async fn stalled_deliver_streams(
    port: u16,
    net: &Net,
    n: usize,
) -> (
    tokio::task::JoinHandle<()>,
    h2::client::SendRequest<Bytes>,
    Vec<(h2::client::ResponseFuture, h2::SendStream<Bytes>)>,
) {
    let (mut h2c, task) = h2_client_task(port, 65_535).await;
    let mut calls = Vec::new();
    for _ in 0..n {
        let env = seek_envelope(CHANNEL, Some(&net.client), &seek(0, None), vec![]);
        calls.push(h2_call(&mut h2c, port, DELIVER, grpc_frame(&env.encode_to_vec())).await);
    }
    (task, h2c, calls)
}

const BLOCK: usize = 4 << 20;
const BLOCKS: usize = 12;

fn mib(blocks: usize) -> f64 {
    (blocks * BLOCK) as f64 / (1 << 20) as f64
}

/// Deliver streams of every block that never read, against a fresh node.
struct DeliverAttack<'a> {
    /// Connections, each with `streams` such streams.
    conns: usize,
    streams: usize,
    /// Blocks of `block` bytes (one envelope each) on the channel.
    block: usize,
    blocks: usize,
    env: &'a [(&'a str, &'a str)],
    /// Whether another client's Deliver is served during the attack (not
    /// when the attack spends the node's byte budget).
    others_served: bool,
}

/// What the node held while attacked.
#[derive(Debug)]
struct DeliverAttackSeen {
    blocks_held: u64,
    bytes_held: u64,
    base: f64,
    peak: f64,
}

impl DeliverAttack<'_> {
    /// Runs it: the blocks and bytes the node holds for the attacker once
    /// steady, its RSS before and at its peak. A normal client is served
    /// meanwhile on its own connection, and nothing stays held once the
    /// attacker leaves.
    async fn run(&self) -> DeliverAttackSeen {
        let net = net(100, 10, (self.block + (1 << 20)) as u32);
        let n = OpsNode::start(&net, self.env);
        let mut c = n.node.client().await;
        for i in 0..self.blocks {
            let env = tx_env(&net, &vec![i as u8; self.block]);
            let rs = broadcast(&mut c, vec![env]).await;
            assert_eq!(rs[0].status, Status::Success as i32);
        }
        drop(c);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let base = n.rss();
        let mut attackers = Vec::new();
        for _ in 0..self.conns {
            attackers.push(stalled_deliver_streams(n.port, &net, self.streams).await);
        }
        let peak = peak_rss(n.pid(), base).await;
        let blocks_held = n.metric("orderer_deliver_blocks_buffered");
        let bytes_held = n.metric("orderer_deliver_bytes_buffered");
        if self.others_served {
            let took = deliver_block0(&n.node, &net).await;
            assert!(took < Duration::from_secs(2), "{took:?}");
        }
        // Broadcast is not affected.
        let mut c = n.node.client().await;
        assert_eq!(
            broadcast(&mut c, vec![tx_env(&net, b"still ordering")]).await[0].status,
            Status::Success as i32
        );
        let seen = DeliverAttackSeen {
            blocks_held,
            bytes_held,
            base,
            peak,
        };
        eprintln!(
            "{} connection(s) x {} non-reading Deliver streams, {} blocks of {:.1} MiB: {seen:?} (RSS +{:.1} MiB)",
            self.conns,
            self.streams,
            self.blocks,
            self.block as f64 / (1 << 20) as f64,
            peak - base
        );
        // The attacker goes away: its connections close, nothing stays held.
        for a in &attackers {
            a.0.abort();
        }
        drop(attackers);
        n.wait_metric_zero("orderer_deliver_blocks_buffered", Duration::from_secs(5))
            .await;
        assert_eq!(n.metric("orderer_deliver_bytes_buffered"), 0);
        assert_eq!(deliver_all(&n.node, &net).await.len(), self.blocks + 2);
        seen
    }
}

/// The per-stream and per-connection bounds, one connection.
async fn deliver_attack(streams: usize) -> (u64, f64, f64) {
    let seen = DeliverAttack {
        conns: 1,
        streams,
        block: BLOCK,
        blocks: BLOCKS,
        env: &[],
        others_served: true,
    }
    .run()
    .await;
    (seen.blocks_held, seen.base, seen.peak)
}

/// Many connections of non-reading Deliver streams: each connection is
/// held to 16 blocks, and all of them to
/// `General.Limits.MaxDeliverBufferedBytes` (here 16 MiB) plus the blocks
/// being read at once (4), whatever the number of connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliver_blocks_of_all_connections_are_bounded_in_bytes() {
    let seen = DeliverAttack {
        conns: 4,
        streams: 4,
        block: BLOCK,
        blocks: BLOCKS,
        env: &[("ORDERER_GENERAL_LIMITS_MAXDELIVERBUFFEREDBYTES", "16 MB")],
        others_served: false,
    }
    .run()
    .await;
    // Without the byte budget: 4 x 16 blocks (+256 MiB).
    let bound = (16 << 20) + 4 * (BLOCK as u64 + (64 << 10));
    assert!(seen.bytes_held <= bound, "{seen:?}");
    assert!(seen.bytes_held >= 16 << 20, "{seen:?}");
    assert!(seen.peak - seen.base < 32.0 + 40.0, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliver_streams_that_never_read_pin_a_bounded_number_of_blocks() {
    // At most DELIVER_STREAM_BLOCKS (8) big blocks per stream, besides small
    // ones such as the genesis block (DELIVER_BUFFER_BYTES); one stream that
    // never reads held 6 of 12 here (the response channel and h2's send
    // window stop it first).
    let (held, base, peak) = deliver_attack(1).await;
    assert!((4..=10).contains(&held), "1 stream: {held} blocks held");
    assert!(
        peak - base < mib(10) + 24.0,
        "1 stream: {base:.1} -> {peak:.1} MiB"
    );
    // DELIVER_CONNECTION_BUFFER (16) blocks per connection, 2 more while the
    // others are small (without it: +184 MiB RSS for these 40 streams).
    let (held, base, peak) = deliver_attack(40).await;
    assert!((16..=18).contains(&held), "40 streams: {held} blocks held");
    assert!(
        peak - base < mib(18) + 24.0,
        "40 streams: {base:.1} -> {peak:.1} MiB"
    );
    assert!(peak < 256.0, "40 streams: RSS {peak:.1} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undecodable_and_oversized_messages_get_grpc_go_statuses() {
    let net = net(50, 1, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[("ORDERER_GENERAL_MAXRECVMSGSIZE", "65536")],
        true,
    );
    let garbage = grpc_frame(&[0xff; 32]);
    let mut h2c = h2_client(port, 1 << 20).await;

    // Broadcast: a good envelope is answered, then garbage ends the stream
    // with INTERNAL (13).
    let good = tx_env(&net, b"good").encode_to_vec();
    let mut both = BytesMut::new();
    both.extend_from_slice(&grpc_frame(&good));
    both.extend_from_slice(&garbage);
    let (resp, _send) = h2_call(&mut h2c, port, BROADCAST, both.freeze()).await;
    let (msgs, status) = h2_finish(resp).await;
    assert_eq!(status, Some(13), "Broadcast garbage");
    assert_eq!(msgs.len(), 1);
    let r = fabric_protos::orderer::BroadcastResponse::decode(&msgs[0][..]).unwrap();
    assert_eq!(r.status, Status::Success as i32);

    // Deliver garbage: INTERNAL.
    let (resp, _send) = h2_call(&mut h2c, port, DELIVER, garbage.clone()).await;
    assert_eq!(h2_finish(resp).await.1, Some(13), "Deliver garbage");

    // Over MaxRecvMsgSize (64 KiB): RESOURCE_EXHAUSTED (8), on both.
    for path in [BROADCAST, DELIVER] {
        let big = grpc_frame(&vec![7u8; 100_000]);
        let (resp, _send) = h2_call(&mut h2c, port, path, big).await;
        assert_eq!(h2_finish(resp).await.1, Some(8), "{path} oversized");
    }
    // With the tonic client too, and the node still serves.
    let mut c = node.client().await;
    let st = c
        .broadcast(tokio_stream::iter(vec![tx_env(&net, &vec![1u8; 100_000])]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
    assert_eq!(
        broadcast(&mut c, vec![tx_env(&net, b"still fine")]).await[0].status,
        Status::Success as i32
    );
    let (blocks, status) = deliver(
        &mut c,
        &net.client,
        CHANNEL,
        SeekInfo {
            start: Some(seek_oldest()),
            stop: Some(seek_newest()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(blocks.len(), 3);
}

/// One HTTP/1.1 request; the status code.
fn http_status(port: u16, method: &str, path: &str, body: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before the whole body is sent.
    let _ = s.write_all(body.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logspec_floods_do_not_slow_deliver() {
    let net = net(100, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let ops = free_port();
    let ops_addr = format!("127.0.0.1:{ops}");
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[("ORDERER_OPERATIONS_LISTENADDRESS", &ops_addr)],
        true,
    );
    node.wait_port(ops, Duration::from_secs(10));
    let huge = {
        let names: Vec<String> = (0..60_000).map(|i| format!("logger{i}.sub")).collect();
        format!("{{\"spec\":\"{}=debug:info\"}}", names.join(","))
    };
    let many = {
        let names: Vec<String> = (0..250).map(|i| format!("logger{i}.sub")).collect();
        format!("{{\"spec\":\"{}=debug:info\"}}", names.join(","))
    };
    let too_many = {
        let names: Vec<String> = (0..300).map(|i| format!("l{i}")).collect();
        format!("{{\"spec\":\"{}=debug:info\"}}", names.join(","))
    };
    assert_eq!(http_status(ops, "PUT", "/logspec", &too_many), 400);
    let quiet = deliver_block0(&node, &net).await;
    let mut puts = Vec::new();
    for i in 0..4 {
        let body = if i % 2 == 0 {
            huge.clone()
        } else {
            many.clone()
        };
        puts.push(std::thread::spawn(move || {
            (0..3)
                .map(|_| http_status(ops, "PUT", "/logspec", &body))
                .collect::<Vec<_>>()
        }));
    }
    let mut worst = Duration::ZERO;
    while puts.iter().any(|p| !p.is_finished()) {
        worst = worst.max(deliver_block0(&node, &net).await);
    }
    for (i, p) in puts.into_iter().enumerate() {
        let codes = p.join().unwrap();
        let want = if i % 2 == 0 { 413 } else { 204 };
        assert!(codes.iter().all(|&c| c == want), "PUT {i}: {codes:?}");
    }
    eprintln!("Deliver of block 0 during /logspec floods: worst {worst:?} (quiet {quiet:?})");
    // Before: 4.7 s with two such PUTs, 9.8 s with four.
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    assert_eq!(
        http_status(ops, "PUT", "/logspec", "{\"spec\":\"info\"}"),
        204
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_handshakes_that_fail_or_stall_are_closed_and_logged() {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let net = net(100, 10, 1 << 20);
    let dir = net.dir.path().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    // A CA and a server certificate for 127.0.0.1.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "tlsca");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let (ca_file, cert_file, key_file) = (dir.join("ca.crt"), dir.join("s.crt"), dir.join("s.key"));
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();

    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[
            ("ORDERER_GENERAL_CONNECTIONTIMEOUT", "1s"),
            ("ORDERER_GENERAL_TLS_ENABLED", "true"),
            (
                "ORDERER_GENERAL_TLS_CERTIFICATE",
                cert_file.to_str().unwrap(),
            ),
            ("ORDERER_GENERAL_TLS_PRIVATEKEY", key_file.to_str().unwrap()),
            ("ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED", "true"),
            (
                "ORDERER_GENERAL_TLS_CLIENTROOTCAS",
                &format!("[{}]", ca_file.display()),
            ),
        ],
        true,
    );
    // 50 stalled handshakes: closed within the timeout.
    let stalled: Vec<_> = (0..50)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // A TLS client without a certificate under mutual TLS: refused, logged.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_cert.pem()))
        .domain_name("localhost");
    let refused = async {
        let ch = tonic::transport::Channel::from_shared(format!("https://localhost:{port}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect_timeout(Duration::from_secs(3))
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let mut c = fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient::new(ch);
        c.broadcast(tokio_stream::iter(vec![tx_env(&net, b"x")]))
            .await
            .map_err(|e| e.to_string())?
            .into_inner()
            .message()
            .await
            .map_err(|e| e.to_string())
            .map(|_| ())
    }
    .await;
    assert!(
        refused.is_err(),
        "a client without a certificate was served"
    );
    let closes: Vec<Duration> = tokio::task::spawn_blocking(move || {
        stalled
            .into_iter()
            .map(|s| wait_closed(s, Duration::from_secs(5)).expect("stalled handshake kept"))
            .collect()
    })
    .await
    .unwrap();
    let slowest = closes.iter().max().unwrap();
    eprintln!(
        "50 stalled TLS handshakes closed, the last after {slowest:?} (ConnectionTimeout 1s)"
    );
    assert!(*slowest < Duration::from_secs(3), "{slowest:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = log_of(&node);
    let failed = log
        .lines()
        .filter(|l| l.contains("Server TLS handshake failed"))
        .collect::<Vec<_>>();
    assert!(
        failed
            .iter()
            .any(|l| l.contains("127.0.0.1:") && l.contains("with error")),
        "no handshake failure with the remote address in the log: {log}"
    );
    // Rate-limited: 51 failures, a handful of lines per second.
    assert!(failed.len() <= 20, "{} handshake lines", failed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keepalive_closes_connections_that_do_not_answer_pings() {
    let net = net(100, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[
            ("ORDERER_GENERAL_KEEPALIVE_SERVERINTERVAL", "1s"),
            ("ORDERER_GENERAL_KEEPALIVE_SERVERTIMEOUT", "1s"),
        ],
        true,
    );
    // A client that completes the preface, then never answers anything.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap(); // empty SETTINGS
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let t = Instant::now();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let took = t.elapsed();
    // The server's frames: it pinged (type 6, no ACK) before closing.
    let mut pinged = false;
    let mut rest = &raw[..];
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        if rest[3] == 6 && rest[4] & 1 == 0 {
            pinged = true;
        }
        rest = &rest[(9 + len).min(rest.len())..];
    }
    eprintln!("silent HTTP/2 connection closed after {took:?} (ServerInterval 1s, ServerTimeout 1s), pinged: {pinged}");
    assert!(pinged, "no PING from the server");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Clients that answer pings stay connected and are served.
    let mut c = node.client().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (blocks, status) = deliver(&mut c, &net.client, CHANNEL, seek(0, Some(0))).await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(blocks.len(), 1);
}

/// `orderer start` as [`Node::start`] does, with its descriptor limit set
/// to `nofile` (soft and hard, through `prlimit`).
fn start_with_nofile(net: &Net, ledger: &std::path::Path, port: u16, nofile: u32) -> Node {
    let cfg = net.dir.path().join("no-config");
    std::fs::create_dir_all(&cfg).unwrap();
    let log = net.dir.path().join(format!("orderer-{port}-nofile.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = std::process::Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg(env!("CARGO_BIN_EXE_orderer"))
        .arg("start")
        .current_dir(&cfg)
        .env("FABRIC_CFG_PATH", &cfg)
        .env("ORDERER_GENERAL_BOOTSTRAPFILE", &net.genesis)
        .env("ORDERER_GENERAL_LISTENADDRESS", "127.0.0.1")
        .env("ORDERER_GENERAL_LISTENPORT", port.to_string())
        .env("ORDERER_GENERAL_LOCALMSPDIR", &net.orderer_msp)
        .env("ORDERER_GENERAL_LOCALMSPID", "SampleOrg")
        .env("ORDERER_GENERAL_CONNECTIONTIMEOUT", "10s")
        .env("ORDERER_FILELEDGER_LOCATION", ledger)
        .env(
            "ORDERER_OPERATIONS_LISTENADDRESS",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("FABRIC_LOGGING_SPEC", "info")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawning prlimit orderer");
    let node = Node { child, port, log };
    node.wait_listening();
    node
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime), counted from after the command name.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn out_of_descriptors_the_accept_loop_waits_instead_of_spinning() {
    let net = net(100, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    // 30 descriptors (about 20 in use at rest): the connection limit
    // becomes its floor (16), and the process runs out of descriptors
    // before reaching it.
    let node = start_with_nofile(&net, &ledger, port, 30);
    let pid = node.child.id();
    deliver_block0(&node, &net).await;
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    eprintln!("descriptors in use before: {}", fds());
    // 60 silent connections, more than the descriptors left (those the
    // kernel's accept queue has no room for fail).
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let silent: Vec<_> = (0..60)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu0 = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_seconds(pid) - cpu0;
    eprintln!("descriptors in use during: {}", fds());
    let log = log_of(&node);
    eprintln!(
        "{} silent connections against 30 descriptors: {used:.2} s of CPU in 2 s; accept paused: {}",
        silent.len(),
        log.contains("gRPC accept failed; pausing")
    );
    assert!(log.contains("gRPC accept failed; pausing"), "{log}");
    // Spinning on EMFILE took ~1.2 cores (2.4 s here).
    assert!(used < 0.6, "{used:.2} s of CPU in 2 s");
    // Once the attacker is gone, clients are served again.
    drop(silent);
    let t = Instant::now();
    loop {
        let r = tokio::time::timeout(Duration::from_secs(3), async {
            let ch = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
                .unwrap()
                .connect()
                .await
                .ok()?;
            let mut c =
                fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient::new(ch);
            let (blocks, status) = deliver(&mut c, &net.client, CHANNEL, seek(0, Some(0))).await;
            (status == Some(Status::Success) && blocks.len() == 1).then_some(())
        })
        .await;
        if let Ok(Some(())) = r {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "not served again: {}",
            log_of(&node)
        );
    }
    eprintln!("served again {:?} after the attacker left", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_broadcast_streams_are_bounded_by_max_streams() {
    const MAX: usize = 1000;
    let net = net(100, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[("ORDERER_GENERAL_LIMITS_MAXSTREAMS", "1000")],
        true,
    );
    let pid = node.child.id();
    deliver_block0(&node, &net).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = rss_mib(pid);
    // 1,200 idle Broadcast streams over 4 connections.
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(node.client().await);
    }
    let (mut still_open, refused) =
        idle_broadcast_streams(&mut clients, 1200, Duration::from_millis(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_mib(pid) - base;
    eprintln!(
        "1,200 idle Broadcast streams against MaxStreams 1000: {} open, {refused} refused; RSS +{grown:.1} MiB ({:.1} KB per open stream)",
        still_open.len(),
        grown * 1024.0 / still_open.len() as f64
    );
    assert_eq!(still_open.len(), MAX);
    assert_eq!(refused, 200);
    // ≈25 KB each measured on the release build.
    assert!(grown < 64.0, "RSS grew {grown:.1} MiB");
    // Closing streams lets new ones in.
    still_open.truncate(MAX - 10);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = node.client().await;
    assert_eq!(
        broadcast(&mut c, vec![tx_env(&net, b"room again")]).await[0].status,
        Status::Success as i32
    );
}

/// Six connections each sending a 30 MiB message at once, under a 32 MiB
/// `MaxReceivedBytes`: the messages are taken one after another (the
/// others are held back by HTTP/2 flow control), so the node's RSS grows
/// by about one message, not six; every stream is still answered and a
/// normal client is served. Without the budget all six were buffered
/// together (the issue measured 805 MiB for six 95 MiB messages).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_large_messages_are_received_within_the_byte_budget() {
    const MSG: usize = 30 << 20;
    let net = net(50, 1, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[("ORDERER_GENERAL_LIMITS_MAXRECEIVEDBYTES", "32 MB")],
        true,
    );
    let pid = node.child.id();
    let base = rss_mib(pid);
    let garbage = grpc_frame(&vec![0xffu8; MSG]);
    let mut calls = Vec::new();
    for path in [BROADCAST, DELIVER, BROADCAST, DELIVER, BROADCAST, BROADCAST] {
        let (mut h2c, task) = h2_client_task(port, 1 << 20).await;
        let (resp, send) = h2_call(&mut h2c, port, path, garbage.clone()).await;
        calls.push((path, resp, send, task));
    }
    let mut peak = base;
    let mut statuses = Vec::new();
    for (path, resp, _send, task) in calls {
        let answered = tokio::spawn(h2_finish(resp));
        while !answered.is_finished() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            peak = peak.max(rss_mib(pid));
        }
        statuses.push((path, answered.await.unwrap().1));
        task.abort();
    }
    peak = peak.max(peak_rss(pid, base).await);
    // Undecodable: INTERNAL (13) on each stream.
    assert!(statuses.iter().all(|(_, s)| *s == Some(13)), "{statuses:?}");
    let grown = peak - base;
    println!("six 30 MiB messages: RSS {base:.1} -> peak {peak:.1} MiB (+{grown:.1})");
    assert!(
        grown < 2.5 * (MSG >> 20) as f64,
        "RSS grew {grown:.1} MiB for six {} MiB messages",
        MSG >> 20
    );
    let mut c = node.client().await;
    assert_eq!(
        broadcast(&mut c, vec![tx_env(&net, b"still fine")]).await[0].status,
        Status::Success as i32
    );
}

/// `env` with its channel header's `tx_id` replaced, signed again by the client.
fn with_tx_id(
    net: &Net,
    env: fabric_protos::common::Envelope,
    tx_id: String,
) -> fabric_protos::common::Envelope {
    use fabric_protos::common::{ChannelHeader, Payload};
    let mut payload = Payload::decode(&env.payload[..]).unwrap();
    let header = payload.header.as_mut().unwrap();
    let mut ch = ChannelHeader::decode(&header.channel_header[..]).unwrap();
    ch.tx_id = tx_id;
    header.channel_header = ch.encode_to_vec();
    let payload = payload.encode_to_vec();
    fabric_protos::common::Envelope {
        signature: net.client.sign(&payload),
        payload,
    }
}

/// The attack: 60 envelopes whose `tx_id` is 4 MiB each (the
/// tx-ID window kept them twice, and was rebuilt from the ledger: RSS
/// 67 → 571 MiB, 533 MiB after a restart). All are ordered (as Fabric
/// does), and neither the running node nor one restarted on that ledger
/// keeps them in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn envelopes_with_4_mib_tx_ids_are_ordered_without_being_kept_in_memory() {
    let net = net(100, 10, 8 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let node = Node::start(&net, &ledger, port);
    let base = rss_mib(node.child.id());
    let mut c = node.client().await;
    for round in 0..6u8 {
        let envs = (0..10u8)
            .map(|i| {
                let id = format!("{round}-{i}-{}", "x".repeat(4 << 20));
                with_tx_id(&net, tx_env(&net, &[round, i]), id)
            })
            .collect();
        let resps = broadcast(&mut c, envs).await;
        assert_eq!(resps.len(), 10);
        assert!(
            resps.iter().all(|r| r.status == Status::Success as i32),
            "{resps:?}"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_mib(node.child.id());
    drop(c);
    drop(node);
    let node = Node::start(&net, &ledger, port);
    let mut c = node.client().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = rss_mib(node.child.id());
    let (blocks, status) = deliver(
        &mut c,
        &net.client,
        CHANNEL,
        SeekInfo {
            start: Some(seek_oldest()),
            stop: Some(seek_newest()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(status, Some(Status::Success));
    let txs: usize = blocks
        .iter()
        .skip(1)
        .map(|b| b.data.as_ref().map_or(0, |d| d.data.len()))
        .sum();
    assert_eq!(txs, 60);
    println!("4 MiB tx_ids: RSS {base:.1} MiB at start, {after:.1} after 60, {restarted:.1} restarted on that ledger");
    assert!(after - base < 160.0, "running: {base:.1} -> {after:.1} MiB");
    assert!(restarted < base + 64.0, "restarted: {restarted:.1} MiB");
}

/// Raw HTTP/2 frames: a frame of `kind` on stream 0.
fn raw_frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A raw HTTP/2 client connection: preface and an empty SETTINGS sent.
fn raw_h2(port: u16) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    s.write_all(&raw_frame(4, 0, &[])).unwrap();
    s
}

/// The frames (type, flags, payload) of `raw`.
fn raw_frames(raw: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = raw;
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        let end = (9 + len).min(rest.len());
        out.push((rest[3], rest[4], rest[9..end].to_vec()));
        rest = &rest[end..];
    }
    out
}

/// `General.Keepalive.ServerMinInterval` as grpc-go enforces it for
/// Fabric: a client that pings four times in a row (the third strike) is
/// sent GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and disconnected; one
/// that pings at the allowed rate, and normal clients, are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_ping_too_often_get_goaway_enhance_your_calm() {
    let net = net(100, 10, 1 << 20);
    let ledger = net.dir.path().join("ledger");
    let port = free_port();
    let ops = free_port();
    let ops_addr = format!("127.0.0.1:{ops}");
    let node = Node::start_env(
        &net,
        &ledger,
        port,
        "SampleOrg",
        true,
        &[
            ("ORDERER_GENERAL_KEEPALIVE_SERVERMININTERVAL", "1s"),
            ("ORDERER_OPERATIONS_LISTENADDRESS", &ops_addr),
            ("ORDERER_METRICS_PROVIDER", "prometheus"),
        ],
        true,
    );
    node.wait_port(ops, Duration::from_secs(10));
    // A normal client, connected throughout.
    let mut normal = node.client().await;
    // Pings every 1.2 s: allowed.
    let mut polite = raw_h2(port);
    for i in 0..4u8 {
        polite.write_all(&raw_frame(6, 0, &[i; 8])).unwrap();
        std::thread::sleep(Duration::from_millis(1200));
    }
    assert!(
        !closed_now(&polite),
        "a client pinging every 1.2 s was closed"
    );
    // Four pings at once: the first is free, the next three are strikes.
    let mut flood = raw_h2(port);
    let t = Instant::now();
    for i in 0..4u8 {
        flood.write_all(&raw_frame(6, 0, &[i; 8])).unwrap();
    }
    flood
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut raw = Vec::new();
    let _ = flood.read_to_end(&mut raw);
    let took = t.elapsed();
    let frames = raw_frames(&raw);
    let goaway = frames
        .iter()
        .find(|(kind, _, _)| *kind == 7)
        .unwrap_or_else(|| panic!("no GOAWAY in {frames:?}"));
    let code = u32::from_be_bytes(goaway.2[4..8].try_into().unwrap());
    eprintln!(
        "4 pings at once: GOAWAY code {code:#x} {:?}, closed after {took:?}",
        String::from_utf8_lossy(&goaway.2[8..])
    );
    assert_eq!(code, 0xb, "ENHANCE_YOUR_CALM");
    assert_eq!(&goaway.2[8..], b"too_many_pings");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Nothing after the GOAWAY: the connection is closed.
    assert_eq!(frames.last().map(|f| f.0), Some(7), "{frames:?}");
    let (_, metrics) = http_get(ops, "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("orderer_refused_total{reason=\"too_many_pings\"} 1")),
        "{metrics}"
    );
    assert!(log_of(&node).contains("General.Keepalive.ServerMinInterval"));
    // The others are still served.
    assert!(!closed_now(&polite));
    let (blocks, status) = deliver(&mut normal, &net.client, CHANNEL, seek(0, Some(0))).await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(blocks.len(), 1);
    assert_eq!(
        broadcast(&mut normal, vec![tx_env(&net, b"calm")]).await[0].status,
        Status::Success as i32
    );
}

// ------------------------------------------------------- the full scale --
//
// The attacks of issue #16 at the scale the issue measured them. Too slow
// and too heavy for every CI run (the tests above repeat them scaled down);
// run them with
//
//     cargo build -p orderer --bins
//     cargo test -p orderer --test e2e_hardening -- --ignored --test-threads 1 full_scale
//
// Each asserts the bound SECURITY.md documents (RSS under 256 MiB above the
// node's start unless said otherwise) and prints what it measured.

/// Full scale: 10, 30 and 60 Deliver streams that never read, on one
/// connection, while 9 MiB blocks are cut (the issue: +425 / +1,250 /
/// +2,510 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "full scale: run by hand (see above)"]
async fn full_scale_deliver_streams_that_never_read_over_9_mib_blocks() {
    for streams in [10, 30, 60] {
        let seen = DeliverAttack {
            conns: 1,
            streams,
            block: 9 << 20,
            blocks: 20,
            env: &[],
            others_served: true,
        }
        .run()
        .await;
        println!(
            "full scale: {streams} non-reading Deliver streams, 9 MiB blocks: {} blocks held, RSS {:.1} -> {:.1} MiB (+{:.1})",
            seen.blocks_held,
            seen.base,
            seen.peak,
            seen.peak - seen.base
        );
        assert!(seen.blocks_held <= 18, "{seen:?}");
        assert!(seen.peak - seen.base < 256.0, "{seen:?}");
    }
}

/// Concurrent undecodable messages of `msg` bytes, one connection each:
/// every stream answered INTERNAL; the node's RSS before and at its peak.
async fn large_messages(node: &Node, port: u16, count: usize, msg: usize) -> (f64, f64) {
    let pid = node.child.id();
    let base = rss_mib(pid);
    let garbage = grpc_frame(&vec![0xffu8; msg]);
    let mut calls = Vec::new();
    for i in 0..count {
        let path = if i % 3 == 1 { DELIVER } else { BROADCAST };
        let (mut h2c, task) = h2_client_task(port, 1 << 20).await;
        let (resp, send) = h2_call(&mut h2c, port, path, garbage.clone()).await;
        calls.push((path, resp, send, task));
    }
    drop(garbage);
    let mut peak = base;
    let mut statuses = Vec::new();
    for (path, resp, _send, task) in calls {
        let (answer, p) =
            peak_rss_during(pid, peak, h2_finish_within(resp, Duration::from_secs(600))).await;
        peak = p;
        statuses.push((path, answer.1));
        task.abort();
    }
    peak = peak.max(peak_rss(pid, base).await);
    assert!(statuses.iter().all(|(_, s)| *s == Some(13)), "{statuses:?}");
    (base, peak)
}

/// Full scale: six concurrent 95 MiB messages under the default budgets
/// (the issue: peak RSS 805 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "full scale: run by hand (see above)"]
async fn full_scale_six_concurrent_95_mib_messages() {
    let net = net(50, 1, 1 << 20);
    let n = OpsNode::start(&net, &[]);
    let (base, peak) = large_messages(&n.node, n.port, 6, 95 << 20).await;
    println!(
        "full scale: six concurrent 95 MiB messages: RSS {base:.1} -> peak {peak:.1} MiB (+{:.1})",
        peak - base
    );
    // MaxReceivedBytes (128 MiB) holds one message at a time, which tonic
    // copies once to decode it.
    assert!(peak - base < 256.0, "RSS {base:.1} -> {peak:.1} MiB");
    let mut c = n.node.client().await;
    assert_eq!(
        broadcast(&mut c, vec![tx_env(&net, b"still fine")]).await[0].status,
        Status::Success as i32
    );
}

/// Full scale: `streams` Broadcast streams, each sending 5 valid 9 MiB
/// envelopes at once (the issue: peak RSS 774 MiB for 4-6 streams); all
/// are ordered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "full scale: run by hand (see above)"]
async fn full_scale_streams_of_9_mib_envelopes() {
    const PER_STREAM: usize = 5;
    let net = net(100, 10, 10 << 20);
    let n = OpsNode::start(&net, &[]);
    for streams in [4usize, 6] {
        let base = n.rss();
        let mut tasks = Vec::new();
        for s in 0..streams {
            let envs: Vec<_> = (0..PER_STREAM)
                .map(|i| tx_env(&net, &vec![(s * 16 + i) as u8; 9 << 20]))
                .collect();
            let mut c = n.node.client().await;
            tasks.push(tokio::spawn(async move { broadcast(&mut c, envs).await }));
        }
        let all = futures::future::join_all(tasks);
        let (results, peak) = peak_rss_during(n.pid(), base, all).await;
        for r in results {
            let r = r.unwrap();
            assert_eq!(r.len(), PER_STREAM);
            assert!(
                r.iter().all(|r| r.status == Status::Success as i32),
                "{r:?}"
            );
        }
        let peak = peak.max(peak_rss(n.pid(), base).await);
        println!(
            "full scale: {streams} streams x {PER_STREAM} envelopes of 9 MiB: RSS {base:.1} -> peak {peak:.1} MiB (+{:.1})",
            peak - base
        );
        assert!(peak - base < 256.0, "RSS {base:.1} -> {peak:.1} MiB");
    }
    let blocks = deliver_all(&n.node, &net).await;
    let txs: usize = blocks
        .iter()
        .skip(1)
        .map(|b| b.data.as_ref().map_or(0, |d| d.data.len()))
        .sum();
    assert_eq!(txs, 10 * PER_STREAM);
}

/// Full scale: 20,000 idle Broadcast streams over 20 connections (the
/// issue: +500 MiB, no limit): `MaxStreams` (8192) are open, the others
/// refused with RESOURCE_EXHAUSTED.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "full scale: run by hand (see above)"]
async fn full_scale_20000_idle_broadcast_streams() {
    const STREAMS: usize = 20_000;
    const CONNS: usize = 20;
    let net = net(100, 10, 1 << 20);
    let n = OpsNode::start(&net, &[]);
    deliver_all(&n.node, &net).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = n.rss();
    let mut clients = Vec::new();
    for _ in 0..CONNS {
        clients.push(n.node.client().await);
    }
    let (still_open, refused) =
        idle_broadcast_streams(&mut clients, STREAMS, Duration::from_millis(2)).await;
    let peak = peak_rss(n.pid(), base).await;
    println!(
        "full scale: {STREAMS} idle Broadcast streams over {CONNS} connections: {} open, {refused} refused; RSS {base:.1} -> {peak:.1} MiB (+{:.1}, {:.1} KB per open stream)",
        still_open.len(),
        peak - base,
        (peak - base) * 1024.0 / still_open.len() as f64
    );
    assert_eq!(still_open.len(), 8192);
    assert_eq!(refused, STREAMS - 8192);
    assert!(peak - base < 256.0, "RSS {base:.1} -> {peak:.1} MiB");
    let mut c = n.node.client().await;
    drop(still_open);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        broadcast(&mut c, vec![tx_env(&net, b"room again")]).await[0].status,
        Status::Success as i32
    );
}
